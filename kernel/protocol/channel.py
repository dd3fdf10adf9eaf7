"""Length-prefixed byte frames over a pipe, one writer per pipe.

Each agent gets two OS pipes of its own (agent -> kernel, kernel -> agent), so
an agent killed halfway through a write can corrupt only its own channel
(DESIGN.md, IPC). Frame: a 4-byte big-endian length, then that many bytes.

The agent side blocks (it is single-purpose). The kernel side never blocks:
it reads whatever is available with non-blocking ``os.read`` and feeds it to a
FrameDecoder, which yields whole frames and skips oversize ones without
buffering them.
"""

from __future__ import annotations

import os
import struct

from kernel.param import MAX_FRAME

HEADER = struct.Struct("!I")


class ChannelClosed(Exception):
    """The other end of the pipe is gone."""


def write_frame(fd: int, data: bytes) -> None:
    """Write one frame, blocking until all of it is in the pipe."""
    buf = memoryview(HEADER.pack(len(data)) + data)
    while buf:
        try:
            n = os.write(fd, buf)
        except BrokenPipeError:
            raise ChannelClosed("peer closed the channel") from None
        buf = buf[n:]


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 16))
        if not chunk:
            raise ChannelClosed("peer closed the channel")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes:
    """Read one frame, blocking (agent side: the kernel is trusted)."""
    (n,) = HEADER.unpack(_read_exact(fd, HEADER.size))
    return _read_exact(fd, n)


class Oversize:
    """Placeholder the decoder yields for a frame it skipped."""

    def __init__(self, size: int):
        self.size = size


class FrameDecoder:
    """Incremental, non-blocking frame parser (kernel side).

    ``feed(chunk)`` returns the list of complete frames now available: bytes,
    or an Oversize marker for a frame longer than ``limit``, whose body is
    discarded as it arrives, so a hostile agent cannot make the kernel buffer
    it.
    """

    def __init__(self, limit: int = MAX_FRAME):
        self.limit = limit
        self._buf = bytearray()
        self._skip = 0  # bytes of an oversize frame still to discard

    def feed(self, chunk: bytes) -> list[bytes | Oversize]:
        out: list[bytes | Oversize] = []
        if self._skip:
            dropped = min(self._skip, len(chunk))
            self._skip -= dropped
            chunk = chunk[dropped:]
        self._buf += chunk
        while len(self._buf) >= HEADER.size:
            (n,) = HEADER.unpack_from(self._buf)
            if n > self.limit:
                out.append(Oversize(n))
                body = len(self._buf) - HEADER.size
                if body >= n:
                    del self._buf[: HEADER.size + n]
                    continue
                self._skip = n - body
                self._buf.clear()
                break
            if len(self._buf) < HEADER.size + n:
                break
            out.append(bytes(self._buf[HEADER.size: HEADER.size + n]))
            del self._buf[: HEADER.size + n]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held (a writer killed mid-frame leaves these)."""
        return len(self._buf) + self._skip
