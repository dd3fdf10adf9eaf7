"""llm.* syscalls: an agent's way to the kernel's LLM engine."""

from __future__ import annotations

import logging
import time

from kernel import param
from kernel.llm import constrain
from kernel.llm.request import LLMError, LLMRequest, SamplingParams
from kernel.process.table import LLMCallTiming, ProcState
from kernel.protocol import messages
from kernel.syscall import CHAT_MESSAGES, DEFERRED, Entries, Reply, SyscallFailure

SYSCALLS = Entries("llm")

sched_log = logging.getLogger("aios.scheduler")  # the scheduler log: one line per call event
# Shapes only: the schemas inside are checked by constrain.check_schemas (EINVAL with the reason).
RESPONSE_FORMAT = {
    "type": "object", "required": ["type"], "additionalProperties": False,
    "properties": {"type": {"enum": ["text", "json_object", "json_schema"]},
                   "json_schema": {"type": "object", "required": ["schema"],
                                   "properties": {"name": {"type": "string", "maxLength": 64},
                                                  "description": {"type": "string", "maxLength": 4096},
                                                  "schema": {"type": "object"}, "strict": {"type": "boolean"}}}},
}
TOOLS = {
    "type": "array", "minItems": 1, "maxItems": param.MAX_TOOLS,
    "items": {"type": "object", "required": ["type", "function"], "additionalProperties": False,
              "properties": {"type": {"const": "function"},
                             "function": {"type": "object", "required": ["name"], "additionalProperties": False,
                                          "properties": {"name": {"type": "string",
                                                                  "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                                                         "description": {"type": "string", "maxLength": 4096},
                                                         "parameters": {"type": "object"},
                                                         "strict": {"type": "boolean"}}}}},
}
TOOL_CHOICE = {"oneOf": [
    {"enum": ["auto", "required", "none"]},
    {"type": "object", "required": ["type", "function"], "additionalProperties": False,
     "properties": {"type": {"const": "function"},
                    "function": {"type": "object", "required": ["name"], "additionalProperties": False,
                                 "properties": {"name": {"type": "string", "maxLength": 64}}}}},
]}


def _check_tool_turns(msgs: list[dict]) -> None:
    """Earlier tool calls sit on assistant messages and call ids on tool messages; arguments nest at
    most MAX_CALL_DEPTH deep (every later step, rendering and encoding, may recurse)."""
    for i, m in enumerate(msgs):
        for key, role in (("tool_calls", "assistant"), ("tool_call_id", "tool")):
            if key in m and m["role"] != role:
                raise SyscallFailure(messages.EINVAL, f"llm.chat: messages[{i}]: {key} belongs to a {role} "
                                                      f"message, not a {m['role']} one")
        todo = [(c["arguments"], 1) for c in m.get("tool_calls", ())]
        while todo:
            value, depth = todo.pop()
            if depth > param.MAX_CALL_DEPTH:
                raise SyscallFailure(messages.EINVAL, f"llm.chat: messages[{i}]: tool call arguments nest deeper "
                                                      f"than {param.MAX_CALL_DEPTH}")
            children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
            todo += [(v, depth + 1) for v in children if isinstance(v, (dict, list))]


@SYSCALLS.register("llm.chat", {
    "required": ["messages"],
    "properties": {
        "messages": CHAT_MESSAGES,
        "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": 32768},
        "temperature": {"type": "number", "minimum": 0, "maximum": 5},
        "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "stop": {"type": "array", "maxItems": 16, "items": {"type": "string", "minLength": 1, "maxLength": 256}},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        "response_format": RESPONSE_FORMAT,
        "tools": TOOLS,
        "tool_choice": TOOL_CHOICE,
    },
}, "chat completion with the kernel's model; returns text, tokens_in/out, finish_reason "
   "(and tool_calls when tools are given); response_format/tools constrain the output")
def llm_chat(kernel, ap, call):
    pcb = ap.pcb
    a = call.args
    _check_tool_turns(a["messages"])
    try:  # only the size here: the schemas are checked on the llm-grammar thread, off this loop
        constrain.check_size(a.get("response_format"), a.get("tools"))
    except (constrain.ConstraintError, RecursionError) as e:
        raise SyscallFailure(messages.EINVAL, f"llm.chat: {e or 'schema nested too deeply'}") from None
    kernel.access.llm_check(pcb)  # token quota: EDQUOT at once when the group's is spent
    timing = LLMCallTiming(created=time.time())
    with kernel.table.lock:
        pcb.llm_calls.append(timing)
    # What the call asks for. The engine grants it once, when it admits the call: at most --max_new_tokens
    # and the model's positions (kernel/llm/engine.py, remote.py), then what the token quota leaves (admit).
    max_new = a.get("max_new_tokens", kernel.config.llm.max_new_tokens)
    held = {"group": pcb.group, "tokens": 0}  # the quota reservation of this call (kernel/access/quota.py)
    reply = Reply(kernel, pcb.pid, call.id, before=lambda: kernel.table.transition(pcb, ProcState.RUNNING))
    trace, span = kernel.trace, reply.span  # the call's span: queue, prefill, decode, tokens (kernel/trace)
    trace.llm_begin(span, max_new)

    def admit(prompt_tokens: int, want: int) -> int:
        """Engine: the call is admitted with ``prompt_tokens``; reserve them plus the granted max_new."""
        group = held["group"] = pcb.group
        try:
            grant = kernel.access.llm_admit(pcb, group, prompt_tokens, want)
        except SyscallFailure as e:
            raise LLMError(e.code, e.message) from None
        held["tokens"] = prompt_tokens + grant
        timing.max_new = grant
        trace.note(span, max_new=grant)
        return grant

    def on_state(req, s):
        """The engine queued (ready), admitted (running) or switched out (preempted) the call."""
        now = time.time()
        with kernel.table.lock:
            if s == "running" and timing.started is None:
                timing.started = now
            timing.preemptions = req.preemptions  # the request counts them (LLMRequest.state)
        kernel.table.transition(pcb, ProcState.LLM_RUNNING if s == "running" else ProcState.LLM_QUEUED)
        trace.llm_state(span, s, req.preemptions)
        call_event(req, s, timing)

    def on_done(req, result, error):
        now = time.time()
        with kernel.table.lock:
            timing.finished = now
            if timing.started is None:
                timing.started = now
            if result is not None:
                timing.tokens_in = result.get("tokens_in", 0)
                timing.tokens_out = result.get("tokens_out", 0)
                pcb.llm_time += result.get("llm_time_s", 0.0)
            else:
                timing.tokens_in = req.tokens_in  # counted before it failed (0 if never)
            used = (timing.tokens_in + timing.tokens_out) if held["tokens"] or result is not None else 0
        kernel.access.quotas.llm_settle(held["group"], held["tokens"], used)
        first_token_at = result.get("first_token_at") if result is not None else None
        trace.llm_done(span, result, first_token_at)  # before the reply ends the span
        if error is not None:
            reply.error(error)
        else:
            result = dict(result, waiting_s=timing.waiting, turnaround_s=timing.turnaround)
            result.pop("first_token_at", None)  # the engine's, for the trace
            reply.ok(result)
        call_event(req, "finish", timing, result, error)

    req = LLMRequest(
        pid=pcb.pid, req_id=call.id, messages=a["messages"],
        sampling=SamplingParams(max_new_tokens=max_new, temperature=a.get("temperature", 0.0),
                                top_p=a.get("top_p", 1.0), stop=tuple(a.get("stop", ())), seed=a.get("seed")),
        priority=pcb.priority, on_done=on_done, on_state=on_state, admit=admit,
        response_format=a.get("response_format"), tools=a.get("tools"), tool_choice=a.get("tool_choice"),
        traceparent=trace.traceparent(span))
    if req.constrained and not hasattr(kernel.engine, "grammars"):
        _checks.submit(lambda: _check_then_submit(kernel.engine, req))  # a remote engine: check, then pass on
    else:
        kernel.engine.submit(req)  # the local engine checks and compiles on its llm-grammar thread
    return DEFERRED


_checks = constrain.Compiler(None)  # a worker thread for remote engines' schema checks (no tokenizer)


def _check_then_submit(engine, req: LLMRequest) -> None:
    try:
        constrain.check_schemas(req.response_format, req.tools, req.tool_choice)
    except constrain.ConstraintError as e:
        return req.finish(error=LLMError(messages.EINVAL, f"llm.chat: {e}"))
    engine.submit(req)


def call_event(req, what: str, timing: LLMCallTiming, result: dict | None = None, error=None) -> None:
    """One scheduler-log line per call event (times in seconds since the call was made):

    submit   pid=3 call=7 prio=0 max_new=64                     (queued for the first time)
    admit    pid=3 call=7 at=0.412 preemptions=0                (into the batch: decoding starts or resumes)
    preempt  pid=3 call=7 preemptions=1 at=2.031                (out of the batch, back in the queue)
    finish   pid=3 call=7 tokens_in=92 tokens_out=16 waiting=0.412 turnaround=3.020 preemptions=1 reason=stop
    finish   pid=3 call=7 error=ECANCELED ...
    """
    if not sched_log.isEnabledFor(logging.INFO):
        return
    what = {"queued": "submit", "preempted": "preempt"}.get(what, what)
    now = time.time()
    if what == "submit":
        sched_log.info("submit pid=%d call=%s prio=%d max_new=%d", req.pid, req.req_id, req.priority,
                       timing.max_new or req.sampling.max_new_tokens)
    elif what == "running":
        sched_log.info("admit pid=%d call=%s at=%.3f preemptions=%d", req.pid, req.req_id,
                       now - timing.created, timing.preemptions)
    elif what == "preempt":
        sched_log.info("preempt pid=%d call=%s preemptions=%d at=%.3f", req.pid, req.req_id, timing.preemptions,
                       now - timing.created)
    else:
        outcome = (f"error={getattr(error, 'code', 'EIO')}" if error is not None
                   else f"reason={(result or {}).get('finish_reason', '?')}")
        sched_log.info("finish pid=%d call=%s tokens_in=%d tokens_out=%d waiting=%.3f turnaround=%.3f "
                       "preemptions=%d %s", req.pid, req.req_id, timing.tokens_in, timing.tokens_out,
                       timing.waiting or 0.0, timing.turnaround or 0.0, timing.preemptions, outcome)
