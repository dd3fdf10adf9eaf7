"""Memory and storage managers benchmark: the kernel-side costs and the policies, side by side.

Usage::

    python bench/memory_storage.py [--writes 300] [--steps 4000] [--json]

Prints, measured in this one run (no agents, no LLM: the managers themselves):
  storage     fs.write of a 2 KB record with sync=full vs sync=normal (ms/write),
              read of the latest version, rollback (StorageDB, one thread)
  swap        SwapArea put/take of a 1 KB block (microseconds; they run on the
              kernel's loop thread, so they must stay small)
  mem.add     per call with no eviction vs with every add evicting (microseconds)
  eviction    hit rate of reads under LRU-2 (the kernel's policy) vs LRU (K=1)
              on a scan-heavy trace: 10 hot notes re-read among one-off turns
  search      BM25 vs hybrid (BM25 + all-MiniLM-L6-v2): hit@1 on queries that
              share no word with their note and on keyword queries, and the
              latency per query over 1000 blocks
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct  # noqa: E402
from kernel.config import KernelConfig  # noqa: E402
from kernel.memory import MemoryManager, block  # noqa: E402
from kernel.process.table import PCB  # noqa: E402
from kernel.storage import StorageDB, SwapArea  # noqa: E402

NOTES = [  # (note, paraphrased query sharing no word with it, keyword query)
    ("The dentist appointment is on Friday morning", "when must I see the doctor for my teeth?", "dentist appointment"),
    ("My flight to Lisbon departs from terminal 2", "which airport gate is my plane leaving", "Lisbon flight"),
    ("Maria is allergic to peanuts", "food restrictions of my friend", "peanuts allergic"),
    ("The wifi password is on the fridge", "where can I find the internet login", "wifi password"),
    ("Pay the electricity bill before the 15th", "utility invoice deadline", "electricity bill"),
    ("The cat needs her vaccine next month", "pet shots schedule", "cat vaccine"),
    ("I parked the car on level 3 of the garage", "where did I leave my vehicle", "parked garage"),
    ("Tom's birthday party is on Saturday evening", "celebration for my friend this weekend", "birthday party"),
    ("Buy eggs, flour and sugar for the cake", "baking ingredients shopping list", "eggs flour"),
    ("The quarterly report is due to the board on Monday", "deadline for the company financial summary",
     "quarterly report"),
]


def us(fn, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n * 1e6


def bench_storage(tmp: Path, writes: int) -> dict:
    out = {}
    data = os.urandom(1024).hex().encode()  # 2 KB
    for sync in ("full", "normal"):
        db = StorageDB(tmp / f"storage-{sync}.sqlite3", sync=sync)
        out[f"write_ms_{sync}"] = us(lambda i: db.write("Bench", f"r{i % 10}", data, "Bench"), writes) / 1000
        db.close()
    db = StorageDB(tmp / "storage-full.sqlite3")
    out["read_latest_us"] = us(lambda i: db.read("Bench", f"r{i % 10}"), writes)
    out["read_version_us"] = us(lambda i: db.read("Bench", f"r{i % 10}", 1 + i % 5), writes)
    out["rollback_ms_full"] = us(lambda i: db.rollback("Bench", "r0", 1, "Bench"), 50) / 1000
    db.close()
    return out


def bench_swap(tmp: Path, n: int = 2000) -> dict:
    swap = SwapArea(tmp / "swap")
    text = "x" * 1024
    put = us(lambda i: swap.put(1, i, text, 1024), n)
    take = us(lambda i: swap.take(1, i, 1024), n)
    swap.close()
    return {"put_us": put, "take_us": take}


def manager(tmp: Path, sub: str, **kw) -> MemoryManager:
    cfg = dict(data_dir=str(tmp / sub), mem_search="bm25", mem_block_max_bytes=1024, mem_budget_bytes=1 << 20,
               mem_global_budget_bytes=1 << 24, mem_agent_limit_bytes=1 << 26, mem_agent_max_blocks=100_000)
    cfg.update(kw)
    mm = MemoryManager(KernelConfig.from_flags(**cfg))
    mm.start(None)
    return mm


def bench_add(tmp: Path, n: int = 3000) -> dict:
    p = PCB(pid=1, name="Bench", task="", group="Bench")
    text = "a note about something " * 20  # 460 bytes
    roomy = manager(tmp, "add-roomy")
    no_evict = us(lambda i: roomy.add(p, text), n)
    roomy.stop()
    tight = manager(tmp, "add-tight", mem_budget_bytes=1024)  # two blocks fit: every add evicts one
    evicting = us(lambda i: tight.add(p, text), n)
    evictions = tight.evictions
    tight.stop()
    return {"no_eviction_us": no_evict, "evicting_us": evicting, "evictions": evictions}


def eviction_trace(steps: int, seed: int = 0) -> list:
    """("hot", i) re-reads one of 10 hot notes; ("new",) adds a one-off turn never read again."""
    rng = random.Random(seed)
    return [("hot", rng.randrange(10)) if rng.random() < 0.4 else ("new",) for _ in range(steps)]


def bench_policy(tmp: Path, steps: int) -> dict:
    """Hit rate of hot-note reads with a budget of 20 blocks: LRU-2 vs LRU (K=1)."""
    trace = eviction_trace(steps)
    out = {}
    for k in (2, 1):
        block.K = k  # the policy's K (module constant; the kernel runs K=2)
        mm = manager(tmp, f"policy-k{k}", mem_budget_bytes=20 * 500, mem_block_max_bytes=500)
        p = PCB(pid=1, name="Bench", task="", group="Bench")
        hot = [mm.add(p, f"hot note {i} " + "h" * 480)["id"] for i in range(10)]
        hits = reads = 0
        for step in trace:
            if step[0] == "hot":
                reads += 1
                hits += not mm.get(p, ids=[hot[step[1]]])[0]["swapped_in"]
            else:
                mm.add(p, "one-off turn " + "t" * 487)
        out[f"hit_rate_lru{k}"] = hits / reads
        out[f"swap_ins_lru{k}"] = mm.swap_ins
        mm.stop()
    block.K = 2
    return out


def bench_search(tmp: Path) -> dict:
    posted: queue.Queue = queue.Queue()
    mm = MemoryManager(KernelConfig.from_flags(data_dir=str(tmp / "search"), mem_search="hybrid"))
    mm.start(None, post=posted.put)
    p = PCB(pid=1, name="Bench", task="", group="Bench")
    rng = random.Random(1)
    words = "alpha beta gamma delta river stone paper cloud window garden music silver".split()
    ids = [mm.add(p, note)["id"] for note, _, _ in NOTES]
    for _ in range(1000 - len(NOTES)):  # filler so that latency is measured over 1000 blocks
        mm.add(p, " ".join(rng.choice(words) for _ in range(12)))

    def run(query: str, mode: str) -> tuple[list, float]:
        out = []
        t0 = time.perf_counter()
        mm.search(p, query, lambda res, err: out.append(res), k=1, mode=mode)
        while not out:
            posted.get(timeout=300)()  # the loop's job: run what the embedder hands back
        return out[0], time.perf_counter() - t0

    run("warm up", "hybrid")  # waits for every block's embedding and the model load
    res = {}
    for mode in ("bm25", "hybrid"):
        for kind, col in (("paraphrase", 1), ("keyword", 2)):
            hits = 0
            for i, row in enumerate(NOTES):
                got, _ = run(row[col], mode)
                hits += bool(got) and got[0]["id"] == ids[i]
            res[f"{mode}_hit1_{kind}"] = f"{hits}/{len(NOTES)}"
        lat = [run(q, mode)[1] * 1000 for _, q, _ in NOTES for _ in range(3)]
        res[f"{mode}_ms_p50"] = statistics.median(lat)
        res[f"{mode}_ms_p90"] = pct(lat, 0.9)
    res["embedder_load_s"] = mm.embedder.load_time_s
    mm.stop()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        r = {"storage": bench_storage(tmp, args.writes), "swap": bench_swap(tmp), "mem_add": bench_add(tmp),
             "policy": bench_policy(tmp, args.steps), "search": bench_search(tmp)}
    if args.json:
        print(json.dumps(r, indent=1))
        return
    s, w, a, p, q = r["storage"], r["swap"], r["mem_add"], r["policy"], r["search"]
    print("storage (SQLite WAL, 2 KB record)        sync=full      sync=normal")
    print(f"  fs.write                               {s['write_ms_full']:7.2f} ms     {s['write_ms_normal']:7.2f} ms")
    print(f"  read (latest version; an older one)    {s['read_latest_us']:5.0f} us; {s['read_version_us']:.0f} us")
    print(f"  rollback (sync=full)                   {s['rollback_ms_full']:7.2f} ms")
    print(f"swap area, 1 KB block                     put {w['put_us']:5.0f} us    take {w['take_us']:5.0f} us")
    print(f"mem.add (460 B)                           no eviction {a['no_eviction_us']:5.0f} us    "
          f"evicting every add {a['evicting_us']:5.0f} us")
    print("eviction policy, 10 hot notes among one-off turns, budget 20 blocks")
    print(f"  hot-read hit rate                      LRU-2 {p['hit_rate_lru2']:6.1%}   LRU {p['hit_rate_lru1']:6.1%}")
    print(f"  swap-ins                               LRU-2 {p['swap_ins_lru2']:6d}   LRU {p['swap_ins_lru1']:6d}")
    print("search over 1000 blocks                   BM25           hybrid (BM25 + MiniLM)")
    print(f"  hit@1, paraphrased queries             {q['bm25_hit1_paraphrase']:>5}          {q['hybrid_hit1_paraphrase']:>5}")
    print(f"  hit@1, keyword queries                 {q['bm25_hit1_keyword']:>5}          {q['hybrid_hit1_keyword']:>5}")
    print(f"  latency p50 / p90                      {q['bm25_ms_p50'] * 1000:.0f} / {q['bm25_ms_p90'] * 1000:.0f} us      "
          f"{q['hybrid_ms_p50']:.0f} / {q['hybrid_ms_p90']:.0f} ms")
    print(f"  embedding model load                   {q['embedder_load_s']:.1f} s (once, on first use)")


if __name__ == "__main__":
    main()
