"""What tracing costs: the same work with ``--trace on`` and ``--trace off``, side by side, in one run.

Usage::

    python bench/trace_cost.py [--calls 3000] [--rounds 3] [--agents 16] [--llm-calls 2]
                               [--max-new-tokens 32] [--skip-llm] [--json]

Prints, per column (trace off, trace on, trace on with --trace-file):
  syscall RTT     proc.info round trips from one agent (bench/agents/rtt_agent), p50/p99 in
                  microseconds: the median over --rounds kernels per column, the columns interleaved
                  and rotated (off, on, file; on, file, off; ...) so drift on a shared machine hits
                  them alike
  kernel CPU      the kernel process's CPU seconds per 1,000 of those syscalls (less sensitive to load)
  LLM throughput  --agents agents x --llm-calls greedy calls (bench/throughput.py's fifo run):
                  tokens/s and tokens per kernel CPU second, best of --rounds
  tracer CPU      what recording adds to one call on the kernel's loop, measured in this process:
                  begin + end of a span for a plain proc.info and for an llm.chat with a 2 KB prompt
  span memory     bytes per kept span measured with tracemalloc (an LLM call preempted 16 times:
                  the worst case; a plain syscall), and the tracer's bound for 200 agents

Greedy texts are not compared: with batching, which calls share a decode step depends on timing,
and a different batch may round a float differently whether tracing is on or off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "bench" / "agents")

from bench.common import int_flags, pct  # noqa: E402

COLUMNS = {"off": {"trace": "off"}, "on": {"trace": "on"}, "on+file": {"trace": "on", "trace_file": "spans.jsonl"}}


def rtt_run(extra: dict, calls: int) -> dict:
    import psutil

    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig

    with tempfile.TemporaryDirectory() as tmp:
        extra = {k: (f"{tmp}/{v}" if k == "trace_file" else v) for k, v in extra.items()}
        k = KernelClient(KernelConfig.from_flags(log_dir=tmp, data_dir=tmp, mem_search="bm25", **extra))
        try:
            k.ready.wait(300)
            k.wait(k.spawn("RttAgent", "50"))  # warm: imports, first spawn
            kproc = psutil.Process(k.pid)
            cpu0 = sum(kproc.cpu_times()[:2])
            snap = k.wait(k.spawn("RttAgent", str(calls)))
            cpu = sum(kproc.cpu_times()[:2]) - cpu0
        finally:
            k.stop()
    assert snap["state"] == "done", snap.get("error")
    rtt = snap["result"]["rtt_s"][20:]
    return {"p50_us": pct(rtt, 0.5) * 1e6, "p99_us": pct(rtt, 0.99) * 1e6, "cpu_ms_per_1k": cpu / calls * 1e6}


def llm_run(extra: dict, args) -> dict:
    from bench import throughput
    from kernel.llm.threads import default_threads

    targs = SimpleNamespace(max_batch=16, rr_quantum=16, max_new_tokens=args.max_new_tokens, calls=args.llm_calls)
    with tempfile.TemporaryDirectory() as tmp:
        extra = {k: (f"{tmp}/{v}" if k == "trace_file" else v) for k, v in extra.items()}
        r = throughput.run_policy("fifo", throughput.make_prompts(args.agents), targs, default_threads(), **extra)
    return {"tok_s": r["tok_s"], "tok_per_cpu_s": r["tok_per_cpu_s"]}


def tracer_cpu(n: int = 100_000) -> dict:
    """Microseconds of begin + end (the work tracing adds to a call), best of 3 x n."""
    from kernel.config import KernelConfig
    from kernel.trace.recorder import Tracer

    tr = Tracer(KernelConfig())
    tr.spawned(SimpleNamespace(pid=1, name="A", task="t", parent=None, priority=0, group="A"), "")
    chat = {"messages": [{"role": "system", "content": "s" * 1000}, {"role": "user", "content": "u" * 1000}],
            "max_new_tokens": 64}
    out = {}
    for key, name, args in (("tracer_us_plain", "proc.info", {}), ("tracer_us_chat", "llm.chat", chat)):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(n):
                tr.end(tr.begin(1, name, args), size=120)
            best = min(best, (time.perf_counter() - t0) / n * 1e6)
        out[key] = best
    return out


def span_memory() -> dict:
    """Bytes per kept span (tracemalloc), worst case and plain, and the bound they give for 200 agents."""
    from kernel.config import KernelConfig
    from kernel.param import TRACE_ENDED_KEPT, TRACE_EVENTS_MAX, TRACE_SPAN_BYTES, TRACE_SPANS_PER_PROC
    from kernel.trace.recorder import Tracer

    def fill(kind: str, procs: int = 10) -> float:
        tr = Tracer(KernelConfig())
        tracemalloc.start()
        b0 = tracemalloc.get_traced_memory()[0]
        for pid in range(1, procs + 1):
            tr.spawned(SimpleNamespace(pid=pid, name="MathAgent", task="t" * 4000, parent=None, priority=0,
                                       group="MathAgent"), "namespaces+landlock+seccomp+rlimits")
            for _ in range(TRACE_SPANS_PER_PROC):
                if kind == "plain":
                    tr.end(tr.begin(pid, "proc.info", {}), size=300)
                    continue
                s = tr.begin(pid, "llm.chat", {"messages": [{"role": "user", "content": "x" * 3000}] * 4,
                                               "max_new_tokens": 256, "temperature": 0.7, "top_p": 0.9,
                                               "stop": ["\n"], "seed": 7, "tools": [{}]})
                tr.llm_begin(s, 256)
                tr.llm_state(s, "queued")
                tr.llm_state(s, "running")
                for n in range(1, TRACE_EVENTS_MAX + 1):
                    tr.llm_state(s, "preempted", n)
                    tr.llm_state(s, "running", n)
                tr.llm_done(s, {"tokens_in": 4120, "tokens_out": 256, "prefix_hit_tokens": 4000,
                                "finish_reason": "length", "llm_time_s": 9.5, "retries": 1, "tool_calls": [{}]},
                            time.time())
                tr.end(s, size=2000)
        used = tracemalloc.get_traced_memory()[0] - b0
        tracemalloc.stop()
        return used / (procs * (TRACE_SPANS_PER_PROC + 1))

    worst, plain = fill("llm"), fill("plain")
    procs = 200 + TRACE_ENDED_KEPT
    return {"span_bytes_worst": worst, "span_bytes_plain": plain, "span_bytes_bound": TRACE_SPAN_BYTES,
            "bound_200_agents_mib": procs * (TRACE_SPANS_PER_PROC + 1) * TRACE_SPAN_BYTES / 2**20,
            "typical_200_agents_mib": procs * (TRACE_SPANS_PER_PROC + 1) * plain / 2**20}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="tracing on vs off, side by side")
    p.add_argument("--calls", type=int, default=3000, help="proc.info round trips per RTT run")
    p.add_argument("--rounds", type=int, default=3, help="kernels per column, interleaved")
    int_flags(p, agents=16, llm_calls=2, max_new_tokens=32)
    p.add_argument("--skip-llm", action="store_true", help="only the syscall round trip and memory")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    cols = list(COLUMNS)
    rtt: dict[str, list] = {c: [] for c in cols}
    llm: dict[str, dict] = {}
    def order(r: int) -> list[str]:  # each round starts with another column: none always runs first
        return cols[r % len(cols):] + cols[:r % len(cols)]

    for r in range(args.rounds):
        for c in order(r):
            print(f"round {r + 1}/{args.rounds}: rtt {c} ...", file=sys.stderr, flush=True)
            rtt[c].append(rtt_run(COLUMNS[c], args.calls))
    if not args.skip_llm:
        for r in range(args.rounds):
            for c in order(r):
                print(f"round {r + 1}/{args.rounds}: llm {c} ...", file=sys.stderr, flush=True)
                res = llm_run(COLUMNS[c], args)
                if c not in llm or res["tok_s"] > llm[c]["tok_s"]:
                    llm[c] = res
    out: dict = {"calls": args.calls, "rounds": args.rounds, "cpus": len(os.sched_getaffinity(0))}
    for c in cols:
        for key in ("p50_us", "p99_us", "cpu_ms_per_1k"):
            out[f"{c}_rtt_{key}"] = statistics.median(x[key] for x in rtt[c])
        if c in llm:
            out[f"{c}_tok_s"] = llm[c]["tok_s"]
            out[f"{c}_tok_per_cpu_s"] = llm[c]["tok_per_cpu_s"]
    out.update(tracer_cpu())
    out.update(span_memory())
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"tracing cost: {args.calls} proc.info round trips x {args.rounds} kernels per column (median), "
          f"{out['cpus']} CPUs" + ("" if args.skip_llm else f"; LLM: {args.agents} agents x {args.llm_calls} calls x "
                                   f"{args.max_new_tokens} tokens, fifo, best of {args.rounds}"))
    print(f"{'':26s}" + "".join(f"{c:>12s}" for c in cols) + f"{'on vs off':>12s}")
    rows = [("syscall RTT p50 (us)", "rtt_p50_us"), ("syscall RTT p99 (us)", "rtt_p99_us"),
            ("kernel CPU ms / 1k calls", "rtt_cpu_ms_per_1k")]
    if llm:
        rows += [("LLM tokens/s", "tok_s"), ("LLM tokens / kernel CPU s", "tok_per_cpu_s")]
    for label, key in rows:
        vals = [out[f"{c}_{key}"] for c in cols]
        delta = (out[f"on_{key}"] / out[f"off_{key}"] - 1) * 100
        print(f"{label:26s}" + "".join(f"{v:12.1f}" for v in vals) + f"{delta:+11.1f}%")
    print(f"tracer CPU per call (begin + end, this process): {out['tracer_us_plain']:.1f} us a proc.info, "
          f"{out['tracer_us_chat']:.1f} us an llm.chat with a 2 KB prompt")
    print(f"span memory: {out['span_bytes_worst']:.0f} B worst case (bound {out['span_bytes_bound']} B), "
          f"{out['span_bytes_plain']:.0f} B a plain syscall; 200 agents: at most "
          f"{out['bound_200_agents_mib']:.0f} MiB, {out['typical_200_agents_mib']:.1f} MiB of plain syscalls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
