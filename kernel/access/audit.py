"""The audit log: one JSON line per access denial and per confirmation decision.

Written only by the kernel process, to ``<log_dir>/audit-<stamp>.log`` (a file
per kernel run, like the other kernel logs). Each line is a JSON object::

    {"ts": 1719571200.5, "kind": "deny", "pid": 4, "agent": "TravelAgent", "group": "TravelAgent",
     "action": "read", "resource": "fs:notes.txt", "owner": "MathAgent", "reason": "..."}
    {"ts": ..., "kind": "confirm", "pid": 4, ..., "action": "tool shell", "detail": "shell: ls",
     "allow": false, "by": "policy"}

``by`` is user | policy | timeout | agent-ended. Thread-safe (one lock): the
loop thread and service threads may both write.
"""

from __future__ import annotations

import json
import os
import threading
import time


class AuditLog:
    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._lock = threading.Lock()
        self._f = None
        self.lines = 0

    def write(self, kind: str, pcb=None, **fields) -> None:
        rec = {"ts": round(time.time(), 3), "kind": kind}
        if pcb is not None:
            rec.update(pid=pcb.pid, agent=pcb.name, group=pcb.group)
        rec.update(fields)
        line = json.dumps(rec, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._f is None:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self._f = open(self.path, "a", encoding="utf-8", buffering=1)  # line-buffered
            self._f.write(line)
            self.lines += 1

    def close(self) -> None:
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None
