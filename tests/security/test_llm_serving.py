"""Hostile agents against agent-aware LLM serving (prefix cache, limits): black-box, through a real kernel.

An agent sends an oversized prompt (E2BIG with the numbers, nothing else
disturbed) and a crowd of agents floods the prefix cache with distinct
prompts while a victim works: the cache stays within its budget, the
victim's greedy answer is what it gets on a quiet kernel, and every entry
of an ended agent is gone once the agents exit.
"""

from __future__ import annotations

import json
import time

from conftest import start_kernel

BUDGET_MB = 6  # ~130 tokens of the embedded model's KV: the flood must evict


def _call(k, prompt: str, max_new: int = 6) -> int:
    return k.spawn("LLMCallAgent", json.dumps({"prompt": prompt, "max_new_tokens": max_new}))


def test_oversized_prompts_and_cache_flooding_do_not_reach_other_agents(tmp_path):
    k, _ = start_kernel(tmp_path, max_prompt_tokens=200, prefix_cache_mb=BUDGET_MB, max_new_tokens=16)
    try:
        victim_prompt = "What is the capital of France?"
        quiet = k.wait(_call(k, victim_prompt), timeout=300)["result"]["text"]

        big = k.wait(_call(k, "overflow " * 400), timeout=300)["result"]
        assert big["error"]["code"] == "E2BIG"
        assert "--max_prompt_tokens 200" in big["error"]["message"] and "prompt of" in big["error"]["message"]

        flood = [_call(k, f"Remember the secret code {i * 7919} and the word {'zeta' * (i % 5 + 1)}. "
                          + "Filler sentence number one. " * 8, max_new=4) for i in range(8)]
        victim = _call(k, victim_prompt)
        results = [k.wait(p, timeout=600) for p in [*flood, victim]]
        assert all(r["state"] == "done" and "error" not in r["result"] for r in results), results
        assert results[-1]["result"]["text"] == quiet  # the flood did not change the victim's answer
        st = k.stats()
        assert st["cache_bytes"] <= BUDGET_MB * 2**20
        assert st["prefix_hit_tokens"] > 0  # the cache was in use, not bypassed

        deadline = time.monotonic() + 30  # every agent has ended: the engine drops their entries
        while k.stats()["cache_bytes"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert k.stats()["cache_bytes"] == 0
        again = k.wait(_call(k, victim_prompt), timeout=300)["result"]["text"]
        assert again == quiet  # and the kernel serves on
    finally:
        k.stop()
