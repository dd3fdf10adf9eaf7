"""The kernel/agent spine: real kernel process, real agent processes, the real model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import psutil
import pytest
from conftest import ROOT, start_kernel


def _wait_state(kernel, pid, states, timeout=60.0):
    """Wait until pid reaches one of ``states`` (test-side polling of ps is fine)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        snap = kernel.info(pid)
        if snap["state"] in states:
            return snap
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} never reached {states}: {snap['state']}")


def _gone(os_pid: int, timeout: float = 5.0) -> bool:
    try:
        p = psutil.Process(os_pid)
        p.wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return p.status() == psutil.STATUS_ZOMBIE
    return True


def test_agent_is_a_separate_light_process(kernel):
    pid = kernel.spawn("ProbeAgent", "1.5")
    snap = _wait_state(kernel, pid, {"running"})
    rss = psutil.Process(snap["os_pid"]).memory_info().rss
    parents = [p.pid for p in psutil.Process(snap["os_pid"]).parents()]
    result = kernel.wait(pid, timeout=30)["result"]
    assert snap["os_pid"] != kernel.pid
    assert kernel.pid in parents  # the kernel spawned it (through bwrap)
    if "namespaces" in snap["confinement"]:
        assert (result["os_pid"], result["ppid"]) == (1, 0)  # pid 1 of its own pid namespace
    else:
        assert result["os_pid"] == snap["os_pid"] and result["ppid"] == kernel.pid
    assert result["pgid"] == result["os_pid"]  # its own session and process group
    assert result["heavy_modules"] == []
    assert result["state_seen"] == "running"
    assert rss < 100 * 2**20, f"agent RSS {rss / 2**20:.1f} MiB"


def test_syscall_round_trip_and_bad_messages(kernel):
    frames = [
        "not json at all",
        "[1, 2, 3]",
        json.dumps({"kind": "syscall", "id": 5, "pid": "$PID", "name": "no.such.call", "args": {}}),
        json.dumps({"kind": "syscall", "id": 6, "pid": 99999, "name": "proc.info", "args": {}}),
        json.dumps({"kind": "syscall", "id": 7, "pid": "$PID", "name": "llm.chat", "args": {"messages": "hi"}}),
        json.dumps({"kind": "teleport", "id": 8, "pid": "$PID"}),
        {"size": 2 * 2**20},
        json.dumps({"kind": "syscall", "id": 9, "pid": "$PID", "name": "proc.info", "args": {}}),
    ]
    pid = kernel.spawn("RawAgent", json.dumps(frames))
    snap = kernel.wait(pid, timeout=60)
    assert snap["state"] == "done", snap
    replies = snap["result"]
    codes = [r.get("error", {}).get("code") for r in replies[:-2]]
    assert codes == ["EINVAL", "EINVAL", "ENOSYS", "EPERM", "EINVAL", "EINVAL", "E2BIG"]
    assert "not valid JSON" in replies[0]["error"]["message"]
    assert "no.such.call" in replies[2]["error"]["message"]
    assert "99999" in replies[3]["error"]["message"]
    assert "messages" in replies[4]["error"]["message"]
    assert replies[2]["id"] == 5 and replies[3]["id"] == 6
    ok = replies[-2]
    assert ok["ok"] and ok["id"] == 9 and ok["result"]["pid"] == pid
    assert replies[-1] == "running"  # the SDK still works after all that
    assert snap["syscalls"]["<invalid>"] >= 6
    assert kernel.stats()["agents_live"] >= 0  # the kernel still answers


def test_a_spawn_is_refused_by_the_same_rules_from_the_front_and_from_an_agent(kernel):
    """task and priority are checked by one schema on both ways in (kernel/protocol/control.py SPAWN_ARGS),
    and a task of blanks by Kernel.spawn, where both meet."""
    from aios_shell.client import KernelError

    for task, priority, why in (("   ", 0, "a task is required"), ("x", 21, "greater than the maximum of 20"),
                                ("x", -21, "less than the minimum of -20")):
        with pytest.raises(KernelError, match=why) as e:
            kernel.spawn("EchoAgent", task, priority)
        assert e.value.code == "EINVAL"
    frames = [json.dumps({"kind": "syscall", "id": i, "pid": "$PID", "name": "proc.spawn",
                          "args": {"agent": "EchoAgent", "task": task, "priority": priority}})
              for i, (task, priority) in enumerate((("   ", 0), ("x", 21), ("x", -21)), start=1)]
    snap = kernel.wait(kernel.spawn("RawAgent", json.dumps(frames)), timeout=60)
    assert snap["state"] == "done", snap
    errors = [r["error"] for r in snap["result"][:-1]]
    assert [e["code"] for e in errors] == ["EINVAL"] * 3
    assert "a task is required" in errors[0]["message"] and "maximum of 20" in errors[1]["message"]


class _Mkdir:
    """Unpickling this makes a folder: the proof that someone unpickled it."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        import os
        return os.mkdir, (self.path,)


def test_a_message_the_kernel_cannot_read_on_the_front_pipe_is_dropped_and_the_next_served(kernel, tmp_path):
    """The front's pipe carries JSON objects only (kernel/protocol/control.py), never a pickle: one is
    logged and dropped without being unpickled, as is any other non-object; the kernel goes on serving."""
    import pickle

    marker = tmp_path / "unpickled"
    kernel._conn.send_bytes(pickle.dumps({"op": "stats", "id": 10**9, "x": _Mkdir(str(marker))}))
    kernel._conn.send_bytes(b"[1, 2, 3]")
    assert kernel.request("stats", timeout=10)["agents_live"] >= 0
    assert not marker.exists()


def test_greedy_decoding_is_deterministic(kernel):
    task = "Name three colours of the rainbow."
    a = kernel.wait(kernel.spawn("ChatAgent", task), timeout=120)
    b = kernel.wait(kernel.spawn("ChatAgent", task), timeout=120)
    assert a["state"] == b["state"] == "done"
    assert a["result"] and a["result"] == b["result"]
    assert a["tokens_out"] == b["tokens_out"] > 0
    assert a["turnaround_s"] >= a["waiting_s"] >= 0


def test_sigkill_mid_llm_call_leaves_others_intact(kernel):
    prompts = ["Count from one to ten in words.", "List four fruits.", "Say hello in French."]
    spec = lambda p: json.dumps({"prompt": p, "max_new_tokens": 40})  # noqa: E731
    # Reference outputs from an undisturbed run.
    ref = {p: kernel.wait(kernel.spawn("ChatAgent", spec(p)), timeout=120)["result"] for p in prompts[1:]}
    victim = kernel.spawn("ChatAgent", spec(prompts[0]))
    others = {kernel.spawn("ChatAgent", spec(p)): p for p in prompts[1:]}
    snap = _wait_state(kernel, victim, {"llm-queued", "llm-running"})
    os.kill(snap["os_pid"], signal.SIGKILL)
    dead = kernel.wait(victim, timeout=30)
    assert dead["state"] == "killed" and "SIGKILL" in dead["error"] and dead["exit_signal"] == 9
    for pid, p in others.items():
        s = kernel.wait(pid, timeout=120)
        assert s["state"] == "done" and s["result"] == ref[p]
    assert _gone(dead["os_pid"])
    assert kernel.stats()["queue"] == 0


def test_kill_request_and_crash_are_recorded(kernel):
    pid = kernel.spawn("SleepyAgent", "forever")
    snap = _wait_state(kernel, pid, {"running"})
    kernel.kill(pid)
    killed = kernel.wait(pid, timeout=30)
    assert killed["state"] == "killed" and _gone(snap["os_pid"])
    crashed = kernel.wait(kernel.spawn("EchoAgent", "crash"), timeout=30)
    assert crashed["state"] == "failed" and "asked to crash" in crashed["error"]
    from aios_shell.client import KernelError
    with pytest.raises(KernelError, match="no agent named"):
        kernel.spawn("NoSuchAgent", "x")
    with pytest.raises(KernelError, match="already ended"):
        kernel.kill(pid)


def test_stopping_the_kernel_leaves_no_agent(tmp_path):
    client, _ = start_kernel(tmp_path)
    pids = [client.spawn("SleepyAgent", "forever") for _ in range(3)]
    os_pids = [_wait_state(client, p, {"running"})["os_pid"] for p in pids]
    kernel_pid = client.pid
    assert client.stop() == 0
    assert all(_gone(p) for p in os_pids + [kernel_pid])


def test_kernel_sigkill_takes_agents_with_it(tmp_path):
    client, _ = start_kernel(tmp_path)
    os_pids = [_wait_state(client, client.spawn("SleepyAgent", "forever"), {"running"})["os_pid"] for _ in range(2)]
    os.kill(client.pid, signal.SIGKILL)
    assert all(_gone(p, 5.0) for p in os_pids)
    client.stop()


FRONT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig
    if __name__ == "__main__":
        k = KernelClient(KernelConfig.from_flags(log_dir={logs!r}))
        k.ready.wait(120)  # a kernel stopped mid model load first finishes the load (engine.stop joins it)
        pids = [k.spawn("SleepyAgent", "forever") for _ in range(2)]
        while any(k.info(p)["state"] != "running" for p in pids):
            time.sleep(0.05)
        print(k.pid, *[k.info(p)["os_pid"] for p in pids], flush=True)
        time.sleep(600)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_front_death_stops_kernel_and_agents(tmp_path, sig):
    script = tmp_path / "front.py"
    script.write_text(FRONT.format(root=str(ROOT), logs=str(tmp_path / "logs")))
    front = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ})
    line = front.stdout.readline()
    kernel_pid, *agent_pids = map(int, line.split())
    front.send_signal(sig)
    front.wait(30)
    # The kernel stops cleanly (agents get SIGTERM, then SIGKILL after the grace period); on a loaded
    # machine that takes a while, so the deadline is generous: the property is that nothing remains.
    assert all(_gone(p, 60.0) for p in [kernel_pid, *agent_pids])


def test_main_py_runs_demo_and_leaves_nothing(tmp_path):
    mark = uuid.uuid4().hex
    env = {**os.environ, "AIOS_TEST_MARK": mark}
    out = subprocess.run([sys.executable, "main.py", "--max_new_tokens", "12", "--log_dir", str(tmp_path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("MathAgent", "NarrativeAgent", "RecAgent"):
        assert name in out.stdout
    assert "AIOS run summary" in out.stdout and "done" in out.stdout
    leftovers = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("AIOS_TEST_MARK") == mark:
                leftovers.append(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    assert leftovers == []
