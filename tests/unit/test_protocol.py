"""The protocol every process shares: one error base class, one set of codes, one syscall table (no model)."""

from __future__ import annotations

import io
import pickle
import tokenize
from pathlib import Path

import pytest

from agent_apps.sdk import KernelGone, SyscallError
from aios_shell.client import KernelError
from aios_shell.daemon.conn import RequestError
from kernel.llm.backends import BackendError
from kernel.llm.request import LLMError
from kernel.protocol import messages
from kernel.protocol.messages import EIO, EPERM, CodedError, ProtocolError
from kernel.syscall import SyscallFailure
from tools.base import ToolError

ROOT = Path(__file__).resolve().parents[2]
CODES = {name for name in dir(messages) if name.startswith("E") and name.isupper() and
         getattr(messages, name) == name}


@pytest.mark.parametrize("cls", [KernelError, RequestError, BackendError, LLMError, SyscallFailure, ToolError,
                                 ProtocolError, SyscallError])
def test_every_coded_error_takes_code_then_message_and_survives_pickling(cls):
    e = cls(EPERM, "not yours")
    assert isinstance(e, CodedError) and e.code == EPERM and e.message == "not yours"
    assert str(e) == ("EPERM: not yours" if cls is SyscallError else "not yours")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls and back.code == EPERM and back.message == "not yours" and str(back) == str(e)


def test_subclass_attributes_survive_pickling():
    e = pickle.loads(pickle.dumps(BackendError(EIO, "busy", retryable=True, retry_after=2.5)))
    assert (e.retryable, e.retry_after) == (True, 2.5)
    gone = pickle.loads(pickle.dumps(KernelGone()))
    assert type(gone) is KernelGone and gone.code == messages.ECONNRESET
    assert pickle.loads(pickle.dumps(ProtocolError(EIO, "x", req_id=7))).req_id == 7


def test_code_literals_only_in_messages():
    """A code spelled as a string literal ("EIO") instead of the constant is a typo waiting to happen."""
    found = []
    for path in [*ROOT.glob("kernel/**/*.py"), *ROOT.glob("aios_shell/**/*.py"), *ROOT.glob("agent_apps/*.py"),
                 *ROOT.glob("tools/*.py"), ROOT / "main.py", ROOT / "simulator.py"]:
        if path == ROOT / "kernel" / "protocol" / "messages.py":
            continue
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if tok.type == tokenize.STRING and tok.string[:1] in "\"'" and tok.string[1:-1] in CODES:
                found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {tok.string}")
    assert found == []


def test_every_environment_variable_is_in_the_readme_table():
    """The AIOS_* variables the code reads are listed once, in docs/configuration.md's table (and no stale one)."""
    import re
    used = set()
    for path in [*ROOT.glob("kernel/**/*.py"), *ROOT.glob("aios_shell/**/*.py"), *ROOT.glob("agent_apps/**/*.py"),
                 *ROOT.glob("tools/*.py"), ROOT / "main.py", ROOT / "simulator.py"]:
        used |= set(re.findall(r"\bAIOS_[A-Z_]+\b", path.read_text()))
    doc = (ROOT / "docs" / "configuration.md").read_text()
    table = doc[doc.index("**Environment variables.**"):doc.index("## Logs")]
    assert used == set(re.findall(r"\bAIOS_[A-Z_]+\b", table))


def _sdk_calls() -> dict[str, set[str]]:
    """Every ``syscall("name", kw=...)`` in the SDK: name -> the argument names it may send."""
    import ast
    calls: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse((ROOT / "agent_apps" / "sdk.py").read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "syscall" and node.args \
                and isinstance(node.args[0], ast.Constant):
            names = calls.setdefault(node.args[0].value, set())
            names.update(k.arg for k in node.keywords if k.arg)
            for k in node.keywords:  # **({} if x is None else {"pid": pid}) and **args built from literals
                if k.arg is None:
                    names.update(c.value for c in ast.walk(k.value) if isinstance(c, ast.Constant)
                                 and isinstance(c.value, str))
    return calls


def test_the_table_is_assembled_in_one_place_and_the_sdk_covers_exactly_it():
    from kernel.syscall import Entries, assemble
    from kernel.systable import TABLE

    calls = _sdk_calls()
    assert sorted(calls) == sorted(TABLE)
    for name, args in calls.items():  # no helper sends an argument its schema would refuse
        assert args <= set(TABLE[name].schema.get("properties", {})), (name, args)
    with pytest.raises(ValueError):
        Entries("fs").register("proc.kill", {}, "not fs")
    one, two = Entries("x"), Entries("x")
    with pytest.raises(ValueError):
        assemble(one, two)


def test_control_ops_are_one_table_with_schemas():
    """Every control op the front may send is in kernel.control.OPS (built once, the access manager's
    included), and its arguments are checked by schema before the handler runs."""
    from kernel import control

    sent = []

    class Front:  # stands in for the kernel: handle() only calls send_front before a handler runs
        def send_front(self, msg):
            sent.append(msg)

    assert sorted(control.OPS) == ["access", "apps", "confirm", "info", "kill", "logs", "ps", "setgroup", "spawn",
                                   "stats", "stop", "tools", "trace", "untrace", "wait"]
    for req, code, words in [({"op": "kill", "id": 1, "pid": "3"}, "EINVAL", "kill: '3' is not of type 'integer'"),
                             ({"op": "wait", "id": 2}, "EINVAL", "'pid' is a required property"),
                             ({"op": "spawn", "id": 3, "agent": "A", "task": "t", "timeout": 1}, "EINVAL",
                              "Additional properties are not allowed"),
                             ({"op": "confirm", "id": 4, "cid": 1, "allow": "yes"}, "EINVAL", "not of type 'boolean'"),
                             ({"op": "frobnicate", "id": 5}, "ENOSYS", "unknown control op 'frobnicate'")]:
        control.handle(Front(), req)
        reply = sent.pop()
        assert reply["reply"] == req["id"] and reply["ok"] is False and reply["code"] == code, reply
        assert words in reply["error"], reply


def test_a_deferred_reply_answers_once_from_any_thread():
    """Reply: the one shape of every answer that comes later (LLM, storage, tools, memory, wait, confirm)."""
    import json
    import threading

    from kernel.syscall import DEFERRED, Reply

    class Loop:  # stands in for the kernel: reply_later is all a Reply uses
        def __init__(self):
            self.sent = []

        def reply_later(self, pid, data):
            self.sent.append((pid, json.loads(data)))

    loop, moves = Loop(), []
    r = Reply(loop, 7, 3, before=lambda: moves.append("running"))
    racers = [threading.Thread(target=r.ok, args=({"n": i},)) for i in range(8)]
    racers.append(threading.Thread(target=r.fail, args=(messages.ETIMEDOUT, "still running")))
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert len(loop.sent) == 1 and moves == ["running"] and loop.sent[0][0] == 7 and loop.sent[0][1]["id"] == 3
    assert r.ok("late") is False and len(loop.sent) == 1

    loop = Loop()
    assert Reply(loop, 1, 1).run(lambda: DEFERRED) is False and loop.sent == []  # handed on, not answered
    Reply(loop, 1, 2).run(lambda: (_ for _ in ()).throw(ToolError(EPERM, "no")))
    Reply(loop, 1, 3).run(lambda: 1 / 0, what="storage")
    Reply(loop, 1, 4).ok({"x": object()})  # a result JSON cannot carry is EIO, not a crash
    errors = [msg["error"] for _, msg in loop.sent]
    assert errors[0] == {"code": "EPERM", "message": "no"}
    assert errors[1]["code"] == "EIO" and errors[1]["message"].startswith("storage failed: ZeroDivisionError")
    assert errors[2]["code"] == "EIO" and "unserialisable" in errors[2]["message"]
