"""A KV cache layer that grows in place instead of concatenating every step.

transformers' DynamicLayer appends a decode step's K/V with ``torch.cat``,
copying the whole cache each step: measured here at batch 16 and ~100
tokens, that copy was 19% of a decode step's time. GrowingLayer keeps K/V in
a buffer with spare columns, writes each step's K/V into the next free
columns and hands attention a view of the filled part, so a step copies
only the new column; the buffer is reallocated (one copy) when it is full.

Shapes: ``buf_k``/``buf_v`` (B, kv_heads, capacity, head_dim); ``keys`` and
``values`` are the views ``buf[:, :, :length]`` that transformers reads.
Owned by the engine thread like the batch that holds it.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from kernel.param import HEADROOM


def release_heap() -> None:
    """Give the heap's free pages back to the OS (glibc's malloc_trim; elsewhere nothing to do).

    Tensors below glibc's mmap threshold (which rises to 32 MiB as large blocks are freed) come from
    the heap, and a freed heap page stays in the process until trimmed."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class GrowingLayer(DynamicLayer):
    def __init__(self):
        super().__init__()
        self.buf_k: torch.Tensor | None = None
        self.buf_v: torch.Tensor | None = None
        self.length = 0

    def adopt(self, k: torch.Tensor, v: torch.Tensor, headroom: int = HEADROOM) -> None:
        """Make (k, v), each (B, H, T, D), this layer's contents (copied into a buffer with headroom)."""
        B, H, T, D = k.shape
        buf_k, buf_v = empty_buffers(k, B, T + headroom)
        buf_k[:, :, :T] = k
        buf_v[:, :, :T] = v
        self.adopt_buffers(buf_k, buf_v, T)

    def adopt_buffers(self, buf_k: torch.Tensor, buf_v: torch.Tensor, length: int) -> None:
        """Take ownership of filled buffers (no copy): columns [0, length) hold K/V."""
        self.buf_k, self.buf_v, self.length = buf_k, buf_v, length
        self.dtype, self.device = buf_k.dtype, buf_k.device
        self.is_initialized = True
        self._views()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if self.buf_k is None:
            self.adopt(key_states, value_states)
            return self.keys, self.values
        q = key_states.shape[2]
        if self.length + q > self.buf_k.shape[2]:
            self.adopt(self.keys, self.values, headroom=max(HEADROOM, q))
        self.buf_k[:, :, self.length:self.length + q] = key_states
        self.buf_v[:, :, self.length:self.length + q] = value_states
        self.length += q
        self._views()
        return self.keys, self.values

    def set_length(self, length: int) -> None:
        """Columns [0, length) of the buffers now hold K/V (written there directly)."""
        self.length = length
        self._views()

    def _views(self) -> None:
        self.keys = self.buf_k[:, :, :self.length]
        self.values = self.buf_v[:, :, :self.length]

    def nbytes(self) -> int:
        if self.buf_k is None:
            return 0
        return 2 * self.buf_k.numel() * self.buf_k.element_size()

    def reset(self) -> None:
        self.buf_k = self.buf_v = None
        self.length = 0
        super().reset()


def empty_buffers(like: torch.Tensor, rows: int, columns: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uninitialised (rows, kv_heads, columns, head_dim) buffers shaped after ``like``."""
    shape = (rows, like.shape[1], columns, like.shape[3])
    return like.new_empty(shape), like.new_empty(shape)


def growing_cache(config) -> DynamicCache:
    """A DynamicCache for ``config`` whose layers are GrowingLayers (full-attention models only)."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer() for _ in cache.layers]
    return cache


def kv_dtype(model) -> torch.dtype:
    """The dtype ``model`` keeps K/V in: its own, or float64 for int8 models (kernel.llm.quant)."""
    return getattr(model, "kv_dtype", None) or model.dtype


def kv_shape(config) -> tuple[int, int]:
    """(kv_heads, head_dim) of every layer of a full-attention model with ``config``."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return heads, head_dim


def reserved_cache(config, capacity: int, dtype: torch.dtype, device) -> DynamicCache:
    """An empty one-row growing cache with room for ``capacity`` tokens in every layer.

    A chunked prefill writes each chunk's K/V in place, so a long prompt never
    holds two copies of its cache (concatenation would, every chunk).
    """
    cache = growing_cache(config)
    heads, head_dim = kv_shape(config)
    for layer in cache.layers:
        shape = (1, heads, capacity, head_dim)
        layer.adopt_buffers(torch.empty(shape, dtype=dtype, device=device),
                            torch.empty(shape, dtype=dtype, device=device), 0)
    return cache
