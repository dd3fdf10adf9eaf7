"""Context switch: what a preempted generation keeps, and the KV memory budget.

Preempting a sequence (scheduler decision, engine thread) keeps on its
Sequence object:

- the prompt and generated ids (``Sequence.ids``) and its sampler state (its
  ``torch.Generator``), always;
- a KVSnapshot of its K/V cache rows, if the ContextStore's budget has room.

Resuming restores the snapshot into the batch without any forward pass; when
the KV was dropped, the engine recomputes it from the ids (one prefill over
prompt + generated tokens). Either way decoding continues with the same next
token, so greedy output does not depend on preemption (the invariant
tests/kernel/test_engine_context.py checks token for token).

Budget policy: a snapshot that does not fit is dropped at once rather than
evicting older ones: the sequence just preempted is the one that will wait
longest (rr puts it at the back of the queue), so its KV is the least
valuable to keep. Owned by the engine thread; ``held_bytes`` is read by
stats() as a plain int (a torn read is impossible for a Python int).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KVSnapshot:
    """K/V of one sequence: per layer (k, v), each (1, kv_heads, length, head_dim)."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    length: int  # tokens covered (== Sequence.kv_len when it was taken)
    nbytes: int


def snapshot_nbytes(layers) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)


class ContextStore:
    def __init__(self, budget_bytes: int):
        self.budget_bytes = max(0, int(budget_bytes))
        self.held_bytes = 0
        self.restored = 0   # resumes from a snapshot
        self.recomputed = 0  # resumes that recomputed the KV

    def fits(self, nbytes: int) -> bool:
        return self.held_bytes + nbytes <= self.budget_bytes

    def keep(self, seq, snap: KVSnapshot | None) -> None:
        """Attach ``snap`` to a preempted ``seq`` if it fits; else the KV is dropped."""
        if snap is not None and self.fits(snap.nbytes):
            seq.kv = snap
            self.held_bytes += snap.nbytes
        else:
            seq.kv = None
            seq.kv_len = 0  # everything is pending again: recompute on resume

    def take(self, seq) -> KVSnapshot | None:
        """Detach the snapshot of a sequence being resumed (None: recompute)."""
        snap, seq.kv = seq.kv, None
        if snap is not None:
            self.held_bytes -= snap.nbytes
            self.restored += 1
        else:
            self.recomputed += 1
        return snap

    def release(self, seq) -> None:
        """Free a cancelled or failed sequence's snapshot, if any."""
        if seq.kv is not None:
            self.held_bytes -= seq.kv.nbytes
            seq.kv = None
