"""Spine benchmark: model load, agent start-up, syscall round trip, agent memory.

Usage::

    python bench/spine.py [--agents 8] [--calls 2000] [--modes off,confined,landlock-only] [--json]

Prints, measured in this one run, one column per confinement mode (off: --confine off;
confined: --confine auto with every layer; landlock-only: --confine landlock, what auto
picks on a machine without user namespaces):
  model load      cached safetensors load in the kernel (and, with --conversion,
                  the one-time GGUF -> safetensors conversion in a scratch cache)
  agent start-up  spawn request -> the agent's first syscall, p50/max over --agents
                  (started one after another, so each is measured alone)
  syscall RTT     proc.info round trips from an agent (no LLM), p50/p99
  agent RSS       resident memory of a live agent process after its calls
  endpoint connect  TCP connect to the agent's own endpoint, p50/p99 (the fallback checks
                  each connect() in the kernel: kernel/confine/notify.py)
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
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "bench" / "agents")

from bench.common import pct  # noqa: E402


def conversion_time() -> float:
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "kernel.llm.model"], cwd=ROOT, check=True,
                       env={**os.environ, "XDG_CACHE_HOME": cache}, capture_output=True)
        return time.time() - t0


MODES = {  # column -> (--confine, environment of the kernel)
    "off": ("off", {}),
    "confined": ("auto", {}),
    "landlock-only": ("landlock", {}),  # what a user without user namespaces gets
}


def measure(mode: str, agents: int, calls: int) -> dict:
    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig

    confine, env = MODES[mode]
    out: dict = {}
    with mock.patch.dict(os.environ, env):  # inherited by the kernel process; restored after this mode
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.time()
            k = KernelClient(KernelConfig.from_flags(log_dir=tmp, data_dir=tmp, confine=confine))
            out["kernel_boot_s"] = time.time() - t0
            k.ready.wait()
            out["model_load_cached_s"] = k.ready_info.get("load_time_s")
            starts = [k.wait(k.spawn("RttAgent", "1"))["startup_s"] for _ in range(agents)]  # one at a time
            out["agent_startup_p50_s"] = statistics.median(starts)
            out["agent_startup_max_s"] = max(starts)
            snap = k.wait(k.spawn("RttAgent", str(calls)))
            assert snap["state"] == "done", snap["error"]
            rtt = snap["result"]["rtt_s"][10:]  # skip warm-up
            out["syscall_rtt_p50_us"] = pct(rtt, 0.50) * 1e6
            out["syscall_rtt_p99_us"] = pct(rtt, 0.99) * 1e6
            out["agent_rss_mib"] = snap["result"]["rss_kib"] / 1024
            conn = snap["result"].get("connect_s") or [0.0]
            out["endpoint_connect_p50_us"] = pct(conn, 0.50) * 1e6
            out["endpoint_connect_p99_us"] = pct(conn, 0.99) * 1e6
            out["confinement"] = snap["confinement"]
            k.stop()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="AIOS spine benchmark")
    p.add_argument("--agents", type=int, default=8)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--modes", default="off,confined,landlock-only",
                   help=f"comma-separated columns, from {', '.join(MODES)}")
    p.add_argument("--conversion", action="store_true", help="also time the one-time GGUF conversion")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    cols = {m: measure(m, args.agents, args.calls) for m in modes}
    if args.conversion:
        cols[modes[0]]["model_conversion_s"] = conversion_time()
    if args.json:
        print(json.dumps(cols))
        return 0
    keys = list(dict.fromkeys(k for c in cols.values() for k in c))
    print(f"{'':24s}" + "".join(f"{m:>30s}" for m in modes))
    for key in keys:
        cells = [cols[m].get(key) for m in modes]
        print(f"{key:24s}" + "".join(f"{v:30.3f}" if isinstance(v, float) else f"{str(v):>30s}" for v in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
