"""Prefix reuse, chunked prefill and limits of the local engine: the real model, few tokens.

Greedy outputs must be the same with the prefix cache on and off, for many
agents sharing a system prompt over several turns, under every policy, with
preemption (rr, KV dropped and recomputed) included.
"""

from __future__ import annotations

import threading

import pytest
import torch

from kernel.llm.prefix import PrefixCache
from kernel.llm.request import LLMRequest, SamplingParams
from test_engine import run, shared_model, start, weights  # noqa: F401  (fixtures: one loaded model each)

SYSTEM = ("You are a careful assistant inside an agent OS. Tools: calculator(expression), "
          "unit_converter(value, from, to). Answer in one short sentence.")
QUESTIONS = ["What is {a}+{b}?", "Name a color that starts with {c}.", "Double {a}, then add {b}."]


def _kv(ids, layers=2):
    """Fake per-layer K/V (1, 1, len, 2) whose values encode the token ids (so copies are checkable)."""
    t = torch.tensor(ids, dtype=torch.float32).view(1, 1, -1, 1).repeat(1, 1, 1, 2)
    return [(t.clone(), -t.clone()) for _ in range(layers)]


def _read(cache, ids, pid=None):
    path = cache.match(ids, pid, limit=len(ids) - 1)
    hit = sum(n for _, n in path)
    bufs = [(torch.zeros(1, 1, len(ids), 2), torch.zeros(1, 1, len(ids), 2)) for _ in range(2)]
    assert PrefixCache.copy_into(path, bufs) == hit
    return hit, bufs[0][0][0, 0, :hit, 0].tolist()


def test_radix_tree_match_split_lru_and_release():
    per_token = 2 * 2 * (1 * 2 * 4)  # layers x (k, v) x heads*dim*fp32
    c = PrefixCache(budget_bytes=12 * per_token)
    a = [1, 2, 3, 4, 5, 6]
    assert c.insert(a, _kv(a), pid=1) == 6
    assert _read(c, [1, 2, 3, 9, 9]) == (3, [1, 2, 3])  # a partial hit inside one node
    b = [1, 2, 3, 7, 8]
    assert c.insert(b, _kv(b), pid=2) == 2  # splits [1..6] at 3: only 7, 8 are new
    assert c.nodes == 3 and c.nbytes == 8 * per_token
    assert _read(c, b + [0]) == (5, [1, 2, 3, 7, 8])
    assert _read(c, a + [0]) == (6, [1, 2, 3, 4, 5, 6])
    assert _read(c, a) == (5, [1, 2, 3, 4, 5])  # the last id is always left to feed
    # Budget: 12 tokens. A 6-token branch of pid 3 evicts the least recently used leaf ([7, 8]).
    _read(c, a + [0], pid=1)
    d = [5, 5, 5, 5, 5, 5]
    assert c.insert(d, _kv(d), pid=3) == 6
    assert c.nbytes <= 12 * per_token and _read(c, b + [0])[0] == 3 and _read(c, a + [0])[0] == 6
    # pid 3 ends: its branch is freed at once; pid 1's and the shared prefix stay.
    assert c.release_pid(3) == 6 * per_token
    assert _read(c, d + [0])[0] == 0 and _read(c, a + [0])[0] == 6
    c.release_pid(1)
    c.release_pid(2)
    assert c.nbytes == 0 and c.nodes == 0
    assert c.insert(list(range(100)), _kv(list(range(100))), pid=4) == 0  # bigger than the budget: not kept


def _agents_run(engine, agents: int, turns: int, max_new: int = 10) -> list[list[str]]:
    """``agents`` conversations with one system prompt; each turn all of them call at once."""
    hist = {p: [{"role": "system", "content": SYSTEM}] for p in range(agents)}
    out = {p: [] for p in range(agents)}
    for turn in range(turns):
        reqs = []
        for p in range(agents):
            q = QUESTIONS[(p + turn) % len(QUESTIONS)].format(a=p + 3, b=turn + 4, c="BRG"[p % 3])
            hist[p].append({"role": "user", "content": q})
            reqs.append(LLMRequest(pid=500 + p, req_id=turn, messages=list(hist[p]),
                                   sampling=SamplingParams(max_new_tokens=max_new),
                                   priority=p % 3))
        results, _ = run(reqs, engine=engine)
        for p, (res, err) in enumerate(results):
            assert err is None, err
            hist[p].append({"role": "assistant", "content": res["text"]})
            out[p].append(res["text"])
    return [out[p] for p in range(agents)]


@pytest.mark.usefixtures("weights")
def test_prefix_reuse_keeps_greedy_outputs_under_every_policy():
    ref_engine = start(prefix_cache="off", scheduler="fifo")
    try:
        ref = _agents_run(ref_engine, agents=4, turns=3, max_new=8)
        off = ref_engine.stats()
    finally:
        ref_engine.stop()
    assert off["prefix_hit_tokens"] == 0 and off["cache_bytes"] == 0
    for cfg in (dict(scheduler="fifo"), dict(scheduler="rr", rr_quantum=2, max_batch=3, kv_budget_mb=0),
                dict(scheduler="priority", rr_quantum=3, max_batch=2), dict(scheduler="serial")):
        e = start(prefix_cache="on", **cfg)
        try:
            got = _agents_run(e, agents=4, turns=3, max_new=8)
            st = e.stats()
        finally:
            e.stop()
        assert got == ref, cfg
        # Later turns start with the previous turn: most of their prompt is reused, not prefilled.
        assert st["prefix_hit_tokens"] > 0.5 * st["prefill_tokens"], (cfg, st)
        assert st["prefill_tokens"] < 0.75 * off["prefill_tokens"], (cfg, st)
        assert 0 < st["cache_bytes"] <= st["prefix_cache_budget_bytes"]
        if cfg["scheduler"] == "rr":
            assert st["preemptions"] > 0 and st["resumes_recompute"] > 0  # resumed from the prefix cache


@pytest.mark.usefixtures("weights")
def test_one_wave_of_agents_prefills_a_shared_system_prompt_once():
    """Six agents send one long system prompt at the same moment: one prefills it, the rest wait a
    pass and reuse it (cache-aware scheduling); outputs equal the cache-off run's."""
    system = SYSTEM + " " + " ".join(f"Rule {i}: be exact about item {i}." for i in range(12))

    def reqs():
        return [LLMRequest(pid=700 + i, req_id=i, sampling=SamplingParams(max_new_tokens=3),
                           messages=[{"role": "system", "content": system},
                                     {"role": "user", "content": f"What is {i} + {i}?"}]) for i in range(6)]
    outs = {}
    for mode in ("off", "on"):
        results, st = run(reqs(), prefix_cache=mode)
        assert all(err is None for _, err in results)
        outs[mode] = ([r["text"] for r, _ in results], st)
    assert outs["on"][0] == outs["off"][0]
    on, off = outs["on"][1], outs["off"][1]
    shared = off["prefill_tokens"] // 6 - 20  # the system prompt: all but each call's short question
    assert on["prefix_hit_tokens"] >= 5 * shared, (on, off)
    assert on["prefill_tokens"] <= off["prefill_tokens"] - 5 * shared


def test_ended_agent_entries_are_dropped_and_budget_holds():
    # A budget of ~90 tokens of this engine's KV (float64 under int8, float32 under fp32: whichever
    # --weights auto picked on this CPU), far less than three agents' two turns: LRU must evict.
    probe = start(prefix_cache="on")
    budget = 90 * probe.kv_per_token
    probe.stop()
    e = start(prefix_cache="on", prefix_cache_mb=budget / 2**20)
    try:
        _agents_run(e, agents=3, turns=2, max_new=4)
        st = e.stats()
        assert 0 < st["cache_bytes"] <= budget and e.prefix.evicted_bytes > 0
        assert st["prefix_hit_tokens"] > 0
    finally:
        e.stop()
    e = start(prefix_cache="on")
    try:
        _agents_run(e, agents=3, turns=2, max_new=4)
        assert e.stats()["cache_bytes"] > 0
        for p in range(3):
            e.forget_pid(500 + p)
        run([LLMRequest(pid=9, req_id=0, messages=[{"role": "user", "content": "Hi"}],
                        sampling=SamplingParams(max_new_tokens=1))],
            engine=e)  # the engine forgets ended pids before it takes the next request in
        st = e.stats()
        assert st["cache_bytes"] == e.prefix.nbytes and e.prefix.nodes == 1  # only pid 9's "Hi"
    finally:
        e.stop()


@pytest.mark.usefixtures("weights")
def test_chunked_prefill_interleaves_a_long_prompt_with_short_calls():
    """A ~1k-token prompt prefilled 64 tokens at a time: short calls submitted after it finish first,
    and its output is what a whole-prompt prefill gives."""
    long_prompt = "Summarize this log in one word. " + " ".join(f"line {i}: ok." for i in range(220))
    outs = {}
    for chunk in (0, 64):
        e = start(prefill_chunk=chunk, prefix_cache="off")
        order: list[str] = []
        done = threading.Semaphore(0)
        results = {}

        def on_done(req, res, err, order=order, done=done, results=results):
            order.append(req.req_id)
            results[req.req_id] = (res, err)
            done.release()
        try:
            admitted = threading.Event()
            big = LLMRequest(pid=1, req_id="long", messages=[{"role": "user", "content": long_prompt}],
                             sampling=SamplingParams(max_new_tokens=1), on_done=on_done,
                             on_state=lambda r, s: s == "running" and admitted.set())
            e.submit(big)
            assert admitted.wait(60)  # its prefill is starting (whole, or the first chunk)
            for i in range(2):
                e.submit(LLMRequest(pid=2, req_id=f"short{i}", messages=[{"role": "user", "content": "Hi"}],
                                    sampling=SamplingParams(max_new_tokens=2), on_done=on_done))
            for _ in range(3):
                assert done.acquire(timeout=300)
            st = e.stats()
        finally:
            e.stop()
        assert all(err is None for _, err in results.values()), results
        assert results["long"][0]["tokens_in"] > 1000
        outs[chunk] = (results["long"][0]["text"], order, st)
    assert outs[64][0] == outs[0][0]
    assert outs[64][1][-1] == "long", outs[64][1]  # the short calls did not wait for the whole prompt
    assert outs[0][1][0] == "long", outs[0][1]  # without chunks they did


def test_limits_answer_e2big_with_the_numbers():
    e = start(max_prompt_tokens=40, max_agent_kv_mb=4)
    try:
        msg = [{"role": "user", "content": "word " * 60}]
        (_, err), = run([LLMRequest(pid=1, req_id=0, messages=msg,
                                    sampling=SamplingParams(max_new_tokens=4))], engine=e)[0]
        assert err.code == "E2BIG" and "--max_prompt_tokens 40" in err.message and "prompt of" in err.message
        small = [{"role": "user", "content": "Hi"}]  # 31 prompt tokens: 1.4 / 2.8 MiB of KV (fp32 / int8's float64)
        (_, err), = run([LLMRequest(pid=1, req_id=1, messages=small,
                                    sampling=SamplingParams(max_new_tokens=80))], engine=e)[0]
        assert err.code == "E2BIG" and "--max_agent_kv_mb is 4" in err.message and "MiB of KV" in err.message
        (res, err), = run([LLMRequest(pid=1, req_id=2, messages=small,
                                      sampling=SamplingParams(max_new_tokens=4))], engine=e)[0]
        assert err is None and res["tokens_out"] >= 1  # within both limits: served
    finally:
        e.stop()


def test_sched_view_shows_the_serving_stats_first():
    from aios_shell import details

    stats = {"model": "m", "busy_s": 10.0, "prefill_s": 7.5, "decode_s": 2.5, "prefill_tokens": 1365,
             "prefix_hit_tokens": 10375, "cache_bytes": 3 * 2**20, "zz_other": 1}
    lines = details.sched_text(stats, []).splitlines()
    # sections in order: the model, then the serving stats (throughput, then the prefix cache), others last
    assert [ln for ln in lines if not ln.startswith(" ")] == ["model", "throughput", "cache", "other"]
    labels = [ln.split("  ")[1].strip() for ln in lines if ln.startswith("  ")]
    assert labels == ["model", "busy", "prefill", "decode", "prefill tokens", "prefix hit tokens",
                      "prefix cache size", "zz_other"]
    assert lines[4].endswith("7.50s") and lines[9].endswith("3.0M")


@pytest.mark.usefixtures("weights")
def test_a_long_row_decodes_in_its_own_cache_not_the_padded_batch(monkeypatch):
    """A row at least LONG_ROW_TOKENS long (lowered here to 300) decodes in its own cache: the short
    rows' batch never grows to its width, and greedy outputs are those of the whole-prompt run where
    it shared the batch, also when rr preempts it (snapshot kept, or dropped and found again in the
    prefix cache)."""
    from kernel.llm import batch as batch_mod, iteration

    monkeypatch.setattr(batch_mod, "LONG_ROW_TOKENS", 300)
    monkeypatch.setattr(iteration, "LONG_ROW_TOKENS", 300)
    long_prompt = "Summarize this log in one word. " + " ".join(f"line {i}: ok." for i in range(90))

    def reqs():
        return [LLMRequest(pid=1, req_id="long", messages=[{"role": "user", "content": long_prompt}],
                           sampling=SamplingParams(max_new_tokens=8))] + [
            LLMRequest(pid=2 + i, req_id=f"short{i}", messages=[{"role": "user", "content": f"Hi {i}"}],
                       sampling=SamplingParams(max_new_tokens=4)) for i in range(2)]
    ref, _ = run(reqs(), prefill_chunk=0, prefix_cache="off")
    assert all(err is None for _, err in ref) and ref[0][0]["tokens_in"] > 300
    for cfg in (dict(scheduler="fifo", prefix_cache="off"),
                dict(scheduler="rr", rr_quantum=2, max_batch=1, prefix_cache="off"),
                dict(scheduler="rr", rr_quantum=2, max_batch=1, kv_budget_mb=0, prefix_cache="on")):
        e = start(prefill_chunk=64, **cfg)
        widths, solo_steps = [], []
        step, extend = e.batch.step, e.batch.extend
        e.batch.step = lambda: widths.append(e.batch.width) or step()
        e.batch.extend = lambda s, n: (n == 1 and s.kv_len >= 300 and solo_steps.append(s.kv_len)) or extend(s, n)
        try:
            got, st = run(reqs(), engine=e)
        finally:
            e.stop()
        assert [r["text"] for r, _ in got] == [r["text"] for r, _ in ref], cfg
        assert max(widths, default=0) < 300, (cfg, widths)  # the short rows never padded to the long one
        assert len(solo_steps) >= 7, (cfg, solo_steps)  # its tokens after the first, one extend each
        if cfg["scheduler"] == "rr":
            assert st["preemptions"] > 0, st
            key = "resumes_kv" if cfg.get("kv_budget_mb", 1) else "resumes_recompute"
            assert st[key] > 0, (cfg, st)
