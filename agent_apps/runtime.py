"""Entry point of every agent process (the kernel's spawn target).

Runs in a fresh interpreter started by the kernel with the ``spawn``
context; imports only light modules (never torch). It

1. puts itself in its own process group (the kernel kills the group, so
   anything the agent starts dies with it) and asks Linux to SIGKILL it if
   the kernel dies (PR_SET_PDEATHSIG), so no agent outlives its kernel;
2. sends its output to its own log file (file mode) or to the kernel, which
   shows it above the shell prompt (console mode);
3. connects the SDK, runs ``AgentClass(app).run(task)`` and reports the
   result with ``proc.exit``; a crash is reported with its traceback.

Exit status (the kernel's one source of truth for how it ended): 0 after a
reported result; 1 after a reported failure; killed by SIGTERM after a
``kill``: the handler unwinds the agent's code (finally blocks run, logs are
flushed) and the runtime then dies of the same signal, like any Unix program
that cleans up on SIGTERM.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import signal
import sys
import traceback

PR_SET_PDEATHSIG = 1


def _die_with_parent(kernel_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the kernel's shutdown still kills us; EOF on our channel does too
    if os.getppid() != kernel_pid:  # the kernel died before prctl took effect
        os._exit(1)


class _KernelWriter(io.TextIOBase):
    """stdout/stderr of a console-mode agent: each line goes to the kernel as a log frame."""

    def __init__(self, level: str):
        self.level = level
        self._buf = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        from agent_apps import sdk

        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if sdk._conn is not None:
                sdk._conn.send_log(self.level, line)
        return len(s)

    def flush(self) -> None:
        if self._buf:
            self.write("\n")


def _redirect_output(log_path: str | None) -> None:
    if log_path:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)  # C-level writes and crash tracebacks land in the file too
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
    else:
        sys.stdout = _KernelWriter("INFO")
        sys.stderr = _KernelWriter("ERROR")


class _Terminated(BaseException):
    """Raised in the agent's code by SIGTERM: unwinds its finally blocks (not an Exception: not caught)."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def _die_of_sigterm() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    signal.pause()  # SIGTERM is pending: never returns


def agent_main(boot: dict, rx_conn, tx_conn) -> None:
    """boot: {pid, name, task, module, kernel_pid, log_path} (built by the kernel)."""
    os.setpgrp()
    _die_with_parent(boot["kernel_pid"])
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the shell, not to agents
    from agent_apps import registry, sdk

    sdk.connect(boot["pid"], rx_conn.fileno(), tx_conn.fileno())
    _redirect_output(boot.get("log_path"))
    print(f"[{boot['name']} pid {boot['pid']}] task: {boot['task']}", flush=True)
    status, result = "ok", None
    try:
        app = registry.find(boot["name"])
        if app is None:
            raise LookupError(f"agent app {boot['name']!r} is not installed")
        cls = registry.load_class(app)
        result = cls(app).run(boot["task"])
    except sdk.KernelGone:
        os._exit(1)
    except _Terminated:
        _die_of_sigterm()  # killed: no report, the signal is the exit status
    except BaseException:
        status, result = "error", traceback.format_exc()
        print(result, file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a kill from here on ends the process at once
    try:
        json.dumps(result)
    except (TypeError, ValueError):
        result = repr(result)  # results cross to the kernel as JSON
    try:
        sdk.proc.exit(result=result, status=status)
    except sdk.SyscallError as e:
        print(f"proc.exit failed: {e}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    if status != "ok":
        raise SystemExit(1)
