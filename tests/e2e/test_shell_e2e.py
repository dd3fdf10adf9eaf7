"""End-to-end runs of the real simulator.py: in a pty (pexpect) and as a batch program.

Proves: two agents get distinct pids and show in ps, kill and wait all work,
a confirm question is asked in the terminal and its y/N reaches the kernel,
exit leaves no process behind; a closed terminal (SIGHUP) and SIGTERM stop
the kernel and every agent and the kernel's log is flushed; --script --json
prints one parseable JSON object per agent; piped commands are a batch run
whose failures give exit status 1, and the shell process never imports
torch; a missing script is one error line; deployment mode writes the
kernel, scheduler and per-agent log files and nothing else to the terminal.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import time
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
SIM = str(ROOT / "simulator.py")
PROMPT = r"\[smollm2-135m-instruct\]>"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
HEAVY = ("torch", "transformers", "accelerate")


def env_for(tmp: Path) -> dict:
    """A user's terminal: PYTHONUNBUFFERED (set in CI) hid a status of 120 after SIGHUP."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return dict(env, AIOS_AGENT_PATH=str(ROOT / "tests" / "agents"), XDG_STATE_HOME=str(tmp / "state"),
                PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")


def common_args(tmp: Path) -> list[str]:
    return ["--log_dir", str(tmp / "logs"), "--data_dir", str(tmp / "data"), "--max_new_tokens", "4"]


class Transcript:
    def __init__(self):
        self.raw = []

    def write(self, s):
        self.raw.append(s)

    def flush(self):
        pass

    @property
    def text(self) -> str:
        return ANSI.sub("", "".join(self.raw))


def spawn_shell(tmp: Path, *args: str) -> tuple[pexpect.spawn, Transcript]:
    child = pexpect.spawn(sys.executable, [SIM, *common_args(tmp), *args], cwd=str(tmp), env=env_for(tmp),
                          encoding="utf-8", timeout=90, dimensions=(50, 200))
    child.str_last_chars = 4000  # a timeout shows the screen's last updates, not only its last 100 characters
    log = Transcript()
    child.logfile_read = log
    child.expect(r"kernel pid (\d+)")
    kernel_pid = int(child.match.group(1))
    child.expect(PROMPT)
    return child, log, kernel_pid


def start_agent(child, line: str) -> int:
    child.sendline(line)
    child.expect(r"as pid (\d+)")
    return int(child.match.group(1))


def run_agent(child, line: str) -> int:
    pid = start_agent(child, line)
    child.expect(PROMPT)
    return pid


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def maps_mention(pid: int, lib: str) -> bool:
    return lib in Path(f"/proc/{pid}/maps").read_text()


def eventually(check, timeout: float = 180.0) -> bool:
    """True once check() is; the model loads in the background, slowly on a loaded machine."""
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_interactive_session_two_agents_kill_wait_confirm_exit(tmp_path):
    child, log, kernel_pid = spawn_shell(tmp_path)
    p1 = run_agent(child, "run SleepyAgent: 600")
    p2 = run_agent(child, "run sleepyagent: 3")
    assert p1 != p2
    child.sendline("ps")
    child.expect(rf"\n\s*{p1} SleepyAgent .*\n\s*{p2} SleepyAgent ")
    procs = descendants(child.pid)
    os_pids = {p.pid for p in procs}
    assert kernel_pid in os_pids and len(os_pids) >= 3  # the kernel and both agents
    # the shell never loads torch; the kernel does (so the check can tell). The kernel makes itself
    # undumpable (kernel/boot.py), so only root may read its maps; its own user is refused.
    if os.geteuid() == 0:
        assert eventually(lambda: maps_mention(kernel_pid, "libtorch"))
    else:
        with pytest.raises(PermissionError):
            maps_mention(kernel_pid, "libtorch")
        assert list((Path(importlib.util.find_spec("torch").origin).parent / "lib").glob("libtorch*.so"))
    assert not maps_mention(child.pid, "libtorch")
    child.sendline(f"wait {p1}")  # Ctrl-C stops the wait, not the shell
    child.expect(f"waiting for pid {p1} \\(SleepyAgent\\); Ctrl-C stops waiting")
    child.sendcontrol("c")
    child.expect(r"\^C")
    child.expect(PROMPT)
    child.sendline("top")
    child.expect(r"AIOS top - up")  # full screen: drawn in pieces with cursor moves
    child.expect(r"SleepyAgent")
    child.send("q")
    child.expect(PROMPT)
    child.sendline(f"kill {p1}")
    child.expect(rf"\[{p1}\] SleepyAgent killed")
    # started only now: the first two may have ended already (the model loads slowly on a busy machine)
    short = run_agent(child, "run sleepyagent: 5")
    child.sendline("wait all")
    child.expect(rf"\[{short}\] SleepyAgent done in .*\n    woke")
    child.expect(PROMPT)
    # an irreversible action: the question appears in the terminal, y allows it, Enter (default No) denies
    ask = 'run ToolAgent: [{"sys": "access.setgroup", "args": {"group": "%s"}}]'
    p3 = start_agent(child, ask % "shelltest")  # the question may come before the prompt is redrawn
    child.expect(rf"ToolAgent \(pid {p3}\) wants to join group 'shelltest' .*members could read.* — allow\? \[y/N\]")
    child.send("y")  # one key, as in top
    child.expect(rf"allowed: ToolAgent \(pid {p3}\)")
    child.sendline(f"wait {p3}")
    child.expect(r'"changed": true')
    p4 = start_agent(child, ask % "othergroup")
    child.expect(rf"ToolAgent \(pid {p4}\) wants to join group 'othergroup' .* — allow\? \[y/N\]")
    child.sendline("")
    child.expect(rf"denied: ToolAgent \(pid {p4}\)")
    child.sendline(f"wait {p4}")
    child.expect(r'"err": "EPERM".*not confirmed')
    child.expect(PROMPT)
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    gone, alive = psutil.wait_procs(procs, timeout=20)
    assert alive == [], f"left behind: {alive}"
    text = log.text
    assert "Traceback" not in text and "error:" not in text


def test_closed_terminal_stops_the_kernel_and_every_agent(tmp_path):
    child, log, kernel_pid = spawn_shell(tmp_path, "--scheduler_log_mode", "file")
    run_agent(child, "run SleepyAgent: 600")
    run_agent(child, "run SleepyAgent: 600")
    procs = descendants(child.pid)
    assert kernel_pid in {p.pid for p in procs} and len(procs) >= 3
    shell = psutil.Process(child.pid)
    child.ptyproc.fileobj.close()  # hang up the terminal: the shell gets SIGHUP
    assert shell.wait(30) == 128 + signal.SIGHUP
    gone, alive = psutil.wait_procs(procs, timeout=20)
    assert alive == [], f"left behind: {alive}"
    kernel_log = next((tmp_path / "logs").glob("kernel-*.log")).read_text()
    assert "shutting down: 2 agents to stop" in kernel_log and kernel_log.rstrip().endswith("kernel stopped")


def test_kernel_death_is_one_line_and_the_shell_leaves(tmp_path):
    child, log, kernel_pid = spawn_shell(tmp_path)
    run_agent(child, "run SleepyAgent: 600")
    procs = descendants(child.pid)
    os.kill(kernel_pid, signal.SIGKILL)
    child.expect(r"error: the kernel process exited \(exit code -9\); leaving the shell")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    gone, alive = psutil.wait_procs(procs, timeout=20)  # agents die with their kernel (PDEATHSIG)
    assert alive == [], f"left behind: {alive}"
    assert "Traceback" not in log.text


def test_script_with_json_prints_one_parseable_object_per_agent(tmp_path):
    script = tmp_path / "jobs.aios"
    script.write_text("# a scripted batch run\n"
                      "run EchoAgent: one\n"
                      "\n"
                      "run --priority 1 EchoAgent: two ✓\n"
                      "run ChatAgent: Say hi\n"
                      "ps -a\n")
    r = subprocess.run([sys.executable, SIM, *common_args(tmp_path), "--script", str(script), "--json"],
                       cwd=tmp_path, env=env_for(tmp_path), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["agent"], x["task"], x["status"]) for x in records] == [
        ("EchoAgent", "one", "done"), ("EchoAgent", "two ✓", "done"), ("ChatAgent", "Say hi", "done")]
    for x in records:  # one shape: answer a string, result an object with it, whatever the agent returned
        assert {"pid", "agent", "task", "status", "answer", "result", "waiting_s", "turnaround_s", "tokens_in",
                "tokens_out"} <= set(x)
        assert isinstance(x["answer"], str) and isinstance(x["result"], dict)
        assert x["result"]["answer"] == x["answer"]
    assert records[0]["answer"] == "one" and records[0]["result"] == {"answer": "one"} and records[1]["priority"] == 1
    chat = records[2]
    assert chat["answer"] and 0 < chat["tokens_out"] <= 4 and chat["tokens_in"] > 0
    assert chat["waiting_s"] is not None and chat["turnaround_s"] >= chat["waiting_s"]
    assert len({x["pid"] for x in records}) == 3
    assert "PID AGENT" in r.stderr  # command output goes to stderr in --json mode
    # the first run reached the kernel before the model had loaded: queued, not refused
    assert "started EchoAgent as pid 1 (model still loading" in r.stderr


def test_piped_commands_are_a_batch_run_and_failures_set_the_status(tmp_path):
    code = ("import json, sys, simulator\n"
            "rc = simulator.main(sys.argv[1:])\n"
            f"print('HEAVY', json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})),"
            " file=sys.stderr)\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code, *common_args(tmp_path), "--json"], cwd=ROOT,
                       env=env_for(tmp_path), capture_output=True, text=True, timeout=180,
                       input="run EchoAgent: fine\nrun EchoAgent: crash\nbogus\nrun NoSuchAgent: x\n")
    assert r.returncode == 1, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["task"], x["status"]) for x in records] == [("fine", "done"), ("crash", "failed")]
    assert "RuntimeError: asked to crash" in records[1]["error"]
    assert "<stdin>:3: error: unknown command 'bogus'" in r.stderr
    assert "<stdin>:4: error: run: no agent named 'NoSuchAgent'" in r.stderr
    assert "HEAVY []" in r.stderr  # the shell process never imported torch/transformers/accelerate


def test_missing_script_is_one_error_line(tmp_path):
    r = subprocess.run([sys.executable, SIM, "--script", str(tmp_path / "nope.aios")], cwd=tmp_path,
                       env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"simulator.py: error: script file '{tmp_path / 'nope.aios'}' does not exist"]


def test_deployment_mode_writes_log_files_and_keeps_the_terminal_clean_until_sigterm(tmp_path):
    child, log, kernel_pid = spawn_shell(tmp_path, "--scheduler_log_mode", "file", "--agent_log_mode", "file")
    pid = run_agent(child, "run EchoAgent: deployed line")
    child.sendline(f"wait {pid}")
    child.expect(rf"\[{pid}\] EchoAgent done")
    child.expect(PROMPT)
    sleepy = run_agent(child, "run SleepyAgent: 600")
    before_logs = log.text
    child.sendline(f"logs {pid}")
    child.expect(r"echo: deployed line")
    child.expect(PROMPT)
    child.sendline(f"logs {sleepy} -f")  # follows the file until Ctrl-C
    child.expect(r"task: 600")
    child.sendcontrol("c")
    child.expect(PROMPT)
    if "instruct ready" not in log.text:  # the scheduler log's load line needs the load to have ended
        child.expect(r"instruct ready")
    procs = descendants(child.pid)
    sched_log = next((tmp_path / "logs").glob("scheduler-*.log"))
    assert eventually(lambda: "loaded" in sched_log.read_text())  # the model loads in the background
    os.kill(child.pid, signal.SIGTERM)  # leaving by SIGTERM stops everything and flushes the logs
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 128 + signal.SIGTERM, log.text[-2000:]
    gone, alive = psutil.wait_procs(procs, timeout=20)
    assert alive == [], f"left behind: {alive}"
    # the terminal showed the shell only: no kernel records, no agent output until `logs` asked for it
    assert "echo: deployed line" not in before_logs and "[kernel" not in log.text and "spawned" not in log.text
    assert "Traceback" not in log.text and "task:" not in before_logs
    logs = tmp_path / "logs"
    kernel_logs, sched_logs = list(logs.glob("kernel-*.log")), list(logs.glob("scheduler-*.log"))
    assert len(kernel_logs) == 1 and len(sched_logs) == 1
    kernel_log = kernel_logs[0].read_text()
    assert f"spawned EchoAgent pid {pid}" in kernel_log and "shutting down: 1 agents to stop" in kernel_log
    assert kernel_log.rstrip().endswith("kernel stopped")
    assert "loaded" in sched_logs[0].read_text()
    echo_logs = list((logs / "agents" / "EchoAgent").glob(f"*-pid{pid}.log"))
    sleepy_logs = list((logs / "agents" / "SleepyAgent").glob(f"*-pid{sleepy}.log"))
    assert len(echo_logs) == 1 and len(sleepy_logs) == 1
    text = echo_logs[0].read_text()
    assert "task: deployed line" in text and "echo: deployed line" in text
    assert "task: 600" in sleepy_logs[0].read_text()
    assert set(os.listdir(tmp_path)) <= {"logs", "data", "state"}  # nothing written beside them
