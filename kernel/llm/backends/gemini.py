"""gemini: Google's Gemini API through Google's official client (``google-genai``).

Mapping (tested against kernel.llm.serve's emulation of the Gemini REST
protocol; never against Google here, where it cannot be reached):

- messages -> ``contents``: user -> "user", assistant -> "model", tool -> "user";
  system messages are joined into ``system_instruction``.
- max_new_tokens -> ``max_output_tokens``, temperature, top_p, stop ->
  ``stop_sequences`` (Gemini allows 5; the rest are applied on the text by
  RemoteEngine), seed.
- finish reasons: STOP -> "stop", MAX_TOKENS -> "length", others lower-cased
  ("safety", "recitation", ...); usage from ``usage_metadata``.
- response_format json_schema -> ``response_mime_type="application/json"`` with
  ``response_json_schema`` (json_object: the mime type alone); tools ->
  ``function_declarations`` with ``parameters_json_schema``; tool_choice auto/required/none/
  a function -> ``function_calling_config`` mode AUTO/ANY/NONE (+ allowed_function_names);
  ``function_call`` parts of the reply -> tool_calls.

Gemini streams several tokens per chunk and cannot continue a partial model
turn, so its calls are never preempted (spec.resume stays null).
"""

from __future__ import annotations

import httpx2
from google import genai
from google.genai import errors, types

from kernel.llm.backends import BackendError, Call, one_line
from kernel.llm.backends._stream import BaseStream
from kernel.param import CHECK_TIMEOUT_S
from kernel.protocol.messages import EAGAIN, EINVAL, EIO, EPERM, ETIMEDOUT

MAX_SERVER_STOPS = 5
FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


def to_contents(messages: list[dict]) -> tuple[list[types.Content], str | None]:
    """Chat messages -> (contents, system_instruction).

    An assistant's ``tool_calls`` are ``function_call`` parts; a tool message is the
    ``function_response`` of the call it answers, paired as for OpenAI (its ``tool_call_id``,
    or else the first unanswered call just before it); one that answers no call is user text."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    contents: list[types.Content] = []
    unanswered: list[tuple[str, str]] = []  # (id, name) of the last assistant message's calls
    for i, m in enumerate(messages):
        if m["role"] == "system":
            continue
        if m["role"] == "assistant" and m.get("tool_calls"):
            unanswered = [(c.get("id") or f"call_{i}_{j}", c["name"]) for j, c in enumerate(m["tool_calls"])]
            parts = [types.Part(text=m["content"])] if m["content"] else []
            parts += [types.Part(function_call=types.FunctionCall(name=c["name"], args=c["arguments"]))
                      for c in m["tool_calls"]]
            contents.append(types.Content(role="model", parts=parts))
            continue
        hit = [u for u in unanswered if u[0] == m.get("tool_call_id")] or unanswered[:1]
        if m["role"] == "tool" and hit:
            unanswered.remove(hit[0])
            response = types.FunctionResponse(name=hit[0][1], response={"result": m["content"]})
            contents.append(types.Content(role="user", parts=[types.Part(function_response=response)]))
            continue
        unanswered = []
        contents.append(types.Content(role="model" if m["role"] == "assistant" else "user",
                                      parts=[types.Part(text=m["content"])]))
    return contents, ("\n\n".join(system) if system else None)


def to_config(call: Call, system: str | None) -> types.GenerateContentConfig:
    extra: dict = {}
    fmt = call.response_format or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        extra["response_mime_type"] = "application/json"
        if fmt["type"] == "json_schema":
            extra["response_json_schema"] = fmt["json_schema"]["schema"]
    if call.tools:
        extra["tools"] = [types.Tool(function_declarations=[
            types.FunctionDeclaration(name=t["function"]["name"], description=t["function"].get("description"),
                                      parameters_json_schema=t["function"].get("parameters"))
            for t in call.tools])]
        choice = call.tool_choice
        if isinstance(choice, dict):
            cfg = types.FunctionCallingConfig(mode="ANY", allowed_function_names=[choice["function"]["name"]])
        else:
            cfg = types.FunctionCallingConfig(mode={"required": "ANY", "none": "NONE"}.get(choice, "AUTO"))
        extra["tool_config"] = types.ToolConfig(function_calling_config=cfg)
    sp = call.sampling
    return types.GenerateContentConfig(
        system_instruction=system, max_output_tokens=sp.max_new_tokens, temperature=sp.temperature,
        top_p=sp.top_p, stop_sequences=list(sp.stop[:MAX_SERVER_STOPS]) or None, seed=sp.seed, candidate_count=1,
        **extra)


def finish_reason(value) -> str | None:
    if value is None:
        return None
    name = getattr(value, "value", value)
    return FINISH.get(str(name), str(name).lower())


class Stream(BaseStream):
    def __init__(self, backend: "Backend", raw):
        super().__init__(backend, raw)
        self.tool_calls: list[dict] = []

    def __iter__(self):
        try:
            for chunk in self._raw:
                u = chunk.usage_metadata
                if u is not None and u.candidates_token_count is not None:
                    self.usage = (u.prompt_token_count or 0, u.candidates_token_count or 0)
                cand = chunk.candidates[0] if chunk.candidates else None
                if cand is not None and cand.finish_reason is not None:
                    self.finish_reason = finish_reason(cand.finish_reason)
                parts = (cand.content.parts or []) if cand is not None and cand.content is not None else []
                self.tool_calls += [{"name": p.function_call.name, "arguments": dict(p.function_call.args or {})}
                                    for p in parts if p.function_call is not None]
                text = "".join(p.text or "" for p in parts)
                if text:
                    self.pieces += 1
                    yield text
        except Exception as e:
            raise self.backend.error(e) from None


class Backend:
    def __init__(self, spec):
        self.spec = spec
        self.key = spec.api_key()
        self._client = None

    def client(self, timeout_s: float | None = None) -> genai.Client:
        opts = dict(timeout=int(1000 * (timeout_s or self.spec.timeout_s)),
                    retry_options=types.HttpRetryOptions(attempts=1))  # RemoteEngine retries
        if self.spec.base_url:
            opts["base_url"] = self.spec.base_url
        if self.spec.headers:
            opts["headers"] = dict(self.spec.headers)
        return genai.Client(api_key=self.key, http_options=types.HttpOptions(**opts))

    def error(self, e: Exception) -> BackendError:
        where = self.spec.base_url or "the Gemini API"
        if isinstance(e, BackendError):
            return e
        if isinstance(e, errors.APIError):
            code = int(e.code or 0)
            text = one_line(e.message or e.status or e)
            if code in (401, 403) or (code == 400 and "API key" in text):
                return BackendError(EPERM, f"{where} refused the request ({code}: {text}); "
                                             f"check {self.spec.api_key_env}")
            if code == 429 or code == 408 or code >= 500:
                return BackendError(EAGAIN if code == 429 else EIO, f"{where} answered {code}: {text}",
                                    retryable=True)
            return BackendError(EINVAL, f"{where} answered {code}: {text}")
        if isinstance(e, httpx2.TimeoutException):
            return BackendError(ETIMEDOUT, f"{where}: no response within {self.spec.timeout_s:g}s", retryable=True)
        if isinstance(e, httpx2.TransportError):
            return BackendError(EIO, f"cannot reach {where}: {one_line(e) or type(e).__name__}", retryable=True)
        return BackendError(EIO, f"{where}: {type(e).__name__}: {one_line(e)}")

    def check(self) -> None:
        if not self.key:
            raise BackendError(EPERM, f"{self.spec.api_key_env} is not set (a Gemini API key is needed); "
                                        f"export {self.spec.api_key_env}=...")
        try:
            client = self.client(min(self.spec.timeout_s, CHECK_TIMEOUT_S))  # kept: its __del__ closes the pool
            client.models.get(model=self.spec.model)
        except Exception as e:
            raise self.error(e) from None

    def open(self, call: Call) -> Stream:
        if self._client is None:
            self._client = self.client()
        contents, system = to_contents(call.messages)
        try:
            raw = self._client.models.generate_content_stream(model=self.spec.model, contents=contents,
                                                              config=to_config(call, system))
        except Exception as e:
            raise self.error(e) from None
        return Stream(self, raw)
