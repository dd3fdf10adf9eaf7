"""Next-token choice for a batch: greedy by default, temperature/top-p per row.

Each sampling sequence draws from its own ``torch.Generator`` seeded with the
request's seed (or the kernel's), created on its first sampled token. The
generator lives on the Sequence, so batching, preemption and resumption do
not change which random numbers a request sees.
"""

from __future__ import annotations

import torch


def choose(logits: torch.Tensor, seqs: list) -> list[int]:
    """logits: (B, V) float, next-token logits of row i for seqs[i]; returns B ids."""
    ids = logits.argmax(dim=-1).tolist()  # greedy for every row at once
    for i, seq in enumerate(seqs):
        if seq.req.sampling.temperature > 0:
            ids[i] = sample(logits[i], seq)
    return ids


def sample(row: torch.Tensor, seq) -> int:
    """row: (V,) logits. Temperature scaling, then nucleus (top-p) filtering."""
    if seq.generator is None:
        seq.generator = torch.Generator(device=row.device)
        seq.generator.manual_seed(seq.seed)
    probs = torch.softmax(row.float() / seq.req.sampling.temperature, dim=-1)
    top_p = seq.req.sampling.top_p
    if top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < top_p  # always keeps the most likely token
        sorted_p = sorted_p * keep
        pick = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=seq.generator)
        return int(order[pick])
    return int(torch.multinomial(probs, 1, generator=seq.generator))
