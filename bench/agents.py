"""Agent workload: N ReActAgents with one system prompt, prefix reuse off vs on, and each policy.

Usage::

    python bench/agents.py [--agents 16] [--agent ReActAllToolsAgent] [--policies fifo,rr,priority] [--no-plas]
                           [--json]

Each run is a fresh kernel in this one invocation. N ReActAllToolsAgent processes
(bench/agents/: ReActAgent shown every tool of its profile at every call, a multi-step
tool-using program whose system prompt, tool descriptions and worked examples are the same
for every agent, and whose history grows by one tool call and observation per step) solve
tasks whose tools (calculator, unit_converter) answer at once. ``--agent ReActAgent`` runs
the bundled agent instead, which shows each task a shortlist of tools, so its agents share
less. Runs:

- ``--prefix_cache off`` under fifo (the baseline: every call prefills all);
- ``--prefix_cache on`` under each policy;
- unless ``--no-plas``, ``--prefix_cache on --program_aware on`` under each policy.

Prints a table and then one JSON line (``--json``: only the JSON) with
wall_off_s, wall_on_s (fifo), speedup, prefill_tokens_off, prefill_tokens_on,
prefix_hit_tokens_on, mean_agent_completion_s {policy: s} (prefix on),
mean_agent_completion_plas_s {policy: s}, and identical_outputs: whether
every run's agent results (answers and tool calls) equal the baseline's.
An agent's completion time is its process's end minus its start.
"""

from __future__ import annotations

import argparse
import json
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

TASKS = ["What is 17 * 23?", "Convert 5 km to miles.", "What is (12 + 30) * 4?", "How many feet are in 7 meters?",
         "What is 144 / 12 + 9?", "Convert 3 kg to pounds.", "What is 2 ** 10 - 24?", "Convert 100 F to C.",
         "What is 81 * 3 - 7?", "How many inches are in 2.5 meters?", "What is 999 + 1234?",
         "Convert 42 miles to km.", "What is 15% of 240?", "Convert 10 liters to gallons.", "What is 7 * 8 * 9?",
         "How many grams are in 3 pounds?"]


def run(overrides: dict, n: int, agent: str) -> dict:
    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig

    with tempfile.TemporaryDirectory() as tmp:
        k = KernelClient(KernelConfig.from_flags(log_dir=f"{tmp}/logs", data_dir=f"{tmp}/data",
                                                 scheduler_log_mode="file", agent_log_mode="file", mem_search="bm25",
                                                 **overrides))
        try:
            if not k.ready.wait(300) or k.ready_info.get("load_error"):
                raise RuntimeError(f"model did not load: {k.ready_info.get('load_error')}")
            t0 = time.time()
            pids = [k.spawn(agent, TASKS[i % len(TASKS)] + (f" (case {i // len(TASKS)})" if i >= len(TASKS)
                                                                   else "")) for i in range(n)]
            snaps = [k.wait(pid, timeout=3600) for pid in pids]
            stats = k.stats()
        finally:
            k.stop()
    bad = [s for s in snaps if s["state"] != "done"]
    if bad:
        raise RuntimeError(f"{overrides}: {len(bad)} agents did not finish, e.g. {bad[0].get('error')}")
    completion = [s["end_time"] - s["start_time"] for s in snaps]
    return {"wall_s": max(s["end_time"] for s in snaps) - t0, "mean_completion_s": statistics.mean(completion),
            "prefill_tokens": stats["prefill_tokens"], "prefix_hit_tokens": stats["prefix_hit_tokens"],
            "prefill_s": stats["prefill_s"], "decode_s": stats["decode_s"], "tokens_out": stats["tokens_out"],
            "llm_calls": stats["calls"], "results": [s["result"] for s in snaps]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="N ReActAgents: prefix reuse off vs on, per policy, PLAS")
    p.add_argument("--agents", type=int, default=16)
    p.add_argument("--agent", default="ReActAllToolsAgent",
                   help="the agent app: ReActAllToolsAgent (every tool at every call, one shared prompt) or "
                        "ReActAgent (a per-task shortlist of tools)")
    p.add_argument("--policies", default="fifo,rr,priority")
    p.add_argument("--no-plas", action="store_true", help="skip the --program_aware on runs")
    p.add_argument("--llm-threads", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    args = p.parse_args(argv)
    policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    base = {"llm_threads": args.llm_threads}
    runs = {"off": run({**base, "scheduler": "fifo", "prefix_cache": "off"}, args.agents, args.agent)}
    for pol in policies:
        runs[f"on/{pol}"] = run({**base, "scheduler": pol, "prefix_cache": "on"}, args.agents, args.agent)
    if not args.no_plas:
        for pol in policies:
            runs[f"plas/{pol}"] = run({**base, "scheduler": pol, "prefix_cache": "on", "program_aware": "on"},
                                      args.agents, args.agent)
    off, on = runs["off"], runs.get("on/fifo") or runs[f"on/{policies[0]}"]
    out = {"agents": args.agents, "agent": args.agent, "wall_off_s": round(off["wall_s"], 2),
           "wall_on_s": round(on["wall_s"], 2),
           "speedup": round(off["wall_s"] / on["wall_s"], 2), "prefill_tokens_off": off["prefill_tokens"],
           "prefill_tokens_on": on["prefill_tokens"], "prefix_hit_tokens_on": on["prefix_hit_tokens"],
           "llm_calls": off["llm_calls"],
           "mean_agent_completion_s": {pol: round(runs[f"on/{pol}"]["mean_completion_s"], 2) for pol in policies},
           "identical_outputs": all(r["results"] == off["results"] for r in runs.values())}
    if not args.no_plas:
        out["mean_agent_completion_plas_s"] = {pol: round(runs[f"plas/{pol}"]["mean_completion_s"], 2)
                                               for pol in policies}
    if not args.json:
        print(f"{args.agents} {args.agent}s, {off['llm_calls']} LLM calls per run")
        print(f"{'run':<14}{'wall s':>8}{'mean agent s':>14}{'prefill tok':>12}{'hit tok':>9}{'prefill s':>10}"
              f"{'decode s':>9}{'same':>6}")
        for name, r in runs.items():
            print(f"{name:<14}{r['wall_s']:>8.1f}{r['mean_completion_s']:>14.1f}{r['prefill_tokens']:>12}"
                  f"{r['prefix_hit_tokens']:>9}{r['prefill_s']:>10.1f}{r['decode_s']:>9.1f}"
                  f"{str(r['results'] == off['results']):>6}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
