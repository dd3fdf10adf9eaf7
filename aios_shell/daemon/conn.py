"""One client of the daemon: its reader (frames in, validated), its writer (bounded queue out).

First, within HELLO_TIMEOUT_S: ``{"op": "hello", "id": N, "key": KEY}``
with this daemon run's key (paths.KeyFile; compared in constant time). Any
other first frame (another op, a hello with no key or a wrong one, a frame
that is not JSON, silence) gets one ``refused`` event (EACCES) and the
connection is closed: before the key, a client reaches no op and hears no
event. Invariant: ``authenticated`` turns True only in ``_greet`` and
never back; everything past ``_greet`` runs only when it is True.

Then what a client may send: the control ops (kernel.protocol.control.CLIENT_OPS: all but the
kernel's ``stop``) with arguments their schemas allow, plus ``hello``
(``{"interactive": bool}``; interactive clients get confirm questions) and
``shutdown``. A frame that is not valid JSON gets an ``error`` event and the
connection goes on; an oversized one closes it (its body was not read).
A client that stops reading fills its queue (OUT_QUEUE) and is dropped: it
cannot slow the kernel or the other clients. ``_lock`` guards ``inflight``.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from concurrent.futures import Future

from aios_shell.client import KernelError
from aios_shell.daemon import frames
from aios_shell.daemon.param import HELLO_TIMEOUT_S, MAX_CLIENT_FRAME, MAX_INFLIGHT, MAX_WAITS, OUT_QUEUE
from kernel.protocol import control
from kernel.protocol.messages import EACCES, EAGAIN, EINVAL, ENOSYS, EPROTO, MAX_ID, CodedError

log = logging.getLogger("aios.daemon")


class RequestError(CodedError):
    """A daemon client's request that cannot be served (bad op, bad arguments, too many in flight)."""


def check_args(op: str, frame: dict) -> dict:
    """The request's arguments, checked against the control op's schema (kernel/protocol/control.py, the
    same check the kernel makes); raises RequestError."""
    if op not in control.CLIENT_OPS:
        raise RequestError(ENOSYS, f"unknown op {op[:40]!r}")
    args = {k: v for k, v in frame.items() if k not in ("op", "id")}
    bad = control.check(op, args)
    if bad is not None:
        raise RequestError(EINVAL, bad[:300])
    return args


class ClientConn:
    def __init__(self, server, sock: socket.socket, peer_pid: int, number: int):  # server: aios_shell.daemon.server.Server
        self.server, self.sock = server, sock
        self.name = f"client {number} (pid {peer_pid})"
        self.authenticated = False  # presented the key (set once, by the reader: see _greet)
        self.interactive = False
        self.out: queue.Queue = queue.Queue(OUT_QUEUE)
        self.inflight = {"wait": 0, "other": 0}  # unanswered requests, guarded by _lock
        self._lock = threading.Lock()  # guards inflight and the closing of the connection
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name=f"daemon-{number}-in", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name=f"daemon-{number}-out", daemon=True)

    def start(self) -> None:
        self.sock.settimeout(HELLO_TIMEOUT_S)  # for the hello only: an unproven client cannot hold a slot
        self._writer.start()
        self._reader.start()

    # -- out ------------------------------------------------------------------------
    def send(self, obj: dict) -> None:
        """Any thread, never blocks: queue a frame; a client that does not read is dropped."""
        if self.closed.is_set():
            return
        try:
            self.out.put_nowait(frames.encode(obj))
        except queue.Full:
            log.warning("%s: %d frames unread: dropping it", self.name, OUT_QUEUE)
            self.close()

    def reply(self, req_id: int, ok: bool, result=None, error: str | None = None, code: str | None = None) -> None:
        self.send({"reply": req_id, "ok": ok, "result": result, "error": error, "code": code})

    def _write_loop(self) -> None:
        try:
            while True:
                data = self.out.get()
                if data is None:
                    return
                self.sock.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    # -- in -------------------------------------------------------------------------
    def _greet(self) -> bool:
        """Read the first frame: True once it is a hello with the key (and answered); otherwise the
        client is refused and closed, and False."""
        try:
            frame = frames.read_frame(self.sock, MAX_CLIENT_FRAME)
        except frames.FrameError as e:
            return self._refuse(f"its first frame is not a request ({e})")
        except TimeoutError:
            return self._refuse(f"no hello within {HELLO_TIMEOUT_S:g}s")
        if frame is None:
            return False  # connected and left: a liveness probe (paths.daemon_alive)
        op = frame.get("op")
        if op != "hello":
            return self._refuse(f"its first frame is {str(op)[:40]!r}, not a hello with the key")
        if not self.server.key_matches(frame.get("key")):
            return self._refuse("its hello has a wrong key" if "key" in frame else "its hello has no key")
        self.sock.settimeout(None)  # before anything is queued: the writer never sees the hello timeout
        self.authenticated = True
        log.info("%s presented the daemon's key", self.name)
        self._on_frame(frame)  # the hello's reply
        return True

    def _refuse(self, why: str) -> bool:
        """One ``refused`` event, then close (from the reader thread). Never says what the key is."""
        log.warning("refused %s: %s", self.name, why)
        self.send({"event": "refused", "code": EACCES,
                   "error": f"permission denied: this client did not present the daemon's key "
                            f"({self.server.keyfile})"})
        self.drain(time.monotonic() + 2)
        return False

    def _read_loop(self) -> None:
        try:
            if not self._greet():
                return
            while not self.closed.is_set():
                try:
                    frame = frames.read_frame(self.sock, MAX_CLIENT_FRAME)
                except frames.FrameError as e:
                    log.warning("%s: bad frame: %s", self.name, e)
                    self.send({"event": "error", "error": f"bad frame: {e}", "code": EPROTO})
                    if isinstance(e, frames.FrameTooLarge):
                        self.drain(time.monotonic() + 2)  # the error first, then the close
                        return
                    continue
                if frame is None:
                    return
                self._on_frame(frame)
        except (OSError, EOFError):
            pass
        finally:
            self.close()

    def _on_frame(self, frame: dict) -> None:
        req_id, op = frame.get("id"), frame.get("op")
        if not isinstance(req_id, int) or isinstance(req_id, bool) or not 0 < req_id < MAX_ID:
            self.send({"event": "error", "error": "a request needs an integer id > 0", "code": EINVAL})
            return
        try:
            if not isinstance(op, str):
                raise RequestError(EINVAL, "a request needs an op (a string)")
            if op == "hello":  # the key was checked by _greet, once for the connection
                self.interactive = bool(frame.get("interactive"))
                self.reply(req_id, True, self.server.hello())
                if self.interactive:
                    for ev in self.server.confirms_pending():
                        self.send(ev)
                return
            if op == "shutdown":
                self.reply(req_id, True, True)
                self.server.request_stop(f"shutdown asked by {self.name}")
                return
            args = check_args(op, frame)
            kind, cap = ("wait", MAX_WAITS) if op == "wait" else ("other", MAX_INFLIGHT)
            with self._lock:
                if self.inflight[kind] >= cap:
                    raise RequestError(EAGAIN, f"{cap} requests already unanswered")
                self.inflight[kind] += 1
            try:
                _, fut = self.server.kernel.submit(op, **args)
            except KernelError as e:
                self._done(req_id, kind, None, e)
                return
            fut.add_done_callback(lambda f: self._done(req_id, kind, f, None))
        except RequestError as e:
            self.reply(req_id, False, error=e.message, code=e.code)

    def _done(self, req_id: int, kind: str, fut: Future | None, err: KernelError | None) -> None:
        with self._lock:
            self.inflight[kind] -= 1
        if err is not None:
            self.reply(req_id, False, error=err.message, code=err.code)
            return
        msg = fut.result()
        self.reply(req_id, bool(msg.get("ok")), msg.get("result"), msg.get("error"), msg.get("code"))

    def end_of_stream(self) -> None:
        """The writer stops after what is queued now."""
        try:
            self.out.put_nowait(None)
        except queue.Full:
            pass

    def drain(self, deadline: float) -> None:
        """Let the writer send what is queued until ``deadline`` (time.monotonic()), then close."""
        self.end_of_stream()
        if threading.current_thread() is not self._writer:
            self._writer.join(timeout=max(0.0, deadline - time.monotonic()))
        self.close()

    def close(self) -> None:
        """Idempotent, any thread, never blocks."""
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv and the writer's sendall
        except OSError:
            pass
        try:
            self.out.put_nowait(None)
        except queue.Full:
            pass
        self.sock.close()
        self.server.forget(self)
