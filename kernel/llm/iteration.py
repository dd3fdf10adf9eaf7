"""One iteration of the local engine, between two decode steps.

    1. reap      cancelled sequences leave the queue and the batch (ECANCELED)
    2. schedule  the policy's Plan: preempt (context switch out: snapshot the
                 KV within the budget, else hand it to the prefix cache), then
                 admit (context switch in: restore a snapshot, or look the ids
                 up in the prefix cache and queue the rest for prefill)
    3. prefill   at most ``prefill_chunk`` tokens of admitted sequences' pending
                 ids (short prompts grouped, long ones and prefix hits one row
                 at a time, chunk by chunk); a sequence whose prompt is all fed
                 samples its first token and joins the batch
    4. decode    one token for every running sequence; finished ones leave,
                 their K/V inserted into the prefix cache

Runs on the engine thread with the engine's objects (Engine owns them; this
module only holds the steps). A failure in a forward pass fails the
sequences it touched with EIO and empties the batch; the engine goes on.
"""

from __future__ import annotations

import logging
import time

from kernel.llm import logitmask, prefill, sampler
from kernel.llm.request import LLMError
from kernel.llm.sequence import SeqStatus
from kernel.messages import ECANCELED, EIO

log = logging.getLogger("aios.scheduler")


def run(engine) -> None:
    admitting: list = []  # sequences out of the queue and not yet in engine.prefilling or the batch
    done: list = []  # finished sequences, answered once the gauges are up to date
    try:
        _reap(engine)
        plan = engine.policy.plan(engine.batch.seqs + engine.prefilling, time.monotonic())
        admitting = list(plan.admit)
        if plan.preempt:
            _preempt(engine, plan.preempt)
        if admitting:
            _admit(engine, admitting)
        admitting = []
        if engine.prefilling:
            prefill.run(engine, done)
        if engine.batch.seqs:
            _decode(engine, done)
    except Exception as e:
        log.exception("engine iteration failed")
        err = LLMError(EIO, f"generation failed: {type(e).__name__}: {e}")
        answered = set(map(id, done))  # finished before the failure: they keep their result
        for s in {id(s): s for s in [*engine.batch.seqs, *engine.prefilling, *admitting]}.values():
            if s.status != SeqStatus.FINISHED and id(s) not in answered:
                engine.fail_seq(s, err)
        engine.batch.reset()
        engine.prefilling = []
    engine.counters.gauges(len(engine.batch) + len(engine.prefilling), len(engine.policy),
                           engine.batch.kv_bytes() + prefill.own_bytes(engine))
    for s in done:
        engine.finish_seq(s)


def _reap(engine) -> None:
    cancelled = LLMError(ECANCELED, "request cancelled")
    for s in engine.policy.drop_cancelled():
        engine.fail_seq(s, cancelled)
    gone = [s for s in engine.prefilling if s.cancelled]
    if gone:
        engine.prefilling = [s for s in engine.prefilling if not s.cancelled]
        for s in gone:
            engine.fail_seq(s, cancelled)
    rows = [i for i, s in enumerate(engine.batch.seqs) if s.cancelled]
    if rows:
        gone = [engine.batch.seqs[i] for i in rows]
        engine.batch.remove(rows)
        for s in gone:
            engine.fail_seq(s, cancelled)


def _preempt(engine, victims: list) -> None:
    batch, store = engine.batch, engine.contexts
    rows = [batch.seqs.index(s) for s in victims]
    per_token = batch.bytes_per_token()
    room = store.budget_bytes - store.held_bytes
    keep = set()
    for row in rows:  # snapshot only what fits; a dropped KV is recomputed on resume
        need = batch.seqs[row].kv_len * per_token
        if need <= room:
            keep.add(row)
            room -= need
    if engine.prefix is not None:  # a KV the store cannot keep goes to the prefix cache instead
        for row in rows:
            if row not in keep:
                prefill.remember(engine, batch.seqs[row], batch.row_kv(row))
    snaps = batch.remove(rows, keep)
    now = time.monotonic()
    for row, s in zip(rows, victims):
        s.status = SeqStatus.PREEMPTED
        s.preemptions += 1
        store.keep(s, snaps.get(row))
        engine.policy.add(s, now)
        s.req.state("preempted")
    engine.counters.add(preemptions=len(victims))
    log.debug("preempted %d (%d with KV), batch %d, queue %d", len(victims), len(snaps), len(batch),
              len(engine.policy))


def _admit(engine, seqs: list) -> None:
    batch, store = engine.batch, engine.contexts
    for s in seqs:
        s.slice_tokens = 0
        resumed = s.status == SeqStatus.PREEMPTED
        if not resumed:
            engine.counters.add(tokens_in=s.prompt_len)
        s.status = SeqStatus.RUNNING
        s.req.state("running")
        snap = store.take(s) if resumed else None
        if snap is not None:
            batch.add(batch.part_from_snapshot(s, snap))  # no forward pass
        else:
            s.kv_len = 0  # prefill.run looks its ids up in the prefix cache first
            engine.prefilling.append(s)


def _decode(engine, finished: list) -> None:
    batch = engine.batch
    t0 = time.perf_counter()
    seqs = list(batch.seqs)
    logits = batch.step()
    logitmask.apply(logits, seqs)
    ids = sampler.choose(logits, seqs)
    done = [i for i, (s, t) in enumerate(zip(seqs, ids)) if s.append(t, engine.tok)]
    for i in done:
        prefill.remember(engine, seqs[i], batch.row_kv(i))
    batch.remove(done)
    dt = time.perf_counter() - t0
    for s in seqs:
        prefill.charge(engine, s, dt / len(seqs))
    engine.counters.step(len(seqs), dt, time.monotonic())
    finished += [seqs[i] for i in done]
