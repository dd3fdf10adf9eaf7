"""Shell benchmark: what the front costs, and how `ps`/`top` data scale with live agents.

Usage::

    python bench/shell.py [--agents 1,8,16] [--repeat 30] [--json]

Prints, measured in this one run:
  front start    `import simulator` (the shell's whole import graph) in a fresh interpreter, and
                 whether torch came with it
  front RSS      resident memory of the shell process next to the kernel's (same run)
  ps / stats     control round trip (front -> kernel -> front) with N live agents, p50/p95 ms,
                 side by side for each N (ps reads each agent's psutil.Process in the kernel)
  batch          `run_batch` of N EchoAgents (no LLM): spawn, wait and report, wall seconds
"""

from __future__ import annotations

import argparse
import io
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

import psutil  # noqa: E402

from aios_shell import ShellContext, run_batch  # noqa: E402
from aios_shell.client import KernelClient  # noqa: E402
from bench.common import pct, timed_ms  # noqa: E402
from kernel.config import KernelConfig  # noqa: E402


def front_import() -> tuple[float, bool]:
    code = ("import sys, time; t = time.perf_counter(); import simulator; "
            "print(time.perf_counter() - t, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    secs, torch = out.stdout.split()
    return float(secs), torch == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", default="1,8,16", help="live agent counts to measure ps/stats with")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    counts = [int(x) for x in args.agents.split(",")]
    res: dict = {}
    res["import_s"], res["import_has_torch"] = front_import()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ShellContext(interactive=False, out=io.StringIO(), err=io.StringIO(), show_output=False)
        client = KernelClient(KernelConfig.from_flags(log_dir=f"{tmp}/logs", data_dir=f"{tmp}/data",
                                           scheduler_log_mode="file", agent_log_mode="file"),
                              on_event=ctx.on_event)
        ctx.attach(client)
        client.ready.wait(120)
        try:
            res["front_rss"] = psutil.Process().memory_info().rss
            res["kernel_rss"] = psutil.Process(client.pid).memory_info().rss
            res["rtt"] = {}
            live: list[int] = []
            for n in counts:
                while len(live) < n:
                    live.append(client.spawn("SleepyAgent", "600"))
                for pid in live:  # every agent is up (its first syscall done) before timing
                    while client.info(pid)["state"] == "new":
                        time.sleep(0.05)
                ps = timed_ms(lambda: client.ps(all=False), args.repeat)
                st = timed_ms(client.stats, args.repeat)
                res["rtt"][n] = {"ps_p50": statistics.median(ps), "ps_p95": pct(ps, 0.95),
                                 "stats_p50": statistics.median(st), "stats_p95": pct(st, 0.95)}
            for pid in live:
                client.kill(pid)
            for pid in live:
                client.wait(pid, timeout=30)
            res["batch"] = {}
            for n in counts:
                lines = [f"run EchoAgent: job {i}" for i in range(n)]
                ctx.spawned.clear()
                t0 = time.perf_counter()
                rc = run_batch(ctx, lines, "bench", json_mode=True, report_to=io.StringIO())
                res["batch"][n] = {"wall_s": time.perf_counter() - t0, "rc": rc}
        finally:
            client.stop()
    if args.json:
        print(json.dumps(res, indent=2))
        return
    mb = 1 << 20
    print(f"front start: import simulator {res['import_s'] * 1000:.0f} ms, torch imported: {res['import_has_torch']}")
    print(f"RSS: front (this process) {res['front_rss'] / mb:.0f} MiB | kernel {res['kernel_rss'] / mb:.0f} MiB")
    print(f"{'live agents':>12} | {'ps p50':>8} {'ps p95':>8} | {'stats p50':>9} {'stats p95':>9} | "
          f"{'batch of N EchoAgents':>22}")
    for n in counts:
        r, b = res["rtt"][n], res["batch"][n]
        print(f"{n:>12} | {r['ps_p50']:>6.2f}ms {r['ps_p95']:>6.2f}ms | {r['stats_p50']:>7.2f}ms {r['stats_p95']:>7.2f}ms"
              f" | {b['wall_s']:>20.2f}s" + ("" if b["rc"] == 0 else f" (rc {b['rc']})"))


if __name__ == "__main__":
    main()
