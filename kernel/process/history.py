"""What the kernel keeps of ended processes: a bounded history, large results on disk.

Without bounds, every ended process stayed in the table with its whole result:
kernel RSS grew by 43 MiB for 40 agents returning 1 MiB each. Now:

- a result whose JSON is over ``INLINE_MAX`` bytes is written whole to
  ``<log_dir>/results/<stamp>-pid<N>.json`` (0600, written by the kernel
  only); the table keeps its first ``PREVIEW`` characters and the path, and
  ``wait``/``info``/``result`` read it back whole when asked;
- the table keeps at most ``--history_max_procs`` ended processes and
  ``--history_max_bytes`` of their tasks, results and errors; the oldest
  ended ones are dropped first (``info`` then answers ESRCH). Live
  processes are never dropped.

Loop thread only (proc.exit and the reaper call it).
"""

from __future__ import annotations

import json
import logging
import os
import time

from kernel.param import INLINE_MAX, PREVIEW
from kernel.protocol.results import answer_of

log = logging.getLogger("aios.kernel")


class Results:
    def __init__(self, log_dir: str):
        self.dir = os.path.join(os.path.abspath(log_dir), "results")

    def keep(self, pcb, value) -> tuple[object, str | None]:
        """(what the table keeps, the file holding the whole result or None)."""
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            return repr(value)[:PREVIEW], None
        if len(text.encode()) <= INLINE_MAX:
            return value, None
        path = os.path.join(self.dir, f"{time.strftime('%Y%m%d-%H%M%S')}-pid{pcb.pid}.json")
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            log.warning("pid %d: cannot keep its %d-byte result in %s (%s); keeping its start only",
                        pcb.pid, len(text), path, e)
            path = None
        tail = f" … ({len(text)} bytes{f', whole in {path}' if path else ', cut'})"
        return text[:PREVIEW] + tail, path

    @staticmethod
    def whole(snap: dict) -> dict:
        """``snap`` with its whole result read back from its file, if it has one."""
        path = snap.get("result_path")
        if not path:
            return snap
        try:
            with open(path, encoding="utf-8") as f:
                value = json.load(f)
            return dict(snap, result=value, answer=answer_of(value))
        except (OSError, ValueError) as e:
            log.warning("pid %s: cannot read its result back from %s: %s", snap.get("pid"), path, e)
            return snap


def kept_bytes(pcb) -> int:
    """Bytes an ended process keeps in kernel memory (task, result, answer, error), roughly."""
    result = pcb.result if isinstance(pcb.result, str) else json.dumps(pcb.result, default=str)
    return len(pcb.task) + len(result) + len(pcb.error or "") + len(pcb.answer or "")
