"""An OpenAI-compatible HTTP endpoint inside each agent process (agent side, stdlib only).

The runtime starts it before any agent code runs and exports::

    OPENAI_BASE_URL=http://127.0.0.1:PORT/v1
    OPENAI_API_KEY=<a random token of this agent, meaningless anywhere else>

so ``openai.OpenAI()`` with no arguments, and every framework that reads
those variables, reaches the kernel. Each request becomes an ``llm.chat``
syscall of this agent: the kernel schedules, batches, accounts and limits
it like any other call, and the agent still has no network.

Routes: ``GET /v1/models``, ``GET /v1/models/M``, ``POST /v1/chat/completions``
(``stream`` as server-sent events, ``stream_options.include_usage``; ``tools``,
``tool_choice`` and ``response_format`` are passed to ``llm.chat``, which
answers EINVAL -> 400 where the kernel has no constrained decoding).

Invariants:
- Every request must carry ``Authorization: Bearer <key>`` (401 otherwise):
  with ``--confine off`` there is no network namespace, and other local
  users and agents can reach 127.0.0.1.
- Only 127.0.0.1 is bound. Under bubblewrap that is the agent's own
  loopback (a private network namespace); the kernel's Landlock rules let
  the agent connect to this one TCP port and no other.
- Any request, however malformed, gets an HTTP answer (4xx) or a closed
  connection; nothing it sends can stop the server or the agent.
- The SDK serialises syscalls (one outstanding per agent): concurrent
  requests of one agent queue here; the kernel batches across agents.
- Streaming sends the reply as one content delta once ``llm.chat`` returns
  (the syscall returns whole replies): same bytes, not token-by-token pacing.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from agent_apps import sdk
from kernel.protocol.http import HTTPError, JSONHandler, error_body
from kernel.protocol.messages import (E2BIG, EACCES, EAGAIN, ECANCELED, ECONNRESET, EDQUOT, EINVAL, EIO, ENOENT, ENOSPC,
                                      ENOSYS, EPERM, ESRCH, ETIMEDOUT)

MAX_BODY = 4 << 20  # bytes of a request body; the channel's frame limit (1 MiB) answers E2BIG below it
READ_TIMEOUT_S = 30.0  # a client that stops sending mid-request loses its connection, not the server
HTTP_STATUS = {  # kernel error code -> HTTP status of the OpenAI-style error
    EINVAL: 400, E2BIG: 413, ENOSPC: 413, EPERM: 403, EACCES: 403, EDQUOT: 429, EAGAIN: 429,
    ESRCH: 404, ENOENT: 404, ENOSYS: 501, ETIMEDOUT: 504, ECANCELED: 503, ECONNRESET: 503,
    EIO: 502,
}
ENV_NAMES = ("OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_API_KEY", "AIOS_ENDPOINT", "AIOS_MODEL")  # see env()
PASS_THROUGH = ("tools", "tool_choice", "response_format")  # constrained decoding (issue 12), when present


def _text(content: Any, where: str) -> str:
    """OpenAI content (a string, null, or a list of parts) as the kernel's plain string."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text") \
                    and isinstance(p.get("text"), str):
                parts.append(p["text"])
            else:
                kind = p.get("type") if isinstance(p, dict) else type(p).__name__
                raise HTTPError(400, f"{where}: content part of type {kind!r} is not supported (text only)",
                                param=where)
        return "".join(parts)
    raise HTTPError(400, f"{where}: content must be a string, a list of text parts or null", param=where)


def kernel_messages(msgs: Any) -> list[dict]:
    """OpenAI chat messages -> llm.chat messages.

    developer -> system; function -> tool. An assistant's tool_calls become llm.chat's
    ``tool_calls`` ({id, name, arguments}) and a tool message keeps its ``tool_call_id``: the
    kernel shows them to its model in the model's own call format, and a remote backend gets
    them in native form."""
    if not isinstance(msgs, list) or not msgs:
        raise HTTPError(400, "'messages' must be a non-empty array", param="messages")
    out = []
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise HTTPError(400, f"{where} must be an object", param=where)
        role = {"developer": "system", "function": "tool"}.get(m.get("role"), m.get("role"))
        if role not in ("system", "user", "assistant", "tool"):
            raise HTTPError(400, f"{where}.role {m.get('role')!r} is not one of system, developer, user, "
                                 "assistant, tool", param=where)
        msg: dict[str, Any] = {"role": role, "content": _text(m.get("content"), where)}
        calls = m.get("tool_calls") if role == "assistant" else None
        if calls:
            msg["tool_calls"] = [_kernel_call(c, f"{where}.tool_calls") for c in calls] \
                if isinstance(calls, list) else _kernel_call(None, f"{where}.tool_calls")
        if role == "tool" and isinstance(m.get("tool_call_id"), str) and m["tool_call_id"]:
            msg["tool_call_id"] = m["tool_call_id"]
        out.append(msg)
    return out


def _kernel_call(c: Any, where: str) -> dict:
    """One OpenAI tool call -> llm.chat's {id, name, arguments} (arguments: the JSON object)."""
    try:
        args = json.loads(c["function"]["arguments"] or "{}")
        name = c["function"]["name"]
        if not isinstance(args, dict) or not isinstance(name, str):
            raise TypeError
    except (TypeError, KeyError, ValueError):
        raise HTTPError(400, f"{where}: each needs function.name and function.arguments, a JSON object",
                        param=where) from None
    return {**({"id": c["id"]} if isinstance(c.get("id"), str) and c["id"] else {}), "name": name, "arguments": args}


def chat_args(body: dict) -> dict:
    """A /v1/chat/completions body -> llm.chat arguments (the kernel validates ranges again)."""
    args: dict[str, Any] = {"messages": kernel_messages(body.get("messages"))}
    n = body.get("n", 1)
    if n not in (1, None):
        raise HTTPError(400, "'n' other than 1 is not supported: make n requests", param="n")
    max_new = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_new is not None:
        args["max_new_tokens"] = max_new
    for key in ("temperature", "top_p", "seed"):
        if body.get(key) is not None:
            args[key] = body[key]
    stop = body.get("stop")
    if stop is not None:
        args["stop"] = [stop] if isinstance(stop, str) else stop
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "text":
        body = {k: v for k, v in body.items() if k != "response_format"}  # the default: nothing to constrain
    if body.get("tools") and body.get("tool_choice") == "none":
        body = {k: v for k, v in body.items() if k not in ("tools", "tool_choice")}
    for key in PASS_THROUGH:
        if body.get(key) is not None:
            args[key] = body[key]
    return args


def completion(result: dict, model: str, created: int, cid: str) -> dict:
    """An llm.chat result -> a chat.completion object (tool calls when the kernel returned some)."""
    message: dict[str, Any] = {"role": "assistant", "content": result.get("text", "")}
    finish = "length" if result.get("finish_reason") == "length" else "stop"
    calls = result.get("tool_calls")
    if isinstance(calls, list) and calls:
        message["tool_calls"] = [_tool_call(c, i) for i, c in enumerate(calls)]
        message["content"] = result.get("text") or None
        finish = "tool_calls"
    return {"id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": _usage(result)}


def _tool_call(c: dict, i: int) -> dict:
    fn = c.get("function") if isinstance(c.get("function"), dict) else c
    args = fn.get("arguments", fn.get("args", {}))
    return {"id": c.get("id") or f"call_{secrets.token_hex(8)}", "type": "function", "index": i,
            "function": {"name": fn.get("name", ""), "arguments": args if isinstance(args, str) else json.dumps(args)}}


def _usage(result: dict) -> dict:
    tin, tout = int(result.get("tokens_in", 0)), int(result.get("tokens_out", 0))
    return {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}


class _Handler(JSONHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the openai SDK reuses its connection
    default_request_version = "HTTP/1.1"  # an unparsable request line still gets a status line, not HTTP/0.9
    server_version = "aios-endpoint"
    timeout = READ_TIMEOUT_S
    server: "_Server"
    max_body = MAX_BODY

    # -- routing ---------------------------------------------------------------
    def do_GET(self) -> None:
        self._serve(self._get)

    def do_POST(self) -> None:
        self._serve(self._post)

    def _serve(self, fn) -> None:
        try:
            self._authorize()
            fn()
        except HTTPError as e:
            self._error(e)
        except sdk.SyscallError as e:
            self._error(self._refused(e))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away; nothing to answer
        except Exception as e:  # a bug here must not end the agent's endpoint
            self._error(HTTPError(500, f"endpoint error: {type(e).__name__}: {e}"))

    def _authorize(self) -> None:
        if not self.bearer_ok(self.server.key):
            raise HTTPError(401, "invalid API key: use this agent's OPENAI_API_KEY", code="invalid_api_key")

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _get(self) -> None:
        path = self._path()
        model = {"id": self.server.model, "object": "model", "created": self.server.created, "owned_by": "aios"}
        if path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [model]})
        elif path.startswith("/v1/models/"):
            self.send_json(200, dict(model, id=path[len("/v1/models/"):] or self.server.model))
        else:
            raise HTTPError(404, f"no route GET {path}")

    def _post(self) -> None:
        path = self._path()
        body = self.read_json()
        if path != "/v1/chat/completions":
            raise HTTPError(404, f"no route POST {path} (this endpoint serves /v1/chat/completions)")
        if not isinstance(body, dict):
            raise HTTPError(400, "the request body must be a JSON object")
        args = chat_args(body)
        model = body.get("model") if isinstance(body.get("model"), str) and body.get("model") else self.server.model
        stream = body.get("stream") is True
        try:
            result = sdk.syscall("llm.chat", **args)
        except sdk.SyscallError as e:
            if e.code == EINVAL and any(k in args for k in PASS_THROUGH):
                raise HTTPError(400, f"EINVAL: the kernel refused {', '.join(k for k in PASS_THROUGH if k in args)}"
                                     f" ({e.message}); this kernel may have no constrained decoding",
                                code=EINVAL) from None
            raise
        created, cid = int(time.time()), f"chatcmpl-{secrets.token_hex(12)}"
        done = completion(result, model, created, cid)
        if not stream:
            self.send_json(200, done)
            return
        opts = body.get("stream_options")
        self._stream(done, isinstance(opts, dict) and opts.get("include_usage") is True)

    # -- answers ---------------------------------------------------------------
    @staticmethod
    def _refused(e: sdk.SyscallError) -> HTTPError:
        status = HTTP_STATUS.get(e.code, 500)
        return HTTPError(status, f"{e.code}: {e.message}", code=e.code)

    def _error(self, e: HTTPError) -> None:
        body = error_body(e)
        # A refusal will be refused again: clients that honour it (the openai SDK) do not retry.
        retry = "true" if e.status in (502, 503, 504) or e.code == EAGAIN else "false"
        self.close_connection = True  # a body left unread must not be parsed as the next request
        try:
            self.send_json(e.status, body, {"x-should-retry": retry})
        except OSError:
            self.close_connection = True

    def _stream(self, done: dict, include_usage: bool) -> None:
        """Server-sent events: role, content (and tool calls), finish, [usage], [DONE]."""
        head = {k: done[k] for k in ("id", "created", "model")}
        head["object"] = "chat.completion.chunk"
        msg, finish = done["choices"][0]["message"], done["choices"][0]["finish_reason"]
        self.start_sse()
        chunks = [{"role": "assistant", "content": ""}]
        if msg.get("content"):
            chunks.append({"content": msg["content"]})
        if msg.get("tool_calls"):
            chunks.append({"tool_calls": msg["tool_calls"]})
        for delta in chunks:
            self.sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self.sse({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if include_usage:
            self.sse({**head, "choices": [], "usage": done["usage"]})
        self.sse(b"[DONE]")


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # the agent's exit never waits for an idle keep-alive connection
    key: str
    model: str
    created: int

    def handle_error(self, request, client_address) -> None:
        pass  # a connection that broke is that client's problem; the server goes on


class Endpoint:
    """The agent's endpoint: ``start()`` binds 127.0.0.1 on a free port and serves on a thread."""

    def __init__(self, model: str):
        self.key = "aios-" + secrets.token_urlsafe(32)
        self.model = model
        self.server: _Server | None = None
        self.port = 0

    def bind(self) -> int:
        """Bind and listen now (before Landlock forbids bind); returns the port."""
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.key, self.server.model, self.server.created = self.key, self.model, int(time.time())
        self.port = self.server.server_address[1]
        return self.port

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, name="aios-endpoint", daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def env(self) -> dict[str, str]:
        """What the agent's code sees: OpenAI's variables (and the names some frameworks read)."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_BASE": self.base_url, "OPENAI_API_KEY": self.key,
                "AIOS_ENDPOINT": self.base_url, "AIOS_MODEL": self.model}
