"""The memory manager on its own (no kernel): budgets, LRU-K eviction to swap, recall, search, limits, access."""

from __future__ import annotations

import hashlib
import queue

import pytest

from kernel.config import KernelConfig
from kernel.memory import MemoryManager
from kernel.memory.block import Block
from kernel.process.table import PCB
from kernel.protocol import messages
from kernel.storage import guard
from kernel.syscall import SyscallFailure


def text(i: int, size: int) -> str:
    h = hashlib.sha256(str(i).encode()).hexdigest()
    return (f"block {i} " + h * (size // 64 + 1))[:size]


def make(tmp_path, **kw) -> MemoryManager:
    cfg = dict(data_dir=str(tmp_path), mem_budget_bytes=4000, mem_global_budget_bytes=100_000,
               mem_block_max_bytes=1000, mem_agent_limit_bytes=200_000, mem_search="bm25")
    cfg.update(kw)
    mm = MemoryManager(KernelConfig.from_flags(**cfg))
    mm.start(None)
    return mm


@pytest.fixture
def mm(tmp_path):
    m = make(tmp_path)
    yield m
    m.stop()


def proc(pid: int, name: str = "A", group: str | None = None) -> PCB:
    return PCB(pid=pid, name=name, task="t", group=group or name)


def swap_rows(mm, pid) -> int:
    return mm.swap.conn.execute("SELECT COUNT(*) FROM blocks WHERE pid=?", (pid,)).fetchone()[0]


def code_of(fn, *args, **kw) -> str:
    with pytest.raises(SyscallFailure) as e:
        fn(*args, **kw)
    return e.value.code


def test_eviction_and_recall_keep_content_intact(mm):
    p = proc(1)
    originals = {mm.add(p, text(i, 500))["id"]: text(i, 500) for i in range(40)}  # 20000 bytes, budget 4000
    u = mm.usage(1)
    assert u["resident_bytes"] <= 4000 and u["evicted_bytes"] == 20000 - u["resident_bytes"]
    assert u["evictions"] >= 32 and swap_rows(mm, 1) == len(originals) - u["resident_bytes"] // 500
    got = mm.get(p)
    assert [b["id"] for b in got] == sorted(originals)
    assert all(b["content"] == originals[b["id"]] for b in got)  # byte-identical after the round trip
    assert sum(b["swapped_in"] for b in got) >= 32
    assert mm.usage(1)["resident_bytes"] <= 4000  # recall pushed others out again
    again = mm.get(p, ids=[1, 2, 3])
    assert [b["content"] for b in again] == [originals[1], originals[2], originals[3]]


def test_lru_k_keeps_a_block_used_twice_over_newer_one_offs(mm):
    p = proc(1)
    a = mm.add(p, text(0, 900))["id"]
    mm.get(p, ids=[a])  # A: referenced twice, long ago
    b, c, d = (mm.add(p, text(i, 900))["id"] for i in (1, 2, 3))  # one reference each, all newer than A's
    assert mm.usage(1)["evicted_bytes"] == 0  # 3600 bytes fit
    mm.add(p, text(4, 900))  # 4500 > 4000: evict down to 3600
    resident = {i for i, blk in mm.spaces[1].blocks.items() if blk.resident}
    assert a in resident and b not in resident  # plain LRU would have evicted A (oldest last use)
    assert {c, d} <= resident


def test_evict_key_orders_by_kth_reference():
    x = Block(1, "note", None, "x", 1, 0.0)
    y = Block(2, "note", None, "y", 1, 0.0)
    for t in (1, 5):
        x.touch(t)
    for t in (3, 4):
        y.touch(t)
    once = Block(3, "note", None, "z", 1, 0.0)
    once.touch(9)
    assert sorted([y, once, x], key=Block.evict_key) == [once, x, y]  # infinite distance first, then oldest 2nd ref
    x.touch(5)  # a correlated reference (same tick) counts once
    assert x.hist == [5, 1]


def test_global_budget_evicts_across_processes(tmp_path):
    mm = make(tmp_path, mem_budget_bytes=4000, mem_global_budget_bytes=6000)
    p1, p2 = proc(1), proc(2, "B")
    for i in range(7):
        mm.add(p1, text(i, 500))  # 3500 resident, under both budgets
    assert mm.usage(1)["evicted_bytes"] == 0
    for i in range(7):
        mm.add(p2, text(100 + i, 500))
    assert mm.resident <= 6000
    assert mm.usage(1)["evicted_bytes"] > 0  # p1's older blocks made room for p2
    assert [b["content"] for b in mm.get(p1)] == [text(i, 500) for i in range(7)]
    mm.stop()


def test_limits_are_clear_errors(tmp_path):
    mm = make(tmp_path, mem_agent_limit_bytes=5000, mem_agent_max_blocks=8)
    p = proc(1)
    assert code_of(mm.add, p, "x" * 1001) == messages.E2BIG
    for i in range(5):
        mm.add(p, text(i, 1000))
    with pytest.raises(SyscallFailure) as e:
        mm.add(p, "one more")
    assert e.value.code == messages.ENOSPC and "full" in e.value.message
    mm.clear(p)
    for i in range(8):
        mm.add(p, "tiny")
    assert code_of(mm.add, p, "tiny") == messages.ENOSPC
    assert code_of(mm.add, p, "bad \ud800 surrogate") == messages.EINVAL
    assert code_of(mm.get, p, ids=[99]) == messages.ENOENT
    mm.stop()


def search_now(mm, reader, query, **kw):
    out = []
    mm.search(reader, query, lambda res, err: out.append((res, err)), **kw)
    assert len(out) == 1  # bm25 answers at once
    res, err = out[0]
    assert err is None
    return res


def test_bm25_search_finds_evicted_blocks_and_brings_them_back(mm):
    p = proc(1)
    mm.add(p, "The train to Berlin leaves at 9:40 from platform 7", kind="note")
    for i in range(30):
        mm.add(p, text(i, 500))
    assert not mm.spaces[1].blocks[1].resident  # evicted long ago
    res = search_now(mm, p, "when does the Berlin train leave?", k=3)
    assert res[0]["id"] == 1 and res[0]["content"].startswith("The train to Berlin")
    assert res[0]["swapped_in"] is True and res[0]["bm25"] > 0
    assert mm.spaces[1].blocks[1].resident
    assert search_now(mm, p, "zeppelin") == []


def test_bm25_ranks_by_term_rarity_and_kind_filter(mm):
    p = proc(1)
    mm.add(p, "apples and pears", kind="note")
    mm.add(p, "apples apples apples", role="user", kind="turn")
    mm.add(p, "pears are rare here", kind="note")
    res = search_now(mm, p, "pears", k=5)
    assert {r["id"] for r in res} == {1, 3}
    res = search_now(mm, p, "apples", k=5)
    assert res[0]["id"] == 2  # higher term frequency
    assert [r["id"] for r in search_now(mm, p, "apples", kind="note")] == [1]


def test_clear_and_release_free_memory_and_swap(mm):
    p = proc(1)
    for i in range(20):
        mm.add(p, text(i, 500), kind="note" if i % 2 else "turn", role=None if i % 2 else "user")
    assert swap_rows(mm, 1) > 0
    out = mm.clear(p, kind="turn")
    assert out == {"cleared": 10, "bytes": 5000}
    assert all(b["kind"] == "note" for b in mm.get(p))
    mm.on_exit(p)  # the process ended
    assert 1 not in mm.spaces and swap_rows(mm, 1) == 0 and mm.resident == 0 and mm.swap.bytes == 0
    assert mm.get(p) == []


def test_other_processes_read_only_within_their_group(mm):
    owner, same, other = proc(1, "A", group="team"), proc(2, "B", group="team"), proc(3, "C", group="C")
    mm.add(owner, "the secret plan")
    assert [b["content"] for b in mm.get(same, owner_pid=1)] == ["the secret plan"]
    assert search_now(mm, same, "plan", owner_pid=1)[0]["content"] == "the secret plan"
    with pytest.raises(SyscallFailure) as e:
        mm.get(other, owner_pid=1)
    assert e.value.code == messages.EPERM and "group" in e.value.message
    assert code_of(mm.search, other, "plan", lambda r, e: None, owner_pid=1) == messages.EPERM
    assert code_of(mm.get, other, owner_pid=42) == messages.ESRCH
    with pytest.raises(SyscallFailure) as e:  # writes are the owner's alone, whatever the group
        guard.default_check(same, "mem.clear", owner="A", group="team", resource="memory of pid 1", owner_pid=1)
    assert e.value.code == messages.EPERM


def test_hybrid_search_finds_meaning_without_shared_words(tmp_path):
    posted: queue.Queue = queue.Queue()
    mm = MemoryManager(KernelConfig.from_flags(data_dir=str(tmp_path), mem_search="hybrid"))
    mm.start(None, post=posted.put)
    try:
        p = proc(1)
        docs = ["I love pizza with melted cheese", "The weather is rainy today",
                "Italian pasta is my favourite dinner", "A lecture on quantum field theory"]
        for d in docs:
            mm.add(p, d)
        out = []
        mode = mm.search(p, "meals", lambda res, err: out.append((res, err)), k=2)
        assert mode == "hybrid"
        while not out:  # run what the embedder hands back, as the kernel loop would
            posted.get(timeout=120)()
        res, err = out[0]
        assert err is None
        assert {r["content"] for r in res} == {docs[0], docs[2]}
        assert all(r["bm25"] == 0.0 and r["cosine"] > 0.2 for r in res)
        assert search_now(mm, p, "meals", mode="bm25") == []  # no word in common
        assert mm.embedder.error is None and mm.embedder.texts >= 5
    finally:
        mm.stop()


def test_search_embeds_what_the_background_skipped(tmp_path, monkeypatch):
    import kernel.memory.embed as embed

    monkeypatch.setattr(embed, "BACKLOG", 0)  # the embedder is "behind": adds get no vector in the background
    posted: queue.Queue = queue.Queue()
    mm = MemoryManager(KernelConfig.from_flags(data_dir=str(tmp_path), mem_search="hybrid", mem_budget_bytes=64,
                                    mem_block_max_bytes=64, mem_global_budget_bytes=1 << 20))
    mm.start(None, post=posted.put)
    try:
        p = proc(1)
        docs = ["I love pizza with melted cheese", "The weather is rainy today", "A lecture on quantum physics"]
        for d in docs:
            mm.add(p, d)
        assert posted.empty() and all(b.vec is None for b in mm.spaces[1].blocks.values())
        assert not mm.spaces[1].blocks[1].resident  # evicted: the search reads it from swap to embed it
        out = []
        mm.search(p, "favourite meals", lambda res, err: out.append((res, err)), k=1)
        while not out:
            posted.get(timeout=120)()
        res, err = out[0]
        assert err is None and res[0]["content"] == docs[0] and res[0]["swapped_in"] is True
        assert all(b.vec is not None for b in mm.spaces[1].blocks.values())
    finally:
        mm.stop()


def test_one_get_returns_at_most_a_mebibyte(tmp_path):
    mm = make(tmp_path, mem_block_max_bytes=32 * 1024, mem_budget_bytes=64 * 1024, mem_agent_limit_bytes=4 << 20)
    p = proc(1)
    for i in range(40):
        mm.add(p, text(i, 32 * 1024))
    assert code_of(mm.get, p) == messages.E2BIG
    assert len(mm.get(p, last=32)) == 32
    mm.stop()
