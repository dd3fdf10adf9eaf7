"""Fuzzing the syscall boundary with hypothesis, through a real agent process.

Random bytes, random JSON, and envelope-shaped messages with wrong types,
unknown kinds, forged pids and replies meant for agents. Every frame must be
answered with an error or a result (or, for a well-formed log line, dropped),
the kernel must keep serving, and no reply may carry another agent's data.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.protocol.channel import read_frame, write_frame
from kernel.systable import TABLE

CODES = {"EINVAL", "ENOSYS", "EPERM", "ESRCH", "E2BIG", "EAGAIN", "ECANCELED", "EIO", "ETIMEDOUT",
         "ENOENT", "ENOSPC", "EACCES", "EDQUOT", "EEXIST"}

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63), st.floats(allow_nan=False),
                      st.text(max_size=40))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
# Calls that would really run work (spawn agents, generate text, end the relay) get only junk arguments.
NAMES = st.one_of(st.sampled_from(sorted(TABLE) + ["", "proc", "llm.", "../etc/passwd", "x" * 300]), st.text(max_size=20))


@st.composite
def envelope(draw, secret_pid):
    msg = {
        "kind": draw(st.sampled_from(["syscall", "syscall", "log", "reply", "exit", "", None, 7])),
        "id": draw(st.one_of(st.integers(-5, 2**60), json_value)),
        "pid": draw(st.sampled_from(["$PID", "$PID", secret_pid, 0, -1, 2**40, "1", None])),
        "name": draw(NAMES),
        "args": draw(st.one_of(st.dictionaries(st.sampled_from(
            ["messages", "pid", "agent", "task", "timeout", "result", "status", "max_new_tokens", "name",
             "key", "data", "args", "path", "query", "version", "content"]), json_value, max_size=4), json_value)),
    }
    for field in draw(st.sets(st.sampled_from(list(msg)), max_size=2)):
        del msg[field]
    if msg.get("kind") == "log":
        msg["level"], msg["text"] = "INFO", draw(st.text(max_size=50))
    return json.dumps(msg).encode()


@pytest.fixture(scope="module")
def relay(kernel):
    ws = os.path.join(kernel.config.data_dir, "workspaces", "RelayAgent")  # a confined agent sees only this
    os.makedirs(ws, exist_ok=True)
    names = {"in": f"in-{uuid.uuid4().hex}", "out": f"out-{uuid.uuid4().hex}"}
    fin, fout = os.path.join(ws, names["in"]), os.path.join(ws, names["out"])
    os.mkfifo(fin)
    os.mkfifo(fout)
    secret = f"SECRET-{uuid.uuid4().hex}"
    secret_pid = kernel.spawn("SleepyAgent", secret)  # another agent, in its own group
    pid = kernel.spawn("RelayAgent", json.dumps(names))  # paths relative to its workspace (its cwd)
    w = open(fin, "wb", buffering=0)
    r = open(fout, "rb", buffering=0)
    yield {"w": w, "r": r, "pid": pid, "secret": secret, "secret_pid": secret_pid}
    write_frame(w.fileno(), b"")
    w.close()
    r.close()
    snap = kernel.wait(pid, timeout=60)
    assert snap["state"] == "done", snap
    kernel.kill(secret_pid)


def _roundtrip(relay, frame: bytes) -> dict:
    write_frame(relay["w"].fileno(), frame)
    return json.loads(read_frame(relay["r"].fileno()))


def _check(relay, frame: bytes, out: dict) -> None:
    assert out["marker"]["ok"], out  # the kernel still serves this agent after the frame
    assert relay["secret"] not in json.dumps(out), "another agent's data leaked"
    for reply in out["replies"]:
        assert reply["kind"] == "reply"
        if not reply["ok"]:
            assert reply["error"]["code"] in CODES and reply["error"]["message"], reply
    if not out["replies"]:  # only a well-formed log line may go unanswered
        assert json.loads(frame)["kind"] == "log"


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_envelopes(kernel, relay, data):
    frame = data.draw(envelope(relay["secret_pid"]))
    _check(relay, frame, _roundtrip(relay, frame))


@settings(max_examples=80, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.one_of(st.binary(min_size=1, max_size=2048), json_value.map(lambda v: json.dumps(v).encode())))
def test_fuzz_raw_bytes_and_json(kernel, relay, raw):
    out = _roundtrip(relay, raw)
    assert out["marker"]["ok"] and len(out["replies"]) == 1 and not out["replies"][0]["ok"], out


def test_other_agents_info_is_restricted(kernel, relay):
    frame = json.dumps({"kind": "syscall", "id": 1, "pid": "$PID", "name": "proc.info",
                        "args": {"pid": relay["secret_pid"]}}).encode()
    out = _roundtrip(relay, frame)
    info = out["replies"][0]["result"]
    assert info["pid"] == relay["secret_pid"] and "task" not in info and "result" not in info
