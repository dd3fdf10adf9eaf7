"""Entry point of every agent process: ``python -m agent_apps.runtime RX_FD TX_FD``.

Exec'd by the kernel (kernel/confine/sandbox.py), usually inside bubblewrap;
imports only light modules (never torch). It

1. reads the boot record, the first frame the kernel wrote on RX;
2. confines itself before any agent code is imported (agent_apps/confine/inside.py:
   rlimits, PR_SET_NO_NEW_PRIVS, Landlock, as the kernel planned);
3. outside bwrap, asks Linux to SIGKILL it if the kernel dies
   (PR_SET_PDEATHSIG; under bwrap, --die-with-parent does this);
4. sends its output to its log file (file mode: stdout is that file, opened
   by the kernel) or to the kernel, which shows it above the shell prompt;
5. connects the SDK, runs ``AgentClass(app).run(task)`` and reports the
   result with ``proc.exit``; a crash is reported with its traceback, an
   ``sdk.Failed`` (the agent has no answer) with its message.

Exit status (the kernel's one source of truth for how it ended): 0 after a
reported result; 1 after a reported failure; killed by SIGTERM after a
``kill``: the handler unwinds the agent's code (finally blocks run, logs are
flushed) and the runtime then dies of the same signal, like any Unix program
that cleans up on SIGTERM.

Agents from other frameworks (issue 15): before confinement it binds the
agent's OpenAI-compatible endpoint (agent_apps/endpoint.py) and lets
Landlock allow a connect to that one port; the endpoint's variables are in
the environment of the agent's code. A profile with ``"command"`` runs that
program instead of a class (agent_apps/command.py).
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import signal
import sys
import threading
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


class _LineWriter(io.TextIOBase):
    """stdout/stderr of an agent: each complete line goes to ``sink(level, line)``."""

    def __init__(self, level: str, sink):
        self.level = level
        self.sink = sink
        self._buf = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        with self._lock:
            self._buf += s
            lines = self._buf.split("\n")
            self._buf = lines.pop()
        for line in lines:
            self.sink(self.level, line)
        return len(s)

    def flush(self) -> None:
        with self._lock:
            line, self._buf = self._buf, ""
        if line:
            self.sink(self.level, line)


def _to_kernel(level: str, line: str) -> None:
    from agent_apps import sdk

    if sdk._conn is not None:
        sdk._conn.send_log(level, line)


def _file_sink(log_path: str, max_bytes: int, backups: int, confined: bool):
    """Lines to the agent's own log file: ISO 8601 timestamp and level first.

    The kernel opened the file as our fd 1. Unconfined (``--confine off``) the file rotates by size
    (``<file>.1`` ... ``.N``); a confined agent may not open the log folder (in the Landlock fallback it
    may still *see* it, and ``os.access`` says yes: Landlock answers only at open), so it writes to
    fd 1 up to ``max_bytes * (backups + 1)`` bytes, then one truncation line and no more."""
    import logging
    import logging.handlers
    from datetime import datetime

    class Iso(logging.Formatter):  # as kernel.logs.IsoFormatter (agents do not import the kernel)
        def formatTime(self, record, datefmt=None) -> str:  # noqa: N802
            return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")

    if not confined and os.path.isdir(os.path.dirname(log_path)) and os.access(os.path.dirname(log_path), os.W_OK):
        handler = logging.handlers.RotatingFileHandler(log_path, maxBytes=max_bytes, backupCount=backups,
                                                       encoding="utf-8")
    else:
        handler = _CappedStream(open(1, "w", encoding="utf-8", closefd=False), max_bytes * (backups + 1))
    handler.setFormatter(Iso("%(asctime)s %(levelname)s %(message)s"))

    def sink(level: str, line: str) -> None:
        handler.handle(logging.LogRecord("agent", getattr(logging, level), "", 0, line, None, None))
    return sink


def _CappedStream(stream, cap: int):
    import logging

    class Capped(logging.StreamHandler):
        written = 0

        def emit(self, record):
            if self.written >= cap:
                return
            msg = self.format(record) + "\n"
            self.written += len(msg.encode("utf-8", "replace"))
            if self.written >= cap:
                msg = f"log truncated: it reached {cap} bytes (--log-max-bytes x (--log-backups + 1))\n"
            self.stream.write(msg)
            self.stream.flush()
    return Capped(stream)


def _redirect_output(boot: dict) -> None:
    """File mode: fd 1 and 2 point at the log file (C-level writes and children's output land there,
    untimestamped); Python's sys.stdout/sys.stderr write timestamped lines. Console mode: Python's
    lines go to the kernel (the shell prints them, control characters made visible); fd 1 and 2
    point at /dev/null, so nothing below Python reaches the user's terminal."""
    log_path = boot.get("log_path")
    sink = _to_kernel
    if log_path:
        # The kernel opened the log file as our fd 1 (a confined agent cannot see the log folder).
        sink = _file_sink(log_path, boot.get("log_max_bytes", 10 << 20), boot.get("log_backups", 5),
                          boot["confine"]["sandbox"] != "none")
        os.dup2(1, 2)
    else:  # never the user's terminal: raw bytes there would draw over the prompt, escape codes included
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    sys.stdout = _LineWriter("INFO", sink)
    sys.stderr = _LineWriter("ERROR", sink)


def _end_line(status: str, result, exit: str) -> str:
    """The last line of a file-mode agent log: ``end: status=done exit=0 result="..."`` (the result as
    JSON; status done, failed or killed; exit: how this process exits: 0, 1 or SIGTERM). An agent
    SIGKILLed after the grace period writes no end line: the kernel log records its exit."""
    return f"end: status={status} exit={exit} result={json.dumps(result, ensure_ascii=False, default=str)}"


class _Terminated(BaseException):
    """Raised in the agent's code by SIGTERM: unwinds its finally blocks (not an Exception: not caught)."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def _die_of_sigterm() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    if os.getpid() == 1:  # pid 1 of the sandbox's namespace ignores its own SIGTERM: exit as bwrap reports
        os._exit(128 + signal.SIGTERM)  # a signal death, which the kernel reads back as SIGTERM
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    signal.pause()  # SIGTERM is pending: never returns


def _bind_endpoint(boot: dict, plan: dict):
    """The agent's OpenAI endpoint, bound (not yet serving); None if its profile says ``"endpoint": false``."""
    if boot["app"]["config"].get("endpoint") is False:
        return None
    from agent_apps.endpoint import Endpoint

    endpoint = Endpoint(boot.get("model") or "aios")
    port = endpoint.bind()
    if plan.get("landlock"):
        plan["landlock"]["connect_ports"] = [port]  # TCP stays blocked but for this port
    return endpoint


def load_class(app) -> type:
    """Import the app's agent.py and return its class (named like the app); ``app``: the boot frame's
    profile (kernel/protocol/profile.py AgentApp)."""
    import importlib
    import importlib.util

    if app.module.startswith("agent_apps."):
        mod = importlib.import_module(app.module)
    else:
        spec = importlib.util.spec_from_file_location(app.module, app.path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[app.module] = mod
        spec.loader.exec_module(mod)
    cls = getattr(mod, app.name, None)
    if cls is None:
        raise LookupError(f"{app.path} defines no class named {app.name}")
    return cls


def agent_main(rx_fd: int, tx_fd: int) -> None:
    """boot: {pid, name, task, app: {module, path, description, steps, tools, config},
    kernel_pid, log_path, confine: plan} (built by the kernel, kernel/kernel.py spawn)."""
    from agent_apps.confine import inside
    from kernel.protocol.channel import read_frame

    boot = json.loads(read_frame(rx_fd))
    plan = boot["confine"]
    if plan["sandbox"] != "bwrap":
        _die_with_parent(boot["kernel_pid"])  # under bwrap: --die-with-parent, and we are pid 1 (ppid 0)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the shell, not to agents
    try:
        from agent_apps import sdk
        from kernel.protocol.profile import AgentApp

        sdk.connect(boot["pid"], rx_fd, tx_fd)
        endpoint = _bind_endpoint(boot, plan)  # binds before Landlock denies bind()
        if plan["sandbox"] != "none":
            try:
                inside.apply(plan)  # no agent code has run yet, and none runs if a layer fails
            except OSError as e:
                sdk.proc.exit(result=f"confinement failed, agent not started: {e}", status="error")
                os._exit(1)
        if endpoint is not None:
            endpoint.start()
            os.environ.update(endpoint.env())
        _redirect_output(boot)
    except _Terminated:  # killed while starting: it ends as killed (SIGTERM), not as a crash of the runtime
        _die_of_sigterm()
    if boot.get("log_path"):  # the file's head; on the console the shell already said what started
        print(f"start: {boot['name']} pid {boot['pid']} (os pid {os.getpid()}), task: {boot['task']}", flush=True)
    status, result, exit_status = "ok", None, 0
    try:
        app = AgentApp(name=boot["name"], **boot["app"])
        if app.config.get("command") is not None:
            from agent_apps import command

            # Not dumpable: the command (same uid, same sandbox) cannot open /proc/<runtime>/fd or mem, nor
            # ptrace us, so it cannot reopen our channel to the kernel; the endpoint is its only way there.
            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE

            status, result, exit_status = command.run(app, boot["task"], endpoint.env() if endpoint else {})
        else:
            cls = load_class(app)
            result = cls(app).run(boot["task"])
    except sdk.KernelGone:  # the kernel closed our channel (a kill) or died: end as a killed process
        if boot.get("log_path"):
            print(_end_line("killed", None, "SIGTERM") + " (the kernel closed the channel)", flush=True)
        _die_of_sigterm()
    except _Terminated:
        if boot.get("log_path"):
            print(_end_line("killed", None, "SIGTERM"), flush=True)
        _die_of_sigterm()  # killed: no report, the signal is the exit status
    except sdk.Failed as e:  # the agent's own verdict: no answer, and why
        status, result = "error", str(e) or "the agent reported no answer"
        print(f"failed: {result}", file=sys.stderr, flush=True)
    except BaseException:
        status, result = "error", traceback.format_exc()
        print(result, file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a kill from here on ends the process at once
    try:
        json.dumps(result)
    except (TypeError, ValueError):
        result = repr(result)  # results cross to the kernel as JSON
    try:
        sdk.proc.exit(result=result, status="ok" if status == "ok" else "error")
    except sdk.SyscallError as e:
        print(f"proc.exit failed: {e}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    code = exit_status or (0 if status == "ok" else 1)  # a command agent exits as its command did
    if boot.get("log_path"):
        print(_end_line("done" if status == "ok" else "failed", result, str(code)), flush=True)
    if code:
        sys.stdout.flush()
        os._exit(code)


if __name__ == "__main__":
    agent_main(int(sys.argv[1]), int(sys.argv[2]))
