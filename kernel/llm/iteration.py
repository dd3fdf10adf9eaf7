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
    4. decode    one token for every running sequence (the batch's rows in
                 one pass, each long ``solo`` row in its own cache); finished
                 ones leave, their K/V inserted into the prefix cache

Runs on the engine thread with the engine's objects (Engine owns them; this
module only holds the steps). A failure in a forward pass fails the
sequences it touched with EIO and empties the batch; the engine goes on.
"""

from __future__ import annotations

import logging
import time

from kernel.llm import logitmask, prefill, sampler
from kernel.llm.batch import room
from kernel.llm.context import KVSnapshot, snapshot_nbytes
from kernel.llm.request import LLMError
from kernel.llm.sequence import SeqStatus
from kernel.param import LONG_ROW_TOKENS
from kernel.protocol.messages import ECANCELED, EIO

log = logging.getLogger("aios.scheduler")


def run(engine) -> None:
    admitting: list = []  # sequences out of the queue and not yet in engine.prefilling or the batch
    done: list = []  # finished sequences, answered once the gauges are up to date
    try:
        _reap(engine)
        plan = engine.policy.plan(engine.running(), time.monotonic())
        admitting = list(plan.admit)
        if plan.preempt:
            _preempt(engine, plan.preempt)
        if admitting:
            _admit(engine, admitting)
        admitting = []
        if engine.prefilling:
            prefill.run(engine, done)
        if engine.batch.seqs or engine.solo:
            _decode(engine, done)
    except Exception as e:
        log.exception("engine iteration failed")
        err = LLMError(EIO, f"generation failed: {type(e).__name__}: {e}")
        answered = set(map(id, done))  # finished before the failure: they keep their result
        for s in {id(s): s for s in [*engine.running(), *admitting]}.values():
            if s.status != SeqStatus.FINISHED and id(s) not in answered:
                engine.fail_seq(s, err)
        engine.batch.reset()
        engine.prefilling = []
        engine.solo = []
    engine.counters.gauges(len(engine.running()), len(engine.policy),
                           engine.batch.kv_bytes() + prefill.own_bytes(engine))
    for s in done:
        engine.finish_seq(s)


def _reap(engine) -> None:
    cancelled = LLMError(ECANCELED, "request cancelled")
    for s in engine.policy.drop_cancelled():
        engine.fail_seq(s, cancelled)
    for name in ("prefilling", "solo"):
        seqs = getattr(engine, name)
        gone = [s for s in seqs if s.cancelled]
        if gone:
            setattr(engine, name, [s for s in seqs if not s.cancelled])
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
    alone = {id(s) for s in engine.solo}
    rows = [batch.seqs.index(s) for s in victims if id(s) not in alone]
    per_token = batch.bytes_per_token()
    free = store.budget_bytes - store.held_bytes
    keep = set()
    for row in rows:  # snapshot only what fits; a dropped KV is recomputed on resume
        need = batch.seqs[row].kv_len * per_token
        if need <= free:
            keep.add(row)
            free -= need
    if engine.prefix is not None:  # a KV the store cannot keep goes to the prefix cache instead
        for row in rows:
            if row not in keep:
                prefill.remember(engine, batch.seqs[row], batch.row_kv(row))
    by_row = {row: batch.seqs[row] for row in rows}
    snaps = {id(by_row[row]): snap for row, snap in batch.remove(rows, keep).items()}
    for s in victims:
        if id(s) in alone:  # its own cache: kept as the snapshot (no copy) if it fits
            snaps[id(s)] = _unsolo(engine, s, free)
            free -= snaps[id(s)].nbytes if snaps[id(s)] is not None else 0
    now = time.monotonic()
    for s in victims:
        snap = snaps.get(id(s))
        s.status = SeqStatus.PREEMPTED
        store.keep(s, snap)
        engine.policy.add(s, now)
        s.req.state("preempted")
    engine.counters.add(preemptions=len(victims))
    log.debug("preempted %d (%d with KV), batch %d, queue %d", len(victims), len(snaps), len(batch),
              len(engine.policy))


def _unsolo(engine, s, free: int) -> KVSnapshot | None:
    """Take solo row ``s`` out: its cache as a snapshot if ``free`` bytes allow, else offered to
    the prefix cache and dropped."""
    engine.solo.remove(s)
    cache, s.cache = s.cache, None
    layers = [(layer.keys, layer.values) for layer in cache.layers]
    snap = KVSnapshot(layers, s.kv_len, snapshot_nbytes(layers))
    if snap.nbytes <= free:
        return snap
    prefill.remember(engine, s, layers)
    return None


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
        if snap is not None and snap.length >= LONG_ROW_TOKENS:  # back to its own cache
            s.cache = batch.row_cache(room(s))
            for layer, (k, v) in zip(s.cache.layers, snap.layers):
                layer.buf_k[:, :, :snap.length] = k
                layer.buf_v[:, :, :snap.length] = v
                layer.set_length(snap.length)
            s.kv_len = snap.length
            engine.solo.append(s)
        elif snap is not None:
            batch.add(batch.part_from_snapshot(s, snap))  # no forward pass
        else:
            s.kv_len = 0  # prefill.run looks its ids up in the prefix cache first
            engine.prefilling.append(s)


def _decode(engine, finished: list) -> None:
    batch = engine.batch
    t0 = time.perf_counter()
    seqs = list(batch.seqs)
    if seqs:
        logits = batch.step()
        logitmask.apply(logits, seqs)
        ids = sampler.choose(logits, seqs)
        done = [i for i, (s, t) in enumerate(zip(seqs, ids)) if s.append(t, engine.tok)]
        for i in done:
            prefill.remember(engine, seqs[i], batch.row_kv(i))
        batch.remove(done)
        finished += [seqs[i] for i in done]
    for s in list(engine.solo):  # one token each, fed into its own cache
        logits = batch.extend(s, 1)
        logitmask.apply(logits, [s])
        if s.append(sampler.choose(logits, [s])[0], engine.tok):
            engine.solo.remove(s)
            prefill.remember(engine, s, [(layer.keys, layer.values) for layer in s.cache.layers])
            s.cache = None
            finished.append(s)
        seqs.append(s)
    dt = time.perf_counter() - t0
    for s in seqs:
        prefill.charge(engine, s, dt / len(seqs))
    engine.counters.step(len(seqs), dt, time.monotonic())
