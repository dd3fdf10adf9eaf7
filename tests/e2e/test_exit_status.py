"""One source of truth for how a process ended, and a bounded history of ended processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, start_kernel


def _running(k, pid, timeout=60):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline and k.info(pid)["state"] != "running":
        time.sleep(0.02)


def test_a_killed_agent_ends_by_its_signal_everywhere(kernel):
    pid = kernel.spawn("SleepyAgent", "600")
    _running(kernel, pid)
    kernel.kill(pid)
    snap = kernel.wait(pid, timeout=30)
    # It cleans up on SIGTERM, then dies of it: exit status is the signal, not "exit code 0".
    assert snap["state"] == "killed" and snap["exit_signal"] == 15 and snap["exit_code"] is None
    assert snap["exit"] == "SIGTERM" and snap["error"] == "killed on request (SIGTERM)" and snap["result"] is None
    assert kernel.info(pid)["exit"] == "SIGTERM"


def test_a_crash_is_exit_1_with_its_traceback_once(kernel):
    snap = kernel.wait(kernel.spawn("EchoAgent", "crash"), timeout=60)
    assert snap["state"] == "failed" and snap["exit_code"] == 1 and snap["exit_signal"] is None
    assert snap["result"] is None and "RuntimeError: asked to crash" in snap["error"]
    assert snap["error"].count("Traceback") == 1


def test_batch_json_reports_the_same_status(tmp_path):
    script = tmp_path / "jobs.aios"
    script.write_text("run EchoAgent: crash\nrun EchoAgent: fine\nrun SleepyAgent: 600\nkill 3\n")
    env = dict(os.environ, AIOS_AGENT_PATH=str(ROOT / "tests" / "agents"))
    p = subprocess.run([sys.executable, "simulator.py", "--script", str(script), "--json", "--max_new_tokens", "8",
                        "--log_dir", str(tmp_path / "logs"), "--data_dir", str(tmp_path / "data")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    recs = {r["pid"]: r for r in map(json.loads, p.stdout.splitlines())}
    crash, fine, killed = recs[1], recs[2], recs[3]
    assert crash["status"] == "failed" and crash["exit_code"] == 1 and crash["result"] is None
    assert crash["error"].count("RuntimeError: asked to crash") == 1 and crash["error"].count("Traceback") == 1
    assert fine["status"] == "done" and fine["exit_code"] == 0 and fine["answer"] == "fine" and fine["error"] is None
    assert fine["result"] == {"answer": "fine"} and crash["answer"] == "" and killed["result"] is None
    # SIGTERM once it runs; a kill that lands before the sandboxed agent has started is a SIGKILL
    assert killed["status"] == "killed" and killed["exit_signal"] in (9, 15) and killed["exit_code"] is None
    assert p.returncode == 1  # the crash


def test_batch_exits_non_zero_when_the_model_cannot_load(tmp_path):
    broken = tmp_path / "broken-model"  # a folder (so the name check passes) whose model cannot load
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama"}')
    p = subprocess.run([sys.executable, "simulator.py", "--json", "--llm_name", str(broken),
                        "--log_dir", str(tmp_path / "logs"), "--data_dir", str(tmp_path / "data")],
                       input="run EchoAgent: no LLM needed\n", cwd=ROOT, capture_output=True, text=True, timeout=240,
                       env=dict(os.environ, AIOS_AGENT_PATH=str(ROOT / "tests" / "agents")))
    assert p.returncode == 1 and "could not be loaded" in p.stderr, p.stderr[-2000:]


@pytest.fixture(scope="module")
def small_history(tmp_path_factory):
    k, _ = start_kernel(tmp_path_factory.mktemp("hist"), history_max_procs=4, history_max_bytes=300_000)
    yield k
    k.stop()


def test_large_results_live_on_disk_and_the_history_is_bounded(small_history):
    k = small_history
    big = "y" * 200_000
    pids, snaps = [], []
    for _ in range(3):
        pids.append(k.spawn("EchoAgent", big))
        snaps.append(k.wait(pids[-1], timeout=120))
    pids += [k.spawn("EchoAgent", f"small {i}") for i in range(4)]  # no more at once than the history keeps
    snaps += [k.wait(pid, timeout=120) for pid in pids[3:]]
    assert all(s["state"] == "done" for s in snaps)
    assert snaps[0]["result"] == big  # wait reads a large result back whole
    kept = {s["pid"]: s for s in k.ps(all=True)}
    assert sorted(kept) == pids[-4:]  # the oldest ended processes left the table
    with pytest.raises(Exception, match="history"):
        k.info(pids[0])
    more = []
    for _ in range(6):  # one at a time: an ended process is pruned once 4 newer ones have ended
        more.append(k.spawn("EchoAgent", big))
        snap = k.wait(more[-1], timeout=120)
        assert snap["result"] == big and snap["result_path"]
        with open(snap["result_path"], encoding="utf-8") as f:
            assert json.load(f) == big
    listed = [s for s in k.ps(all=True) if s["pid"] in more]
    assert len(listed) == 1  # --history_max_bytes 300000: one 200 KB task (plus its preview) fits, not two
    assert all(len(s["result"]) < 5000 for s in listed)  # the table keeps a preview, not 200 KB each
