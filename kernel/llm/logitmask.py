"""Per-row logits masks for constrained sequences, inside the batched decode loop.

A constrained Sequence carries a ``Matcher`` (``seq.matcher``): the llguidance
matcher of its grammar, and how many of the sequence's generated tokens it has
consumed. Invariant, checked at every mask: ``matcher.consumed == seq.n_generated``.
Preemption keeps the Matcher on the Sequence with its ids, so a resumed sequence
continues the grammar where it stopped whether its KV was kept or recomputed;
``sync`` rolls the matcher back (or forward) should the ids ever be cut or
re-fed (a prefix cache that replays tokens, say), so state never drifts.

Rows without a matcher are untouched: constrained and free rows share a batch. A tool-call row
also gets its copy bias (``Matcher.copier``, kernel.llm.spans) on top of its mask.
Runs on the engine thread only.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("aios.engine")


class Matcher:
    def __init__(self, matcher, tools: bool, vocab: int):
        self.m = matcher          # llguidance.LLMatcher, owned by this sequence
        self.words = (vocab + 31) // 32  # int32 words of the matcher's mask (its tokenizer's vocab)
        self.tools = tools        # the reply is parsed for tool_calls when it ends
        self.consumed: list[int] = []  # generated tokens the matcher has taken, in order
        self.error: str | None = None  # set when the grammar failed (fuel, a token it refused)
        self.copier = None  # kernel.llm.spans.Copier: string arguments lean toward the conversation's words

    def sync(self, generated: list[int]) -> None:
        """Bring the matcher to exactly ``generated`` (rollback what differs, consume the rest)."""
        n = 0
        for a, b in zip(self.consumed, generated):
            if a != b:
                break
            n += 1
        if n < len(self.consumed):
            self.m.rollback(len(self.consumed) - n)
            del self.consumed[n:]
        for t in generated[n:]:
            self.advance(t)

    def advance(self, token: int) -> None:
        if self.error is None and not self.m.consume_token(token):
            self.error = self.m.get_error() or f"token {token} refused by the grammar"
        self.consumed.append(token)

    @property
    def done(self) -> bool:
        """The grammar admits nothing more (only EOS would follow)."""
        return self.m.is_stopped()


def apply(logits: torch.Tensor, seqs: list) -> None:
    """logits: (B, V) float, row i for seqs[i]; masks the constrained rows in place (and biases their copies)."""
    rows = [i for i, s in enumerate(seqs) if s.matcher is not None]
    if not rows:
        return
    V = logits.shape[1]
    width = max([(V + 31) // 32] + [seqs[i].matcher.words for i in rows])
    words = torch.zeros((len(rows), width), dtype=torch.int32)  # tokens past the tokenizer's vocab: never
    for j, i in enumerate(rows):
        mt = seqs[i].matcher
        mt.sync(seqs[i].generated)
        if mt.error is None:
            mt.m.unsafe_compute_mask_ptr(words[j].data_ptr(), 4 * mt.words)
            if mt.m.is_error():
                mt.error = mt.m.get_error()
        if mt.error is not None:
            words[j] = -1  # the row is failed after this step; any token will do
    # bit k of word w allows token 32*w + k (llguidance's layout)
    bits = (words.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1  # (R, width, 32)
    allowed = bits.reshape(len(rows), -1)[:, :V].bool()  # (R, V)
    idx = torch.tensor(rows, dtype=torch.long, device=logits.device)
    block = logits.index_select(0, idx)
    block.masked_fill_(~allowed.to(logits.device), float("-inf"))
    for j, i in enumerate(rows):  # the copy bias of tool-call rows (kernel.llm.spans)
        mt = seqs[i].matcher
        if mt.copier is not None and mt.error is None:
            try:
                favour = {t: b for t, b in mt.copier.tokens(seqs[i].generated).items() if t < V}
            except Exception:  # a nudge: its failure must not fail the row, nor the batch
                log.exception("copy bias failed; the call goes on without it")
                mt.copier, favour = None, {}
            if favour:
                block[j, torch.tensor(list(favour), dtype=torch.long, device=logits.device)] += torch.tensor(
                    list(favour.values()), dtype=block.dtype, device=logits.device)
    logits.index_copy_(0, idx, block)
