"""The daemon's wire format: length-prefixed JSON objects over a unix stream socket.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON
holding one object: the protocol's one framing (kernel/protocol/channel.py) around the
front's JSON messages (kernel/protocol/control.py encode). Nothing is ever unpickled: clients are other processes
(of the same user, checked with SO_PEERCRED, that presented the daemon's key
in their first frame, conn.py), and every frame from them is decoded and
validated here and in server.py before it reaches the kernel.

  client -> daemon   {"op": "hello", "id": 1, "key": "<aios.key>"}   (first, always)
                     {"op": "ps", "id": 7, "all": true}         (id: a positive int)
  daemon -> client   {"reply": 7, "ok": true, "result": [...], "error": null, "code": null}
                     {"event": "output", "pid": 1, "agent": "EchoAgent", "text": "..."}
"""

from __future__ import annotations

import socket

from kernel.protocol import control
from kernel.protocol.channel import HEADER, frame, read_exact


class FrameError(Exception):
    """A frame that cannot be decoded (not UTF-8 JSON, not an object); the next frame is readable."""


class FrameTooLarge(FrameError):
    """A frame over the limit: its body was not read, so the stream is out of step and must close."""


def encode(obj: dict) -> bytes:
    return frame(control.encode(obj))


def read_frame(sock: socket.socket, limit: int) -> dict | None:
    """The next object, None at EOF. Raises FrameError/FrameTooLarge, EOFError on a cut frame."""
    head = read_exact(sock.recv, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > limit:
        raise FrameTooLarge(f"frame of {size} bytes is over the {limit}-byte limit")
    data = read_exact(sock.recv, size) if size else b""
    if data is None:
        raise EOFError("connection closed in the middle of a frame")
    try:
        return control.decode(data)
    except (ValueError, RecursionError) as e:  # not UTF-8 JSON, not an object; RecursionError: [[[[...]]]] nesting
        raise FrameError(f"frame is not a UTF-8 JSON object: {str(e)[:80]}") from None
