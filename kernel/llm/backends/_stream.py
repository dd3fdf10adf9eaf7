"""What every backend's Stream keeps (the attributes backends/__init__.py describes); not a backend."""

from __future__ import annotations


class BaseStream:
    """A backend's reply stream: its counters, and close() that never raises."""

    def __init__(self, backend, raw):
        self.backend = backend
        self._raw = raw
        self.pieces = 0
        self.finish_reason: str | None = None
        self.usage: tuple[int, int] | None = None

    def close(self) -> None:
        try:
            self._raw.close()
        except Exception:
            pass  # a broken connection, or a stream with no close(): nothing left to release
