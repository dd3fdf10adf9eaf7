"""Context switch invariant: preempting and resuming never changes what a generation says.

Many requests at once, greedy (and seeded sampling): every output is token
for token the same under heavy preemption (rr with a 2-token quantum and a
batch of 3) as without any (fifo, one batch; test_engine.py shows that
equals one at a time), whether the KV cache of a preempted sequence is
kept, dropped and recomputed (budget 0), or some of each.
"""

from __future__ import annotations

import pytest

from test_engine import PROMPTS, chat, run, shared_model, texts, weights  # noqa: F401  (fixtures)

N_TOKENS = 10


def batch(**kw):
    return [chat(p, i, max_new=N_TOKENS, **kw) for i, p in enumerate(PROMPTS)]


_baselines: dict = {}


@pytest.fixture
def baseline(weights):
    """The unpreempted run in this weight mode (made once per mode)."""
    if weights not in _baselines:
        results, stats = run(batch(), scheduler="fifo")
        assert stats["preemptions"] == 0
        _baselines[weights] = results
    return _baselines[weights]


def tokens(results):
    return [(res["text"], res["tokens_out"], res["finish_reason"]) for res, _ in results]


@pytest.mark.parametrize("kv_budget_mb, kept, recomputed", [
    (0, False, True),      # every preempted KV dropped: recomputed on resume
    (1024, True, False),   # every snapshot kept
    (3, True, True),       # room for about one ~2.5 MB snapshot at a time: some of each
])
def test_rr_preemption_is_invisible(baseline, kv_budget_mb, kept, recomputed):
    reqs = batch()
    results, st = run(reqs, scheduler="rr", max_batch=3, rr_quantum=2, kv_budget_mb=kv_budget_mb)
    assert tokens(results) == tokens(baseline)
    assert st["preemptions"] >= len(PROMPTS)  # every sequence was switched out at least about once
    assert (st["resumes_kv"] > 0) == kept and (st["resumes_recompute"] > 0) == recomputed
    assert st["kv_saved_bytes"] == 0  # nothing left behind once all finished
    assert sum(s == "preempted" for r in reqs for s, _ in r.events) == st["preemptions"]
    assert sum(res["preemptions"] for res, _ in results) == st["preemptions"]


def test_priority_preemption_is_invisible(baseline):
    reqs = batch()
    for i, r in enumerate(reqs):
        r.priority = i % 3 * 5  # later arrivals outrank earlier ones: they preempt them
    results, st = run(reqs, scheduler="priority", max_batch=2, rr_quantum=2, kv_budget_mb=0)
    assert tokens(results) == tokens(baseline)
    assert st["preemptions"] > 0


@pytest.mark.usefixtures("weights")
def test_sampled_outputs_survive_preemption():
    """The sampler state (a per-request generator) travels with the context."""
    kw = dict(temperature=0.8, top_p=0.95, seed=11)
    quiet = texts(run(batch(**kw), scheduler="fifo")[0])
    busy, st = run(batch(**kw), scheduler="rr", max_batch=3, rr_quantum=2, kv_budget_mb=0)
    assert texts(busy) == quiet and st["preemptions"] > 0
