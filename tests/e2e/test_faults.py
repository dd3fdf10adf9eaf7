"""Fault injection: seeded, replayable SIGKILLs of agents while many run.

Replay a failure with AIOS_FAULT_SEED=<seed printed in the failure message>.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import psutil

from conftest import ROOT

SEED = int(os.environ.get("AIOS_FAULT_SEED", "20261122"))
PROMPTS = ["Name a large animal.", "What colour is the sky?", "Give one word for happy.",
           "Name a planet.", "What is two plus two?", "Name a fruit."]


def _spec(prompt: str) -> str:
    return json.dumps({"prompt": prompt, "max_new_tokens": 16, "calls": 2})


# A victim that holds working memory and a tool slot (a child process) when it dies.
HOLDER = json.dumps([{"sys": "mem.add", "args": {"content": "n" * 4000, "kind": "note"}, "quiet": True}] * 3
                    + [{"tool": "sleep_proc", "args": {"seconds": 6}}])


def _state(kernel, pid):
    return kernel.info(pid)["state"]


def _zombies(kernel_pid: int) -> list[int]:
    return [c.pid for c in psutil.Process(kernel_pid).children() if c.status() == psutil.STATUS_ZOMBIE]


def test_random_sigkills_leave_survivors_identical(kernel):
    rng = random.Random(SEED)
    # Undisturbed reference: the survivors' workload alone.
    ref_pids = {kernel.spawn("ChatAgent", _spec(p)): p for p in PROMPTS}
    ref = {p: kernel.wait(pid, timeout=300)["result"] for pid, p in ref_pids.items()}
    before = kernel.stats()
    # The same workload, plus victims of every kind killed at random moments.
    victims = []
    for _ in range(8):
        kind = rng.choice(["ChatAgent", "SleepyAgent", "FloodAgent", "ChatAgent", "ToolAgent"])
        victims.append(kernel.spawn(kind, HOLDER if kind == "ToolAgent" else _spec(rng.choice(PROMPTS))))
    survivors = {kernel.spawn("ChatAgent", _spec(p)): p for p in PROMPTS}
    plan = sorted((rng.uniform(0.0, 3.0), v) for v in victims)
    t0 = time.time()
    for at, victim in plan:
        time.sleep(max(0.0, at - (time.time() - t0)))
        snap = kernel.info(victim)
        if snap["os_pid"] and not snap["end_time"]:
            try:
                os.kill(snap["os_pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    msg = f"(replay with AIOS_FAULT_SEED={SEED})"
    for v in victims:
        s = kernel.wait(v, timeout=60)
        assert s["state"] in ("killed", "done"), f"{msg} {s}"  # a victim may finish before its kill time
    # Right after the victims are reaped (their tool calls would still be running): slots are free.
    now = kernel.stats()
    assert now["tools_running"] == 0 and now["tools_queued"] == 0, f"{msg} tool slots held: {now}"
    for pid, p in survivors.items():
        s = kernel.wait(pid, timeout=300)
        assert s["state"] == "done" and s["result"] == ref[p], f"{msg} {p!r}: {s['result']!r} != {ref[p]!r}"
    stats = kernel.stats()
    assert stats["queue"] == 0 and stats["running"] == 0, f"{msg} engine still holds work: {stats}"
    assert stats["kv_bytes"] == 0, f"{msg} KV cache still held: {stats['kv_bytes']}"
    for key in ("mem_processes", "mem_resident_bytes", "mem_evicted_bytes"):
        assert stats[key] == before[key], f"{msg} memory not released: {key} {before[key]} -> {stats[key]}"
    assert stats["tools_running"] == 0 and stats["tools_queued"] == 0, f"{msg} tool slots held: {stats}"
    assert _zombies(kernel.pid) == []
    assert not [p for p in kernel.ps(all=False) if p["pid"] in victims]


def test_kill_mid_frame_does_not_stall_the_kernel(kernel):
    for _ in range(3):
        pid = kernel.spawn("FloodAgent", "x")
        deadline = time.time() + 30
        while kernel.info(pid)["syscalls_total"] < 6 and time.time() < deadline:
            time.sleep(0.01)
        assert kernel.info(pid)["syscalls"].get("<invalid>", 0) >= 5  # its junk frames were read and refused
        os.kill(kernel.info(pid)["os_pid"], signal.SIGKILL)
        assert kernel.wait(pid, timeout=30)["state"] == "killed"
    # Other agents' channels are untouched.
    assert kernel.wait(kernel.spawn("EchoAgent", "still here"), timeout=30)["result"] == "still here"


def _run_main_and_signal(tmp_path, sig):
    mark = uuid.uuid4().hex
    logs = tmp_path / f"logs-{sig}"
    proc = subprocess.Popen(
        [sys.executable, "main.py", "--max_new_tokens", "200", "--log_dir", str(logs),
         "--scheduler_log_mode", "file", "--agent_log_mode", "file"],
        cwd=ROOT, env={**os.environ, "AIOS_TEST_MARK": mark}, stdout=subprocess.PIPE, text=True)
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.time() + 60
    while not any(line.startswith("run RecAgent") for line in seen) and time.time() < deadline:
        time.sleep(0.05)
    def started() -> int:  # the kernel creates each log at spawn; the agent writes its start line once it runs
        return sum("task:" in f.read_text() for f in (logs / "agents").rglob("*.log"))
    while started() < 3 and time.time() < deadline:
        time.sleep(0.05)  # slow on a loaded machine

    def in_llm_call() -> bool:  # the engine admitted an agent's call (the scheduler log's "admit" line)
        return any(" admit pid=" in f.read_text() for f in logs.glob("scheduler-*.log"))
    while not in_llm_call() and time.time() < deadline:
        time.sleep(0.05)
    assert in_llm_call(), "no agent reached an LLM call"
    proc.send_signal(sig)
    code = proc.wait(60)
    marked = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("AIOS_TEST_MARK") == mark:
                marked.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    _, alive = psutil.wait_procs(marked, timeout=10)  # still exiting is not left behind; alive after 10 s is
    leftovers = []
    for p in alive:
        try:
            leftovers.append((p.pid, p.status(), " ".join(p.cmdline())[:200]))
        except psutil.Error:
            pass
    return code, leftovers, logs


def test_front_signals_leave_nothing_and_flush_logs(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        code, leftovers, logs = _run_main_and_signal(tmp_path, sig)
        assert code != 0 and leftovers == [], (sig, code, leftovers)
        kernel_logs = list(logs.glob("kernel-*.log"))
        assert len(kernel_logs) == 1 and "kernel stopped" in kernel_logs[0].read_text(), sig
        agent_logs = list((logs / "agents").rglob("*.log"))
        assert len(agent_logs) == 3 and all("task:" in f.read_text() for f in agent_logs), sig
