"""The daemon's wire format: length-prefixed JSON objects over a unix stream socket.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON
holding one object. Nothing is ever unpickled: clients are other processes
(of the same user, checked with SO_PEERCRED, that presented the daemon's key
in their first frame, conn.py), and every frame from them is decoded and
validated here and in server.py before it reaches the kernel.

  client -> daemon   {"op": "hello", "id": 1, "key": "<aios.key>"}   (first, always)
                     {"op": "ps", "id": 7, "all": true}         (id: a positive int)
  daemon -> client   {"reply": 7, "ok": true, "result": [...], "error": null, "code": null}
                     {"event": "output", "pid": 1, "agent": "EchoAgent", "text": "..."}
"""

from __future__ import annotations

import json
import socket
import struct

HEADER = struct.Struct(">I")


class FrameError(Exception):
    """A frame that cannot be decoded (not UTF-8 JSON, not an object); the next frame is readable."""


class FrameTooLarge(FrameError):
    """A frame over the limit: its body was not read, so the stream is out of step and must close."""


def encode(obj: dict) -> bytes:
    data = json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8")
    return HEADER.pack(len(data)) + data


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    """Exactly n bytes, or None at a clean EOF before the first byte; EOFError on a cut frame."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            if not buf:
                return None
            raise EOFError("connection closed in the middle of a frame")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket, limit: int) -> dict | None:
    """The next object, None at EOF. Raises FrameError/FrameTooLarge, EOFError on a cut frame."""
    head = _recv_exact(sock, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > limit:
        raise FrameTooLarge(f"frame of {size} bytes is over the {limit}-byte limit")
    data = _recv_exact(sock, size) if size else b""
    if data is None:
        raise EOFError("connection closed in the middle of a frame")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: [[[[...]]]] nesting
        raise FrameError(f"frame is not UTF-8 JSON: {str(e)[:80]}") from None
    if not isinstance(obj, dict):
        raise FrameError(f"frame must be a JSON object, not {type(obj).__name__}")
    return obj
