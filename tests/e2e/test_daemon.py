"""The kernel as a service: simulator.py --daemon, and shells attached with --connect.

Every step runs the real programs in separate processes: the daemon
detaches (new session, its own process tree), clients are other
simulator.py processes (subprocess, or pexpect in a pty for the REPL).
Proves: --daemon returns once it serves, with a 0600 socket in a 0700 folder
and a pid file; -c runs one command with its exit status; --script runs a
batch; two attached shells both see an agent's output and the same confirm
question, and the first answer decides; a client killed with SIGKILL does
not touch the kernel or its agents; a second daemon on the same socket is
refused; a SIGKILLed daemon's stale socket is replaced by the next start;
shutdown (and SIGTERM) leave no process, no socket and no pid file, and
``-c shutdown`` returns only once the daemon and its kernel are gone, so a
new daemon starts at once.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys

import pexpect
import psutil
import pytest

from daemon_helpers import SIM, env_for, start_daemon, stop_daemon

PROMPT = r"\[smollm2-135m-instruct\]>"


@pytest.fixture
def daemon(tmp_path):
    d = start_daemon(tmp_path)
    yield d
    stop_daemon(d)


def attach(d, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, [SIM, "--connect", "--socket", str(d.sock), *args], cwd=str(d.tmp),
                          env=env_for(d.tmp), encoding="utf-8", timeout=90, dimensions=(50, 200))
    child.expect(r"attached to the AIOS daemon \(pid (\d+)\) at .* \(kernel pid (\d+)")
    assert int(child.match.group(1)) == d.pid
    child.expect(PROMPT)
    return child


def test_daemon_serves_on_a_private_socket_and_runs_one_shot_commands(daemon):
    d = daemon
    assert re.match(rf"AIOS daemon pid {d.pid} serving on {re.escape(str(d.sock))} \(kernel pid \d+",
                    d.start.stdout), d.start.stdout
    assert stat.S_IMODE(os.stat(d.sock).st_mode) == 0o600 and stat.S_ISSOCK(os.stat(d.sock).st_mode)
    assert stat.S_IMODE(os.stat(d.sock.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(d.pidfile).st_mode) == 0o600
    assert d.proc.ppid() != os.getpid() and os.getsid(d.pid) == d.pid  # detached: own session, not our child
    r = d.client("-c", "ps")
    assert r.returncode == 0 and "no agent processes" in r.stdout, (r.stdout, r.stderr)
    r = d.client("-c", "run EchoAgent: from a one-shot client")
    assert r.returncode == 0, r.stderr
    pid = int(re.search(r"as pid (\d+)", r.stdout).group(1))
    r = d.client("-c", f"wait {pid}")
    assert r.returncode == 0 and "from a one-shot client" in r.stdout and f"[{pid}] EchoAgent done" in r.stdout
    for bad, why in (("kill 999", "no process with pid 999"), ("frobnicate", "unknown command"),
                     ("run NoSuchAgent: x", "NoSuchAgent")):
        r = d.client("-c", bad)
        assert r.returncode == 1 and why in r.stderr and r.stderr.count("error:") == 1, (bad, r.stdout, r.stderr)
    log = d.daemon_log()
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* INFO .*serving on", log, re.M), log
    assert "echo: from a one-shot client" in log and f"pid {pid} (EchoAgent) done" in log
    assert list(d.log_dir.glob("kernel-*.log")) and list(d.log_dir.glob("scheduler-*.log"))  # file log modes


def test_connect_script_is_a_batch_run(daemon, tmp_path):
    script = tmp_path / "jobs.aios"
    script.write_text("# a batch through the daemon\nrun EchoAgent: batch one\nps -a\n")
    r = daemon.client("--script", str(script))
    assert r.returncode == 0, r.stderr
    assert re.search(r"\[\d+\] EchoAgent done in .*\n    batch one", r.stdout), r.stdout
    script.write_text("run EchoAgent: fine\nkill 12345\n")
    r = daemon.client("--script", str(script))
    assert r.returncode == 1 and f"{script}:2: error: kill: no process with pid 12345" in r.stderr
    r = daemon.client("--script", str(script), "--json")
    assert r.returncode == 1 and '"status": "done"' in r.stdout


def test_two_clients_see_output_and_one_answer_decides_a_confirm(daemon):
    d = daemon
    a, b = attach(d), attach(d)
    a.sendline("run EchoAgent: seen by both shells")
    a.expect(r"as pid (\d+)")
    pid = int(a.match.group(1))
    for c in (a, b):
        c.expect(rf"\[EchoAgent {pid}\] echo: seen by both shells")
        c.expect(rf"\[{pid}\] EchoAgent done")
    ask = 'run ToolAgent: [{"sys": "access.setgroup", "args": {"group": "daemontest"}}]'
    a.sendline(ask)
    a.expect(r"as pid (\d+)")
    p2 = int(a.match.group(1))
    for c in (a, b):
        c.expect(rf"ToolAgent \(pid {p2}\) wants to join group 'daemontest' .* — allow\? \[y/N\]")
    b.send("y")  # the first answer decides (one key)
    b.expect(rf"allowed: ToolAgent \(pid {p2}\)")
    a.expect(rf"allowed: ToolAgent \(pid {p2}\) wants to join group 'daemontest'.* \(user\)")
    a.expect(PROMPT)
    a.sendline(f"wait {p2}")
    a.expect(r'"changed": true')
    a.expect(PROMPT)
    # a client killed outright changes nothing for the kernel, its agents or the other client
    b.sendline("run SleepyAgent: 600")
    b.expect(r"as pid (\d+)")
    sleepy = int(b.match.group(1))
    b.expect(PROMPT)
    b.kill(signal.SIGKILL)
    b.close()
    a.sendline("ps")
    a.expect(rf"\n\s*{sleepy}\s+SleepyAgent\s+\S+")
    a.expect(PROMPT)
    a.sendline("exit")  # detaches without asking, although an agent runs
    a.expect(pexpect.EOF)
    a.close()
    assert a.exitstatus == 0
    r = d.client("-c", "ps")
    assert r.returncode == 0 and re.search(rf"^\s*{sleepy}\s+SleepyAgent", r.stdout, re.M), r.stdout
    assert d.proc.is_running()


def test_a_second_daemon_is_refused_and_a_stale_socket_replaced(tmp_path):
    d = start_daemon(tmp_path)
    try:
        r = d.client("-c", "ps")
        assert r.returncode == 0
        again = subprocess.run(
            [sys.executable, SIM, "--daemon", "--socket", str(d.sock), "--log_dir", str(tmp_path / "logs2")],
            cwd=str(tmp_path), env=env_for(tmp_path), capture_output=True, text=True, timeout=120)
        assert again.returncode == 1
        assert again.stderr.strip() == f"simulator.py: error: a daemon (pid {d.pid}) already serves this socket"
        assert d.client("-c", "ps").returncode == 0  # the first one is untouched
        tree = d.tree()
        d.proc.kill()  # no cleanup at all: socket and pid file stay behind
        _, alive = psutil.wait_procs(tree, timeout=30)  # the kernel dies with it, agents with the kernel
        assert alive == []
        assert d.sock.exists() and d.pidfile.exists()
        r = d.client("-c", "ps")
        assert r.returncode == 1 and "no AIOS daemon at" in r.stderr
    finally:
        stop_daemon(d)
    d2 = start_daemon(tmp_path)
    try:
        assert d2.pid != d.pid and d2.client("-c", "ps").returncode == 0
        assert "removed a stale socket" in d2.daemon_log()
    finally:
        stop_daemon(d2)


def running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE  # an exited daemon may wait a moment for init to reap it
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("how", ["shutdown", "SIGTERM"])
def test_shutdown_and_sigterm_stop_every_process(tmp_path, how):
    d = start_daemon(tmp_path)
    try:
        for _ in range(2):
            assert d.client("-c", "run SleepyAgent: 600").returncode == 0
        tree = d.tree()
        assert len(tree) >= 4  # daemon, kernel, two agents
        if how == "shutdown":
            r = d.client("-c", "shutdown")
            assert r.returncode == 0, r.stderr
            # it returned once the daemon was gone (systemctl stop): the daemon and its kernel at once
            assert not [p for p in tree if p.pid in (d.pid, d.kernel_pid) and running(p)]
            assert not d.sock.exists() and not d.pidfile.exists()
        else:
            d.proc.terminate()
        gone, alive = psutil.wait_procs(tree, timeout=60)
        assert alive == [], f"left behind: {alive}"
        assert not d.sock.exists() and not d.pidfile.exists()
        log = d.daemon_log()
        assert re.search(r"pid \d+ \(SleepyAgent\) killed", log) and "daemon exits" in log, log
        r = d.client("-c", "ps")
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no AIOS daemon at" in r.stderr
        if how == "shutdown":  # an immediate start on the same socket works
            d2 = start_daemon(tmp_path)
            stop_daemon(d2)
    finally:
        stop_daemon(d)


def test_bad_service_flags_are_one_line_and_status_2(tmp_path):
    for args in (["--daemon", "--connect"], ["--foreground"], ["-c", "ps"], ["--daemon", "--script", "x"],
                 ["--socket", "x.sock"]):
        r = subprocess.run([sys.executable, SIM, *args], cwd=str(tmp_path), env=env_for(tmp_path),
                                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "error:" in r.stderr, (args, r.stderr)


def test_a_dead_kernel_stops_the_daemon_cleanly(tmp_path):
    d = start_daemon(tmp_path)
    try:
        assert d.client("-c", "run SleepyAgent: 600").returncode == 0
        tree = d.tree()
        kernel = psutil.Process(d.kernel_pid)
        assert kernel.ppid() == d.pid
        shell = pexpect.spawn(sys.executable, [SIM, "--connect", "--socket", str(d.sock)], cwd=str(d.tmp),
                              env=env_for(d.tmp), encoding="utf-8", timeout=90, dimensions=(50, 200))
        shell.expect(PROMPT)
        kernel.kill()
        shell.expect(r"error: the daemon is shutting down \(the kernel process exited \(exit code -9\)\); "
                     r"leaving the shell")
        shell.expect(pexpect.EOF)
        shell.close()
        assert shell.exitstatus == 1
        _, alive = psutil.wait_procs(tree, timeout=60)
        assert alive == [], f"left behind: {alive}"
        assert not d.sock.exists() and not d.pidfile.exists()
        assert "shutting down: the kernel process exited (exit code -9)" in d.daemon_log()
    finally:
        stop_daemon(d)
