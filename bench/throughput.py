"""LLM throughput: N agent processes x K calls through the kernel, per policy.

Usage::

    python bench/throughput.py [--agents 16] [--calls 2] [--max-new-tokens 64]
                               [--policies serial,fifo,rr] [--max-batch 16]
                               [--rr-quantum 16] [--llm-threads 0] [--weights auto] [--repeat 1] [--json]

For each policy, in this one invocation: a fresh kernel with that
``--scheduler``; N LLMBenchAgent processes (bench/agents) that block on a
gate process, are released together, and each make K greedy llm.chat calls
of one prompt (a different prompt per agent) with ``max_new_tokens`` T.
Then, in a spawned process (the front never imports torch), the raw batched
decode loop on the same prompts (bench/raw_decode.py): the ceiling.

Prints a table: per policy tokens/s (all output tokens / wall time from the
first call's start to the last call's end), tokens per CPU second of the
kernel process (less sensitive to other load on a shared machine), mean
waiting, mean and p95 turnaround, preemptions and mean batch occupancy;
then speedup_vs_serial (fifo / serial), efficiency (fifo / raw_batched),
both also per CPU second, and whether every policy produced the same texts
as the raw loop. ``--repeat R`` runs the policies and the raw loop R times,
interleaved, and keeps each one's fastest run. ``--json`` prints one JSON
object instead, with at least serial_tok_s, fifo_tok_s, rr_tok_s,
raw_batched_tok_s, speedup_vs_serial, efficiency and
<policy>_turnaround_mean_s / _p95_s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = os.pathsep.join(
    p for p in [str(ROOT / "bench" / "agents"), os.environ.get("AIOS_AGENT_PATH", "")] if p)

from bench.common import pct  # noqa: E402

SUBJECTS = ["cat", "lighthouse keeper", "robot", "wizard", "pirate", "farmer", "knight", "baker", "sailor",
            "painter", "doctor", "child", "queen", "miner", "poet", "ghost", "dragon", "clockmaker",
            "astronaut", "gardener", "detective", "musician", "fox", "librarian"]


def make_prompts(n: int) -> list[str]:
    """n distinct prompts that ask for long answers (so EOS rarely ends a call early)."""
    return [f"Write a long, detailed story about a {SUBJECTS[i % len(SUBJECTS)]}"
            f"{'' if i < len(SUBJECTS) else f' number {i // len(SUBJECTS) + 1}'} who travels the world."
            for i in range(n)]


def wait_sleeping(k, pids: list[int], timeout: float = 300.0) -> None:
    """Until every pid sits in proc.wait on the gate (state "sleeping"). The front polls ps; the kernel never does."""
    deadline = time.monotonic() + timeout
    want = set(pids)
    while time.monotonic() < deadline:
        states = {s["pid"]: s["state"] for s in k.ps(all=True) if s["pid"] in want}
        bad = {p: s for p, s in states.items() if s in ("failed", "killed", "done")}
        if bad:
            raise RuntimeError(f"bench agents ended before the gate opened: {bad}")
        if all(states.get(p) == "sleeping" for p in pids):
            return
        time.sleep(0.05)
    raise TimeoutError("bench agents did not reach the gate")


def run_policy(policy: str, prompts: list[str], args, threads: int, idle_rss_s: float = 0.0, **extra) -> dict:
    """One kernel with ``--scheduler policy`` (and the config settings in ``extra``, by flag name, e.g. trace="off").

    ``idle_rss_s`` > 0: also the kernel's RSS that long after the run (``rss_idle_bytes``), once an idle
    engine has given its freed heap back (kernel.llm.engine.IDLE_RELEASE_S)."""
    import psutil

    from aios_shell.client import KernelClient
    from kernel.config import KEYS, KernelConfig

    with tempfile.TemporaryDirectory() as tmp:
        cfg = dict(scheduler=policy, max_batch=args.max_batch, rr_quantum=args.rr_quantum,
                   max_new_tokens=args.max_new_tokens, llm_threads=threads, log_dir=f"{tmp}/logs",
                   data_dir=f"{tmp}/data", scheduler_log_mode="file", agent_log_mode="file",
                   mem_search="bm25", **extra)  # no embedding model in the kernel: only the LLM competes for the CPU
        k = KernelClient(KernelConfig.from_flags(**{key: v for key, v in cfg.items() if key in KEYS}))
        try:
            if not k.ready.wait(300) or k.ready_info.get("load_error"):
                raise RuntimeError(f"model did not load: {k.ready_info.get('load_error')}")
            gate = k.spawn("LLMBenchAgent", json.dumps({"sleep": True}))
            pids = [k.spawn("LLMBenchAgent", json.dumps({"prompt": p, "calls": args.calls, "gate": gate,
                                                          "max_new_tokens": args.max_new_tokens}))
                    for p in prompts]
            wait_sleeping(k, pids)
            kproc = psutil.Process(k.pid)
            cpu0 = sum(kproc.cpu_times()[:2])  # user + system of the kernel process (all its threads)
            k.kill(gate)
            snaps = [k.wait(pid, timeout=3600) for pid in pids]
            cpu_s = sum(kproc.cpu_times()[:2]) - cpu0
            stats = k.stats()
            rss = kproc.memory_info().rss  # the kernel process, model loaded, after the run
            if idle_rss_s > 0:
                time.sleep(idle_rss_s)
            rss_idle = kproc.memory_info().rss
        finally:
            k.stop()
    failed = [s for s in snaps if s["state"] != "done"]
    if failed:
        raise RuntimeError(f"{policy}: {len(failed)} agents failed, e.g. {failed[0].get('error')}")
    calls = [c for s in snaps for c in s["result"]]
    wall = max(c["t_end"] for c in calls) - min(c["t_start"] for c in calls)
    tokens = sum(c["tokens_out"] for c in calls)
    turn = [c["turnaround_s"] for c in calls]
    return {"tok_s": tokens / wall, "tokens": tokens, "calls": len(calls), "wall_s": wall,
            "cpu_s": cpu_s, "tok_per_cpu_s": tokens / cpu_s,
            "waiting_mean_s": statistics.mean(c["waiting_s"] for c in calls),
            "turnaround_mean_s": statistics.mean(turn), "turnaround_p95_s": pct(turn, 0.95),
            "preemptions": sum(c["preemptions"] for c in calls),
            "batch_occupancy": stats.get("batch_occupancy", 0.0),
            "rss_bytes": rss, "rss_idle_bytes": rss_idle if idle_rss_s > 0 else None, "load_time_s": stats.get("load_time_s"), "weights": stats.get("weights"),
            "texts": [s["result"][0]["text"] for s in snaps]}


def run_raw(prompts: list[str], args, threads: int, weights: str = "auto") -> dict:
    from bench import raw_decode
    from kernel.config import EMBEDDED_MODEL

    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(raw_decode.measure, (EMBEDDED_MODEL, prompts, args.calls, args.max_new_tokens,
                                               args.max_batch, threads, weights))


def main(argv=None) -> int:
    from kernel.llm.threads import default_threads

    p = argparse.ArgumentParser(description="AIOS LLM throughput per scheduling policy vs the raw batched loop")
    p.add_argument("--agents", type=int, default=16)
    p.add_argument("--calls", type=int, default=2, help="LLM calls per agent, one after another")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--policies", default="serial,fifo,rr", help="comma-separated, of serial,fifo,rr,priority")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--rr-quantum", type=int, default=16)
    p.add_argument("--llm-threads", type=int, default=0, help="torch threads (default 0: the kernel's default)")
    p.add_argument("--weights", default="auto", choices=("auto", "int8", "fp16", "fp32"), help="the local model's weights")
    p.add_argument("--repeat", type=int, default=1, help="interleaved runs of everything; the fastest of each counts")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    threads = args.llm_threads or default_threads()
    prompts = make_prompts(args.agents)
    policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    load0 = os.getloadavg()[0]
    res: dict[str, dict] = {}
    for rep in range(max(1, args.repeat)):
        for name in [*policies, "raw_batched"]:
            if not args.json:
                print(f"run {rep + 1}/{args.repeat}: {name} ...", file=sys.stderr, flush=True)
            r = (run_raw(prompts, args, threads, args.weights) if name == "raw_batched"
                 else run_policy(name, prompts, args, threads, weights=args.weights))
            if name not in res or r["tok_s"] > res[name]["tok_s"]:
                res[name] = r
    raw = res.pop("raw_batched")
    out: dict = {"agents": args.agents, "calls": args.calls, "max_new_tokens": args.max_new_tokens,
                 "max_batch": args.max_batch, "rr_quantum": args.rr_quantum, "llm_threads": threads,
                 "weights": args.weights,
                 "repeat": args.repeat, "cpus": len(os.sched_getaffinity(0)), "loadavg_start": load0,
                 "loadavg_end": os.getloadavg()[0]}
    for policy, r in res.items():
        out[f"{policy}_tok_s"] = r["tok_s"]
        for key in ("tok_per_cpu_s", "turnaround_mean_s", "turnaround_p95_s", "waiting_mean_s", "preemptions",
                    "batch_occupancy"):
            out[f"{policy}_{key}"] = r[key]
    out["raw_batched_tok_s"] = raw["tok_s"]
    out["raw_batched_tok_per_cpu_s"] = raw["tok_per_cpu_s"]
    if "fifo" in res and "serial" in res:
        out["speedup_vs_serial"] = res["fifo"]["tok_s"] / res["serial"]["tok_s"]
        out["speedup_vs_serial_cpu"] = res["fifo"]["tok_per_cpu_s"] / res["serial"]["tok_per_cpu_s"]
    if "fifo" in res:
        out["efficiency"] = res["fifo"]["tok_s"] / raw["tok_s"]
        out["efficiency_cpu"] = res["fifo"]["tok_per_cpu_s"] / raw["tok_per_cpu_s"]
    same = {policy: sum(a == b for a, b in zip(r["texts"], raw["texts"])) for policy, r in res.items()}
    out["identical_to_raw"] = same
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"AIOS LLM throughput: {args.agents} agents x {args.calls} calls x {args.max_new_tokens} new tokens, "
          f"max_batch {args.max_batch}, {threads} torch thread(s), {out['cpus']} CPUs, best of {args.repeat}, "
          f"load average {load0:.1f} at start, {out['loadavg_end']:.1f} at end")
    print(f"{'policy':<12}{'tok/s':>8}{'tok/cpu_s':>10}{'tokens':>8}{'wall_s':>8}{'wait_mean':>10}"
          f"{'turn_mean':>10}{'turn_p95':>9}{'preempt':>8}{'batch':>7}")
    for policy, r in res.items():
        print(f"{policy:<12}{r['tok_s']:>8.1f}{r['tok_per_cpu_s']:>10.1f}{r['tokens']:>8}{r['wall_s']:>8.1f}"
              f"{r['waiting_mean_s']:>10.2f}{r['turnaround_mean_s']:>10.2f}{r['turnaround_p95_s']:>9.2f}"
              f"{r['preemptions']:>8}{r['batch_occupancy']:>7.1f}")
    print(f"{'raw_batched':<12}{raw['tok_s']:>8.1f}{raw['tok_per_cpu_s']:>10.1f}{raw['tokens']:>8}{raw['wall_s']:>8.1f}")
    if "speedup_vs_serial" in out:
        print(f"speedup_vs_serial (fifo / serial):  {out['speedup_vs_serial']:.2f}x wall, "
              f"{out['speedup_vs_serial_cpu']:.2f}x per CPU second")
    if "efficiency" in out:
        print(f"efficiency (fifo / raw_batched):    {out['efficiency']:.2f} wall, "
              f"{out['efficiency_cpu']:.2f} per CPU second")
    print("first-call texts identical to the raw loop: "
          + ", ".join(f"{policy} {n}/{args.agents}" for policy, n in same.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
