"""The local batching engine, driven directly (no kernel process): the real model, few tokens.

Helpers here (``run``, ``chat``) are shared with test_engine_context.py.
"""

from __future__ import annotations

import functools
import threading
import time

import pytest

from kernel.config import KernelConfig
from kernel.llm import model as model_mod
from kernel.llm.engine import Engine
from kernel.llm.request import LLMRequest, SamplingParams

PROMPTS = ["Hi", "Write a long story about a cat who travels the world.", "What is 2+2?",
           "List three colors.", "Explain gravity to a child in one paragraph.", "Name a famous painter.",
           "Write a haiku about rain.", "What is the capital of France?"]


@pytest.fixture(scope="module", autouse=True)
def shared_model():
    """Every Engine in these tests shares one loaded copy of the real model."""
    real = model_mod.load
    model_mod.load = functools.lru_cache(maxsize=3)(real)  # fp32, int8, fp16
    yield
    model_mod.load = real


SAMPLING = ("temperature", "top_p", "stop", "seed")


def chat(prompt: str, i: int, max_new: int = 8, on_state=None, **kw) -> LLMRequest:
    """A request (``kw``: SamplingParams or LLMRequest fields) that records the engine's state events in
    ``req.events`` as (state, time.time())."""
    sampling = {k: kw.pop(k) for k in SAMPLING if k in kw}
    if "stop" in sampling:
        sampling["stop"] = tuple(sampling["stop"])

    def on_state_(r, s):
        r.events.append((s, time.time()))
        if on_state is not None:
            on_state(r, s)
    req = LLMRequest(pid=100 + i, req_id=i, messages=[{"role": "user", "content": prompt}],
                     sampling=SamplingParams(max_new_tokens=max_new, **sampling), on_state=on_state_, **kw)
    req.events = []
    return req


DEFAULTS: dict = {}  # KernelConfig fields start() uses unless a test passes its own (see ``weights``)


@pytest.fixture(params=["int8", "fp16", "fp32"])
def weights(request, monkeypatch):
    """Run a greedy-equality test in every weight mode, each mode against itself (``auto`` is int8 on a
    CPU with AVX-512 VNNI and fp16 on other x86 CPUs; float32 is what ``--weights fp32`` runs)."""
    monkeypatch.setitem(DEFAULTS, "weights", request.param)
    return request.param


def start(**cfg) -> Engine:
    cfg = {**DEFAULTS, **cfg}
    cfg.setdefault("max_new_tokens", 64)
    e = Engine(KernelConfig.from_flags(**cfg))
    e.start()
    assert e.ready.wait(120) and not e.load_error, e.load_error
    return e


def run(reqs: list[LLMRequest], engine: Engine | None = None, **cfg) -> tuple[list, dict]:
    """Submit all of reqs at once; returns [(result, error)] in order and the engine's final stats."""
    e = engine or start(**cfg)
    out: dict[int, tuple] = {}
    done = threading.Semaphore(0)
    for r in reqs:
        def on_done(req, res, err):
            out[id(req)] = (res, err)
            done.release()
        r.on_done = on_done
    try:
        for r in reqs:
            e.submit(r)
        for _ in reqs:
            assert done.acquire(timeout=300), "a request was never answered"
        return [out[id(r)] for r in reqs], e.stats()
    finally:
        if engine is None:
            e.stop()


def texts(results) -> list[str]:
    assert all(err is None for _, err in results), [err for _, err in results]
    return [res["text"] for res, _ in results]


@pytest.mark.usefixtures("weights")
def test_batched_equals_serial_with_left_padding():
    """Different prompt lengths share one left-padded batch; greedy output is what each gets alone."""
    serial, st = run([chat(p, i) for i, p in enumerate(PROMPTS)], scheduler="serial")
    batched, bt = run([chat(p, i) for i, p in enumerate(PROMPTS)], scheduler="fifo")
    assert texts(batched) == texts(serial)
    assert [r["tokens_out"] for r, _ in batched] == [r["tokens_out"] for r, _ in serial]
    assert st["batch_occupancy"] == 1.0 and bt["batch_occupancy"] > 3  # it really batched
    assert bt["policy"] == "fifo" and bt["tokens_out"] == sum(r["tokens_out"] for r, _ in batched)


def test_result_and_timing_fields():
    reqs = [chat(PROMPTS[1], 0, max_new=5), chat(PROMPTS[7], 1, max_new=40)]
    (long_, _), (short, _) = run(reqs, scheduler="fifo")[0]
    assert long_["tokens_out"] == 5 and long_["finish_reason"] == "length"
    assert short["finish_reason"] == "stop" and short["tokens_out"] < 40  # EOS
    assert "Paris" in short["text"] and "<|im_end|>" not in short["text"]
    for r, res in zip(reqs, (long_, short)):
        states = [s for s, _ in r.events]  # the engine reports progress; it writes no process record
        assert states == ["queued", "running"], states
        assert r.events[1][1] >= r.events[0][1]
        assert res["tokens_in"] == r.tokens_in > 10 and res["tokens_out"] >= 1
        assert res["llm_time_s"] > 0 and res["preemptions"] == 0


def test_stop_string_cuts_text():
    (res, err), = run([chat("Count from 1 to 10, separated by commas.", 0, max_new=40, stop=[", 4"])],
                      scheduler="fifo")[0]
    assert err is None and res["finish_reason"] == "stop"
    assert ", 4" not in res["text"] and "3" in res["text"] and res["tokens_out"] < 40


def test_streamed_text_is_the_result_and_a_final_message_can_be_continued():
    """on_text (the model server's stream) gets the text as the result has it, stop string cut, in pieces;
    continue_final resumes an assistant message: the continuation of a greedy answer's head is its rest."""
    pieces, head = [], []
    streamed = chat("Count from 1 to 10, separated by commas.", 0, max_new=40, stop=[", 5"], on_text=pieces.append)
    (res, err), = run([streamed], scheduler="fifo")[0]
    assert err is None and len(pieces) > 3 and "".join(pieces) == res["text"] and ", 5" not in res["text"]
    whole = chat("What is the capital of France?", 1, max_new=12, on_text=head.append)
    (full, _), = run([whole], scheduler="fifo")[0]
    cut = "".join(head[:3])
    resumed = LLMRequest(pid=102, req_id=2, messages=[{"role": "user", "content": "What is the capital of France?"},
                                                      {"role": "assistant", "content": cut}],
                         sampling=SamplingParams(max_new_tokens=12), continue_final=True)
    (rest, err), = run([resumed], scheduler="fifo")[0]
    assert err is None and full["text"].startswith(cut) and (cut + rest["text"]).startswith(full["text"][:20])


def test_sampling_is_seeded_per_request():
    def reqs():
        return [chat(PROMPTS[1], 0, max_new=10, temperature=0.9, top_p=0.9, seed=7),
                chat(PROMPTS[1], 1, max_new=10, temperature=0.9, top_p=0.9, seed=9),
                chat(PROMPTS[1], 2, max_new=10, temperature=0.9, seed=8),
                chat(PROMPTS[4], 3, max_new=10)]
    batched = texts(run(reqs(), scheduler="fifo")[0])
    alone = texts(run(reqs(), scheduler="serial")[0])
    assert batched == alone  # alone or batched: each request sees the same draws
    assert batched[0] != batched[1]  # only the seed differs: a different sample


def test_states_cancel_and_errors():
    e = start(scheduler="fifo", max_batch=2)
    try:
        states: dict[int, list[str]] = {0: [], 1: [], 2: []}
        reqs = [chat(PROMPTS[1], i, max_new=60, on_state=lambda r, s: states[r.req_id].append(s)) for i in range(3)]
        huge = chat("word " * 9000, 3)  # longer than the model's 8192 positions
        out: dict[int, tuple] = {}
        done = threading.Semaphore(0)
        running = threading.Event()
        for r in [*reqs, huge]:
            r.on_done = lambda req, res, err: (out.__setitem__(req.req_id, (res, err)), done.release())
        reqs[0].on_state = lambda r, s: (states[0].append(s), s == "running" and running.set())
        for r in [*reqs, huge]:
            e.submit(r)
        assert running.wait(60)
        assert e.cancel_pid(100) == 1  # running request of pid 100
        assert e.cancel_pid(102) == 1  # queued behind the batch of 2
        assert e.cancel_pid(999) == 0
        for _ in range(4):
            assert done.acquire(timeout=120)
        assert out[0][1].code == "ECANCELED" and out[2][1].code == "ECANCELED"
        assert out[1][1] is None and out[1][0]["tokens_out"] == 60  # its neighbour was not disturbed
        assert out[3][1].code == "E2BIG"
        assert states[0][:2] == ["queued", "running"] and states[1][:2] == ["queued", "running"]
        st = e.stats()
        assert st["queue"] == 0 and st["running"] == 0 and st["errors"] == 3 and st["calls"] == 1
        for key in ("tokens_per_s", "batch_occupancy", "kv_bytes", "preemptions", "busy_s", "threads"):
            assert key in st
    finally:
        e.stop()


def test_stop_answers_everything():
    e = start(scheduler="serial")
    out = []
    done = threading.Semaphore(0)
    reqs = [chat(PROMPTS[1], i, max_new=64) for i in range(3)]
    for r in reqs:
        r.on_done = lambda req, res, err: (out.append(err), done.release())
        e.submit(r)
    e.stop()
    for _ in reqs:
        assert done.acquire(timeout=30)
    assert sum(1 for err in out if err is not None and err.code == "ECANCELED") >= 2
    after = chat("Hi", 9)
    after.on_done = lambda req, res, err: out.append(err)
    e.submit(after)
    assert out[-1].code == "ECANCELED"  # refused at once after stop


def test_an_idle_engine_gives_its_freed_heap_back_once_per_idle_spell(monkeypatch):
    """glibc keeps the heap pages a batch frees (the kernel's RSS stayed 460 MiB above its start after
    bench/throughput.py's 16 agents); an engine idle for IDLE_RELEASE_S after work releases them, once."""
    from kernel.llm import engine as engine_mod
    from kernel.llm import kvcache

    released: list[float] = []
    monkeypatch.setattr(engine_mod, "IDLE_RELEASE_S", 0.3)
    monkeypatch.setattr(kvcache, "release_heap", lambda: released.append(time.time()))
    e = start(scheduler="fifo")
    try:
        released.clear()  # loading int8 weights releases what packing freed
        time.sleep(0.8)
        assert released == []  # no work yet: nothing to give back
        for rnd in (1, 2):
            t0 = time.time()
            out, _ = run([chat(PROMPTS[1], rnd, max_new=12)], engine=e)  # one call: no idle spell inside a round
            assert all(err is None for _, err in out)
            deadline = time.time() + 30
            while len(released) < rnd and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # idle three times as long: still once
            assert len(released) == rnd and released[-1] >= t0 + 0.3, (rnd, released, t0)
    finally:
        e.stop()


def test_a_failing_forward_pass_fails_its_batch_not_the_engine(monkeypatch):
    """Fault injection: one decode step raises; its sequences get EIO, later calls are served."""
    from kernel.llm.batch import DecodeBatch

    real = DecodeBatch.step
    calls = {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("injected fault")
        return real(self)

    monkeypatch.setattr(DecodeBatch, "step", flaky)
    e = start(scheduler="fifo")
    try:
        first, _ = run([chat(PROMPTS[1], 0), chat(PROMPTS[2], 1)], engine=e)
        assert [err.code for _, err in first] == ["EIO", "EIO"] and "injected fault" in first[0][1].message
        again, st = run([chat(PROMPTS[2], 2)], engine=e)
        assert again[0][1] is None and again[0][0]["tokens_out"] > 0
        assert st["running"] == 0 and st["kv_batch_bytes"] == 0
    finally:
        e.stop()
