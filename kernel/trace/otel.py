"""Spans in OpenTelemetry's terms: GenAI semantic-convention names and attributes, OTLP/JSON records.

Names (https://opentelemetry.io/docs/specs/semconv/gen-ai/):

    a process's root span   ``invoke_agent {agent}``   gen_ai.operation.name = invoke_agent
    llm.chat                ``chat {model}``           gen_ai.operation.name = chat (kind CLIENT)
    tool.call               ``execute_tool {tool}``    gen_ai.operation.name = execute_tool
    any other syscall       its name (``fs.write``)    aios.syscall

GenAI attributes: gen_ai.agent.name/.id, gen_ai.provider.name, gen_ai.request.model,
gen_ai.request.max_tokens, gen_ai.usage.input_tokens, gen_ai.usage.output_tokens,
gen_ai.usage.cache_read.input_tokens, gen_ai.response.finish_reasons, gen_ai.tool.name,
gen_ai.tool.type, error.type. What only AIOS knows goes under ``aios.*`` (pid, the
arguments in brief, reply bytes, wait/prefill/decode seconds, preemptions, policy,
backend, confirmation). Content (gen_ai.tool.call.arguments/result, aios.result) is
there only with --trace-content. Preemptions, resumes and kill requests are span events.

``attributes(span)`` is a flat dict of str/int/float/bool/list values (what the SDK takes);
``otlp_json(span)`` the same span with OTLP/JSON field names (``traceId``, ``startTimeUnixNano``,
``attributes: [{"key", "value": {"stringValue": ...}}]``), one line of ``--trace-file``.
"""

from __future__ import annotations

KIND = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3}  # OTLP SpanKind numbers
PROVIDER = {"hf_local": "aios", "openai_compat": "openai", "gemini": "gcp.gemini"}
_LLM_AIOS = ("wait_s", "prefill_s", "decode_s", "preemptions", "compute_s", "policy", "backend", "server", "retries",
             "tool_calls")


def name_and_kind(span) -> tuple[str, str]:
    a = span.attrs or {}
    if span.kind == "agent":
        return f"invoke_agent {a.get('agent', '?')}", "INTERNAL"
    if span.name == "llm.chat":
        return f"chat {a.get('model', '?')}", "CLIENT"
    if span.name == "tool.call" and a.get("tool"):
        return f"execute_tool {a['tool']}", "INTERNAL"
    return span.name, "SERVER"  # the kernel serving an agent's request


def attributes(span, content: bool = False) -> dict:
    a = span.attrs or {}
    out: dict = {"aios.pid": span.pid}
    if span.args:
        out["aios.args"] = span.args
    if span.size is not None:
        out["aios.reply.bytes"] = span.size
    if span.error:
        out["error.type"] = span.error
    if span.result is not None:
        out["aios.result"] = span.result
    if span.kind == "agent":
        out.update({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": a.get("agent", "?"),
                    "gen_ai.agent.id": str(span.pid)})
        for key in ("parent", "priority", "group", "confinement", "state", "exit_code", "exit_signal"):
            if a.get(key) is not None and a.get(key) != "":
                out[f"aios.{key}"] = a[key]
        return out
    out["aios.syscall"] = span.name
    if span.name == "llm.chat":
        out.update({"gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": PROVIDER.get(a.get("backend"), str(a.get("backend"))),
                    "gen_ai.request.model": a.get("model", "?")})
        if a.get("remote_model"):
            out["gen_ai.response.model"] = a["remote_model"]
        for key, attr in (("max_new", "gen_ai.request.max_tokens"), ("tokens_in", "gen_ai.usage.input_tokens"),
                          ("tokens_out", "gen_ai.usage.output_tokens"),
                          ("cached", "gen_ai.usage.cache_read.input_tokens")):
            if a.get(key) is not None:
                out[attr] = a[key]
        if a.get("finish"):
            out["gen_ai.response.finish_reasons"] = [a["finish"]]
        for key in _LLM_AIOS:
            if a.get(key) is not None:
                out[f"aios.llm.{key}"] = a[key]
    elif span.name == "tool.call" and a.get("tool"):
        out.update({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": a["tool"],
                    "gen_ai.tool.type": "extension" if a.get("mcp_server") else "function"})
        if a.get("mcp_server"):
            out["aios.tool.mcp_server"] = a["mcp_server"]
        if a.get("side_effect"):
            out["aios.tool.side_effect"] = a["side_effect"]
        if content:  # --trace-content: the arguments and result are previews already
            out["gen_ai.tool.call.arguments"] = span.args
            if span.result is not None:
                out["gen_ai.tool.call.result"] = span.result
    if a.get("confirm"):
        out["aios.confirm"] = a["confirm"]
        if a.get("confirm_by"):
            out["aios.confirm.by"] = a["confirm_by"]
    return out


def _value(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # int64 as a string (OTLP/JSON, proto3 JSON mapping)
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    return {"stringValue": str(v)}


def kv(attrs: dict) -> list[dict]:
    return [{"key": k, "value": _value(v)} for k, v in attrs.items()]


def ns(t: float) -> int:
    return int(t * 1e9)


def events(span) -> list[tuple]:
    """(time, name, attrs) of the span's events, with an LLM call's admission and first token added."""
    a = span.attrs or {}
    out = [(a[k], n, None) for k, n in (("admitted_at", "admitted"), ("first_token_at", "first_token")) if a.get(k)]
    return sorted(out + list(span.events or ()), key=lambda e: e[0])


def otlp_json(span, content: bool = False) -> dict:
    name, kind = name_and_kind(span)
    rec = {"traceId": f"{span.trace_id:032x}", "spanId": f"{span.span_id:016x}",
           "parentSpanId": f"{span.parent_id:016x}" if span.parent_id else "",
           "name": name, "kind": KIND[kind],
           "startTimeUnixNano": str(ns(span.start)), "endTimeUnixNano": str(ns(span.end or span.start)),
           "attributes": kv(attributes(span, content)),
           "events": [{"timeUnixNano": str(ns(t)), "name": n, "attributes": kv(a or {})} for t, n, a in events(span)],
           "status": {"code": 2, "message": span.error} if span.error else {"code": 0}}
    if span.lost_events:
        rec["droppedEventsCount"] = span.lost_events
    return rec
