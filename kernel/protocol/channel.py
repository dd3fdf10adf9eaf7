"""Length-prefixed byte frames, the one framing of every wire: a 4-byte big-endian length, then that many
bytes (HEADER, frame, read_exact). Agents' pipes use it here; the daemon's socket reads and writes the same
frames (aios_shell/daemon/frames.py), and the front's pipe to its kernel is multiprocessing's send_bytes,
whose frame is the same for messages under 2 GiB.

Each agent gets two OS pipes of its own (agent -> kernel, kernel -> agent), so
an agent killed halfway through a write can corrupt only its own channel
(DESIGN.md, IPC).

The agent side blocks (it is single-purpose). The kernel side never blocks:
it reads whatever is available with non-blocking ``os.read`` and feeds it to a
FrameDecoder, which yields whole frames and skips oversize ones without
buffering them.
"""

from __future__ import annotations

import os
import struct

from kernel.protocol.limits import MAX_FRAME

HEADER = struct.Struct("!I")


class ChannelClosed(Exception):
    """The other end of the pipe is gone."""


def frame(data: bytes) -> bytes:
    """``data`` as one frame: its length, then itself."""
    return HEADER.pack(len(data)) + data


def read_exact(recv, n: int) -> bytes | None:
    """Exactly ``n`` bytes from ``recv(max) -> bytes`` (os.read on a pipe, a socket's recv): None at a
    clean end before the first byte, EOFError at an end in the middle."""
    buf = bytearray()
    while len(buf) < n:
        chunk = recv(min(n - len(buf), 1 << 16))
        if not chunk:
            if not buf:
                return None
            raise EOFError("the other end closed in the middle of a frame")
        buf += chunk
    return bytes(buf)


def write_frame(fd: int, data: bytes) -> None:
    """Write one frame, blocking until all of it is in the pipe."""
    buf = memoryview(frame(data))
    while buf:
        try:
            n = os.write(fd, buf)
        except BrokenPipeError:
            raise ChannelClosed("peer closed the channel") from None
        buf = buf[n:]


def read_frame(fd: int) -> bytes:
    """Read one frame, blocking (agent side: the kernel is trusted). ChannelClosed at the pipe's end."""
    def recv(k: int) -> bytes:
        return os.read(fd, k)

    try:
        head = read_exact(recv, HEADER.size)
        body = read_exact(recv, HEADER.unpack(head)[0]) if head is not None else None
    except EOFError:
        body = None
    if body is None:
        raise ChannelClosed("peer closed the channel")
    return body


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
