"""The HTTP layer of the project's two OpenAI-compatible servers (stdlib only).

Used by the endpoint inside each agent process (agent_apps/endpoint.py; the
agent sandbox binds this file) and by the model server (kernel.llm.serve).
``JSONHandler`` reads a request body as bounded JSON, answers JSON and
OpenAI-shaped errors, checks a bearer key in constant time and writes
server-sent events; routes and what they answer stay with each server.

Invariants: a body is read only up to its Content-Length and at most
``max_body`` bytes (a longer one is refused unread and the connection
closed, so its rest is never parsed as the next request); a key is compared
with ``hmac.compare_digest``; an event stream ends with the connection.
"""

from __future__ import annotations

import hmac
import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from kernel.protocol.messages import E2BIG

ERROR_TYPE = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
              404: "not_found_error", 411: "invalid_request_error", 413: "invalid_request_error",
              429: "rate_limit_error"}


class HTTPError(Exception):
    """An answer other than 200: ``status``, a message for the client, OpenAI's ``code`` and ``param``."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def error_body(e: HTTPError) -> dict:
    """OpenAI's error object for ``e``."""
    kind = ERROR_TYPE.get(e.status, "server_error" if e.status >= 500 else "invalid_request_error")
    return {"error": {"message": e.message, "type": kind, "param": e.param, "code": e.code}}


class JSONHandler(BaseHTTPRequestHandler):
    max_body = 4 << 20  # bytes of a request body

    def log_message(self, fmt: str, *a: Any) -> None:
        pass  # both servers' callers keep their own records; stderr stays quiet

    def read_json(self, require_length: bool = True) -> Any:
        """The request body decoded as JSON; HTTPError 411/413/400 when it cannot be. Without
        ``require_length``, a POST with no Content-Length has an empty body (``{}``)."""
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(411, "send a Content-Length (chunked request bodies are not accepted)")
        length = self.headers.get("Content-Length")
        if length is None and not require_length:
            return {}
        if length is None or not length.strip().isdigit():
            raise HTTPError(411, "a POST needs a numeric Content-Length")
        n = int(length)
        if n > self.max_body:
            self.close_connection = True  # the unread body must not be parsed as the next request
            raise HTTPError(413, f"request body of {n} bytes exceeds {self.max_body}", code=E2BIG)
        raw = self.rfile.read(n)
        if len(raw) < n:
            self.close_connection = True
            raise HTTPError(400, "request body shorter than its Content-Length")
        if not raw and not require_length:
            return {}
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise HTTPError(400, "the request body is not valid JSON") from None

    def send_json(self, status: int, obj: Any, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection and self.request_version == "HTTP/1.1":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def bearer_ok(self, key: str) -> bool:
        """``Authorization: Bearer <key>``, compared in constant time."""
        got = self.headers.get("Authorization", "")
        return hmac.compare_digest(got.encode("utf-8", "replace"), f"Bearer {key}".encode())

    def start_sse(self) -> None:
        """A 200 event stream; it ends with the connection (no chunked framing)."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

    def sse(self, obj: Any) -> None:
        """One ``data:`` event: JSON of ``obj``, or ``obj`` itself if it is bytes (``b"[DONE]"``)."""
        self.wfile.write(b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n")
        self.wfile.flush()
