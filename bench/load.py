"""Load benchmark: many agents at once on one kernel, and the cost of idle agents.

Usage::

    python bench/load.py [--agents 100] [--calls 2] [--tokens 12] [--idle 200] [--rounds 2] [--json]

Prints, measured in this one run:
  load round r   N LoadAgents at once (K LLM calls, a calculator call and a
                 storage write/read each): wall time, completed/failed,
                 aggregate tokens/s, kernel RSS before/peak/after
  idle spawn     --idle IdleAgents: time until all are running, spawn rate,
                 kernel RSS, summed agent RSS, then time to kill them all
Two load rounds side by side show whether kernel memory stays bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "bench" / "agents")

from bench.common import int_flags  # noqa: E402

MiB = 2**20


class RssSampler:
    """Samples the kernel's RSS every 0.2 s in the bench process (not in the kernel)."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.2):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


def load_round(k, n: int, calls: int, tokens: int) -> dict:
    before = psutil.Process(k.pid).memory_info().rss
    sampler = RssSampler(k.pid)
    t0 = time.time()
    pids = [k.spawn("LoadAgent", json.dumps({"i": i, "calls": calls, "tokens": tokens})) for i in range(n)]
    snaps = [k.wait(p, timeout=1800) for p in pids]
    wall = time.time() - t0
    peak = sampler.stop()
    ok = [s for s in snaps if s["state"] == "done" and s["result"]["stored"]]
    toks = sum(s["tokens_out"] for s in snaps)
    return {"agents": n, "done": len(ok), "failed": n - len(ok), "wall_s": wall, "tokens_out": toks,
            "tok_s": toks / wall, "kernel_rss_before_mib": before / MiB, "kernel_rss_peak_mib": peak / MiB,
            "kernel_rss_after_mib": psutil.Process(k.pid).memory_info().rss / MiB,
            "mean_turnaround_s": sum(s["turnaround_s"] or 0 for s in snaps) / n,
            "errors": sorted({(s.get("error") or "")[:120] for s in snaps if s not in ok})[:5]}


def idle_spawn(k, n: int) -> dict:
    t0 = time.time()
    pids = [k.spawn("IdleAgent", "idle") for _ in range(n)]
    t_spawned = time.time() - t0
    while any(s["state"] == "new" for s in k.ps(all=False)):
        time.sleep(0.05)
    t_running = time.time() - t0
    rows = k.ps(all=False)
    agent_rss = sum(r["rss"] for r in rows if r["pid"] in set(pids))
    kernel_rss = psutil.Process(k.pid).memory_info().rss
    t1 = time.time()
    for p in pids:
        k.kill(p)
    for p in pids:
        k.wait(p, timeout=120)
    return {"idle_agents": n, "spawn_requests_s": t_spawned, "all_running_s": t_running,
            "spawn_rate_per_s": n / t_running, "agents_rss_total_mib": agent_rss / MiB,
            "agent_rss_mean_mib": agent_rss / n / MiB, "kernel_rss_mib": kernel_rss / MiB,
            "kill_all_s": time.time() - t1}


def main(argv=None) -> int:
    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig

    p = argparse.ArgumentParser(description="AIOS load benchmark")
    int_flags(p, agents=100, calls=2, tokens=12, idle=200, rounds=2)
    p.add_argument("--scheduler", default="fifo")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out: dict = {"rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = KernelConfig.from_flags(log_dir=tmp, data_dir=tmp, scheduler=args.scheduler, scheduler_log_mode="file",
                           agent_log_mode="file", max_agents=max(256, args.agents, args.idle))
        with KernelClient(cfg) as k:
            k.ready.wait()
            for r in range(args.rounds):
                out["rounds"].append(load_round(k, args.agents, args.calls, args.tokens))
            if args.idle:
                out["idle"] = idle_spawn(k, args.idle)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{'round':>5} {'agents':>6} {'done':>5} {'failed':>6} {'wall s':>7} {'tok/s':>7} "
          f"{'kRSS before':>11} {'peak':>7} {'after':>7} MiB")
    for i, r in enumerate(out["rounds"], 1):
        print(f"{i:>5} {r['agents']:>6} {r['done']:>5} {r['failed']:>6} {r['wall_s']:>7.1f} {r['tok_s']:>7.1f} "
              f"{r['kernel_rss_before_mib']:>11.0f} {r['kernel_rss_peak_mib']:>7.0f} {r['kernel_rss_after_mib']:>7.0f}")
        for e in r["errors"]:
            print("      error:", e)
    if "idle" in out:
        i = out["idle"]
        print(f"idle: {i['idle_agents']} agents running after {i['all_running_s']:.1f}s "
              f"({i['spawn_rate_per_s']:.0f}/s); agent RSS {i['agent_rss_mean_mib']:.1f} MiB each, "
              f"{i['agents_rss_total_mib']:.0f} MiB total; kernel RSS {i['kernel_rss_mib']:.0f} MiB; "
              f"killed all in {i['kill_all_s']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
