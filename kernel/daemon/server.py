"""The daemon's socket server: many shell clients multiplexed onto one KernelClient.

Threads and what they own:
  main          ``serve()``: accepts connections, checks each peer's uid
                (SO_PEERCRED), and runs the shutdown; woken by a self-pipe
                (SIGTERM, the ``shutdown`` op, the kernel's death).
  kernel-events KernelClient's reader: calls ``on_event`` and completes the
                reply futures; it only ever enqueues frames (never blocks on
                a client).
  per client    a reader (frames in, validated, forwarded with
                ``KernelClient.submit``) and a writer (its bounded outbound
                queue to the socket). A client that stops reading fills its
                queue and is dropped; it cannot slow the kernel or the others.
``_lock`` guards ``clients`` and ``pending_confirms``.

What a client may do: the ops in OP_ARGS (the shell's calls; never the
kernel's ``stop``) with exactly the listed argument types, plus ``hello``
(``{"interactive": bool}``; interactive clients get confirm questions) and
``shutdown`` (stops every agent, the kernel and the daemon). Every agent
output, exit and ready event goes to every client; confirm questions go to
the interactive ones, and the first answer decides (the kernel settles a
question once and announces it with ``confirm_done``). With no interactive
client attached, ``--confirm_policy`` answers at once.
"""

from __future__ import annotations

import logging
import os
import queue
import selectors
import socket
import struct
import threading
from concurrent.futures import Future

from kernel.boot import KernelError
from kernel.daemon import frames

log = logging.getLogger("aios.daemon")
MAX_CLIENTS = 64  # connections at once; more are refused with an error frame
MAX_INFLIGHT = 32  # unanswered requests per client, `wait` aside: a flood queues little in the kernel
MAX_WAITS = 1024  # unanswered `wait`s per client (each costs the kernel one callback)
OUT_QUEUE = 4096  # frames queued for one client before it counts as stuck and is dropped
MAX_ID = 2 ** 53  # request ids: positive integers JSON carries exactly
_INT, _STR, _BOOL = "int", "str", "bool"
OP_ARGS: dict[str, dict[str, str]] = {  # op -> {argument: type}; all arguments optional at this layer
    "spawn": {"agent": _STR, "task": _STR, "priority": _INT, "restart_max": _INT},
    "kill": {"pid": _INT}, "wait": {"pid": _INT}, "info": {"pid": _INT}, "logs": {"pid": _INT},
    "ps": {"all": _BOOL}, "stats": {}, "tools": {}, "access": {},
    "confirm": {"cid": _INT, "allow": _BOOL}, "setgroup": {"agent": _STR, "group": _STR},
}
INT_RANGE = 2 ** 31  # pids, cids, priorities


class RequestError(Exception):
    def __init__(self, message: str, code: str = "EINVAL"):
        super().__init__(message)
        self.message, self.code = message, code


def check_args(op: str, frame: dict) -> dict:
    """The request's arguments, checked against OP_ARGS; raises RequestError."""
    spec = OP_ARGS[op]
    args = {}
    for key, value in frame.items():
        if key in ("op", "id"):
            continue
        kind = spec.get(key)
        if kind is None:
            raise RequestError(f"{op}: unknown argument {key[:40]!r}")
        if value is None:
            continue
        ok = {_INT: isinstance(value, int) and not isinstance(value, bool) and -INT_RANGE < value < INT_RANGE,
              _STR: isinstance(value, str), _BOOL: isinstance(value, bool)}[kind]
        if not ok:
            raise RequestError(f"{op}: {key} must be {'an integer' if kind == _INT else 'a ' + kind}")
        args[key] = value
    return args


def peer_cred(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end (Linux SO_PEERCRED)."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", data)


class ClientConn:
    def __init__(self, server: "Server", sock: socket.socket, peer_pid: int, number: int):
        self.server, self.sock = server, sock
        self.name = f"client {number} (pid {peer_pid})"
        self.interactive = False
        self.out: queue.Queue = queue.Queue(OUT_QUEUE)
        self.inflight = {"wait": 0, "other": 0}  # unanswered requests, guarded by _lock
        self._lock = threading.Lock()
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name=f"daemon-{number}-in", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name=f"daemon-{number}-out", daemon=True)

    def start(self) -> None:
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
    def _read_loop(self) -> None:
        try:
            while not self.closed.is_set():
                try:
                    frame = frames.read_frame(self.sock, frames.MAX_CLIENT_FRAME)
                except frames.FrameError as e:
                    log.warning("%s: bad frame: %s", self.name, e)
                    self.send({"event": "error", "error": f"bad frame: {e}", "code": "EPROTO"})
                    if isinstance(e, frames.FrameTooLarge):
                        self.close(flush=True)
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
            self.send({"event": "error", "error": "a request needs an integer id > 0", "code": "EINVAL"})
            return
        try:
            if not isinstance(op, str):
                raise RequestError("a request needs an op (a string)")
            if op == "hello":
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
            if op not in OP_ARGS:
                raise RequestError(f"unknown op {op[:40]!r}", "ENOSYS")
            args = check_args(op, frame)
            kind, cap = ("wait", MAX_WAITS) if op == "wait" else ("other", MAX_INFLIGHT)
            with self._lock:
                if self.inflight[kind] >= cap:
                    raise RequestError(f"{cap} requests already unanswered", "EAGAIN")
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

    def close(self, flush: bool = False) -> None:
        """Idempotent, any thread. ``flush``: let the writer send what is queued first (briefly)."""
        if self.closed.is_set():
            return
        self.closed.set()
        if flush and threading.current_thread() is not self._writer:
            try:
                self.out.put(None, timeout=1)
            except queue.Full:
                pass
            self._writer.join(timeout=2)
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


class Server:
    def __init__(self, kernel, listener: socket.socket, sock_path: str, info: dict, confirm_policy: str):
        self.kernel = kernel  # KernelClient, whose on_event is self.on_event
        self.listener = listener
        self.sock_path = sock_path
        self.info = info  # constant part of the hello reply
        self.confirm_policy = confirm_policy
        self.clients: list[ClientConn] = []
        self.pending_confirms: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._count = 0
        self.stop_reason: str | None = None
        self.exit_code = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    # -- any thread -----------------------------------------------------------------
    def request_stop(self, reason: str, exit_code: int = 0) -> None:
        """Safe from signal handlers and any thread: the main loop runs the shutdown."""
        if self.stop_reason is None:
            self.stop_reason, self.exit_code = reason, exit_code
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    def hello(self) -> dict:
        return {**self.info, "ready": self.kernel.ready.is_set(), "ready_info": self.kernel.ready_info,
                "kernel_pid": self.kernel.pid, "clients": len(self.clients)}

    def confirms_pending(self) -> list[dict]:
        with self._lock:
            return list(self.pending_confirms.values())

    def forget(self, conn: ClientConn) -> None:
        with self._lock:
            if conn not in self.clients:
                return
            self.clients.remove(conn)
            left = len(self.clients)
            orphans = [] if any(c.interactive for c in self.clients) else list(self.pending_confirms.values())
        log.info("%s left (%d attached)", conn.name, left)
        for ev in orphans:  # the last one who could answer left: the policy answers
            self._decide_by_policy(ev)

    def _targets(self, interactive_only: bool = False) -> list[ClientConn]:
        with self._lock:
            return [c for c in self.clients if c.interactive or not interactive_only]

    def on_event(self, ev: dict) -> None:
        """KernelClient reader thread: log the event and hand it to the clients' queues."""
        kind = ev.get("event")
        if kind == "output":
            log.info("[%s %s] %s", ev.get("agent"), ev.get("pid"), ev.get("text"))
        elif kind == "exit":
            snap = ev.get("snapshot") or {}
            log.info("pid %s (%s) %s: %s", ev.get("pid"), snap.get("agent"), snap.get("state"),
                     str(snap.get("result") if snap.get("error") is None else snap.get("error"))[:500])
        elif kind == "ready":
            err = (ev.get("stats") or {}).get("load_error")
            if err:
                log.error("model load failed: %s", err)
            else:
                log.info("model ready")
        elif kind == "log":
            log.info("kernel: %s", ev.get("text"))
        if kind == "confirm":
            self._on_confirm(ev)
            return
        if kind == "confirm_done":
            with self._lock:
                self.pending_confirms.pop(ev.get("cid"), None)
            log.info("confirmation %s: %s by %s", ev.get("cid"), "allowed" if ev.get("allow") else "denied",
                     ev.get("by"))
            targets = self._targets(interactive_only=True)
        else:
            targets = self._targets()
        for c in targets:
            c.send(ev)

    def _on_confirm(self, ev: dict) -> None:
        log.info("confirmation %s: pid %s (%s) wants to %s", ev.get("cid"), ev.get("pid"), ev.get("agent"),
                 ev.get("action"))
        with self._lock:
            targets = [c for c in self.clients if c.interactive]
            if targets:
                self.pending_confirms[ev.get("cid")] = ev
        if targets:
            for c in targets:
                c.send(ev)
            return
        self._decide_by_policy(ev)

    def _decide_by_policy(self, ev: dict) -> None:
        """Nobody to ask: ``--confirm_policy`` answers now, not after the kernel's timeout."""
        allow = self.confirm_policy == "allow"
        log.info("confirmation %s: no interactive client attached: --confirm_policy %s decides",
                 ev.get("cid"), self.confirm_policy)
        try:
            self.kernel.submit("confirm", cid=ev.get("cid"), allow=allow)
        except KernelError:
            pass  # the kernel is going: it denies pending questions itself

    # -- main thread ------------------------------------------------------------------
    def serve(self) -> None:
        """Accept clients until request_stop(); then the caller runs shutdown()."""
        threading.Thread(target=self._watch_kernel, name="daemon-kernel-watch", daemon=True).start()
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while self.stop_reason is None:
                for key, _ in sel.select():
                    if key.data == "accept":
                        self._accept()
        finally:
            sel.close()

    def _watch_kernel(self) -> None:
        self.kernel.dead.wait()
        self.request_stop(f"{self.kernel.lost_reason}", exit_code=1)

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        try:
            pid, uid, _gid = peer_cred(sock)
        except OSError as e:
            log.warning("refused a client: no peer credentials (%s)", e)
            sock.close()
            return
        if uid != os.geteuid():
            log.warning("refused pid %d of uid %d: only uid %d may use this daemon", pid, uid, os.geteuid())
            self._refuse(sock, f"permission denied: this daemon serves uid {os.geteuid()} only", "EACCES")
            return
        with self._lock:
            full = len(self.clients) >= MAX_CLIENTS
            if not full:
                self._count += 1
                conn = ClientConn(self, sock, pid, self._count)
                self.clients.append(conn)
                n = len(self.clients)
        if full:
            log.warning("refused pid %d: %d clients already attached", pid, MAX_CLIENTS)
            self._refuse(sock, f"{MAX_CLIENTS} clients already attached", "EAGAIN")
            return
        log.info("%s attached (%d attached)", conn.name, n)
        conn.start()

    @staticmethod
    def _refuse(sock: socket.socket, error: str, code: str) -> None:
        try:
            sock.settimeout(1.0)
            sock.sendall(frames.encode({"event": "refused", "error": error, "code": code}))
        except OSError:
            pass
        finally:
            sock.close()

    def shutdown(self) -> int:
        """Stop accepting, stop every agent and the kernel, tell and drop the clients; the exit code."""
        log.info("shutting down: %s", self.stop_reason)
        try:
            os.unlink(self.sock_path)  # new clients get "no daemon" at once
        except FileNotFoundError:
            pass
        self.listener.close()
        for c in self._targets():
            c.send({"event": "shutdown", "reason": self.stop_reason})
        code = self.kernel.stop()  # stops every agent; their exit events still reach the clients
        for c in self._targets():
            c.close(flush=True)
        log.info("kernel stopped (exit code %s); daemon exits", code)
        return self.exit_code
