"""DecodeBatch: the running sequences and their one left-padded KV cache.

Layout (every tensor owned by the engine thread)::

    seqs[i]                  the Sequence in row i
    cache.layers[l].keys     (B, kv_heads, W, head_dim), likewise .values
    row i's K/V              columns [W - seqs[i].kv_len, W): right-aligned,
                             the columns before are padding (zeros, masked)

Each decode step feeds every row's one pending token at position
``kv_len`` (RoPE positions ignore the padding), with an attention mask that
hides the padding, and the cache grows by one column. New sequences (and
resumed ones whose KV was dropped) are prefilled together in a separate
forward pass over their pending tokens, then merged in as extra rows; a
resumed sequence with a KVSnapshot is merged without any forward pass.
A sequence that starts from cached K/V (a prefix-cache hit) or whose prompt
is prefilled in chunks has a one-row cache of its own (``seq.cache``, room
reserved for all its ids) that ``extend`` feeds chunk by chunk; it joins the
batch like a snapshot once its last prompt token is fed.
Finished or preempted rows are cut out between steps, and leading columns
that no remaining row uses are trimmed, so W stays the longest live row.

A long row (at least LONG_ROW_TOKENS) never joins the padded batch: every
other row would be padded to its width (a 7.5k-token prompt beside 4-token
calls made each of them hold and attend over 7.5k columns, and every join
copied the whole cache). It decodes in its own cache instead, one ``extend``
of one token per step (the engine's ``solo`` rows); ``room`` reserves that
cache's columns for its whole generation up front.

Only full-attention caches (transformers' DynamicLayer) can be re-padded
like this; ``batchable(model)`` says whether a model has them.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from kernel.llm.context import KVSnapshot, snapshot_nbytes
from kernel.llm.kvcache import HEADROOM, empty_buffers, growing_cache, kv_dtype, reserved_cache
from kernel.param import LONG_ROW_TOKENS


def room(seq) -> int:
    """Columns to reserve in ``seq``'s own cache: all its ids and some headroom, or, for a long
    row that will decode there (solo), every token it may generate (the reserved columns are
    not touched until written, so they cost address space, not resident memory)."""
    if len(seq.ids) >= LONG_ROW_TOKENS:
        return seq.prompt_len + seq.max_new + 1
    return len(seq.ids) + HEADROOM


def solo(seq) -> bool:
    """True if ``seq`` decodes in its own cache rather than as a row of the padded batch."""
    return seq.kv_len >= LONG_ROW_TOKENS


def batchable(model) -> bool:
    """True if every cache layer of ``model`` is a plain full-attention DynamicLayer."""
    try:
        return all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)
    except Exception:
        return False


class Part:
    """Rows ready to join a batch: per-layer (k, v), each (G, kv_heads, t, head_dim).

    ``cache`` is the DynamicCache a prefill filled, if the part came from one:
    an empty batch adopts it as is (no copy; and the only way to batch a
    model whose cache layers cannot be re-padded, one sequence at a time).
    """

    def __init__(self, seqs: list, layers: list[tuple[torch.Tensor, torch.Tensor]], cache=None,
                 width: int | None = None):
        self.seqs = seqs
        self.layers = layers
        self.cache = cache
        self.width = layers[0][0].shape[2] if layers else (width or 0)

    def select(self, keep: list[int]) -> "Part":
        """The rows ``keep`` only, trimmed to the longest of them."""
        if len(keep) == len(self.seqs):
            return self
        seqs = [self.seqs[i] for i in keep]
        if not seqs:
            return Part([], [])
        t = self.width
        width = max(s.kv_len for s in seqs)
        layers = []
        for k, v in self.layers:
            idx = torch.tensor(keep, dtype=torch.long, device=k.device)
            layers.append((k.index_select(0, idx)[:, :, t - width:], v.index_select(0, idx)[:, :, t - width:]))
        return Part(seqs, layers)


class DecodeBatch:
    def __init__(self, model, pad_id: int):
        self.model = model
        self.repad = batchable(model)  # False: one row at a time, cache adopted from its prefill
        self.device = model.device
        self.pad_id = pad_id
        self.seqs: list = []
        self.cache = self._new_cache()
        self.width = 0  # W: columns in every layer's K/V

    def __len__(self) -> int:
        return len(self.seqs)

    # -- forward passes -------------------------------------------------------------
    def prefill(self, seqs: list) -> tuple[torch.Tensor, Part]:
        """Feed each seq's pending tokens (all of its ids: kv_len must be 0).

        Returns the next-token logits (G, V) and a Part holding their K/V.
        """
        lens = [len(s.pending) for s in seqs]
        width = max(lens)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, (s, n) in enumerate(zip(seqs, lens)):
            ids[i, width - n:] = torch.tensor(s.pending, dtype=torch.long)
            mask[i, width - n:] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = self._new_cache()
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=pos.to(self.device), past_key_values=cache, use_cache=True,
                         logits_to_keep=1)
        layers = []
        for layer in (cache.layers if self.repad else []):
            k, v = layer.keys, layer.values
            for i, n in enumerate(lens):
                if n < width:  # padding K/V may be garbage; zeros keep masked scores finite
                    k[i, :, :width - n].zero_()
                    v[i, :, :width - n].zero_()
            layers.append((k, v))
        for s, n in zip(seqs, lens):
            s.kv_len = n
        return out.logits[:, -1, :], Part(seqs, layers, cache, width)

    def extend(self, seq, n: int) -> torch.Tensor:
        """Feed ``seq.pending[:n]`` on top of the ``seq.kv_len`` tokens in ``seq.cache`` (one row).

        Returns the logits after the last fed token (1, V); the chunk's K/V is
        written in place into the cache's reserved room.
        """
        if seq.cache is None:
            seq.cache = self.row_cache(room(seq))
        p = seq.kv_len
        ids = torch.tensor([seq.ids[p:p + n]], dtype=torch.long)
        pos = torch.arange(p, p + n, dtype=torch.long)[None, :]
        mask = torch.ones((1, p + n), dtype=torch.long)
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=pos.to(self.device), past_key_values=seq.cache, use_cache=True,
                         logits_to_keep=1)
        seq.kv_len = p + n
        return out.logits[:, -1, :]

    def row_cache(self, capacity: int):
        """An empty one-row cache with room for ``capacity`` tokens (see kvcache.reserved_cache)."""
        return reserved_cache(self.model.config, capacity, kv_dtype(self.model), self.device)

    def step(self) -> torch.Tensor:
        """One decode step: feed every row's last token; returns logits (B, V)."""
        W = self.width
        n = torch.tensor([s.kv_len for s in self.seqs], dtype=torch.long)
        ids = torch.tensor([[s.ids[-1]] for s in self.seqs], dtype=torch.long)
        cols = torch.arange(W + 1)
        mask = (cols[None, :] >= (W - n)[:, None]).long()  # (B, W+1); the last column is the new token
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=n[:, None].to(self.device), past_key_values=self.cache,
                         use_cache=True)
        self.width = W + 1
        for s in self.seqs:
            s.kv_len += 1
        return out.logits[:, -1, :]

    # -- membership -------------------------------------------------------------------
    def add(self, part: Part) -> None:
        """Append ``part``'s rows, re-padding whichever side is narrower (``part`` is used up)."""
        if not part.seqs:
            return
        if not self.seqs:
            if part.cache is not None:
                self.cache, self.width = part.cache, part.width
            else:
                self._set(part.layers, part.width)
            self.seqs = list(part.seqs)
            return
        B, G = len(self.seqs), len(part.seqs)
        W, t = self.width, part.width
        width = max(W, t)
        part.cache = None  # from here on only part.layers holds its K/V: each layer is freed once copied,
        for i, layer in enumerate(self.cache.layers):  # so a long row joining costs one layer twice, not all
            pk, pv = part.layers[i]
            part.layers[i] = None
            bufs = empty_buffers(layer.keys, B + G, width + HEADROOM)
            for out, mine, theirs in zip(bufs, (layer.keys, layer.values), (pk, pv)):
                out[:B, :, :width - W].zero_()
                out[:B, :, width - W:width] = mine
                out[B:, :, :width - t].zero_()
                out[B:, :, width - t:width] = theirs
            layer.adopt_buffers(*bufs, width)
            del pk, pv
        self.width = width
        self.seqs += part.seqs

    def remove(self, rows: list[int], snapshot: set[int] = frozenset()) -> dict[int, KVSnapshot]:
        """Drop ``rows`` from the batch; returns a KVSnapshot for each row in ``snapshot``."""
        if not rows:
            return {}
        W = self.width
        snaps = {}
        for i in rows:
            if i in snapshot:
                n = self.seqs[i].kv_len
                layers = [(layer.keys[i:i + 1, :, W - n:].clone(), layer.values[i:i + 1, :, W - n:].clone())
                          for layer in self.cache.layers]
                snaps[i] = KVSnapshot(layers, n, snapshot_nbytes(layers))
        gone = set(rows)
        keep = [i for i in range(len(self.seqs)) if i not in gone]
        self.seqs = [self.seqs[i] for i in keep]
        if not keep:
            self.reset()
            return snaps
        width = max(s.kv_len for s in self.seqs)
        layers = []
        for layer in self.cache.layers:
            idx = torch.tensor(keep, dtype=torch.long, device=layer.keys.device)
            layers.append((layer.keys.index_select(0, idx)[:, :, W - width:],
                           layer.values.index_select(0, idx)[:, :, W - width:]))
        self._set(layers, width)
        return snaps

    def reset(self) -> None:
        self.seqs = []
        self.cache = self._new_cache()
        self.width = 0

    def _new_cache(self):
        return growing_cache(self.model.config) if self.repad else DynamicCache(config=self.model.config)

    @staticmethod
    def part_from_snapshot(seq, snap: KVSnapshot) -> Part:
        seq.kv_len = snap.length
        return Part([seq], snap.layers)

    @staticmethod
    def part_from_cache(seq) -> Part:
        """``seq``'s own one-row cache as a Part (an empty batch adopts the cache without a copy)."""
        cache, seq.cache = seq.cache, None
        return Part([seq], [(layer.keys, layer.values) for layer in cache.layers], cache, seq.kv_len)

    def row_kv(self, i: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Row i's K/V as views, per layer (k, v), each (1, kv_heads, kv_len, head_dim)."""
        W, n = self.width, self.seqs[i].kv_len
        return [(layer.keys[i:i + 1, :, W - n:], layer.values[i:i + 1, :, W - n:]) for layer in self.cache.layers]

    def bytes_per_token(self) -> int:
        """K/V bytes one token of one sequence takes (0 before the first forward)."""
        if not self.seqs:
            return 0
        return sum(2 * layer.keys.shape[1] * layer.keys.shape[3] * layer.keys.element_size()
                   for layer in self.cache.layers)

    def kv_bytes(self) -> int:
        """Bytes of K/V buffers held by the batch (padding and headroom included)."""
        if not self.seqs or not self.repad:
            return 0
        return sum(layer.nbytes() for layer in self.cache.layers)

    def _set(self, layers, width: int) -> None:
        if len(self.cache.layers) != len(layers):
            raise RuntimeError(f"cache has {len(self.cache.layers)} layers, K/V for {len(layers)}")
        for layer, (k, v) in zip(self.cache.layers, layers):
            layer.adopt(k, v)
        self.width = width
