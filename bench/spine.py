"""Spine benchmark: model load, agent start-up, syscall round trip, agent memory.

Usage::

    python bench/spine.py [--agents 8] [--calls 2000] [--conversion] [--json]

Prints, measured in this one run:
  model load      cached safetensors load in the kernel (and, with --conversion,
                  the one-time GGUF -> safetensors conversion in a scratch cache)
  agent start-up  spawn request -> the agent's first syscall, p50/max over --agents
  syscall RTT     proc.info round trips from an agent (no LLM), p50/p99
  agent RSS       resident memory of a live agent process after its calls
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
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "bench" / "agents")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def conversion_time() -> float:
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "kernel.llm.model"], cwd=ROOT, check=True,
                       env={**os.environ, "XDG_CACHE_HOME": cache}, capture_output=True)
        return time.time() - t0


def main(argv=None) -> int:
    from kernel.boot import KernelClient
    from kernel.config import KernelConfig

    p = argparse.ArgumentParser(description="AIOS spine benchmark")
    p.add_argument("--agents", type=int, default=8)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--conversion", action="store_true", help="also time the one-time GGUF conversion")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out: dict = {}
    if args.conversion:
        out["model_conversion_s"] = conversion_time()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        k = KernelClient(KernelConfig(log_dir=tmp, data_dir=tmp))
        out["kernel_boot_s"] = time.time() - t0
        k.ready.wait()
        out["model_load_cached_s"] = k.ready_info.get("load_time_s")
        pids = [k.spawn("RttAgent", "1") for _ in range(args.agents)]
        starts = [k.wait(pid)["startup_s"] for pid in pids]
        out["agent_startup_p50_s"] = statistics.median(starts)
        out["agent_startup_max_s"] = max(starts)
        res = k.wait(k.spawn("RttAgent", str(args.calls)))["result"]
        rtt = res["rtt_s"][10:]  # skip warm-up
        out["syscall_rtt_p50_us"] = pct(rtt, 0.50) * 1e6
        out["syscall_rtt_p99_us"] = pct(rtt, 0.99) * 1e6
        out["agent_rss_mib"] = res["rss_kib"] / 1024
        k.stop()
    if args.json:
        print(json.dumps(out))
    else:
        for key, v in out.items():
            print(f"{key:24s} {v:10.3f}" if isinstance(v, float) else f"{key:24s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
