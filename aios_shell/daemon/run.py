"""Start the AIOS daemon: detached (``aios serve``, ``simulator.py --daemon``) or in the foreground
(``aios serve --foreground``, ``simulator.py --daemon --foreground``).

``start_detached`` (the program the user ran) checks the model, then starts
the same program again with ``--foreground --ready-fd N`` in a new session
(setsid: no terminal, not in the shell's job control), its stdin on
/dev/null and its stdout/stderr in ``<log_dir>/daemon-<stamp>.out`` (what
the daemon's processes print outside their logs: crash tracebacks). It
returns once that process writes one JSON line on the pipe, ``{"ok": true,
...}`` when it serves (socket bound, kernel booted, model loaded) or
``{"ok": false, "error": ...}``, or closes the pipe by dying.

``serve`` is the daemon itself (systemd runs it directly, ``Type=notify``:
it sends ``READY=1`` once the socket serves, see notify.py):
private socket folder, pid file lock, stale socket removal, a fresh key
file (``aios.key``: what clients present, see paths.KeyFile), logs, the
kernel (KernelClient in this process), the socket server, and the shutdown
on SIGTERM/SIGINT or the ``shutdown`` op. SIGHUP is ignored (no terminal to
lose). Log files under ``log_dir``: ``daemon-<stamp>-<pid>.log`` (clients,
agent output and exits, confirmations), and the kernel's own files
(``--scheduler_log_mode file`` is forced). Agent output also reaches every
attached client when ``--agent_log_mode`` is console (the default). Every
file line starts with the kernel's timestamp (ISO 8601, milliseconds, UTC
offset: kernel.logs.IsoFormatter); lines to the journal have none (journald
stamps them) and carry a ``<N>`` priority instead.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time

from aios_shell.client import KernelClient, KernelError
from aios_shell.daemon import paths
from aios_shell.daemon.notify import JournalFormatter, Notifier, under_journal
from aios_shell.daemon.server import Server
from kernel.logs import FORMAT, IsoFormatter
from aios_shell.daemon.param import READY_WAIT_S
from kernel.protocol.messages import EIO

log = logging.getLogger("aios.daemon")


class Interrupted(Exception):
    """SIGTERM/SIGINT before the daemon serves."""


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def start_detached(command: list[str], config, sock_path: str, out=sys.stdout, err=sys.stderr, *,
                   prog: str = "simulator.py", attach: str = "python simulator.py --connect") -> int:
    """Run ``command --foreground --ready-fd N`` (e.g. ``[python, simulator.py, --daemon, ...]``)
    detached; 0 once it serves, 1 if it failed. ``prog`` starts error lines, ``attach`` is the
    command the success line suggests."""
    from aios_shell.preflight import PreflightError, preflight_config

    try:
        preflight_config(config)  # one line now, rather than from the log later
    except PreflightError as e:
        print(f"{prog}: error: {e}", file=err)
        return 1
    log_dir = os.path.abspath(config.logs.dir)
    os.makedirs(log_dir, exist_ok=True)
    out_path = os.path.join(log_dir, f"daemon-{_stamp()}.out")
    r, w = os.pipe()
    with open(os.devnull, "rb") as devnull, open(out_path, "ab") as out_file:
        proc = subprocess.Popen([*command, "--foreground", "--ready-fd", str(w)],
                                stdin=devnull, stdout=out_file, stderr=out_file, pass_fds=(w,),
                                start_new_session=True, close_fds=True)
    os.close(w)
    data = b""
    deadline = time.monotonic() + READY_WAIT_S
    with os.fdopen(r, "rb") as pipe:
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                print(f"{prog}: error: the daemon (pid {proc.pid}) did not report within {READY_WAIT_S:.0f}s; "
                      f"it may still be starting: see {out_path}", file=err)
                return 1
            chunk = os.read(pipe.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    try:
        msg = json.loads(data.decode("utf-8", "replace").splitlines()[0]) if data else {}
    except ValueError:
        msg = {}
    if not msg.get("ok"):
        why = msg.get("error") or f"the daemon exited during start (exit code {proc.wait(5)}; see {out_path})"
        print(f"{prog}: error: {why}", file=err)
        return 1
    print(f"AIOS daemon pid {msg['pid']} serving on {msg['socket']} (kernel pid {msg['kernel_pid']}, model "
          f"{msg['model']}); logs in {msg['log_dir']}/. Attach: {attach}"
          + ("" if sock_path == paths.default_socket() else f" --socket {sock_path}"), file=out)
    return 0


def _setup_logging(log_dir: str, to_stderr: bool) -> str:
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, f"daemon-{_stamp()}-{os.getpid()}.log")
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(IsoFormatter(FORMAT))  # the kernel's format: one timestamp style in every log
    log.addHandler(file_handler)
    if to_stderr:  # --foreground in a terminal, or under systemd (journald stamps its lines itself)
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(JournalFormatter() if under_journal(sys.stderr) else IsoFormatter(FORMAT))
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False
    return path


def _bind(sock_path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # 0600 from the first instant: no window where others could connect
    try:
        s.bind(sock_path)
    finally:
        os.umask(old)
    os.chmod(sock_path, 0o600)
    s.listen(64)
    s.setblocking(False)
    return s


def serve(config, sock_path: str, ready_fd: int | None = None, prog: str = "simulator.py") -> int:
    """The daemon; returns its exit status (0 after a clean shutdown)."""
    ready = os.fdopen(ready_fd, "w") if ready_fd is not None else None
    systemd = Notifier.from_env()  # before the kernel starts: it must not inherit $NOTIFY_SOCKET

    def report(**msg) -> None:
        nonlocal ready
        if ready is not None:
            try:
                ready.write(json.dumps(msg) + "\n")
                ready.close()
            except OSError:
                pass  # the starter is gone: nobody to tell
            ready = None
        elif not msg.get("ok"):
            print(f"{prog}: error: {msg.get('error')}", file=sys.stderr)

    from aios_shell.preflight import PreflightError, preflight_config

    try:
        preflight_config(config)  # one line, before any socket or log file
    except PreflightError as e:
        report(ok=False, error=str(e))
        return 1
    pidfile, keyfile, listener = None, None, None

    def release() -> None:
        """The key goes first, while we still hold the pid file lock: once the lock is free, the
        key file may already be the next daemon's."""
        if keyfile is not None:
            keyfile.remove()
        if pidfile is not None:
            pidfile.release()

    try:
        sock_path = paths.check_socket_path(sock_path)
        paths.ensure_private_dir(os.path.dirname(sock_path))
        pidfile = paths.PidFile(paths.pidfile_for(sock_path))
        pidfile.acquire()
        stale = os.path.lexists(sock_path)
        if stale and paths.daemon_alive(sock_path):  # a daemon that does not take the pid file lock
            raise paths.PathError(f"a daemon already serves {sock_path}")
        if stale:
            os.unlink(sock_path)
        keyfile = paths.KeyFile(paths.keyfile_for(sock_path))
        key = keyfile.create()  # before the bind: no client can connect before the key exists
        listener = _bind(sock_path)
    except (paths.PathError, OSError) as e:
        report(ok=False, error=f"{e}" if isinstance(e, paths.PathError) else f"{sock_path}: {e.strerror or e}")
        release()
        return 1
    log_dir = os.path.abspath(config.logs.dir)
    config = config.with_flags(log_dir=log_dir, scheduler_log_mode="file", interactive_confirm=True)
    log_path = _setup_logging(log_dir, to_stderr=ready_fd is None)
    if stale:
        log.info("removed a stale socket at %s", sock_path)

    def interrupted(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, interrupted)
    kernel, server = None, None
    try:
        server = Server(None, listener, sock_path, {}, config.access.confirm_policy, key=key, keyfile=keyfile.path)
        kernel = KernelClient(config, on_event=server.on_event)
        server.kernel = kernel
        kernel.ready.wait()
        err = kernel.ready_info.get("load_error")
        if err or kernel.dead.is_set():
            raise KernelError(EIO, err or kernel.lost_reason)
        server.info = {"daemon_pid": os.getpid(), "socket": sock_path, "model": config.llm.name,
                       "scheduler": config.sched.policy, "log_dir": log_dir, "agent_log_mode": config.logs.agent_mode,
                       "daemon_log": log_path}
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: server.request_stop(signal.Signals(signum).name))
        log.info("serving on %s (pid %d, kernel pid %s, model %s, scheduler %s)", sock_path, os.getpid(),
                 kernel.pid, config.llm.name, config.sched.policy)
        report(ok=True, pid=os.getpid(), socket=sock_path, kernel_pid=kernel.pid, model=config.llm.name,
               log_dir=log_dir)
        systemd.send(READY=1, MAINPID=os.getpid(), STATUS=f"serving on {sock_path} (model {config.llm.name})")
        server.serve()
        systemd.send(STOPPING=1, STATUS=f"stopping: {server.stop_reason}")
        return server.shutdown()
    except (KernelError, Interrupted) as e:
        msg = e.message if isinstance(e, KernelError) else f"stopped by {e} while starting"
        log.error("not serving: %s", msg)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        try:
            os.unlink(sock_path)
        except FileNotFoundError:
            pass
        listener.close()
        if kernel is not None:
            kernel.stop()
        release()
        report(ok=False, error=msg)  # last: when the starter returns, nothing of ours is left
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the stop short
        release()
        logging.shutdown()
