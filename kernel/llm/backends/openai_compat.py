"""openai_compat: any OpenAI-compatible chat server through the official ``openai`` client.

OpenAI itself, vLLM, SGLang, Ollama, llama.cpp server, and ``python -m
kernel.llm.serve``. Every call streams (``stream=True`` with usage in the
last chunk) and carries the ``traceparent`` header of its llm.chat span
(kernel/trace). Resuming a preempted call sends the partial text as a final
assistant message with ``continue_final_message=True, add_generation_prompt=False``
in the body (vLLM's parameters, also understood by kernel.llm.serve); only
specs with ``resume: continue_final_message`` are ever resumed.

The client's own retries are off (``max_retries=0``): RemoteEngine retries,
so it can count tries, honour cancellation while backing off and report them.
"""

from __future__ import annotations

import json

import httpx2
import openai

from kernel.llm.backends import BackendError, Call, one_line
from kernel.llm.backends._stream import BaseStream
from kernel.param import CHECK_TIMEOUT_S
from kernel.protocol.messages import EAGAIN, EINVAL, EIO, EPERM, ETIMEDOUT

MAX_SERVER_STOPS = 4  # OpenAI rejects more; the rest are applied by RemoteEngine on the text


def _retry_after(response) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None  # an HTTP date or garbage: use our own backoff


def _server_message(e) -> str:
    """The server's own error message ({"error": {"message": ...}}), else the client's text."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
    return getattr(e, "message", None) or str(e)


def to_openai(messages: list[dict]) -> list[dict]:
    """llm.chat messages -> OpenAI chat messages, tool calls and their results in native form.

    An assistant's ``tool_calls`` keep their ``id`` or get ``call_<message>_<call>``. A tool message
    answers the call its ``tool_call_id`` names, or else the first unanswered call of the assistant
    message just before it (an agent that passes back the calls llm.chat returned needs no ids). A
    tool message that answers no call goes as user text: OpenAI refuses a tool message without one.
    """
    out: list[dict] = []
    unanswered: list[str] = []
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [{"id": c.get("id") or f"call_{i}_{j}", "type": "function",
                      "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
                     for j, c in enumerate(m["tool_calls"])]
            unanswered = [c["id"] for c in calls]
            out.append({"role": "assistant", "content": m["content"] or None, "tool_calls": calls})
        elif m["role"] == "tool" and (m.get("tool_call_id") or unanswered):
            call_id = m.get("tool_call_id") or unanswered[0]
            if call_id in unanswered:
                unanswered.remove(call_id)
            out.append({"role": "tool", "tool_call_id": call_id, "content": m["content"]})
        else:
            unanswered = []
            out.append({"role": "user" if m["role"] == "tool" else m["role"], "content": m["content"]})
    return out


class Stream(BaseStream):
    def __init__(self, backend: "Backend", raw):
        super().__init__(backend, raw)
        self._calls: dict[int, dict] = {}  # index -> {"name", "arguments": JSON text so far}

    @property
    def tool_calls(self) -> list[dict]:
        out = []
        for _, c in sorted(self._calls.items()):
            try:
                args = json.loads(c["arguments"] or "{}")
            except ValueError:
                args = {"_raw": c["arguments"]}  # cut short: the agent sees what came
            out.append({"name": c["name"], "arguments": args})
        return out

    def _collect(self, deltas) -> None:
        for d in deltas or []:
            c = self._calls.setdefault(d.index or 0, {"name": "", "arguments": ""})
            f = d.function
            if f is not None:
                c["name"] += f.name or ""
                c["arguments"] += f.arguments or ""

    def __iter__(self):
        try:
            for chunk in self._raw:
                if chunk.usage is not None:
                    self.usage = (chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                delta = choice.delta
                text = delta.content if delta is not None else None
                if choice.finish_reason:
                    self.finish_reason = choice.finish_reason
                if delta is not None and delta.tool_calls:
                    self._collect(delta.tool_calls)
                    self.pieces += 1
                    continue
                if text is None or (text == "" and delta.role and self.pieces == 0):
                    continue  # the role-only opening chunk of OpenAI and vLLM is not a token
                self.pieces += 1
                yield text
        except openai.APIError as e:
            raise self.backend.error(e) from None
        except httpx2.TimeoutException:  # mid-stream, the client does not wrap transport errors
            raise BackendError(ETIMEDOUT, f"{self.backend.spec.base_url}: stream stalled for more than "
                                            f"{self.backend.spec.timeout_s:g}s", retryable=True) from None
        except httpx2.TransportError as e:
            raise BackendError(EIO, f"{self.backend.spec.base_url}: stream broke: {one_line(e) or type(e).__name__}",
                               retryable=True) from None


class Backend:
    def __init__(self, spec):
        self.spec = spec
        key = spec.api_key()
        self.key_missing = not key
        # Servers without auth (vLLM, Ollama, kernel.llm.serve) accept any key; the client needs one.
        self.client = openai.OpenAI(api_key=key or "EMPTY", base_url=spec.base_url, timeout=spec.timeout_s,
                                    max_retries=0, default_headers=spec.headers or None)

    # -- errors -----------------------------------------------------------------
    def error(self, e: Exception) -> BackendError:
        """Map an openai exception to one BackendError with a one-line message."""
        url = self.spec.base_url
        if isinstance(e, openai.APITimeoutError):
            return BackendError(ETIMEDOUT, f"{url}: no response within {self.spec.timeout_s:g}s", retryable=True)
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e.__context__
            why = one_line(cause) if cause else one_line(e)
            return BackendError(EIO, f"cannot reach {url}: {why}", retryable=True)
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            text = one_line(_server_message(e))
            if status in (401, 403):
                env = self.spec.api_key_env or "the API key"
                hint = f"{env} is not set" if self.key_missing else f"check {env}"
                return BackendError(EPERM, f"{url} refused the request ({status}: {text}); {hint}")
            if status == 429 or status == 408 or status >= 500:
                return BackendError(EAGAIN if status == 429 else EIO, f"{url} answered {status}: {text}",
                                    retryable=True, retry_after=_retry_after(e.response))
            return BackendError(EINVAL, f"{url} answered {status}: {text}")
        return BackendError(EIO, f"{url}: {type(e).__name__}: {one_line(e)}")

    # -- interface ---------------------------------------------------------------
    def check(self) -> None:
        spec = self.spec
        if spec.key_required and self.key_missing:
            raise BackendError(EPERM, f"{spec.api_key_env} is not set (an API key is needed for {spec.base_url}); "
                                        f"export {spec.api_key_env}=...")
        try:
            page = self.client.with_options(timeout=min(spec.timeout_s, CHECK_TIMEOUT_S)).models.list()
            served = [m.id for m in page.data]
        except openai.NotFoundError:
            return  # some servers have no /models: reachable is all we can tell
        except openai.APIError as e:
            raise self.error(e) from None
        if served and spec.model not in served:
            shown = ", ".join(served[:8]) + (" ..." if len(served) > 8 else "")
            raise BackendError(EINVAL, f"{spec.base_url} does not serve model {spec.model!r} (it serves: {shown})")

    def open(self, call: Call) -> Stream:
        messages = to_openai(call.messages)
        sp = call.sampling
        params: dict = dict(model=self.spec.model, max_tokens=sp.max_new_tokens, temperature=sp.temperature,
                            top_p=sp.top_p, stream=True, stream_options={"include_usage": True})
        if sp.stop:
            params["stop"] = list(sp.stop[:MAX_SERVER_STOPS])
        if sp.seed is not None:
            params["seed"] = sp.seed
        if call.response_format is not None:
            fmt = call.response_format
            if fmt.get("type") == "json_schema" and "name" not in fmt.get("json_schema", {}):
                fmt = {**fmt, "json_schema": {"name": "reply", **fmt["json_schema"]}}  # OpenAI requires a name
            params["response_format"] = fmt
        if call.tools:
            params["tools"] = call.tools
            if call.tool_choice is not None:
                params["tool_choice"] = call.tool_choice
        if call.traceparent:  # W3C trace context: the server's spans continue the agent's trace
            params["extra_headers"] = {"traceparent": call.traceparent}
        if call.partial:
            messages.append({"role": "assistant", "content": call.partial})
            params["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        try:
            raw = self.client.chat.completions.create(messages=messages, **params)
        except openai.APIError as e:
            raise self.error(e) from None
        return Stream(self, raw)
