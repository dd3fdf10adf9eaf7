"""llm.* syscalls: an agent's way to the kernel's LLM engine."""

from __future__ import annotations

import time

from kernel import messages
from kernel.llm.request import LLMError, LLMRequest
from kernel.process.table import LLMCallTiming, ProcState
from kernel.syscall import CHAT_MESSAGES, DEFERRED, SyscallFailure, register


@register("llm.chat", {
    "required": ["messages"],
    "properties": {
        "messages": CHAT_MESSAGES,
        "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": 32768},
        "temperature": {"type": "number", "minimum": 0, "maximum": 5},
        "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "stop": {"type": "array", "maxItems": 16, "items": {"type": "string", "minLength": 1, "maxLength": 256}},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    },
}, "chat completion with the kernel's model; returns text, tokens_in/out, finish_reason")
def llm_chat(kernel, ap, call):
    pcb = ap.pcb
    a = call.args
    kernel.access.llm_check(pcb)  # token quota: EDQUOT at once when the group's is spent
    timing = LLMCallTiming(created=time.time())
    with kernel.table.lock:
        pcb.llm_calls.append(timing)
    max_new = min(a.get("max_new_tokens", kernel.config.max_new_tokens), kernel.config.max_new_tokens)
    held = {"group": pcb.group, "tokens": 0}  # the quota reservation of this call (kernel/access/quota.py)

    def admit(prompt_tokens: int, want: int) -> int:
        """Engine: the call is admitted with ``prompt_tokens``; reserve them plus the granted max_new."""
        group = held["group"] = pcb.group
        try:
            grant = kernel.access.llm_admit(pcb, group, prompt_tokens, want)
        except SyscallFailure as e:
            raise LLMError(e.code, e.message) from None
        held["tokens"] = prompt_tokens + grant
        return grant

    def on_state(req, s):
        kernel.table.set_state(pcb, ProcState.READY if s == "ready" else ProcState.WAITING_LLM)

    def on_done(req, result, error):
        now = time.time()
        with kernel.table.lock:
            timing.finished = now
            if timing.started is None:
                timing.started = now
            if result is not None:
                timing.tokens_in = result.get("tokens_in", timing.tokens_in)
                timing.tokens_out = result.get("tokens_out", 0)
                pcb.llm_time += result.get("llm_time_s", 0.0)
            used = (timing.tokens_in + timing.tokens_out) if held["tokens"] or result is not None else 0
        kernel.access.quotas.llm_settle(held["group"], held["tokens"], used)
        if error is not None:
            data = messages.error(call.id, getattr(error, "code", messages.EIO), getattr(error, "message", str(error)))
        else:
            result = dict(result, waiting_s=timing.waiting, turnaround_s=timing.turnaround)
            data = messages.ok(call.id, result)
        kernel.table.set_state(pcb, ProcState.RUNNING)
        kernel.reply_later(pcb.pid, data)

    kernel.engine.submit(LLMRequest(
        pid=pcb.pid, req_id=call.id, messages=a["messages"], max_new_tokens=max_new,
        temperature=a.get("temperature", 0.0), top_p=a.get("top_p", 1.0), stop=a.get("stop", []),
        seed=a.get("seed"), priority=pcb.priority, timing=timing, on_done=on_done, on_state=on_state, admit=admit))
    return DEFERRED
