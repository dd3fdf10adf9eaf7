"""The audit log: one JSON line per access denial and per confirmation decision.

Written only by the kernel process, to ``<log_dir>/audit-<stamp>.log`` (a file
per kernel run, like the other kernel logs). Each line is a JSON object::

    {"ts": "2026-06-28T12:00:00.500+00:00", "kind": "deny", "pid": 4, "agent": "TravelAgent", "group": "TravelAgent",
     "action": "read", "resource": "fs:notes.txt", "owner": "MathAgent", "reason": "..."}
    {"ts": ..., "kind": "confirm", "pid": 4, ..., "action": "tool shell", "detail": "shell: ls",
     "allow": false, "by": "policy"}

The resource watcher (kernel/process/watch.py) adds ``"kind": "kill"`` (an agent killed past its
memory or workspace limit, with ``reason``) and ``"kind": "setid"`` (setuid/setgid bits cleared on a
workspace file: ``workspace``, ``path``, ``mode``).

``ts`` is ISO 8601 with the UTC offset. ``by`` is user | policy | timeout |
agent-ended. The file rotates past ``max_bytes`` keeping ``backups`` copies
(``audit-<stamp>.log.1`` ...). Thread-safe (one lock): the loop thread and
service threads may both write.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import threading

from kernel.logs import iso_now


class AuditLog:
    def __init__(self, path: str, max_bytes: int = 10 << 20, backups: int = 5):
        self.path = os.path.abspath(path)
        self.max_bytes, self.backups = max_bytes, backups
        self._lock = threading.Lock()
        self._f: logging.handlers.RotatingFileHandler | None = None
        self.lines = 0

    def open(self) -> None:
        """Create the file now (empty until the first decision), so the path the kernel announces exists."""
        with self._lock:
            self._open()

    def _open(self) -> None:  # under _lock
        if self._f is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._f = logging.handlers.RotatingFileHandler(self.path, maxBytes=self.max_bytes,
                                                           backupCount=self.backups, encoding="utf-8")

    def write(self, kind: str, pcb=None, **fields) -> None:
        rec = {"ts": iso_now(), "kind": kind}
        if pcb is not None:
            rec.update(pid=pcb.pid, agent=pcb.name, group=pcb.group)
        rec.update(fields)
        record = logging.LogRecord("aios.audit", logging.INFO, __file__, 0,
                                   json.dumps(rec, ensure_ascii=False, default=str), None, None)
        with self._lock:
            self._open()
            self._f.emit(record)  # writes and flushes one line; rotates first when it would not fit
            self.lines += 1

    def close(self) -> None:
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None
