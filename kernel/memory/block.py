"""A block of working memory and its LRU-K bookkeeping.

LRU-K (O'Neil, O'Neil and Weikum, SIGMOD 1993), K = 2, the eviction policy of
the AIOS paper's memory manager: each block remembers the logical times of
its last K references; the victim is the block whose K-th most recent
reference lies furthest back (largest backward K-distance). A block
referenced fewer than K times has an infinite distance, so it goes before
every block referenced K times, the least recently used of them first (the
paper's subsidiary policy). Frequency thus outweighs recency: a note read
again and again stays resident while a burst of one-off turns streams past.

Times are a logical clock of the memory manager that ticks once per syscall;
references within one syscall are correlated and count once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

K = 2
KINDS = ("turn", "note")


@dataclass(eq=False)
class Block:
    id: int  # per process: 1, 2, 3, ... in the order added
    kind: str  # "turn" (a chat message) | "note"
    role: str | None  # system | user | assistant | tool, for turns
    content: str | None  # None while evicted to the swap area
    size: int  # UTF-8 bytes of the content: the budget's unit
    created: float  # time.time()
    hist: list[int] = field(default_factory=list)  # last K reference times, most recent first
    vec: Any = None  # unit-length embedding (numpy float32, 384), once computed

    @property
    def resident(self) -> bool:
        return self.content is not None

    def touch(self, t: int) -> None:
        if self.hist and self.hist[0] == t:
            return  # correlated reference: same syscall
        self.hist.insert(0, t)
        del self.hist[K:]

    def evict_key(self) -> tuple[int, int]:
        """Sort key, smallest evicted first: (has K references, time of the K-th or of the last one)."""
        if len(self.hist) < K:
            return (0, self.hist[0] if self.hist else -1)
        return (1, self.hist[K - 1])

    def view(self, content: str) -> dict:
        return {"id": self.id, "kind": self.kind, "role": self.role, "content": content,
                "size": self.size, "created": self.created}
