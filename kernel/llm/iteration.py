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

from kernel.llm import sampler
from kernel.llm.kvcache import HEADROOM
from kernel.llm.request import LLMError
from kernel.llm.sequence import SeqStatus

log = logging.getLogger("aios.scheduler")
PREFILL_PAD_WASTE = 1.25  # a prefill group's padded tokens stay <= this x its real tokens
PREFILL_MAX_TOKENS = 8192  # padded tokens in one prefill pass (bounds its activation memory)


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
            _prefill(engine, done)
        if engine.batch.seqs:
            _decode(engine, done)
    except Exception as e:
        log.exception("engine iteration failed")
        err = LLMError("EIO", f"generation failed: {type(e).__name__}: {e}")
        answered = set(map(id, done))  # finished before the failure: they keep their result
        for s in {id(s): s for s in [*engine.batch.seqs, *engine.prefilling, *admitting]}.values():
            if s.status != SeqStatus.FINISHED and id(s) not in answered:
                engine.fail_seq(s, err)
        engine.batch.reset()
        engine.prefilling = []
    engine.counters.gauges(len(engine.batch) + len(engine.prefilling), len(engine.policy),
                           engine.batch.kv_bytes() + sum(_own_bytes(s) for s in engine.prefilling))
    for s in done:
        engine.finish_seq(s)


def _reap(engine) -> None:
    cancelled = LLMError("ECANCELED", "request cancelled")
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
                _remember(engine, batch.seqs[row], batch.row_kv(row))
    snaps = batch.remove(rows, keep)
    now = time.monotonic()
    for row, s in zip(rows, victims):
        s.status = SeqStatus.PREEMPTED
        s.preemptions += 1
        if s.req.timing is not None:
            s.req.timing.preemptions += 1
        store.keep(s, snaps.get(row))
        engine.policy.add(s, now)
        s.req.state("ready")
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
            if s.req.timing is not None:
                s.req.timing.started = time.time()
        s.status = SeqStatus.RUNNING
        s.req.state("running")
        snap = store.take(s) if resumed else None
        if snap is not None:
            batch.add(batch.part_from_snapshot(s, snap))  # no forward pass
        else:
            s.kv_len = 0
            _lookup(engine, s)
            engine.prefilling.append(s)


def _lookup(engine, s) -> None:
    """Start ``s`` from the longest cached prefix of its ids (the last id is always fed: its
    logits choose the next token)."""
    if engine.prefix is None:
        return
    path = engine.prefix.match(s.ids, s.req.pid, limit=len(s.ids) - 1)
    if not path:
        return
    s.cache = engine.batch.row_cache(len(s.ids) + HEADROOM)
    hit = engine.prefix.copy_into(path, [(layer.buf_k, layer.buf_v) for layer in s.cache.layers])
    for layer in s.cache.layers:
        layer.set_length(hit)
    s.kv_len = hit
    s.prefix_hit += hit
    engine.counters.add(prefix_hit_tokens=hit)


def _remember(engine, s, layers) -> None:
    """Offer ``s``'s computed K/V (ids[:kv_len]) to the prefix cache."""
    if engine.prefix is not None and s.kv_len > 0 and not s.cancelled:
        engine.prefix.insert(s.ids[:s.kv_len], layers, s.req.pid)


def _own_bytes(s) -> int:
    return sum(layer.nbytes() for layer in s.cache.layers) if s.cache is not None else 0


def _prefill(engine, done: list) -> None:
    """Feed admitted sequences' pending ids, at most ``engine.prefill_chunk`` tokens this
    iteration (0: no limit), short work first; at least one unit of work is always done."""
    chunk = engine.prefill_chunk or 1 << 62
    spent = 0
    grouped = [s for s in engine.prefilling if s.cache is None and len(s.pending) <= chunk]
    for group in _groups(grouped):
        n = sum(len(s.pending) for s in group)
        if spent and spent + n > chunk:
            break
        _prefill_group(engine, group, done)
        spent += n
    taken = set(map(id, grouped))
    for s in sorted((s for s in engine.prefilling if id(s) not in taken), key=lambda s: len(s.pending)):
        left = chunk - spent
        if left <= 0:
            if spent:
                break
            left = chunk
        n = min(len(s.pending), left)
        _extend(engine, s, n, done)
        spent += n


def _groups(seqs: list) -> list[list]:
    """Split sequences into prefill passes of similar length (little padding)."""
    groups: list[list] = []
    group: list = []
    total = 0
    for s in sorted(seqs, key=lambda s: len(s.pending)):
        n = len(s.pending)
        padded = (len(group) + 1) * n  # sorted: n is the group's widest
        if group and (padded > PREFILL_PAD_WASTE * (total + n) or padded > PREFILL_MAX_TOKENS):
            groups.append(group)
            group, total = [], 0
        group.append(s)
        total += n
    if group:
        groups.append(group)
    return groups


def _prefill_group(engine, group: list, finished: list) -> None:
    t0 = time.perf_counter()
    lens = [len(s.pending) for s in group]
    logits, part = engine.batch.prefill(group)
    ids = sampler.choose(logits, group)
    done = [i for i, (s, t) in enumerate(zip(group, ids)) if s.append(t, engine.tok)]
    for i in done:
        _remember(engine, group[i], [(k[i:i + 1, :, part.width - lens[i]:], v[i:i + 1, :, part.width - lens[i]:])
                                     for k, v in part.layers])
    engine.batch.add(part.select([i for i in range(len(group)) if i not in set(done)]))
    gone = set(map(id, group))
    engine.prefilling = [s for s in engine.prefilling if id(s) not in gone]
    dt = time.perf_counter() - t0
    total = sum(lens)
    for s, n in zip(group, lens):
        _charge(engine, s, dt * n / total)
    engine.counters.prefill(total, len(group), dt, time.monotonic())
    finished += [group[i] for i in done]


def _extend(engine, s, n: int, finished: list) -> None:
    """Feed ``n`` of ``s``'s pending ids into its own cache; once all are fed, it samples its
    first token and joins the batch (or finishes)."""
    t0 = time.perf_counter()
    logits = engine.batch.extend(s, n)
    first = 0
    if not s.pending:
        first = 1
        engine.prefilling.remove(s)
        if s.append(sampler.choose(logits, [s])[0], engine.tok):
            _remember(engine, s, [(layer.keys, layer.values) for layer in s.cache.layers])
            s.cache = None
            finished.append(s)
        else:
            engine.batch.add(engine.batch.part_from_cache(s))
    dt = time.perf_counter() - t0
    _charge(engine, s, dt)
    engine.counters.prefill(n, first, dt, time.monotonic())


def _charge(engine, s, dt: float) -> None:
    """Engine seconds spent on ``s``: its own accounting and its program's service (PLAS)."""
    s.llm_time_s += dt
    engine.policy.charge(s.req.pid, dt)


def _decode(engine, finished: list) -> None:
    batch = engine.batch
    t0 = time.perf_counter()
    seqs = list(batch.seqs)
    logits = batch.step()
    ids = sampler.choose(logits, seqs)
    done = [i for i, (s, t) in enumerate(zip(seqs, ids)) if s.append(t, engine.tok)]
    for i in done:
        _remember(engine, seqs[i], batch.row_kv(i))
    batch.remove(done)
    dt = time.perf_counter() - t0
    for s in seqs:
        _charge(engine, s, dt / len(seqs))
    engine.counters.step(len(seqs), dt, time.monotonic())
    finished += [seqs[i] for i in done]
