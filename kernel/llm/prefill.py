"""Prefill: feeding admitted sequences' pending ids, between two decode steps.

``run(engine, done)`` is step 3 of an engine iteration (iteration.py). The
sequences in ``engine.prefilling`` were admitted by the policy and are not
yet rows of the batch. For each, in this order:

1. prefix lookup: the longest cached prefix of its ids (prefix.py) of at
   least MIN_HIT tokens is copied into a one-row cache of its own
   (``seq.cache``) and only the rest is fed. A sequence with no hit whose
   ids share at least MIN_SHARED leading tokens with one being prefilled now
   waits for it (cache-aware scheduling, as in SGLang): 16 agents sending one
   system prompt at once prefill it once, not 16 times.
2. budget: at most ``engine.prefill_chunk`` tokens' worth of work is fed
   this iteration (0: no limit), so one long prompt delays the running
   sequences' next token by about one chunk's time at most; deep into a long
   prompt a token costs more (its attention spans the context: ``cost``), so
   chunks get shorter there and the stall stays the same. Short work goes first: prefix hits' short
   suffixes, then new short prompts grouped by length into left-padded
   passes (batch.prefill), then long prompts a chunk at a time into their
   own cache (batch.extend), the oldest first, which always get at least a
   quarter chunk so a stream of short calls cannot starve them. Chunks keep
   attention at (chunk x context), never (prompt x prompt).
3. a sequence whose ids are all fed samples its first token, offers its
   prompt's K/V to the prefix cache, and joins the batch (or finishes); a
   long one (batch.solo) keeps its own cache and decodes there instead, in
   ``engine.solo``.

Owned by the engine thread, like everything it touches.
"""

from __future__ import annotations

import time

from kernel.llm import logitmask, sampler
from kernel.llm.batch import room, solo
from kernel.param import MIN_CHUNK, MIN_HIT, MIN_SHARED, PREFILL_MAX_TOKENS, PREFILL_PAD_WASTE

# Context length at which a token's attention costs as much as the rest of its forward pass:
# measured here (SmolLM2-135M, CPU, one thread, grouped-query SDPA), a 64-token pass after 6000
# cached tokens took 3.0x one after none, so a chunk's token count is scaled by
# ATTN_TOKENS / (ATTN_TOKENS + context).
ATTN_TOKENS = 3072


def run(engine, done: list) -> None:
    chunk = engine.prefill_chunk or 1 << 62
    hold = _lookups(engine)
    ready = [s for s in engine.prefilling if id(s) not in hold]
    hits = [s for s in ready if s.cache is not None and len(s.pending) <= chunk]
    fresh = [s for s in ready if s.cache is None and len(s.pending) <= chunk]
    taken = set(map(id, hits + fresh))
    long = [s for s in ready if id(s) not in taken]
    spent = 0.0  # cost of this iteration's prefill so far, in tokens at an empty context
    for s in hits:
        c = cost(len(s.pending), s.kv_len)
        if spent and spent + c > chunk:
            break
        _extend(engine, s, len(s.pending), done)
        spent += c
    for group in _groups(fresh):
        n = sum(len(s.pending) for s in group)
        if spent and spent + n > chunk:
            break
        _prefill_group(engine, group, done)
        spent += n
    for s in long:
        if spent >= chunk and s is not long[0]:
            break
        allowed = max(chunk - spent, chunk / 4)  # the oldest long prompt always progresses
        n = min(len(s.pending), max(MIN_CHUNK, int(allowed * ATTN_TOKENS / (ATTN_TOKENS + s.kv_len))))
        _extend(engine, s, n, done)
        spent += cost(n, s.kv_len - n)


def cost(n: int, past: int) -> float:
    """Prefill cost of n tokens after ``past`` cached ones, in tokens at an empty context: each
    token's attention grows with the context, so a chunk deep into a long prompt is shorter."""
    return n * (ATTN_TOKENS + past) / ATTN_TOKENS


def _lookups(engine) -> set[int]:
    """Prefix lookups for sequences with nothing fed yet; returns ids of those that wait."""
    if engine.prefix is None:
        return set()
    hold: set[int] = set()
    busy = [s for s in engine.prefilling if s.cache is not None]
    for s in engine.prefilling:
        if s.cache is not None or s.kv_len:
            continue
        _lookup(engine, s)
        if s.cache is not None:
            continue
        if any(_shared(s.ids, o.ids) >= MIN_SHARED for o in busy):
            hold.add(id(s))
        else:
            busy.append(s)
    return hold


def _lookup(engine, s) -> None:
    """Start ``s`` from the longest cached prefix of its ids (the last id is always fed: its
    logits choose the next token)."""
    path = engine.prefix.match(s.ids, s.req.pid, limit=len(s.ids) - 1)
    hit = sum(n for _, n in path)
    if hit < MIN_HIT:
        return
    s.cache = engine.batch.row_cache(room(s))
    engine.prefix.copy_into(path, [(layer.buf_k, layer.buf_v) for layer in s.cache.layers])
    for layer in s.cache.layers:
        layer.set_length(hit)
    s.kv_len = hit
    s.prefix_hit += hit
    engine.counters.add(prefix_hit_tokens=hit)


def _shared(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b), MIN_SHARED)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i if i < MIN_SHARED else MIN_SHARED


def remember(engine, s, layers) -> None:
    """Offer ``s``'s computed K/V (ids[:kv_len]; ``layers`` per layer (k, v), each
    (1, H, kv_len, D)) to the prefix cache."""
    if engine.prefix is not None and s.kv_len > 0 and not s.cancelled:
        engine.prefix.insert(s.ids[:s.kv_len], layers, s.req.pid)


def own_bytes(engine) -> int:
    """K/V bytes held by sequences' own one-row caches (buffers, reserved room included)."""
    return sum(layer.nbytes() for s in [*engine.prefilling, *engine.solo] if s.cache is not None
               for layer in s.cache.layers)


def charge(engine, s, dt: float) -> None:
    """Engine seconds spent on ``s``: its own accounting and its program's service (PLAS)."""
    s.llm_time_s += dt
    engine.policy.charge(s.req.pid, dt)


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
    """One left-padded pass over new sequences' whole prompts (batch.prefill)."""
    t0 = time.perf_counter()
    lens = [len(s.pending) for s in group]
    logits, part = engine.batch.prefill(group)
    logitmask.apply(logits, group)  # constrained rows: only tokens their grammar allows
    ids = sampler.choose(logits, group)
    done = [i for i, (s, t) in enumerate(zip(group, ids)) if s.append(t, engine.tok)]
    for i, (s, n) in enumerate(zip(group, lens)):  # K/V of ids[:n] (n == kv_len), right-aligned
        remember(engine, s, [(k[i:i + 1, :, part.width - n:], v[i:i + 1, :, part.width - n:])
                             for k, v in part.layers])
    engine.batch.add(part.select([i for i in range(len(group)) if i not in set(done)]))
    gone = set(map(id, group))
    engine.prefilling = [s for s in engine.prefilling if id(s) not in gone]
    dt = time.perf_counter() - t0
    total = sum(lens)
    for s, n in zip(group, lens):
        charge(engine, s, dt * n / total)
    engine.counters.prefill(total, len(group), dt, time.monotonic())
    finished += [group[i] for i in done]


def _extend(engine, s, n: int, finished: list) -> int:
    """Feed ``n`` of ``s``'s pending ids into its own cache; once all are fed, it samples its
    first token and joins the batch, or the solo rows if it is long (or finishes). Returns n."""
    t0 = time.perf_counter()
    logits = engine.batch.extend(s, n)
    first = 0
    if not s.pending:
        first = 1
        engine.prefilling.remove(s)
        remember(engine, s, [(layer.keys, layer.values) for layer in s.cache.layers])
        logitmask.apply(logits, [s])
        if s.append(sampler.choose(logits, [s])[0], engine.tok):
            s.cache = None
            finished.append(s)
        elif solo(s):
            engine.solo.append(s)
        else:
            engine.batch.add(engine.batch.part_from_cache(s))
    dt = time.perf_counter() - t0
    charge(engine, s, dt)
    engine.counters.prefill(n, first, dt, time.monotonic())
    return n
