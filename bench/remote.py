"""Remote backend benchmark: fifo vs rr stream preemption on a one-slot OpenAI-compatible backend.

Usage::

    python bench/remote.py [--long 2] [--short 4] [--long-tokens 64] [--short-tokens 8] [--quantum 8] [--json]

Starts ``python -m kernel.llm.serve`` (the embedded model) on a free
127.0.0.1 port, then, for each policy in one run, a kernel whose backend is
openai_compat against it with ``max_concurrency 1`` (an API that allows one
call at a time) and ``resume: continue_final_message``. Each run starts the
long calls first and, once one of them is streaming, the short ones. Prints
per policy: wall time, output tokens/s, mean and p95 turnaround of the short
and of the long calls, and preemptions; with --json one JSON object.

What it shows: under fifo a short call waits for every long call ahead of it;
under rr a long stream is cut after --quantum tokens when others wait and
resumed later from its partial text, at the price of one more prompt prefill
per preemption on the server.
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

from bench.common import int_flags, pct  # noqa: E402

LONG_PROMPT = "Write a long story about a dragon who learns to bake bread."
SHORT_PROMPTS = ["What is 2 plus 2?", "Name a primary color.", "What is the capital of Italy?", "Say hi."]


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "kernel.llm.serve", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # blocks until the ready line (or EOF if it failed)
    if not line.startswith("serving "):
        proc.kill()
        raise SystemExit(f"kernel.llm.serve did not start: {line!r}")
    return proc, line.split(" on ", 1)[1].strip()


def run_policy(policy: str, base_url: str, args, tmp: str) -> dict:
    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig

    models = Path(tmp) / f"models-{policy}.json"
    models.write_text(json.dumps({"models": {"bench-remote": {
        "backend": "openai_compat", "model": "smollm2-135m-instruct", "base_url": base_url,
        "max_concurrency": 1, "resume": "continue_final_message", "timeout_s": 120}}}))
    os.environ["AIOS_MODELS"] = str(models)
    k = KernelClient(KernelConfig.from_flags(llm_name="bench-remote", scheduler=policy, rr_quantum=args.quantum,
                                  max_new_tokens=max(args.long_tokens, args.short_tokens),
                                  log_dir=tmp, data_dir=tmp, scheduler_log_mode="file"))
    try:
        k.ready.wait(60)
        if k.ready_info.get("load_error"):
            raise SystemExit(k.ready_info["load_error"])
        t0 = time.time()
        longs = [k.spawn("ChatCallAgent", json.dumps({"prompt": LONG_PROMPT, "max_new_tokens": args.long_tokens}))
                 for _ in range(args.long)]
        while k.stats()["running"] == 0:  # bench only: wait until a long call streams, then add the short ones
            time.sleep(0.02)
        shorts = [k.spawn("ChatCallAgent", json.dumps({"prompt": SHORT_PROMPTS[i % len(SHORT_PROMPTS)],
                                                       "max_new_tokens": args.short_tokens}))
                  for i in range(args.short)]
        res_long = [k.wait(pid, timeout=600)["result"] for pid in longs]
        res_short = [k.wait(pid, timeout=600)["result"] for pid in shorts]
        wall = time.time() - t0
        stats = k.stats()
    finally:
        k.stop()
    toks = sum(r["tokens_out"] for r in res_long + res_short)
    ts = [r["turnaround_s"] for r in res_short]
    tl = [r["turnaround_s"] for r in res_long]
    return {"wall_s": wall, "tok_s": toks / wall, "tokens": toks,
            "short_mean_s": statistics.mean(ts), "short_p95_s": pct(ts, 0.95),
            "long_mean_s": statistics.mean(tl), "long_p95_s": pct(tl, 0.95),
            "preemptions": stats["preemptions"], "texts": [r["text"] for r in res_long + res_short]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="fifo vs rr on a one-slot remote backend")
    int_flags(p, long=2, short=4, long_tokens=64, short_tokens=8, quantum=8)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    server, base_url = start_server()
    out: dict = {"long": args.long, "short": args.short, "long_tokens": args.long_tokens,
                 "short_tokens": args.short_tokens, "quantum": args.quantum}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = {pol: run_policy(pol, base_url, args, tmp) for pol in ("fifo", "rr")}
    finally:
        server.terminate()
        server.wait(10)
    for pol, r in runs.items():
        for key, v in r.items():
            if key != "texts":
                out[f"{pol}_{key}"] = v
    out["same_outputs"] = runs["fifo"]["texts"] == runs["rr"]["texts"]  # greedy: preemption changes nothing
    out["short_turnaround_speedup"] = runs["fifo"]["short_mean_s"] / runs["rr"]["short_mean_s"]
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{args.long} long calls x {args.long_tokens} tokens, then {args.short} short x {args.short_tokens}; "
          f"one slot; rr quantum {args.quantum}")
    print(f"{'policy':8}{'wall s':>8}{'tok/s':>8}{'short mean':>12}{'short p95':>11}{'long mean':>11}"
          f"{'preempt':>9}")
    for pol, r in runs.items():
        print(f"{pol:8}{r['wall_s']:8.2f}{r['tok_s']:8.1f}{r['short_mean_s']:12.2f}{r['short_p95_s']:11.2f}"
              f"{r['long_mean_s']:11.2f}{r['preemptions']:9d}")
    print(f"short-call turnaround fifo/rr: {out['short_turnaround_speedup']:.2f}x; "
          f"outputs identical: {out['same_outputs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
