"""The daemon's socket server: many shell clients multiplexed onto one KernelClient.

Threads and what they own:
  main          ``serve()``: accepts connections, checks each peer's uid
                (SO_PEERCRED), and runs the shutdown; woken by a self-pipe
                (SIGTERM, the ``shutdown`` op, the kernel's death).
  kernel-events KernelClient's reader: calls ``on_event`` and completes the
                reply futures; it only ever enqueues frames (never blocks on
                a client).
  per client    a reader and a writer (conn.py: ClientConn, which also
                says what a client may send).
``_lock`` guards ``clients`` and ``pending_confirms``.

Two checks, both required: the peer's uid is ours (at accept), and its
first frame is a ``hello`` carrying this run's key (``aios.key``, see
paths.KeyFile; checked in conn.py). The uid alone would admit the user's
own confined agents, which share the uid and can connect() to the socket.
Until a client has passed both, it gets no event and reaches no op.

Every agent output, exit and ready event goes to every proven client; confirm questions go to
the interactive ones, and the first answer decides (the kernel settles a
question once and announces it with ``confirm_done``). With no interactive
client attached, ``--confirm_policy`` answers at once.
"""

from __future__ import annotations

import hmac
import logging
import os
import selectors
import socket
import struct
import threading
import time

from aios_shell.client import KernelError
from aios_shell.daemon import frames
from aios_shell.daemon.conn import ClientConn
from aios_shell.daemon.param import MAX_CLIENTS
from kernel.protocol.messages import EACCES, EAGAIN

log = logging.getLogger("aios.daemon")


def peer_cred(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end (Linux SO_PEERCRED)."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", data)


class Server:
    def __init__(self, kernel, listener: socket.socket, sock_path: str, info: dict, confirm_policy: str, *,
                 key: str, keyfile: str):
        self.kernel = kernel  # KernelClient, whose on_event is self.on_event
        self.listener = listener
        self.sock_path = sock_path
        self._key = key.encode("ascii")  # this run's secret; never logged, never sent
        self.keyfile = keyfile  # its path, named in refusals
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

    def key_matches(self, presented) -> bool:
        """Is ``presented`` (anything a client sent) this run's key? Constant time."""
        if not isinstance(presented, str):
            return False
        return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), self._key)

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
        """The clients that may hear events: those that presented the key (never one still unproven)."""
        with self._lock:
            return [c for c in self.clients if c.authenticated and (c.interactive or not interactive_only)]

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
            targets = [c for c in self.clients if c.authenticated and c.interactive]
            if targets:
                self.pending_confirms[ev.get("cid")] = ev
        if targets:
            for c in targets:
                c.send(ev)
            return
        self._decide_by_policy(ev)

    def _decide_by_policy(self, ev: dict) -> None:
        """Nobody to ask: ``--confirm_policy`` answers now, not after the kernel's timeout.
        Sent from a thread of its own: this may run on the kernel-events thread, which must never
        write to the kernel (a full pipe both ways would deadlock)."""
        allow = self.confirm_policy == "allow"
        log.info("confirmation %s: no interactive client attached: --confirm_policy %s decides",
                 ev.get("cid"), self.confirm_policy)

        def send():
            try:
                self.kernel.submit("confirm", cid=ev.get("cid"), allow=allow)
            except KernelError:
                pass  # the kernel is going: it denies pending questions itself
        threading.Thread(target=send, name="daemon-confirm", daemon=True).start()

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
        if self.stop_reason is None:
            self.kernel.process.join(5)  # reaped, so the reason can name its exit code
        self.request_stop(self.kernel.lost_reason, exit_code=1)

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
            self._refuse(sock, f"permission denied: this daemon serves uid {os.geteuid()} only", EACCES)
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
            self._refuse(sock, f"{MAX_CLIENTS} clients already attached", EAGAIN)
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
        deadline = time.monotonic() + 2  # for all clients together: a stuck one cannot hold the exit
        with self._lock:
            clients = list(self.clients)  # the unproven too: they are closed, not told
        for c in clients:
            c.end_of_stream()
        for c in clients:
            c.drain(deadline)
        log.info("kernel stopped (exit code %s); daemon exits", code)
        return self.exit_code
