"""Semantic and hybrid ranking of one process's memory blocks.

semantic: cosine similarity of all-MiniLM-L6-v2 vectors (unit length, so a
dot product), hits below MIN_COSINE dropped. hybrid: reciprocal rank fusion
(score = sum of 1 / (RRF_K + rank) over the BM25 and the semantic ranking),
so a block found by both outranks one found by either, and a block that
shares no word with the query can still be found by meaning.
"""

from __future__ import annotations

import numpy as np

from kernel.memory.block import Block
from kernel.memory.space import Space

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
MIN_COSINE = 0.2  # semantic hits below this similarity are noise for all-MiniLM-L6-v2


def fuse(sp: Space, bm: list[tuple[int, float]], q, kind: str | None, k: int, mode: str) -> list[tuple[Block, dict]]:
    """The top k of ``sp`` for query vector ``q`` (mode semantic or hybrid) and the BM25 ranking ``bm``."""
    if sp.vecs is None:
        ids = [i for i, b in sp.blocks.items() if b.vec is not None]
        sp.vecs = (ids, np.stack([sp.blocks[i].vec for i in ids]) if ids else np.zeros((0, q.shape[0]), q.dtype))
    all_ids, mat = sp.vecs
    sims = mat @ q  # (n,)
    ids = [i for i in all_ids if kind is None or sp.blocks[i].kind == kind]
    cos = {i: float(s) for i, s in zip(all_ids, sims)}
    sem = sorted((i for i in ids if cos[i] >= MIN_COSINE), key=lambda i: (-cos[i], i))
    bm_score = dict(bm)
    if mode == "semantic":
        ranked = [(i, cos[i]) for i in sem]
    else:  # hybrid: reciprocal rank fusion of the two rankings
        fused: dict[int, float] = {}
        for ranking in ([i for i, _ in bm], sem):
            for r, i in enumerate(ranking):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + r + 1)
        ranked = sorted(fused.items(), key=lambda it: (-it[1], it[0]))
    return [(sp.blocks[i], {"score": s, "bm25": bm_score.get(i, 0.0), "cosine": cos.get(i)})
            for i, s in ranked[:k]]
