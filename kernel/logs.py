"""Logging for the kernel process (Python logging cookbook, one owner per file).

file mode:    logs/kernel-<ts>.log (aios.kernel and everything else) and
              logs/scheduler-<ts>.log (aios.engine, aios.scheduler), written
              only by the kernel process; each agent run writes its own
              logs/agents/<Agent>/<ts>-pid<N>.log (agent_apps/runtime.py).
console mode: records travel to the front process as "log" events over the
              control pipe, and the front prints them above its prompt.
Every record names the OS pid that wrote it.
"""

from __future__ import annotations

import logging
import os
import time

FORMAT = "%(asctime)s %(levelname)s [%(process)d %(name)s] %(message)s"
_run_stamp = time.strftime("%Y%m%d-%H%M%S")  # one per kernel process


def _stamp() -> str:
    return f"{_run_stamp}-{os.getpid()}"


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
    root.setLevel(logging.INFO)
    fmt = logging.Formatter(FORMAT)
    paths = {}
    if config.scheduler_log_mode == "file":
        os.makedirs(config.log_dir, exist_ok=True)
        paths["kernel"] = os.path.join(config.log_dir, f"kernel-{_stamp()}.log")
        paths["scheduler"] = os.path.join(config.log_dir, f"scheduler-{_stamp()}.log")
        kh = logging.FileHandler(paths["kernel"])
        kh.setFormatter(fmt)
        root.addHandler(kh)
        sched = logging.FileHandler(paths["scheduler"])
        sched.setFormatter(fmt)
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
