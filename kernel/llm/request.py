"""LLMRequest: one llm.chat call as both engines see it (no torch here).

The engines never write the process table: they report a call's progress
through ``state`` ("queued" when queued, "running" when admitted, "preempted"
when switched out) and its outcome through ``finish`` (the result carries
tokens_in/out, llm_time_s, preemptions); kernel/llm/syscalls.py turns these
into the process's LLMCallTiming under the table's lock.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from kernel.protocol.messages import CodedError

_seq = itertools.count()


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How one call is sampled: the same for the local engine and every remote backend."""

    max_new_tokens: int
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None  # None: the engine's --seed (local), the server's choice (remote)


@dataclass
class LLMRequest:
    pid: int
    req_id: int
    messages: list[dict]
    sampling: SamplingParams
    priority: int = 0
    # Constrained decoding (kernel.llm.constrain): OpenAI-shaped, None = free text.
    response_format: dict | None = None
    tools: list[dict] | None = None
    tool_choice: Any = None
    # on_done(request, result, error): exactly one of result/error is set.
    on_done: Callable[["LLMRequest", dict | None, Exception | None], None] | None = None
    # on_state(request, "queued" | "running" | "preempted"): queued, admitted (decoding starts or resumes),
    # switched out (back in the queue).
    on_state: Callable[["LLMRequest", str], None] | None = None
    # admit(prompt_tokens, max_new) -> granted max_new: called once by the engine when it admits the call
    # (the token quota reserves them); raises LLMError (EDQUOT) to refuse it.
    admit: Callable[[int, int], int] | None = None
    seq: int = field(default_factory=lambda: next(_seq))  # arrival order
    cancelled: bool = False
    matcher: Any = None  # local engine: the compiled kernel.llm.logitmask.Matcher, set before intake
    decision_s: float = 0.0  # local engine: seconds spent deciding an auto tool call (kernel.llm.relevance)
    fan_out: Any = None  # local engine: what kernel.llm.fanout completes the reply's calls from, set before intake
    settle: Any = None  # local engine: (tool parameters by name, conversation text) for kernel.llm.ground.settle
    # Local engine: an auto request the kernel decided to answer with a call may be answered in text after all,
    # once (kernel.llm.ground.wanting); then spent holds what the first reply cost (tokens out, engine seconds,
    # tokens left of the grant), so the result and the quota count both replies as one call.
    may_answer_in_text: bool = False
    spent: tuple[int, float, int] | None = None
    tokens_in: int = 0  # local engine: the prompt's tokens once counted (an error after that still used them)
    # Times an engine switched it out: counted here only (state("preempted")), and read from here by the
    # result, the process table, the scheduler log and the trace.
    preemptions: int = 0
    traceparent: str | None = None  # W3C trace context of the call's span: remote backends send it on
    # Local engine, for the model server (kernel/llm/serve): on_text(piece) gets each piece of new text as it
    # is decoded (engine thread; stop strings cut as in the result), and continue_final continues the last,
    # assistant, message instead of starting a new turn (vLLM's continue_final_message: a cut stream resumed).
    on_text: Callable[[str], None] | None = None
    continue_final: bool = False

    @property
    def constrained(self) -> bool:
        fmt = (self.response_format or {}).get("type", "text")
        return fmt != "text" or (bool(self.tools) and self.tool_choice != "none")

    def finish(self, result: dict | None = None, error: Exception | None = None) -> None:
        if self.on_done is not None:
            cb, self.on_done = self.on_done, None  # exactly once
            cb(self, result, error)

    def state(self, s: str) -> None:
        if s == "preempted":
            self.preemptions += 1
        if self.on_state is not None:
            self.on_state(self, s)


def prompt_token_bound(messages: list[dict]) -> int:
    """An upper bound of a chat's prompt tokens without its tokenizer (remote models): every token of a
    byte-level BPE covers at least one UTF-8 byte; 8 tokens per message cover the chat template, and
    an assistant's tool calls count as their JSON."""
    return 8 + sum(8 + len(str(m.get("content", "")).encode()) + len(str(m.get("tool_call_id", "")).encode())
                   + (len(json.dumps(m["tool_calls"], ensure_ascii=False).encode()) if m.get("tool_calls") else 0)
                   for m in messages)


class LLMError(CodedError):
    """An LLM call failed; the syscall layer answers the agent with it."""


def result(text: str, tokens_in: int, tokens_out: int, finish_reason: str, **extra: Any) -> dict:
    return {"text": text, "tokens_in": tokens_in, "tokens_out": tokens_out,
            "finish_reason": finish_reason, **extra}
