"""Framework agents through the OpenAI endpoint vs the same agents on the AIOS SDK, in one run.

Usage::

    python bench/frameworks.py [--agents 4] [--calls 3] [--max_new_tokens 32] [--rounds 2] [--json]

One kernel (--confine auto, the embedded model). Each round runs two batches of --agents agents at
once, alternating which goes first: SDKChatAgent (llm.chat through agent_apps.sdk) and
OpenAIChatAgent (a plain ``openai`` script, ``client = OpenAI()``, run as a command agent through its
endpoint). Both make the same greedy calls; every agent waits for the same wall-clock start, so
start-up (importing openai takes seconds here) is not measured. Prints side by side:
  tokens/s            completion tokens of the batch / (last call's end - first call's start)
  mean turnaround     per call, as the agent's code sees it (wall clock around the call)
  kernel turnaround   per call, from the kernel's accounting (submit -> reply)
  overhead/call       mean turnaround - kernel turnaround (channel, SDK; plus HTTP, JSON and the
                      openai client for the endpoint)
and whether both batches produced the same texts (greedy decoding: they must).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "bench" / "agents")

from bench.common import agent_results, int_flags, started_kernel  # noqa: E402

VARIANTS = {"sdk": "SDKChatAgent", "endpoint": "OpenAIChatAgent"}
PROMPT = "Write one sentence about the sea"


def batch(client, agent: str, n: int, calls: int, max_new: int, warmup_s: float) -> dict:
    start_at = time.time() + warmup_s
    spec = {"prompt": PROMPT, "calls": calls, "max_new_tokens": max_new, "start_at": start_at}
    pids = [client.spawn(agent, json.dumps({**spec, "prompt": f"{PROMPT}, agent {i}"})) for i in range(n)]
    snaps, results = agent_results(client, pids, agent, timeout=900)
    all_calls = [c for r in results for c in r["calls"]]
    t0, t1 = min(c["t_start"] for c in all_calls), max(c["t_end"] for c in all_calls)
    tokens = sum(c["tokens_out"] for c in all_calls)
    return {"tokens_out": tokens, "wall_s": t1 - t0, "tokens_per_s": tokens / (t1 - t0),
            "turnaround_s": statistics.mean(c["t_end"] - c["t_start"] for c in all_calls),
            "kernel_turnaround_s": statistics.mean(s["turnaround_s"] for s in snaps),
            "late_agents": sum(r["late_s"] > 0 for r in results),
            "texts": [c["text"] for r in results for c in r["calls"]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    int_flags(ap, underscores=True, agents=4, calls=3, max_new_tokens=32, rounds=2)
    ap.add_argument("--warmup_s", type=float, default=0.0,
                    help="seconds between spawning a batch and its common start (default: 2 + 2 per agent)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    warmup = a.warmup_s or 2.0 + 2.0 * a.agents

    with started_kernel(confine="auto", max_new_tokens=max(64, a.max_new_tokens)) as client:
        runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        batch(client, VARIANTS["endpoint"], 1, 1, 4, warmup)  # warm caches (pyc, page cache) for both
        for r in range(a.rounds):
            order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
            for v in order:
                runs[v].append(batch(client, VARIANTS[v], a.agents, a.calls, a.max_new_tokens, warmup))
    summary = {v: {k: statistics.mean(x[k] for x in rs) for k in
                   ("tokens_out", "wall_s", "tokens_per_s", "turnaround_s", "kernel_turnaround_s")}
               for v, rs in runs.items()}
    for v, rs in runs.items():
        summary[v]["late_agents"] = sum(x["late_agents"] for x in rs)
    same = all(x["texts"] == y["texts"] for x, y in zip(runs["sdk"], runs["endpoint"]))
    if a.json:
        print(json.dumps({"args": vars(a), "summary": summary, "same_texts": same}, indent=1))
        return
    s, e = summary["sdk"], summary["endpoint"]
    print(f"{a.agents} agents x {a.calls} calls x {a.max_new_tokens} new tokens, greedy, {a.rounds} rounds "
          f"(--confine auto, embedded model)")
    print(f"{'':24}{'sdk (llm.chat)':>18}{'endpoint (openai)':>20}")
    rows = [("tokens/s", "tokens_per_s", "{:.1f}"), ("mean turnaround (s)", "turnaround_s", "{:.3f}"),
            ("kernel turnaround (s)", "kernel_turnaround_s", "{:.3f}"),
            ("overhead/call (ms)", None, "{:.1f}"), ("tokens out / batch", "tokens_out", "{:.0f}"),
            ("late agents", "late_agents", "{:.0f}")]
    for label, key, fmt in rows:
        if key is None:
            vals = [1000 * (x["turnaround_s"] - x["kernel_turnaround_s"]) for x in (s, e)]
        else:
            vals = [s[key], e[key]]
        print(f"{label:24}{fmt.format(vals[0]):>18}{fmt.format(vals[1]):>20}")
    print(f"same texts in both: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
