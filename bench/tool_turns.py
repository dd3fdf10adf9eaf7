"""Tool-calling loops whose earlier calls go back as llm.chat tool_calls vs as JSON text, in one run.

Usage::

    python bench/tool_turns.py [--agents 4] [--turns 3] [--rounds 2] [--json]

One kernel (the embedded model, prefix cache on). Each round runs two batches of --agents
ToolLoopAgents at once (bench/agents/tool_loop_agent), alternating which goes first: "native" passes
the model's call back as the assistant message's ``tool_calls`` (the kernel shows it to the model as
the very text it generated), "text" as ``{"tool": ..., "args": ...}`` JSON in the assistant's content
(what the OpenAI endpoint sent before llm.chat took tool_calls). Both ask the same questions. Prints
side by side, over the turns after the first (those that carry an earlier call):
  prompt tokens        the prompts' length
  prefilled tokens     what the engine computed (the rest came from the prefix cache)
  prefix hit           the share of the prompts served from the cache
  mean turnaround      per call, submit -> reply
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "bench" / "agents")

from bench.common import agent_results, int_flags, started_kernel  # noqa: E402

FORMS = ("native", "text")
QUESTIONS = ["What is 17 * 23?", "Convert 5 kilometers to miles.", "What is 144 / 12 + 7?",
             "How many meters are in 3.5 miles?", "What is 2 to the power of 10?", "Convert 100 F to C.",
             "What is 19 * 21?", "How many grams are in 2 pounds?"]


def batch(client, form: str, n: int, turns: int, max_new: int) -> dict:
    before = client.stats()
    pids = [client.spawn("ToolLoopAgent", json.dumps({"question": QUESTIONS[i % len(QUESTIONS)], "turns": turns,
                                                       "max_new_tokens": max_new, "form": form}))
            for i in range(n)]
    _, runs = agent_results(client, pids, f"ToolLoopAgent ({form})", timeout=1800)
    after = client.stats()
    later = [t for r in runs for t in r["turns"][1:]]
    first = [r["turns"][0] for r in runs]
    prefilled = after["prefill_tokens"] - before["prefill_tokens"]
    hit = after["prefix_hit_tokens"] - before["prefix_hit_tokens"]
    return {"later_calls": len(later), "later_prompt_tokens": sum(t["tokens_in"] for t in later),
            "all_prompt_tokens": sum(t["tokens_in"] for r in runs for t in r["turns"]),
            "first_prompt_tokens": sum(t["tokens_in"] for t in first),
            "prefilled_tokens": prefilled, "prefix_hit_tokens": hit,
            "later_turnaround_s": statistics.mean(t["turnaround_s"] for t in later) if later else 0.0,
            "first_turnaround_s": statistics.mean(t["turnaround_s"] for t in first)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    int_flags(ap, underscores=True, agents=4, turns=3, max_new_tokens=48, rounds=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    with started_kernel(prefix_cache="on", max_new_tokens=max(64, a.max_new_tokens)) as client:
        runs: dict[str, list[dict]] = {f: [] for f in FORMS}
        for r in range(a.rounds):
            for form in (FORMS if r % 2 == 0 else FORMS[::-1]):
                runs[form].append(batch(client, form, a.agents, a.turns, a.max_new_tokens))
    summary = {}
    for form, rs in runs.items():
        tot = {k: sum(x[k] for x in rs) for k in rs[0] if not k.endswith("_s")}
        summary[form] = {**tot, "later_turnaround_s": statistics.mean(x["later_turnaround_s"] for x in rs),
                         "first_turnaround_s": statistics.mean(x["first_turnaround_s"] for x in rs),
                         "hit_share": tot["prefix_hit_tokens"] / max(1, tot["all_prompt_tokens"])}
    if a.json:
        print(json.dumps({"args": vars(a), "summary": summary}, indent=1))
        return
    n, t = summary["native"], summary["text"]
    print(f"{a.agents} agents x {a.turns} tool-call turns, greedy, {a.rounds} rounds (embedded model, prefix cache on)")
    print(f"{'':34}{'native tool_calls':>20}{'JSON text':>14}")
    rows = [("calls after the first", "later_calls", "{:.0f}"),
            ("prompt tokens, those calls", "later_prompt_tokens", "{:.0f}"),
            ("prefilled tokens, every call", "prefilled_tokens", "{:.0f}"),
            ("prompt tokens from the cache", "hit_share", "{:.1%}"),
            ("mean turnaround, first call (s)", "first_turnaround_s", "{:.2f}"),
            ("mean turnaround, later calls (s)", "later_turnaround_s", "{:.2f}")]
    for label, key, fmt in rows:
        print(f"{label:34}{fmt.format(n[key]):>20}{fmt.format(t[key]):>14}")


if __name__ == "__main__":
    main()
