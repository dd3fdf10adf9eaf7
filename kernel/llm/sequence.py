"""Sequence: one LLMRequest's decoding state inside the local engine.

A Sequence is the engine's "process control block" for a generation. It is
created when the engine thread takes a request in, and owned by that thread
alone from then on (no lock): the scheduler moves it between the waiting
queue and the batch, the batch decodes it, the context store holds its KV
while it is preempted.

Token bookkeeping (the invariant every other module relies on)::

    ids      = prompt ids + generated ids          (python ints)
    kv_len   = how many leading ids have K/V in a cache (running: in the
               batch; preempted: in ``kv`` or 0 when the KV was dropped)
    pending  = ids[kv_len:]  the tokens the next forward pass must feed

A running sequence always has exactly one pending token (its last sampled
id); a new one has its whole prompt pending; a resumed one whose KV was
dropped has everything pending and recomputes it. Feeding the pending tokens
yields the logits of the next token in every case, so a recompute is one
decode step that happens to be longer.
"""

from __future__ import annotations

import enum
import time

from kernel.llm.request import LLMRequest


class SeqStatus(str, enum.Enum):
    WAITING = "waiting"      # new, in the scheduler's queue
    RUNNING = "running"      # a row of the decode batch
    PREEMPTED = "preempted"  # back in the queue with a saved context
    FINISHED = "finished"    # finish() was called (result or error)


class Sequence:
    def __init__(self, req: LLMRequest, prompt_ids: list[int], max_new: int, eos_ids: frozenset[int],
                 seed: int):
        self.req = req
        self.prompt_len = len(prompt_ids)
        self.ids: list[int] = list(prompt_ids)
        self.max_new = max_new
        self.eos_ids = eos_ids
        self.status = SeqStatus.WAITING
        self.kv_len = 0
        self.kv = None  # saved K/V while preempted: kernel.llm.context.KVSnapshot or None
        # Own one-row cache while admitted but not yet in the batch (a prefix-cache hit, or a
        # prompt prefilled in chunks): a DynamicCache whose columns [0, kv_len) are filled.
        self.cache = None
        self.prefix_hit = 0  # prompt tokens taken from the prefix cache instead of prefilled
        # Sampler state: a per-request generator, created on the first sampled
        # token; it travels with the sequence, so preemption never perturbs it.
        self.seed = seed
        self.generator = None
        # Scheduling fields (monotonic seconds, tokens):
        self.arrival = req.seq
        self.enqueued = time.monotonic()  # last time it entered the waiting queue
        self.slice_tokens = 0  # tokens decoded since it was last admitted (rr quantum)
        self.admitted_rank = 0.0  # priority policy: effective priority when admitted
        self.llm_time_s = 0.0  # engine seconds attributed to this request
        self.finish_reason: str | None = None
        self.first_token_at: float | None = None  # time.time() of its first generated token (the trace's prefill end)
        # Constrained decoding: a kernel.llm.logitmask.Matcher, or None (free text). It has
        # consumed exactly the generated ids (logitmask checks it before every mask).
        self.matcher = None
        self.streamed = ""  # text given to req.on_text so far (a streaming request)

    # -- views -------------------------------------------------------------------
    @property
    def priority(self) -> int:
        return self.req.priority

    @property
    def generated(self) -> list[int]:
        return self.ids[self.prompt_len:]

    @property
    def n_generated(self) -> int:
        return len(self.ids) - self.prompt_len

    @property
    def pending(self) -> list[int]:
        return self.ids[self.kv_len:]

    @property
    def cancelled(self) -> bool:
        return self.req.cancelled

    # -- decoding ----------------------------------------------------------------
    def append(self, token: int, tokenizer) -> bool:
        """Record a sampled token; returns True when the sequence is now finished.

        EOS ends it ("stop", the EOS id counts as an output token but is not
        in the text); so does a stop string in the decoded text ("stop", the
        text is cut before it) or ``max_new`` tokens ("length"). A request that
        streams (``on_text``) gets the new text, as final_text will have it.
        """
        done = self._append(token, tokenizer)
        if self.req.on_text is not None:
            self._stream(tokenizer, done)
        return done

    def _stream(self, tokenizer, done: bool) -> None:
        """Give on_text what is new of the text the result will have. Until the end, a tail that may be the
        start of a stop string is held back (as OpenAI's and vLLM's streams do), and so is a character whose
        bytes are not all here yet."""
        text = self.final_text(tokenizer)
        if not done:
            if text.endswith("\ufffd"):
                return
            held = max((k for s in self.req.sampling.stop for k in range(1, len(s)) if text.endswith(s[:k])),
                       default=0)
            text = text[:len(text) - held]
        piece = text[len(self.streamed):]
        if piece:
            self.streamed = text
            self.req.on_text(piece)

    def _append(self, token: int, tokenizer) -> bool:
        self.ids.append(token)
        self.slice_tokens += 1
        if self.first_token_at is None:
            self.first_token_at = time.time()
        if self.matcher is not None:
            self.matcher.advance(token)
            if self.matcher.error is not None:
                self.finish_reason = "error"  # the engine answers EINVAL with matcher.error
                return True
        if token in self.eos_ids:
            self.finish_reason = "stop"
            return True
        stop = self.req.sampling.stop
        if stop:
            # Only the tail can hold a stop string completed by this token; a
            # character is at most 4 byte-level tokens.
            window = 4 * max(map(len, stop)) + 4
            tail = tokenizer.decode(self.generated[-window:], skip_special_tokens=True)
            if any(s in tail for s in stop):
                self.finish_reason = "stop"
                return True
        if self.matcher is not None and self.matcher.done:
            self.finish_reason = "stop"  # the grammar is complete: nothing but EOS could follow
            return True
        if self.n_generated >= self.max_new:
            self.finish_reason = "length"
            return True
        return False

    def final_text(self, tokenizer) -> str:
        text = tokenizer.decode(self.generated, skip_special_tokens=True)
        cuts = [i for i in (text.find(s) for s in self.req.sampling.stop) if i >= 0]
        return text[:min(cuts)] if cuts else text

    def __repr__(self) -> str:
        return (f"Sequence(pid={self.req.pid}, req={self.req.req_id}, {self.status.value}, "
                f"prompt={self.prompt_len}, gen={self.n_generated}, kv={self.kv_len})")
