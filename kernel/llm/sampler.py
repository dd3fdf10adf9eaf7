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
    """row: (V,) logits of ``seq``, which samples: ``pick`` with its request's settings and generator."""
    if seq.generator is None:
        seq.generator = torch.Generator(device=row.device)
        seq.generator.manual_seed(seq.seed)
    return pick(row, seq.req.sampling.temperature, seq.req.sampling.top_p, seq.generator)


def pick(row: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> int:
    """row: (V,) logits -> one token id: the most likely at temperature 0, else temperature scaling, then
    nucleus (top-p) filtering, drawn from ``generator`` (on row's device). The engine's and kernel.llm.serve's."""
    if temperature <= 0:
        return int(row.argmax())
    probs = torch.softmax(row.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < top_p  # always keeps the most likely token
        sorted_p = sorted_p * keep
        drawn = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=generator)
        return int(order[drawn])
    return int(torch.multinomial(probs, 1, generator=generator))
