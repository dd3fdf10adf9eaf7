"""Logging for the kernel process (Python logging cookbook, one owner per file).

file mode:    logs/kernel-<stamp>.log (aios.kernel and everything else) and
              logs/scheduler-<stamp>.log (aios.engine, aios.scheduler: model
              load, and each LLM call's submit, admission, preemption and
              finish), written only by the kernel process; audit-<stamp>.log
              (kernel/access/audit.py) likewise; each agent run writes its own
              logs/agents/<Agent>/<stamp>-pid<N>.log (agent_apps/runtime.py).
console mode: records travel to the front process as "log" events over the
              control pipe; the front shows WARNING and above, INFO with -v.

Every line starts with an ISO 8601 timestamp with its UTC offset
(``2026-12-02T18:45:01.123+00:00``) and names the OS pid that wrote it.
Files rotate past ``--log-max-bytes`` keeping ``--log-backups`` copies
(RotatingFileHandler); of the per-run files, the newest ``--log-keep-runs``
per kind (and per agent app) are kept, older ones are deleted at kernel
start (before this run's files exist) and at each agent spawn (never a
live agent's file).
"""

from __future__ import annotations

import glob
import logging
import logging.handlers
import os
import time
from datetime import datetime

FORMAT = "%(asctime)s %(levelname)s [%(process)d %(name)s] %(message)s"
_run_stamp = time.strftime("%Y%m%d-%H%M%S")  # one per kernel process


def iso_now(t: float | None = None) -> str:
    """ISO 8601 local time with milliseconds and UTC offset."""
    return datetime.fromtimestamp(time.time() if t is None else t).astimezone().isoformat(timespec="milliseconds")


class IsoFormatter(logging.Formatter):
    def formatTime(self, record, datefmt=None) -> str:  # noqa: N802 (logging's name)
        return iso_now(record.created)


def rotating_handler(path: str, config) -> logging.Handler:
    """A size-rotated file handler with the ISO format (delay: the file appears at the first record)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    h = logging.handlers.RotatingFileHandler(path, maxBytes=config.logs.max_bytes, backupCount=config.logs.backups,
                                             encoding="utf-8", delay=True)
    h.setFormatter(IsoFormatter(FORMAT))
    return h


def _stamp() -> str:
    return f"{_run_stamp}-{os.getpid()}"


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def prune_runs(pattern: str, keep: int, protect=()) -> int:
    """Delete all but the ``keep`` (>= 0) most recently written files matching ``pattern``, with their
    rotated copies (<file>.1 ...). Paths in ``protect`` (live runs) are never deleted. Returns files deleted."""
    runs = sorted(glob.glob(pattern), key=lambda p: (_mtime(p), p))
    protect = {os.path.abspath(p) for p in protect}
    gone = 0
    for path in runs[:max(0, len(runs) - keep)]:
        if os.path.abspath(path) in protect:
            continue
        for p in [path, *glob.glob(glob.escape(path) + ".[0-9]*")]:
            try:
                os.unlink(p)
                gone += 1
            except OSError:
                pass  # another kernel pruned it first
    return gone


class FrontHandler(logging.Handler):
    """Forward records to the front as events (console mode)."""

    def __init__(self, send_event):
        super().__init__()
        self.send_event = send_event

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.send_event(event="log", level=record.levelname, name=record.name, pid=record.process,
                            text=self.format(record))
        except Exception:
            self.handleError(record)


def setup_kernel_logging(config, send_event) -> dict:
    """Configure the kernel process's loggers; returns the file paths used (if any)."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(config.logs.level)
    paths = {}
    keep = config.logs.keep_runs - 1  # this run's file comes next
    kinds = ("audit", "kernel", "scheduler") if config.logs.scheduler_mode == "file" else ("audit",)
    for kind in kinds if keep >= 0 else ():  # (log_keep_runs 0: keep all)
        prune_runs(os.path.join(config.logs.dir, f"{kind}-*.log"), keep)
    if config.logs.scheduler_mode == "file":
        paths["kernel"] = os.path.join(config.logs.dir, f"kernel-{_stamp()}.log")
        paths["scheduler"] = os.path.join(config.logs.dir, f"scheduler-{_stamp()}.log")
        root.addHandler(rotating_handler(paths["kernel"], config))
        sched = rotating_handler(paths["scheduler"], config)
        for name in ("aios.engine", "aios.scheduler"):
            lg = logging.getLogger(name)
            lg.addHandler(sched)
            lg.propagate = False
    else:
        h = FrontHandler(send_event)
        h.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(h)
    for noisy in ("httpx", "httpcore", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return paths


def agent_log_path(log_dir: str, agent: str, pid: int) -> str:
    return os.path.join(os.path.abspath(log_dir), "agents", agent, f"{_stamp()}-pid{pid}.log")


def prune_agent_runs(log_dir: str, agent: str, keep_runs: int, live=()) -> int:
    """Before a new run of ``agent``: keep its ``keep_runs - 1`` newest run logs (0: all) and
    every path in ``live`` (running agents' logs)."""
    if keep_runs <= 0:
        return 0
    return prune_runs(os.path.join(os.path.abspath(log_dir), "agents", glob.escape(agent), "*-pid*.log"),
                      keep_runs - 1, live)
