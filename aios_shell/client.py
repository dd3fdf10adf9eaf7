"""The front's client of the kernel: start the kernel process and talk to it (shell, batch, main.py).

Light module: the front never imports torch. Usage::

    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig
    with KernelClient(KernelConfig(), on_event=print) as k:
        pid = k.spawn("MathAgent", "What is 12 * 7?")
        print(k.wait(pid)["result"])

Events the kernel sends (dicts with an "event" key): booted, ready (model
loaded or failed), output (a line an agent printed, console mode), log (a
kernel record, console mode), exit (a process ended, with its snapshot).

Before it starts the kernel (kernel/boot.py ``kernel_main``), KernelClient
checks the model name and the MCP config file (aios_shell/preflight.py) and
raises KernelError at once for one that cannot be used. ``submit`` sends a request without waiting (the
daemon's socket server multiplexes its clients with it); KernelCalls holds the
calls the shell uses, shared with the daemon's RemoteKernelClient.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing as mp
import threading
from concurrent.futures import Future
from typing import Any, Callable

from kernel.boot import kernel_main
from kernel.protocol import control
from kernel.protocol.messages import ECONNRESET, EIO, ETIMEDOUT, CodedError

SPAWN = mp.get_context("spawn")


class KernelError(CodedError):
    """A kernel request (control op) failed; ``code`` is the kernel's error code."""


def unwrap(msg: dict) -> Any:
    """A reply dict's result, or KernelError with its message and code."""
    if not msg.get("ok"):
        raise KernelError(msg.get("code") or EIO, msg.get("error") or "failed")
    return msg.get("result")


class KernelCalls:
    """The calls the front uses, and the requests under them; shared by KernelClient and the daemon's
    RemoteKernelClient (aios_shell/daemon/remote.py), so the shell takes either.

    A subclass calls ``_calls_init()``, writes one frame in ``_write`` (OSError once the other end is
    gone), says why it cannot send in ``_not_running``, and from its reader thread hands each reply to
    ``_resolve`` and the connection's end to ``_fail_all``. ``_lock`` guards ``_pending`` and writes."""

    def _calls_init(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}  # request id -> the Future of its reply
        self._lock = threading.Lock()

    def _write(self, msg: dict) -> None:
        raise NotImplementedError

    def _not_running(self) -> str:
        raise NotImplementedError

    def submit(self, op: str, **args: Any) -> tuple[int, Future]:
        """Send a request without waiting; the Future gets the raw reply dict
        (``{"ok", "result", "error", "code"}``), set on the reader thread."""
        if self.dead.is_set():
            raise KernelError(ECONNRESET, self._not_running())
        fut: Future = Future()
        with self._lock:
            req_id = next(self._ids)
            self._pending[req_id] = fut
            try:
                self._write({"op": op, "id": req_id, **args})
            except OSError:
                self._pending.pop(req_id, None)
                raise KernelError(ECONNRESET, self._not_running()) from None
        return req_id, fut

    def request(self, op: str, timeout: float | None = None, **args: Any) -> Any:
        req_id, fut = self.submit(op, **args)
        return self._answer(op, req_id, fut, timeout)

    def _resolve(self, msg: dict) -> None:
        """Reader thread: a reply; its request's Future gets it (none when that request timed out)."""
        with self._lock:
            fut = self._pending.pop(msg.get("reply"), None)
        if fut is not None:
            fut.set_result(msg)

    def _fail_all(self, reason: str) -> None:
        """Reader thread, at the connection's end: every request still waiting fails with ``reason``."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            fut.set_result({"ok": False, "error": reason, "code": ECONNRESET})

    def _answer(self, op: str, req_id: int, fut: Future, timeout: float | None) -> Any:
        """The reply to request ``req_id`` (its result, or KernelError); ETIMEDOUT after ``timeout`` s."""
        try:
            msg = fut.result(timeout)
        except TimeoutError:
            with self._lock:
                self._pending.pop(req_id, None)
            raise KernelError(ETIMEDOUT, f"{op}: no answer within {timeout}s") from None
        return unwrap(msg)

    def _deliver(self, event: dict) -> None:
        """On the reader thread: note the model's readiness, then hand the event to ``on_event``."""
        if event.get("event") == "ready":
            self.ready_info = event.get("stats") or {}
            self.ready.set()
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                pass  # a view's bug must not stop replies from arriving

    def spawn(self, agent: str, task: str, priority: int = 0, restart_max: int | None = None) -> int:
        """Start an agent; restart_max > 0 lets the kernel restart it after a crash (see supervisor.py)."""
        return self.request("spawn", timeout=30, agent=agent, task=task, priority=priority, restart_max=restart_max)

    def kill(self, pid: int) -> None:
        self.request("kill", timeout=10, pid=pid)

    def wait(self, pid: int, timeout: float | None = None, follow_restarts: bool = True) -> dict:
        """Block until pid ends; with follow_restarts, until the last process of its restart chain ends."""
        snap = self.request("wait", timeout=timeout, pid=pid)
        while follow_restarts and snap.get("restarted_as"):
            snap = self.request("wait", timeout=timeout, pid=snap["restarted_as"])
        return snap

    def ps(self, all: bool = True) -> list[dict]:
        return self.request("ps", timeout=10, all=all)

    def info(self, pid: int) -> dict:
        return self.request("info", timeout=10, pid=pid)

    def apps(self) -> dict:
        """The kernel's agent apps: {"apps": [{name, description, ...}], "broken": [{folder, path, error}]}."""
        return self.request("apps", timeout=10)

    def stats(self) -> dict:
        return self.request("stats", timeout=10)

    def logs(self, pid: int) -> dict:
        return self.request("logs", timeout=10, pid=pid)


class KernelClient(KernelCalls):
    """Front-side handle on a running kernel process."""

    def __init__(self, config, on_event: Callable[[dict], None] | None = None, boot_timeout: float = 60.0):
        """Raises KernelError (one line) at once when the model cannot be found (ENOENT) or the MCP config
        file cannot be used (EINVAL)."""
        from aios_shell.preflight import PreflightError, preflight_config

        try:
            env = preflight_config(config)
        except PreflightError as e:
            raise KernelError(e.code, str(e)) from None
        self.config = config
        self.on_event = on_event
        self._calls_init()
        self.booted = threading.Event()
        self.ready = threading.Event()  # model loaded (or failed: see ready_info)
        self.ready_info: dict = {}
        self.dead = threading.Event()
        self._conn, child = SPAWN.Pipe(duplex=True)
        self.process = SPAWN.Process(target=kernel_main, args=(config, child, env), name="aios-kernel", daemon=False)
        self.process.start()
        child.close()
        self._reader = threading.Thread(target=self._read_loop, name="kernel-events", daemon=True)
        self._reader.start()
        atexit.register(self.stop)
        if not self.booted.wait(boot_timeout) or self.dead.is_set():
            self.stop()
            raise KernelError(EIO, "the kernel process did not start")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _read_loop(self) -> None:
        try:
            while True:
                try:
                    msg = control.decode(self._conn.recv_bytes())
                except (ValueError, UnicodeDecodeError, RecursionError):
                    continue  # not a JSON object: the kernel never sends one; nothing to deliver
                if "reply" in msg:
                    self._resolve(msg)
                    continue
                if msg.get("event") == "booted":
                    self.booted.set()
                self._deliver(msg)
        except (EOFError, OSError):
            pass
        finally:
            self.dead.set()
            self.booted.set()
            self.ready.set()
            self._fail_all("the kernel exited")

    @property
    def lost_reason(self) -> str:
        """Why the kernel is gone (for the shell's last line)."""
        code = self.process.exitcode
        return f"the kernel process exited{'' if code is None else f' (exit code {code})'}"

    def _write(self, msg: dict) -> None:
        self._conn.send_bytes(control.encode(msg))

    def _not_running(self) -> str:
        return "the kernel is not running"

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the kernel and every agent; returns the kernel's exit code. Idempotent."""
        atexit.unregister(self.stop)
        if self.process.exitcode is None and not self.dead.is_set():
            try:
                with self._lock:
                    self._write({"op": "stop", "id": 0})
            except (OSError, BrokenPipeError):
                pass
        self.process.join(timeout)
        if self.process.exitcode is None:  # stuck: SIGTERM, then SIGKILL (agents die with it: PDEATHSIG)
            self.process.terminate()
            self.process.join(5)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join(5)
        self._reader.join(timeout=2)  # it sees EOF now that the kernel is gone
        self._conn.close()
        return self.process.exitcode
