"""Remote LLM backends: one module per backend, found by name (``backends/<backend>.py``).

Each module defines ``Backend(spec)`` with:

- ``check()``: raises BackendError (a one-line message) when the backend is
  unusable: missing key, unreachable server, refused key, unknown model.
- ``open(call) -> Stream``: starts one streamed generation. ``call.partial``
  is the assistant text generated so far (non-empty only when resuming a
  preempted call on a backend whose spec has ``resume``).

A Stream iterates text pieces (one per token where the server streams per
token) and is closed by its consumer. Its attributes are valid once iteration
ends: ``finish_reason`` ("stop" | "length" | other, None if cut off),
``usage`` ((prompt_tokens, completion_tokens) if the server reported them).
``pieces`` counts the pieces seen, the token count of a stream cut short.
``tool_calls`` ([{"name", "arguments": dict}]) holds the calls the model made when
the call carried ``tools``; their text does not come through the iteration.

``call.traceparent`` (the kernel's span of the call, kernel/trace) goes out as the W3C
``traceparent`` header where the backend speaks HTTP, so an OpenTelemetry-instrumented server
(vLLM) continues the agent's trace.

``response_format``, ``tools`` and ``tool_choice`` are OpenAI-shaped (as llm.chat
takes them); each backend passes them on in its server's native form.

Backends make exactly one HTTP attempt per call; retries, backoff, timeouts
per call and concurrency limits belong to kernel.llm.remote.RemoteEngine.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from kernel.llm.request import SamplingParams
from kernel.protocol.messages import CodedError


@dataclass
class Call:
    messages: list[dict]
    sampling: SamplingParams  # max_new_tokens: what is left of the call's budget
    partial: str = ""  # assistant text so far, to be continued (resume)
    response_format: dict | None = None
    tools: list[dict] | None = None
    tool_choice: object = None
    traceparent: str | None = None  # W3C trace context of the llm.chat span; sent as the ``traceparent`` header


class BackendError(CodedError):
    """One failed attempt. ``code`` is an LLMError code; ``retryable`` says whether to try again."""

    def __init__(self, code: str, message: str, retryable: bool = False, retry_after: float | None = None):
        super().__init__(code, message)
        self.retryable = retryable
        self.retry_after = retry_after  # seconds, from a Retry-After header


def one_line(text: object, limit: int = 200) -> str:
    """Server messages can be long or multi-line; errors we show must be one short line."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def load(spec):
    """Backend instance for ``spec`` (a kernel.llm.catalog.ModelSpec with a remote backend)."""
    module = importlib.import_module(f"kernel.llm.backends.{spec.backend}")
    return module.Backend(spec)
