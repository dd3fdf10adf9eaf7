"""The ``aios`` command as a user runs it: the console script beside this interpreter (./install.sh puts
it at .venv/bin/aios), in its own processes, with the real embedded model.

Proves: every verb has --help and a typo gets a did-you-mean; without a daemon, ps/logs/kill say so (exit 1),
status exits 3 and stop succeeds saying none ran, while ``aios run`` boots a kernel of its own (one line
says so), prints only the answer on stdout (exit 0) and fails with exit 1 for a failing agent; logs and
data land under the XDG state folder whatever the current folder, and the audit file the kernel announces
exists; with ``aios serve`` every verb attaches and says so once, ``run -d`` prints a pid, ``ps -o json``
parses, ``status`` reports, kernel flags are refused rather than ignored, a second shell attaches instead of
booting a kernel and sees the first one's agents, and ``aios stop`` returns once the daemon, its kernel and
its agents are gone, so an immediate ``aios serve`` works.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import psutil
import pytest

from daemon_helpers import env_for

AIOS = str(Path(sys.executable).with_name("aios"))
ATTACHED = r"attached to the AIOS daemon \(pid (\d+)\)"
NO_DAEMON = "no AIOS daemon is running (start one: aios serve)"
PROMPT = r"\[smollm2-135m-instruct\]>"


def aios(tmp: Path, *args: str, input: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """``aios ARGS`` from a folder of its own (nothing may land there), with the test's XDG folders."""
    cwd = tmp / "cwd"
    cwd.mkdir(exist_ok=True)
    return subprocess.run([AIOS, *args], cwd=str(cwd), env=env_for(tmp), capture_output=True, text=True,
                          timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_console_script_is_installed():
    assert os.access(AIOS, os.X_OK), f"{AIOS} missing: run ./install.sh (pip install --no-deps -e .)"


def test_every_verb_has_help_and_a_typo_gets_a_suggestion(tmp_path):
    from aios_shell.cli import load_verbs

    r = aios(tmp_path, "--help")
    assert r.returncode == 0 and "aios run [-d] [--json] AGENT TASK..." in r.stdout
    for name in load_verbs():
        assert f"  aios {name} " in r.stdout, name
        h = aios(tmp_path, name, "--help")
        assert h.returncode == 0 and h.stdout.startswith(f"usage: aios {name}"), (name, h.stderr)
    r = aios(tmp_path, "rn", "EchoAgent", "x")
    assert r.returncode == 2 and "unknown verb 'rn'; did you mean 'run'?" in r.stderr
    r = aios(tmp_path, "run", "EchoAgnt", "x")  # checked before a kernel boots for nothing
    assert r.returncode == 2 and "no agent app 'EchoAgnt'; did you mean 'EchoAgent'?" in r.stderr
    r = aios(tmp_path, "logs", "1", "--tial", "3")
    assert r.returncode == 2 and "(did you mean --tail?)" in r.stderr


def test_without_a_daemon(tmp_path):
    for args in (["ps"], ["logs", "1"], ["kill", "1"], ["wait", "1"], ["info", "1"], ["result", "1"]):
        r = aios(tmp_path, *args)
        assert r.returncode == 1 and r.stderr == f"aios {args[0]}: error: {NO_DAEMON}\n", (args, r.stderr)
    r = aios(tmp_path, "status")
    assert r.returncode == 3 and r.stdout.startswith("AIOS daemon: not running"), r
    r = aios(tmp_path, "status", "-o", "json")
    assert r.returncode == 3 and json.loads(r.stdout)["running"] is False
    r = aios(tmp_path, "stop")
    assert r.returncode == 0 and r.stdout.startswith("no AIOS daemon was running")
    r = aios(tmp_path, "run", "-d", "EchoAgent", "x")
    assert r.returncode == 1 and "--detach needs the AIOS daemon" in r.stderr
    assert not (tmp_path / "run" / "aios" / "aios.sock").exists()


def test_run_alone_prints_the_answer_and_fails_for_a_failing_agent(tmp_path):
    r = aios(tmp_path, "run", "EchoAgent", "hello", "world")
    assert r.returncode == 0 and r.stdout == "hello world\n", (r.stdout, r.stderr)
    assert "no AIOS daemon is running: starting a kernel for this run" in r.stderr
    assert "[EchoAgent 1] echo: hello world" in r.stderr
    r = aios(tmp_path, "run", "-q", "EchoAgent", "crash")
    assert r.returncode == 1 and r.stdout == "", r.stdout
    why = r"aios run: error: \[1\] EchoAgent failed \(exit 1\) in \S+: RuntimeError: asked to crash\n$"
    assert re.search(r"(^|\n)" + why, r.stderr) and "Traceback" not in r.stderr, r.stderr  # -q: the reason, not the agent's lines
    # fixed places: under the XDG state folder, nothing in the current folder
    state = tmp_path / "state" / "aios"
    assert list((state / "logs").glob("audit-*.log")), "the audit file the kernel announces exists"
    assert (state / "data").is_dir() and list((tmp_path / "cwd").iterdir()) == []


@pytest.fixture
def served(tmp_path):
    """``aios serve`` on the test's runtime folder; stopped (and checked gone) by the test or at the end."""
    r = aios(tmp_path, "serve", "--max-new-tokens", "4", timeout=300)
    assert r.returncode == 0, (r.stdout, r.stderr)
    pid = int(re.search(r"AIOS daemon pid (\d+) serving on", r.stdout).group(1))
    yield tmp_path, pid
    if alive(pid):
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        procs[0].terminate()
        psutil.wait_procs(procs, timeout=30)


def test_serve_run_ps_status_stop_serve(served):
    tmp, daemon = served
    st = aios(tmp, "status")
    assert st.returncode == 0 and st.stdout.startswith(f"AIOS daemon: running, pid {daemon}, up "), st.stdout
    for key in ("model:    smollm2-135m-instruct (ready)", "policy:   fifo", "agents:   0 running, 0 in all",
                f"socket:   {tmp / 'run' / 'aios' / 'aios.sock'}", f"logs:     {tmp / 'state' / 'aios' / 'logs'}/"):
        assert key in st.stdout, (key, st.stdout)
    r = aios(tmp, "run", "-d", "EchoAgent", "detached", "one")
    assert r.returncode == 0 and re.fullmatch(r"\d+\n", r.stdout), (r.stdout, r.stderr)
    assert re.fullmatch(ATTACHED + r"\n", r.stderr) and int(re.match(ATTACHED, r.stderr).group(1)) == daemon
    first = int(r.stdout)
    r = aios(tmp, "wait", str(first))
    assert r.returncode == 0 and "detached one" in r.stdout, r
    r = aios(tmp, "run", "EchoAgent", "attached")
    assert r.returncode == 0 and r.stdout == "attached\n" and re.match(ATTACHED, r.stderr), r
    assert "starting a kernel" not in r.stderr
    r = aios(tmp, "run", "EchoAgent", "crash")
    assert r.returncode == 1 and r.stdout == "" and "asked to crash" in r.stderr
    r = aios(tmp, "run", "--max-new-tokens", "3", "EchoAgent", "x")  # the daemon's kernel has its own flags
    assert r.returncode == 2 and "--max-new-tokens: kernel flags go where a kernel starts" in r.stderr
    r = aios(tmp, "logs", str(first), "--tail", "1")
    assert r.returncode == 0 and r.stdout == "echo: detached one\n", r
    r = aios(tmp, "ps", "-a", "-o", "json")
    assert r.returncode == 0, r.stderr
    rows = {p["pid"]: p for p in json.loads(r.stdout)}
    assert rows[first]["agent"] == "EchoAgent" and rows[first]["state"] == "done" and len(rows) == 3
    r = aios(tmp, "status", "-o", "json")
    s = json.loads(r.stdout)
    assert s["pid"] == daemon and s["agents_total"] == 3 and s["model_state"] == "ready"
    r = aios(tmp, "run", "-d", "SleepyAgent", "600")
    sleepy = int(r.stdout)
    tree = [psutil.Process(daemon), *psutil.Process(daemon).children(recursive=True)]
    assert len(tree) >= 3, tree  # daemon, kernel, the sleeping agent
    r = aios(tmp, "stop")
    assert r.returncode == 0 and r.stdout == f"stopped the AIOS daemon (pid {daemon}): its kernel and agents are gone\n"
    assert "and 1 running agent(s)" in r.stderr
    assert not alive(daemon) and not alive(s["kernel_pid"]), "stop returned before the daemon was gone"
    assert not (tmp / "run" / "aios" / "aios.sock").exists()
    _, left = psutil.wait_procs(tree, timeout=10)
    assert left == [], left
    r = aios(tmp, "serve", timeout=300)  # at once: nothing of the old daemon is in the way
    assert r.returncode == 0, r.stderr
    again = int(re.search(r"AIOS daemon pid (\d+)", r.stdout).group(1))
    r = aios(tmp, "result", str(sleepy))  # a new daemon, a new kernel: the old pids are gone
    assert r.returncode == 1 and "no process" in r.stderr
    assert aios(tmp, "stop").returncode == 0 and not alive(again)


def test_a_second_shell_attaches_and_sees_the_same_agents(served):
    tmp, daemon = served
    shells = []
    for _ in range(2):
        child = pexpect.spawn(AIOS, [], cwd=str(tmp), env=env_for(tmp), encoding="utf-8", timeout=60,
                              dimensions=(50, 200))
        child.expect(rf"AIOS shell: attached to the AIOS daemon \(pid {daemon}\)")
        child.expect(PROMPT)
        assert psutil.Process(child.pid).children() == []  # no kernel of its own
        shells.append(child)
    a, b = shells
    a.sendline("run EchoAgent: seen by both")
    a.expect(r"as pid (\d+)")
    pid = a.match.group(1)
    b.expect(rf"\[{pid}\] EchoAgent done")
    b.sendline("ps -a")
    b.expect(rf"\n\s*{pid}\s+EchoAgent\s+done")
    for c in shells:
        c.sendline("exit")  # detaches
        c.expect(pexpect.EOF)
        c.close()
        assert c.exitstatus == 0
    # a script on a pipe attaches too, and says so on stderr
    r = aios(tmp, "script", "-", input="run EchoAgent: piped\n")
    assert r.returncode == 0 and re.match(ATTACHED, r.stderr) and "piped" in r.stdout, r
    r = aios(tmp, "--scheduler", "rr", input="ps\n")  # the shell too: the daemon's kernel has its own flags
    assert r.returncode == 2 and "--scheduler: kernel flags go where a kernel starts" in r.stderr, r
    assert alive(daemon)


def test_serve_foreground_is_a_systemd_notify_service(tmp_path):
    """What a ``Type=notify`` unit sees: READY=1 once the socket serves (not when the process starts),
    STOPPING=1 on SIGTERM, exit 0; lines to the journal carry a priority and no timestamp of their own;
    the log file has the kernel's ISO 8601 timestamps; the kernel does not inherit $NOTIFY_SOCKET."""
    import socket as socketlib

    notify = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(240)
    journal = open(tmp_path / "journal.txt", "w+b")
    st = os.fstat(journal.fileno())
    sock = tmp_path / "run" / "aios" / "aios.sock"
    env = env_for(tmp_path, NOTIFY_SOCKET=str(tmp_path / "notify.sock"), JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    proc = subprocess.Popen([AIOS, "serve", "--foreground", "--max-new-tokens", "4"], cwd=str(tmp_path),
                            env=env, stdin=subprocess.DEVNULL, stdout=journal, stderr=journal)
    try:
        msg = notify.recv(4096).decode()
        assert "READY=1" in msg.splitlines() and f"MAINPID={proc.pid}" in msg, msg
        r = aios(tmp_path, "status", "-o", "json")  # serving from that moment
        assert r.returncode == 0 and json.loads(r.stdout)["pid"] == proc.pid
        kernel = json.loads(r.stdout)["kernel_pid"]
        if os.geteuid() == 0:
            environ = Path(f"/proc/{kernel}/environ").read_bytes().split(b"\0")
            assert not [v for v in environ if v.startswith(b"NOTIFY_SOCKET=")]
        else:  # the kernel is undumpable (kernel/boot.py): its environment is closed to its own user too
            with pytest.raises(PermissionError):
                Path(f"/proc/{kernel}/environ").read_bytes()
        proc.terminate()
        assert "STOPPING=1" in notify.recv(4096).decode().splitlines()
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    journal.seek(0)
    lines = journal.read().decode().splitlines()
    assert lines and all(re.match(r"<[0-7]>(INFO|WARNING|ERROR) \[\d+ aios\.daemon\] ", ln) for ln in lines), lines
    assert not [ln for ln in lines if re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", ln)]  # journald stamps lines itself
    log = "".join(p.read_text() for p in (tmp_path / "state" / "aios" / "logs").glob("daemon-*.log"))
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
    assert re.search(rf"^{iso} INFO \[{proc.pid} aios\.daemon\] serving on {re.escape(str(sock))}", log, re.M), log
    assert all(re.match(iso + " ", ln) for ln in log.splitlines()), log
