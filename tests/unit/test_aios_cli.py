"""The ``aios`` front without a kernel: its verb table and parsers, how ``run`` splits and answers, the event
filter of ``run``, systemd's notify protocol and journal lines, waiting on a process that is not our child,
and the fixed places (XDG folders, absolute log and data folders).

Proves: each verb parses its --help and rejects a bad flag with status 2; kernel flags are seen as given only
when given; ``run``'s task takes several words or the shell's ``Agent: task``; the answer is the record's
``answer``, a string result or an object's ``answer``; our agent's lines that arrive before the spawn reply
are replayed in order and other agents' are dropped; READY=1 reaches $NOTIFY_SOCKET (abstract too) and the
variable is gone from the environment after; ProcessGone returns when the process exits.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aios_shell import cli
from aios_shell.daemon.notify import JournalFormatter, Notifier, under_journal
from aios_shell.daemon.remote import ProcessGone
from aios_shell.runone import OneAgent, answer_of, split_task
from aios_shell.service import fmt_uptime
from kernel.config import KernelConfig, state_dir


@pytest.fixture(scope="module")
def verbs():
    return cli.load_verbs()


def test_the_table_and_each_verbs_help(verbs, capsys):
    assert list(verbs)[:4] == ["run", "ps", "top", "logs"] and list(verbs)[-3:] == ["serve", "stop", "status"]
    assert {"kill", "wait", "info", "result", "agents", "models", "script"} <= set(verbs)
    for name, v in verbs.items():
        with pytest.raises(SystemExit) as e:
            cli.parser_for(v).parse_args(["--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: aios {name}"), out
        assert ("--llm-name LLM_NAME" in out) == (v.where in ("kernel", "serve")), name  # kernel flags where one starts
        assert ("--standalone" in out) == (v.where == "kernel"), name
    with pytest.raises(SystemExit) as e:
        cli.parser_for(verbs["ps"]).parse_args(["-o", "yaml"])
    assert e.value.code == 2
    assert cli.main(["frobnicate"]) == 2 and "unknown verb 'frobnicate'" in capsys.readouterr().err
    assert cli.main(["stauts"]) == 2 and "unknown verb 'stauts'; did you mean 'status'?" in capsys.readouterr().err
    assert cli.main(["help", "run"]) == 0 and "usage: aios run" in capsys.readouterr().out


def test_kernel_flags_count_only_when_given(verbs):
    p = cli.parser_for(verbs["run"])
    assert cli.kernel_flags_given(p.parse_args(["EchoAgent", "hi"])) == []
    a = p.parse_args(["--max_new_tokens", "4", "--scheduler", "rr", "EchoAgent", "hi", "--json"])
    assert cli.kernel_flags_given(a) == ["--max-new-tokens", "--scheduler"] and a.json and a.task == ["hi"]
    assert cli.config_from(a).llm.max_new_tokens == 4
    with pytest.raises(cli.Usage):
        cli.config_from(p.parse_args(["--max-new-tokens", "0", "EchoAgent", "hi"]))


def test_run_splits_its_task_and_finds_the_answer():
    assert split_task("MathAgent", ["What", "is", "2+2?"]) == ("MathAgent", "What is 2+2?")
    assert split_task("MathAgent: What is", ["2+2?"]) == ("MathAgent", "What is 2+2?")
    assert split_task("MathAgent:", ["x"]) == ("MathAgent", "x")
    for bad in (("MathAgent", []), (":", ["x"])):
        with pytest.raises(cli.Usage):
            split_task(*bad)
    assert answer_of({"answer": "48", "result": {"answer": "48", "steps": []}}) == "48"
    assert answer_of({"result": "plain"}) == "plain"
    assert answer_of({"result": {"answer": "x", "n": 1}}) == "x"
    assert answer_of({"result": {"changed": True}}) == '{"changed": true}'
    assert answer_of({"result": None}) is None


def test_run_shows_only_its_agent_in_order():
    seen = []

    class Ctx:
        on_event = seen.append

    view = OneAgent(Ctx())
    view({"event": "output", "pid": 7, "text": "early"})  # before the spawn reply
    view({"event": "output", "pid": 8, "text": "someone else's"})
    view({"event": "ready", "stats": {}})  # not per-agent: at once
    view.mine(7)
    view({"event": "output", "pid": 7, "text": "late"})
    view({"event": "exit", "pid": 9, "snapshot": {}})
    assert [e.get("text", e["event"]) for e in seen] == ["ready", "early", "late"]


@pytest.mark.parametrize("abstract", [False, True])
def test_notify_reaches_systemd_and_leaves_the_environment(tmp_path, monkeypatch, abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    addr = f"\0aios-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    s.bind(addr)
    s.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + addr[1:] if abstract else addr)
    n = Notifier.from_env()
    assert "NOTIFY_SOCKET" not in os.environ  # the kernel and agents started after this do not inherit it
    assert n.send(READY=1, STATUS="serving")
    assert s.recv(100) == b"READY=1\nSTATUS=serving"
    s.close()
    assert Notifier.from_env().send(READY=1) is False  # outside systemd: nothing, no error


def test_journal_lines_have_a_priority_and_no_timestamp(tmp_path, monkeypatch):
    rec = logging.LogRecord("aios.daemon", logging.WARNING, __file__, 1, "two\nlines", None, None)
    assert JournalFormatter().format(rec) == f"<4>WARNING [{os.getpid()} aios.daemon] two\n<4>lines"
    with open(tmp_path / "j", "w") as f:
        st = os.fstat(f.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert under_journal(f)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not under_journal(f)  # a redirected stderr is no longer the journal


def test_process_gone_waits_for_an_exit_without_being_its_parent():
    p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    gone = ProcessGone(p.pid)
    try:
        assert gone.wait(0.2) is False
        t0 = time.monotonic()
        p.stdin.close()  # it exits now
        assert gone.wait(10) is True and time.monotonic() - t0 < 5
    finally:
        gone.close()
        p.wait()
    assert ProcessGone(None).wait(0) is True


def test_fixed_places(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    assert state_dir() == tmp_path / "st" / "aios"
    cfg = KernelConfig()
    assert cfg.logs.dir == str(tmp_path / "st" / "aios" / "logs")
    assert cfg.data_dir == str(tmp_path / "st" / "aios" / "data")
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")  # the XDG spec: ignored
    assert state_dir() == Path.home() / ".local" / "state" / "aios"
    monkeypatch.chdir(tmp_path)
    cfg = KernelConfig.from_flags(log_dir="here", data_dir="~/d")
    assert cfg.logs.dir == str(tmp_path / "here") and cfg.data_dir == os.path.expanduser("~/d")
    assert [fmt_uptime(s) for s in (5, 192, 7500, 200000, None)] == ["5s", "3m 12s", "2h 5m", "2d 7h", "-"]

