"""Supervision: restart crashed agents within a restart intensity, off by default."""

import os
import signal
import uuid
import time


def _running(kernel, pid, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = kernel.info(pid)
        if s["state"] == "running":
            return s
        time.sleep(0.02)
    raise AssertionError(s)


def test_off_by_default(kernel):
    snap = kernel.wait(kernel.spawn("EchoAgent", "crash"), timeout=30)
    assert snap["state"] == "failed" and snap["restarted_as"] is None


def test_restart_intensity_limits_restarts(kernel):
    first = kernel.spawn("EchoAgent", "crash", restart_max=2)
    chain = [kernel.wait(first, timeout=30, follow_restarts=False)]
    while chain[-1]["restarted_as"]:
        chain.append(kernel.wait(chain[-1]["restarted_as"], timeout=30, follow_restarts=False))
    assert [s["state"] for s in chain] == ["failed"] * 3  # the first run and two restarts
    assert {s["lineage"] for s in chain} == {first}
    assert "not restarted: 2 restarts" in chain[-1]["error"]
    assert kernel.wait(first, timeout=30)["pid"] == chain[-1]["pid"]  # wait follows the chain


def test_restart_recovers_a_flaky_agent(kernel):
    marker = f"marker-{uuid.uuid4().hex}"  # in EchoAgent's workspace (its cwd): all a confined agent may write
    snap = kernel.wait(kernel.spawn("EchoAgent", f"crash-once:{marker}", restart_max=1), timeout=60)
    assert snap["state"] == "done" and snap["result"] == "recovered" and snap["lineage"] != snap["pid"]


def test_signal_death_restarts_but_kernel_kill_does_not(kernel):
    pid = kernel.spawn("SleepyAgent", "forever", restart_max=1)
    os.kill(_running(kernel, pid)["os_pid"], signal.SIGKILL)
    old = kernel.wait(pid, timeout=30, follow_restarts=False)
    assert old["state"] == "killed" and old["restarted_as"]
    _running(kernel, old["restarted_as"])
    kernel.kill(old["restarted_as"])
    new = kernel.wait(old["restarted_as"], timeout=30, follow_restarts=False)
    assert new["state"] == "killed" and new["restarted_as"] is None
