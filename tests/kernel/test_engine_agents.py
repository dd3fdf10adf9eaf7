"""The engine through real agent processes: batching and preemption as agents and ps see them."""

from __future__ import annotations

import json

from conftest import start_kernel

PROMPTS = ["Write a long story about a dragon.", "What is the capital of Italy?", "Name three fruits.",
           "Describe the sea in one sentence."]


def spawn_all(k, max_new: int = 8) -> list[int]:
    return [k.spawn("ChatAgent", json.dumps({"prompt": p, "max_new_tokens": max_new})) for p in PROMPTS]


def test_preempting_kernel_answers_agents_like_the_batching_one(kernel, tmp_path):
    """rr with a 2-token quantum, a batch of 2 and no KV budget vs the shared fifo kernel: same answers."""
    fifo = [kernel.wait(pid, timeout=120) for pid in spawn_all(kernel)]
    k, _ = start_kernel(tmp_path, scheduler="rr", max_batch=2, rr_quantum=2, kv_budget_mb=0)
    try:
        rr = [k.wait(pid, timeout=120) for pid in spawn_all(k)]
        stats = k.stats()
    finally:
        k.stop()
    assert [s["state"] for s in fifo + rr] == ["done"] * 8
    assert [s["result"] for s in rr] == [s["result"] for s in fifo]
    assert sum(s["preemptions"] for s in rr) == stats["preemptions"] > 0
    assert stats["policy"] == "rr" and stats["resumes_recompute"] > 0 and stats["batch_occupancy"] <= 2
    for s in rr:  # per-process LLM accounting that ps/top show
        assert s["llm_calls_done"] == 1 and s["tokens_in"] > 10 and 0 < s["tokens_out"] <= 8
        assert s["waiting_s"] >= 0 and s["turnaround_s"] > s["waiting_s"] and s["llm_time_s"] > 0
