"""The Gemini-shaped routes of kernel.llm.serve (generateContent, REST/JSON, v1 and v1beta).

Enough of Google's protocol for the official ``google-genai`` client to talk
to the embedded model, so the gemini backend's request/response mapping is
exercised over real HTTP. Request: ``contents`` (role user|model; text, functionCall and
functionResponse parts: earlier calls read to the model as its own call text),
``systemInstruction``, ``generationConfig`` (maxOutputTokens, temperature,
topP, stopSequences, seed). Response: ``candidates[0].content.parts[0].text``,
``finishReason`` (STOP | MAX_TOKENS), ``usageMetadata``. The stream variant
(``:streamGenerateContent?alt=sse``) sends one event per token. Structured output:
``generationConfig.responseMimeType``/``responseJsonSchema`` (or ``responseSchema``),
``tools[].functionDeclarations`` and ``toolConfig.functionCallingConfig`` are mapped to
the OpenAI shapes and constrained like the chat route; a call comes back as a
``functionCall`` part.
"""

from __future__ import annotations

import itertools

from kernel.llm.constrain import as_text

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def error_body(code: int, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": STATUS.get(code, "UNKNOWN")}}


def _model(h, path: str) -> tuple[str, str]:
    """'/v1beta/models/NAME:verb' or '/v1/models/NAME:verb' -> (NAME, verb)."""
    rest = path.split("/models/", 1)[1]
    name, _, verb = rest.partition(":")
    return name, verb


def get_model(h, path: str) -> None:
    name, _ = _model(h, path)
    if name != h.model_name:
        return h.error(404, f"models/{name} is not found (serving {h.model_name})")
    h.send_json(200, {"name": f"models/{name}", "id": name, "object": "model", "displayName": name,
                      "inputTokenLimit": 8192,
                      "supportedGenerationMethods": ["generateContent", "streamGenerateContent"]})


def to_messages(req: dict) -> list[dict]:
    """Gemini contents -> llm.chat messages: functionCall parts are the model turn's tool_calls, and a
    user turn of functionResponse parts is one tool message per response (its ``result``)."""
    msgs = []
    system = req.get("systemInstruction") or req.get("system_instruction")
    if system:
        msgs.append({"role": "system", "content": "".join(p.get("text", "") for p in system.get("parts", []))})
    for c in req.get("contents") or []:
        parts = c.get("parts") or []
        text = "".join(p.get("text", "") for p in parts)
        calls = [p["functionCall"] for p in parts if isinstance(p.get("functionCall"), dict)]
        answers = [p["functionResponse"] for p in parts if isinstance(p.get("functionResponse"), dict)]
        if answers:
            msgs += [{"role": "tool", "content": str((a.get("response") or {}).get("result", ""))} for a in answers]
        elif c.get("role") == "model":
            msgs.append({"role": "assistant", "content": text,
                         **({"tool_calls": [{"name": f.get("name", ""), "arguments": f.get("args") or {}}
                                            for f in calls]} if calls else {})})
        else:
            msgs.append({"role": "user", "content": text})
    return as_text(msgs)


def openai_shapes(req: dict) -> tuple[dict | None, list | None, object]:
    """Gemini's structured-output fields -> (response_format, tools, tool_choice), OpenAI-shaped."""
    cfg = req.get("generationConfig") or {}
    fmt = None
    if cfg.get("responseMimeType") == "application/json":
        schema = cfg.get("responseJsonSchema") or cfg.get("response_json_schema") or cfg.get("responseSchema")
        fmt = ({"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}} if schema
               else {"type": "json_object"})
    tools = [{"type": "function", "function": {"name": d.get("name"), "description": d.get("description", ""),
                                               "parameters": d.get("parametersJsonSchema")
                                               or d.get("parameters_json_schema")  # google-genai 3.4 sends this
                                               or d.get("parameters") or {"type": "object"}}}
             for t in req.get("tools") or [] for d in t.get("functionDeclarations") or []] or None
    fcc = (req.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode, allowed = fcc.get("mode", "AUTO"), fcc.get("allowedFunctionNames") or []
    choice = {"ANY": "required", "NONE": "none"}.get(mode, "auto")
    if mode == "ANY" and len(allowed) == 1:
        choice = {"type": "function", "function": {"name": allowed[0]}}
    return fmt, tools, choice


def generate(h, path: str, req: dict) -> None:
    name, verb = _model(h, path)
    if name != h.model_name:
        return h.error(404, f"models/{name} is not found (serving {h.model_name})")
    if verb not in ("generateContent", "streamGenerateContent"):
        return h.error(400, f"unknown method {verb!r}")
    msgs = to_messages(req)
    if not any(m["role"] != "system" for m in msgs):
        return h.error(400, "contents must not be empty")
    cfg = req.get("generationConfig") or {}
    fmt, tools, choice = openai_shapes(req)
    try:
        h.gen.check(fmt, tools, choice)
    except ValueError as e:  # constrain.ConstraintError
        return h.error(400, f"bad responseSchema or tools: {e}")
    g = h.gen.generate(msgs, int(cfg.get("maxOutputTokens") or 256), float(cfg.get("temperature") or 0.0),
                       float(cfg.get("topP") or 1.0), cfg.get("seed"), cfg.get("stopSequences") or [],
                       response_format=fmt, tools=tools, tool_choice=choice)
    try:
        first = g.first()  # before any byte of the answer: an engine error is still an HTTP status
        if g.error is not None:
            return h.engine_error(g.error)
        calls = tools and choice != "none"  # the whole reply (g.first() waited for it): functionCall parts or text

        def response(text: str, final: bool) -> dict:
            res = g.result or {}
            if final and calls:
                parts = [{"functionCall": {"name": c["name"], "args": c["arguments"]}}
                         for c in res.get("tool_calls") or []] or [{"text": res.get("text", "")}]
            else:
                parts = [{"text": text}]
            cand = {"content": {"role": "model", "parts": parts}, "index": 0}
            out = {"candidates": [cand], "modelVersion": h.model_name}
            if final:
                cand["finishReason"] = FINISH.get(res.get("finish_reason"), "OTHER")
                p, n = res.get("tokens_in", 0), res.get("tokens_out", 0)
                out["usageMetadata"] = {"promptTokenCount": p, "candidatesTokenCount": n, "totalTokenCount": p + n}
            return out

        if verb == "generateContent":
            text = (first or "") + "".join(g)
            if g.error is not None:
                return h.engine_error(g.error)
            return h.send_json(200, response(text, True))
        h.start_sse()
        for piece in itertools.chain([first] if first else [], g):
            h.sse(response(piece, False))
            h.pace()
        h.sse(response("", True))
    finally:
        g.close()
