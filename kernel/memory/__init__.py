"""Memory manager: per-process working memory with budgets, LRU-K eviction to swap, and search."""

from kernel.memory.manager import MemoryManager

__all__ = ["MemoryManager"]
