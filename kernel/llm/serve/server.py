"""A small OpenAI-compatible (and Gemini-shaped) HTTP server over a local model.

Usage::

    python -m kernel.llm.serve --port 8765              # the embedded SmolLM2 on 127.0.0.1:8765
    python -m kernel.llm.serve --port 0 --test-hooks    # a free port; fault injection on

Prints one line when it is ready, ``serving MODEL on http://HOST:PORT/v1``,
then serves until SIGINT/SIGTERM. Use it with ``--llm_name local-serve`` (or
``--llm_name openai:smollm2-135m-instruct --llm_base_url http://127.0.0.1:8765/v1``).

Routes:
  GET  /v1/models                          the one served model
  POST /v1/chat/completions                messages (an assistant's tool_calls and the tool
                                           messages answering them by tool_call_id, checked as
                                           OpenAI checks them), max_tokens (or max_completion_tokens),
                                           temperature (0 = greedy), top_p, seed, stop,
                                           stream (SSE, one chunk per token, usage last with
                                           stream_options.include_usage), vLLM's
                                           continue_final_message / add_generation_prompt, and
                                           response_format, tools, tool_choice (constrained as
                                           the kernel's engine does; a call comes back as
                                           message.tool_calls, in one chunk when streaming)
  GET  /v1/models/M                        model lookup (OpenAI and Gemini fields)
  POST /v1/models/M:generateContent        Gemini-shaped generation (kernel.llm.serve.gemini;
                                           /v1beta/... too)
  POST /v1/models/M:streamGenerateContent?alt=sse
With ``--test-hooks`` (tests only):
  GET  /admin/stats    {"requests", "inflight", "max_inflight", "injected", "traceparents"}: chat requests,
                       the most that were in flight at once (the client's concurrency, measured here),
                       and the W3C ``traceparent`` headers of the last 16 generation requests
  POST /admin/inject   {"fail": [503, 429], "retry_after": 0.1, "delay_s": 0, "token_delay_s": 0,
                       "api_key": null}: the next len(fail) generation requests get those
                       statuses; delay_s stalls every later request before its first byte,
                       token_delay_s paces tokens, api_key requires that key
  POST /admin/reset    clears stats and injections

Generation is the kernel's own engine (kernel.llm.serve.gen: a thin client of
kernel/llm/engine.py): concurrent requests are batched, decoded, sampled and
constrained exactly as agents' calls are, with the same weights (--weights,
int8 on a CPU by default). The in-flight count shows how many requests a
client sends at once. A client that disconnects mid-stream cancels its
request at the engine's next step.
``--api-key K`` makes every route but /admin/* require ``Authorization:
Bearer K`` (or Gemini's ``x-goog-api-key``).
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import json
import signal
import sys
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from urllib.parse import urlparse

from kernel.config import EMBEDDED_MODEL, WEIGHT_MODES
from kernel.protocol.http import HTTPError, JSONHandler, error_body
from kernel.protocol.messages import E2BIG, ECANCELED, EINVAL, EIO


def from_openai(msgs) -> list[dict]:
    """OpenAI chat messages -> llm.chat's form (tool calls as {id, name, arguments}), checked as OpenAI
    checks them: a tool message answers a call of the assistant message before it, by its id, and
    every such call is answered before the next other message. ValueError says what is wrong."""
    if not isinstance(msgs, list) or not msgs:
        raise ValueError("messages must be a non-empty list of {role, content} objects")
    out: list[dict] = []
    unanswered: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role", "user") if isinstance(m, dict) else None
        calls = m.get("tool_calls") if role == "assistant" else None
        if role is None or not isinstance(m.get("content"), str) and not (calls and m.get("content") is None):
            raise ValueError(f"messages[{i}]: each message needs a role and string content")
        if unanswered and role != "tool":
            raise ValueError(f"messages[{i}]: an assistant message with 'tool_calls' must be followed by tool "
                             f"messages responding to each 'tool_call_id' ({', '.join(sorted(unanswered))})")
        msg: dict = {"role": role, "content": m.get("content") or ""}
        if calls:
            try:
                msg["tool_calls"] = [{"id": c["id"], "name": c["function"]["name"],
                                      "arguments": json.loads(c["function"]["arguments"])} for c in calls]
            except (TypeError, KeyError, ValueError):
                raise ValueError(f"messages[{i}].tool_calls: each needs an id, function.name and JSON "
                                 "function.arguments") from None
            unanswered = {c["id"] for c in msg["tool_calls"]}
        elif role == "tool":
            if m.get("tool_call_id") not in unanswered:
                raise ValueError(f"messages[{i}]: messages with role 'tool' must be a response to a preceding "
                                 "message with 'tool_calls'")
            unanswered.discard(m["tool_call_id"])
        out.append(msg)
    return out


class Hooks:
    """Test hooks and request accounting. ``lock`` guards every field."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503):
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.reset()
        self.fail = [fail_status] * fail_first

    def reset(self) -> None:
        with self.lock:
            self.requests = self.inflight = self.max_inflight = self.injected = 0
            self.fail: list[int] = []
            self.retry_after: float | None = None
            self.delay_s = self.token_delay_s = 0.0
            self.api_key: str | None = None  # overrides --api-key while set
            self.traceparents: list[str] = []  # the last 16 generation requests' traceparent headers

    def enter(self, traceparent: str | None = None) -> tuple[int | None, float]:
        """A generation request arrives: (status to fail it with or None, stall seconds)."""
        with self.lock:
            self.requests += 1
            if traceparent:
                self.traceparents = [*self.traceparents[-15:], traceparent[:128]]
            if self.fail:
                self.injected += 1
                return self.fail.pop(0), 0.0
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            return None, self.delay_s

    def leave(self) -> None:
        with self.lock:
            self.inflight -= 1

    def snapshot(self) -> dict:
        with self.lock:
            return {"requests": self.requests, "inflight": self.inflight, "max_inflight": self.max_inflight,
                    "injected": self.injected, "pending_failures": list(self.fail),
                    "traceparents": list(self.traceparents)}


class Handler(JSONHandler):
    server_version = "aios-serve/1"
    protocol_version = "HTTP/1.0"  # one request per connection; streams end by closing

    # set on the class by make_server
    gen = None
    model_name = EMBEDDED_MODEL
    api_key: str | None = None
    hooks: Hooks = None
    test_hooks = False

    # -- plumbing (reading, JSON answers, keys, events: kernel/protocol/http.py) ---------
    def error(self, status: int, message: str, headers: dict | None = None) -> None:
        if "x-goog-api-key" in self.headers or self.path.startswith("/v1beta/"):  # a Gemini client
            from kernel.llm.serve.gemini import error_body as gemini_error
            self.send_json(status, gemini_error(status, message), headers)
        else:
            self.send_json(status, error_body(HTTPError(status, message, code=status)), headers)

    def body(self) -> dict | None:
        try:
            obj = self.read_json(require_length=False)
        except HTTPError as e:
            self.error(e.status, e.message)
            return None
        if not isinstance(obj, dict):
            self.error(400, "the request body must be a JSON object")
            return None
        return obj

    def authorized(self) -> bool:
        key = self.hooks.api_key or self.api_key
        if not key or self.bearer_ok(key) or hmac.compare_digest(
                self.headers.get("x-goog-api-key", "").encode("utf-8", "replace"), key.encode()):
            return True
        self.error(401, "invalid API key")
        return False

    # -- routes ---------------------------------------------------------------------------
    def do_GET(self):
        path = urlparse(self.path).path
        if path == "/admin/stats" and self.test_hooks:
            return self.send_json(200, self.hooks.snapshot())
        if not self.authorized():
            return
        if path == "/v1/models":
            return self.send_json(200, {"object": "list", "data": [
                {"id": self.model_name, "object": "model", "created": 0, "owned_by": "aios"}]})
        if path.startswith(("/v1beta/models/", "/v1/models/")):
            from kernel.llm.serve import gemini as serve_gemini
            return serve_gemini.get_model(self, path)
        self.error(404, f"no route {path}")

    def do_POST(self):
        path = urlparse(self.path).path
        if path.startswith("/admin/") and self.test_hooks:
            return self.admin(path)
        if not self.authorized():
            return
        req = self.body()
        if req is None:
            return
        if path == "/v1/chat/completions":
            return self.generation(lambda: self.chat(req))
        if path.startswith(("/v1beta/models/", "/v1/models/")):
            from kernel.llm.serve import gemini as serve_gemini
            return self.generation(lambda: serve_gemini.generate(self, path, req))
        self.error(404, f"no route {path}")

    def admin(self, path: str) -> None:
        req = self.body()
        if req is None:
            return
        if path == "/admin/reset":
            self.hooks.reset()
        elif path == "/admin/inject":
            with self.hooks.lock:
                self.hooks.fail = [int(s) for s in req.get("fail", [])]
                self.hooks.retry_after = req.get("retry_after")
                self.hooks.delay_s = float(req.get("delay_s", 0.0))
                self.hooks.token_delay_s = float(req.get("token_delay_s", 0.0))
                self.hooks.api_key = req.get("api_key")
        else:
            return self.error(404, f"no route {path}")
        self.send_json(200, self.hooks.snapshot())

    def generation(self, run) -> None:
        status, delay = self.hooks.enter(self.headers.get("traceparent"))
        if status is not None:
            headers = {} if self.hooks.retry_after is None else {"Retry-After": str(self.hooks.retry_after)}
            return self.error(status, f"injected failure {status}", headers)
        self._in_flight = True
        try:
            if delay and self.hooks.stopping.wait(delay):
                return
            run()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (timed out, preempted, cancelled)
        finally:
            self.release()

    def release(self) -> None:
        """The generation stops counting as in flight (``Hooks.leave``), once: just before its last
        bytes go out, because a client that has them may send its next request at once (the openai
        SDK stops reading at ``[DONE]``, before this thread gets back here), or when it ends any
        other way. Counting it to the end of the handler let a 2-slot client look like 3 in flight."""
        if getattr(self, "_in_flight", False):
            self._in_flight = False
            self.hooks.leave()

    def send_json(self, status: int, obj, headers: dict | None = None) -> None:
        self.release()  # a whole answer: the client may go on as soon as it has it
        super().send_json(status, obj, headers)

    def sse(self, obj) -> None:
        if obj == b"[DONE]":
            self.release()
        super().sse(obj)

    def pace(self) -> None:
        """Between tokens: the injected token delay (tests make streams long with it)."""
        if self.hooks.token_delay_s:
            self.hooks.stopping.wait(self.hooks.token_delay_s)

    def engine_error(self, err: Exception) -> None:
        """The engine refused or failed the request: a bad schema or too long a prompt is the client's (400)."""
        status = {EINVAL: 400, E2BIG: 400, ECANCELED: 503}.get(getattr(err, "code", EIO), 500)
        return self.error(status, getattr(err, "message", None) or str(err))

    # -- OpenAI chat completions ----------------------------------------------------------------
    def chat(self, req: dict) -> None:
        try:
            msgs = from_openai(req.get("messages"))
        except ValueError as e:
            return self.error(400, str(e))
        if req.get("model") not in (None, self.model_name):
            return self.error(404, f"model {req.get('model')!r} is not served here (serving {self.model_name})")
        cont = bool(req.get("continue_final_message")) and msgs[-1]["role"] == "assistant"
        fmt, tools, choice = req.get("response_format"), req.get("tools"), req.get("tool_choice")
        try:
            self.gen.check(fmt, tools, choice)
        except ValueError as e:  # constrain.ConstraintError: a bad schema
            return self.error(400, f"bad response_format or tools: {e}")
        stop = req.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        max_tokens = int(req.get("max_completion_tokens") or req.get("max_tokens") or 256)
        g = self.gen.generate(msgs, max_tokens, float(req.get("temperature") or 0.0), float(req.get("top_p") or 1.0),
                              req.get("seed"), stop, cont, fmt, tools, choice)
        try:
            first = g.first()  # before any byte of the answer: an engine error is still an HTTP status
            if g.error is not None:
                return self.engine_error(g.error)
            head = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "created": int(time.time()), "model": self.model_name}
            if tools and choice != "none":
                return self.tool_reply(req, head, g)
            if not req.get("stream"):
                rest = "".join(g)
                if g.error is not None:
                    return self.engine_error(g.error)
                return self.send_json(200, {**head, "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": (first or "") + rest},
                     "finish_reason": g.result["finish_reason"]}], "usage": self.usage(g.result)})
            head["object"] = "chat.completion.chunk"
            self.start_sse()
            self.sse({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                           "finish_reason": None}]})
            for piece in itertools.chain([first] if first else [], g):  # a closed connection: BrokenPipeError
                self.sse({**head, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                self.pace()
            finish = g.result["finish_reason"] if g.result is not None else "error"
            self.sse({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            if (req.get("stream_options") or {}).get("include_usage") and g.result is not None:
                self.sse({**head, "choices": [], "usage": self.usage(g.result)})
            self.sse(b"[DONE]")
        finally:
            g.close()  # the client went away: the engine drops the request at its next step

    def tool_reply(self, req: dict, head: dict, g) -> None:
        """A reply to a request with tools: the whole generation (the engine parsed its calls), then
        tool_calls or content."""
        res = g.result
        calls = [{"index": i, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                  "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                 for i, c in enumerate(res.get("tool_calls") or [])]
        finish = res["finish_reason"]
        message = {"role": "assistant", "content": res["text"] or None, **({"tool_calls": calls} if calls else {})}
        if not req.get("stream"):
            return self.send_json(200, {**head, "object": "chat.completion", "choices": [
                {"index": 0, "message": message, "finish_reason": finish}], "usage": self.usage(res)})
        head["object"] = "chat.completion.chunk"
        self.start_sse()
        delta = {"role": "assistant", **({"tool_calls": calls} if calls else {"content": res["text"]})}
        self.sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self.sse({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (req.get("stream_options") or {}).get("include_usage"):
            self.sse({**head, "choices": [], "usage": self.usage(res)})
        self.sse(b"[DONE]")

    @staticmethod
    def usage(res: dict) -> dict:
        n, p = res["tokens_out"], res["tokens_in"]
        return {"prompt_tokens": p, "completion_tokens": n, "total_tokens": p + n}


def make_server(host: str, port: int, llm_name: str, served_name: str | None = None, api_key: str | None = None,
                test_hooks: bool = False, fail_first: int = 0, fail_status: int = 503, device: str = "cpu",
                weights: str = "auto"):
    from kernel.llm.serve.gen import Generator

    hooks = Hooks(fail_first, fail_status)
    attrs = dict(gen=Generator(llm_name, device, weights), model_name=served_name or llm_name, api_key=api_key,
                 hooks=hooks, test_hooks=test_hooks)
    server = ThreadingHTTPServer((host, port), type("BoundHandler", (Handler,), attrs))
    server.daemon_threads = True
    return server


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kernel.llm.serve", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed on the ready line)")
    p.add_argument("--llm_name", default=EMBEDDED_MODEL, help="local model to load (name, hub id or path)")
    p.add_argument("--served_name", help="model id clients ask for (default: --llm_name)")
    p.add_argument("--eval_device", default="cpu")
    p.add_argument("--weights", default="auto", choices=WEIGHT_MODES,
                   help="as the kernel's --weights (auto: int8 on a CPU with AVX-512 VNNI, fp16 elsewhere)")
    p.add_argument("--api-key", dest="api_key", help="require this bearer key")
    p.add_argument("--test-hooks", dest="test_hooks", action="store_true", help="enable /admin/* (tests)")
    p.add_argument("--fail-first", dest="fail_first", type=int, default=0,
                   help="answer the first N generation requests with --fail-status")
    p.add_argument("--fail-status", dest="fail_status", type=int, default=503)
    args = p.parse_args(argv)
    try:
        server = make_server(args.host, args.port, args.llm_name, args.served_name, args.api_key,
                             args.test_hooks, args.fail_first, args.fail_status, args.eval_device, args.weights)
    except Exception as e:  # noqa: BLE001 - one line, not a traceback
        print(f"aios serve: cannot start: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]

    def stop(*_):
        server.RequestHandlerClass.hooks.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"serving {server.RequestHandlerClass.model_name} on http://{host}:{port}/v1", flush=True)
    server.serve_forever()
    server.server_close()
    server.RequestHandlerClass.gen.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
