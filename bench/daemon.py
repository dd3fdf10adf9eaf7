"""Service benchmark: what attaching to a running daemon saves, and what the socket hop costs.

Usage::

    python bench/daemon.py [--repeat 20] [--json]

Prints, measured in this one run (side by side):
  one command    wall seconds of `ps` as a fresh program: a foreground batch run
                 (`echo ps | simulator.py`: boots a kernel, loads the model, stops it) vs
                 `simulator.py --connect -c ps` on a warm daemon; median of --repeat (batch: 3 runs)
  round trip     `ps` and `stats` p50/p95 ms through RemoteKernelClient (front -> daemon socket ->
                 kernel pipe -> back) vs KernelClient in process (front -> kernel pipe), same model
  bad model      wall seconds until an unknown --llm_name is refused (HF_HUB_OFFLINE=1)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aios_shell.client import KernelClient  # noqa: E402
from aios_shell.daemon.remote import RemoteKernelClient  # noqa: E402
from bench.common import pct, timed_ms  # noqa: E402
from kernel.config import KernelConfig  # noqa: E402

SIM = str(ROOT / "simulator.py")


def wall(cmd: list[str], env: dict, stdin: str | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="aios-bench-"))
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp / "run"), XDG_STATE_HOME=str(tmp / "state"))
    common = ["--log_dir", str(tmp / "logs"), "--data_dir", str(tmp / "data")]
    sock = str(tmp / "run" / "aios" / "aios.sock")
    res: dict = {}

    res["batch_ps_s"] = statistics.median(wall([sys.executable, SIM, *common], env, "ps\n") for _ in range(3))
    subprocess.run([sys.executable, SIM, "--daemon", *common], cwd=ROOT, env=env, check=True, capture_output=True)
    try:
        res["connect_ps_s"] = statistics.median(
            wall([sys.executable, SIM, "--connect", "-c", "ps"], env) for _ in range(args.repeat))
        with RemoteKernelClient(sock) as remote:
            for op in ("ps", "stats"):
                ms = timed_ms(getattr(remote, op), args.repeat * 10)
                res[f"remote_{op}_ms"] = (pct(ms, 0.5), pct(ms, 0.95))
    finally:
        subprocess.run([sys.executable, SIM, "--connect", "-c", "shutdown"], cwd=ROOT, env=env, capture_output=True)
    with KernelClient(KernelConfig.from_flags(log_dir=str(tmp / "logs"), data_dir=str(tmp / "data"))) as local:
        local.ready.wait()
        for op in ("ps", "stats"):
            ms = timed_ms(getattr(local, op), args.repeat * 10)
            res[f"local_{op}_ms"] = (pct(ms, 0.5), pct(ms, 0.95))
    res["bad_model_s"] = wall([sys.executable, SIM, "--llm_name", "no-org/no-model", *common],
                              dict(env, HF_HUB_OFFLINE="1"), "ps\n")
    shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"one `ps` as a program   foreground batch {res['batch_ps_s']:.2f} s   "
          f"--connect -c ps {res['connect_ps_s']:.2f} s   ({res['batch_ps_s'] / res['connect_ps_s']:.1f}x)")
    for op in ("ps", "stats"):
        r, lo = res[f"remote_{op}_ms"], res[f"local_{op}_ms"]
        print(f"{op:<6} round trip p50/p95   daemon socket {r[0]:.2f}/{r[1]:.2f} ms   "
              f"in-process pipe {lo[0]:.2f}/{lo[1]:.2f} ms")
    print(f"unknown --llm_name refused in {res['bad_model_s']:.2f} s (was 49 s of hub retries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
