"""Tool manager benchmark: call overhead, per-tool limits vs one global lock, sandbox cost.

Usage::

    python bench/tool_calls.py [--calls 200] [--json]

Prints, measured in this one run (real kernels, real agent processes; the
test agents and tools of tests/agents and tests/tools):
  round trip      p50/p99 of proc.info (no tool), calculator (worker thread) and
                  sleep_proc seconds=0 (a child process) from one agent
  mixed workload  4 x sleep 0.3 s (limit 2) + 4 x sleep_proc 0.3 s (limit 4) +
                  10 x calculator, all in flight at once: makespan and mean
                  calculator latency, --tool_scheduling per_tool vs global_lock
                  (global_lock = the original system's one lock for all tools)
  shell sandbox   median time of `sh -c true`: plain subprocess, unshare, bwrap
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "tests" / "agents")
os.environ["AIOS_TOOL_PATH"] = str(ROOT / "tests" / "tools")

from aios_shell.client import KernelClient  # noqa: E402
from bench.common import pct  # noqa: E402
from kernel.config import KernelConfig  # noqa: E402


def kernel(tmp: Path, **cfg) -> KernelClient:
    k = KernelClient(KernelConfig.from_flags(max_new_tokens=16, log_dir=str(tmp / "logs"), data_dir=str(tmp / "data"),
                                             **cfg))
    assert k.ready.wait(120), "model did not load"
    return k


def script(k: KernelClient, steps: list) -> list:
    snap = k.wait(k.spawn("ToolAgent", json.dumps(steps)), timeout=600)
    assert snap["state"] == "done", snap["error"]
    return snap["result"]


def round_trips(k: KernelClient, n: int) -> dict:
    out = {}
    for label, step, count in (("proc.info (no tool)", {"sys": "proc.info"}, n),
                               ("calculator (worker thread)", {"tool": "calculator", "args": {"expression": "6*7"}}, n),
                               ("sleep_proc 0 s (child process)", {"tool": "sleep_proc", "args": {"seconds": 0}},
                                max(20, n // 4))):
        step = dict(step, quiet=True)
        res = script(k, [step] * count)
        assert all("ok" in r for r in res), res[:3]
        ms = [(r["t1"] - r["t0"]) * 1000 for r in res[5:]]  # skip warm-up
        out[label] = {"p50_ms": pct(ms, 0.5), "p99_ms": pct(ms, 0.99), "n": len(ms)}
    return out


def mixed(k: KernelClient) -> dict:
    calls = ([{"tool": "sleep", "args": {"seconds": 0.3}}] * 4 + [{"tool": "sleep_proc", "args": {"seconds": 0.3}}] * 4
             + [{"tool": "calculator", "args": {"expression": "2**10"}}] * 10)
    [replies] = script(k, [{"pipeline": calls}])
    assert all(r["ok"] for r in replies), replies
    sent = replies[0]["sent"]
    return {"makespan_s": max(r["t"] for r in replies) - sent,
            "calculator_mean_s": statistics.mean(r["t"] - sent for r in replies[8:])}


def sandbox_costs(n: int = 30) -> dict:
    from tools import shell

    out = {}
    with tempfile.TemporaryDirectory() as ws:
        for label, fn in (("plain sh", lambda: subprocess.run(["/bin/sh", "-c", "true"], cwd=ws, check=True)),
                          ("unshare", lambda: shell.run_sandboxed("true", ws, 5, sandbox="unshare")),
                          ("bwrap", lambda: shell.run_sandboxed("true", ws, 5, sandbox="bwrap"))):
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1000)
            out[label] = statistics.median(times)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        k = kernel(Path(tmp) / "a")
        try:
            res["round_trip"] = round_trips(k, args.calls)
            res["per_tool"] = mixed(k)
        finally:
            k.stop()
        k = kernel(Path(tmp) / "b", tool_scheduling="global_lock")
        try:
            res["global_lock"] = mixed(k)
        finally:
            k.stop()
    res["sandbox_ms"] = sandbox_costs()
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print("tool call round trip from an agent (ms)      p50      p99")
    for label, r in res["round_trip"].items():
        print(f"  {label:<40} {r['p50_ms']:7.2f}  {r['p99_ms']:7.2f}")
    print("\nmixed workload (18 calls in flight)      per_tool  global_lock")
    print(f"  makespan (s)                           {res['per_tool']['makespan_s']:8.2f}  "
          f"{res['global_lock']['makespan_s']:11.2f}")
    print(f"  calculator latency, mean (s)           {res['per_tool']['calculator_mean_s']:8.3f}  "
          f"{res['global_lock']['calculator_mean_s']:11.3f}")
    print("\nshell sandbox, `true` (median ms)")
    for label, ms in res["sandbox_ms"].items():
        print(f"  {label:<40} {ms:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
