"""Space: one process's working memory (its blocks, byte counts, BM25 index, vector cache)."""

from __future__ import annotations

import numpy as np

from kernel.memory.block import Block
from kernel.memory.bm25 import BM25Index
from kernel.protocol import messages
from kernel.syscall import SyscallFailure


class Space:
    """One process's working memory (loop thread only)."""

    def __init__(self, pcb):
        self.pcb = pcb
        self.pid = pcb.pid
        self.blocks: dict[int, Block] = {}  # by id, in the order added
        self.next_id = 1
        self.resident = 0  # bytes resident
        self.total = 0  # bytes, resident + evicted
        self.index = BM25Index()
        self.vecs: tuple[list[int], np.ndarray] | None = None  # (ids, (n, 384) matrix) cache; None: rebuild
        self.evictions = 0
        self.swap_ins = 0

    def usage(self) -> dict:
        return {"pid": self.pid, "blocks": len(self.blocks), "resident_bytes": self.resident,
                "evicted_bytes": self.total - self.resident, "evictions": self.evictions, "swap_ins": self.swap_ins}


def utf8_size(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise SyscallFailure(messages.EINVAL, f"{what} is not valid Unicode text: {e.reason}") from None
