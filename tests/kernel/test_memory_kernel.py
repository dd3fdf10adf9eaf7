"""mem.* syscalls through real agent processes: eviction and recall, chat history kept by the SDK,
search, schema errors, cross-agent reads, release on exit."""

from __future__ import annotations

from memfs_helpers import err, grouped, ok, payload, run_ops

from kernel.protocol import messages


def test_eviction_and_recall_through_an_agent(kernel):
    # 100 notes of 1000 bytes against the default per-process budget of 64 KiB
    res = run_ops(kernel, [
        {"mem_fill": {"n": 100, "size": 1000}},
        {"call": "mem.stats"},
        {"call": "mem.get", "args": {}},
        {"call": "mem.get", "args": {"ids": [1, 50, 100]}},
        {"call": "mem.stats"},
    ])
    assert ok(res[0]) == list(range(1, 101))
    before = ok(res[1])
    assert before["resident_bytes"] <= 64 * 1024 and before["evicted_bytes"] == 100_000 - before["resident_bytes"]
    assert before["evictions"] > 0
    blocks = ok(res[2])
    assert [b["content"] for b in blocks] == [payload(i, 1000) for i in range(100)]  # intact after the swap
    assert any(b["swapped_in"] for b in blocks) and all(b["kind"] == "note" for b in blocks)
    assert [b["content"] for b in ok(res[3])] == [payload(0, 1000), payload(49, 1000), payload(99, 1000)]
    after = ok(res[4])
    assert after["resident_bytes"] <= 64 * 1024 and after["swap_ins"] > 0


def test_sdk_keeps_the_chat_history_in_memory(kernel):
    res = run_ops(kernel, [
        {"chat": {"content": "Say hello.", "system": "You are terse.", "max_new_tokens": 6}},
        {"chat": {"content": "Now say goodbye.", "max_new_tokens": 6}},
        {"call": "mem.get", "args": {"kind": "turn"}},
        {"call": "mem.get", "args": {"kind": "turn", "role": "assistant"}},
    ])
    first, second = ok(res[0]), ok(res[1])
    turns = ok(res[2])
    assert [(t["role"], t["content"]) for t in turns] == [
        ("system", "You are terse."), ("user", "Say hello."), ("assistant", first),
        ("user", "Now say goodbye."), ("assistant", second)]
    assert [t["content"] for t in ok(res[3])] == [first, second]


def test_search_through_an_agent(kernel):
    notes = ["The meeting with Ada moved to Thursday at 3pm", "Buy oat milk and bread",
             "Ada prefers tea over coffee", "I enjoy spaghetti carbonara for dinner"]
    res = run_ops(kernel, [{"call": "mem.add", "args": {"content": n}} for n in notes] + [
        {"call": "mem.search", "args": {"query": "when is the meeting with Ada?", "mode": "bm25", "k": 2}},
        {"call": "mem.search", "args": {"query": "Italian meals", "k": 1}},
        {"call": "mem.search", "args": {"query": "Italian meals", "mode": "bm25"}},
        {"call": "mem.search", "args": {"query": "pasta dishes", "mode": "semantic", "k": 1}},
    ])
    bm = ok(res[4])
    assert bm["mode"] == "bm25" and [r["content"] for r in bm["results"]] == [notes[0], notes[2]]
    hybrid = ok(res[5])
    assert hybrid["mode"] == "hybrid" and hybrid["results"][0]["content"] == notes[3]
    assert ok(res[6])["results"] == []
    assert ok(res[7])["results"][0]["content"] == notes[3] and ok(res[7])["mode"] == "semantic"


def test_memory_schema_errors(kernel):
    bad = [
        {"call": "mem.add", "args": {}},
        {"call": "mem.add", "args": {"content": 3}},
        {"call": "mem.add", "args": {"content": "x", "role": "god"}},
        {"call": "mem.add", "args": {"content": "x", "kind": "turn"}},  # a turn needs a role
        {"call": "mem.add", "args": {"content": "x", "kind": "diary"}},
        {"call": "mem.add", "args": {"content": "x", "pid": 1}},  # no writing into another's memory
        {"call": "mem.get", "args": {"ids": ["1"]}},
        {"call": "mem.get", "args": {"last": -1}},
        {"call": "mem.search", "args": {"query": ""}},
        {"call": "mem.search", "args": {"query": "x", "k": 0}},
        {"call": "mem.search", "args": {"query": "x", "mode": "magic"}},
        {"call": "mem.clear", "args": {"pid": 1}},
        {"call": "mem.stats", "args": {"verbose": True}},
    ]
    res = run_ops(kernel, bad + [
        {"call": "mem.add", "args": {"content": "x"}, "fill": {"content": ["z", 32 * 1024 + 1]}},
        {"call": "mem.get", "args": {"ids": [7]}},
    ])
    for op, r in zip(bad, res):
        assert r.get("error") == messages.EINVAL, (op, r)
    assert "32768-byte limit" in err(res[len(bad)], messages.E2BIG)
    err(res[len(bad) + 1], messages.ENOENT)


def test_cross_agent_memory_reads_denied_unless_grouped(kernel):
    peer_ops = [
        {"call": "mem.get", "args": {"pid": "$PARENT"}},
        {"call": "mem.search", "args": {"query": "plan", "pid": "$PARENT", "mode": "bm25"}},
    ]
    script = [
        {"call": "mem.add", "args": {"content": "the plan: meet at noon"}},
        {"spawn_wait": {"agent": "MemFsPeer", "task": {"ops": peer_ops}}},
        {"call": "proc.info"},
    ]
    denied = run_ops(kernel, script)
    for r in ok(denied[1]):
        assert "group" in err(r, messages.EPERM)
    with grouped(kernel, "MemFsPeer", "MemFsAgent"):
        allowed = run_ops(kernel, script)
    got, found = ok(allowed[1])
    assert [b["content"] for b in ok(got)] == ["the plan: meet at noon"]
    assert ok(found)["results"][0]["content"] == "the plan: meet at noon"
    # memory is released when its process ends: the pid that owned it is gone
    ended = ok(allowed[2])["pid"]
    late = run_ops(kernel, [{"call": "mem.get", "args": {"pid": ended}}])
    assert "released" in err(late[0], messages.ESRCH)
