"""RemoteKernelClient: the shell's handle on a daemon's kernel, over its unix socket.

Same calls as KernelClient (aios_shell.client.KernelCalls: spawn, kill, wait, ps,
info, stats, logs, request) and the same attributes the shell reads
(``pid``, ``ready``, ``ready_info``, ``dead``, ``lost_reason``), so the
REPL, the batch runner and top take either. Differences: ``stop()`` only
detaches (the daemon, its kernel and agents go on); ``shutdown()`` stops
them all and returns once the daemon's process is gone (it exits only after
its kernel has reaped every agent), so a new daemon can start at once.
``NoDaemon`` (a KernelError) says that nothing serves the socket. The
hello carries the daemon's key, read from the key file beside the socket
(``aios.sock`` -> ``aios.key``): the daemon serves no client without it
(server.py).

    with RemoteKernelClient("/run/user/1000/aios/aios.sock", on_event=print) as k:
        print(k.ps())

Threads: a reader thread completes reply futures and calls ``on_event``;
``_lock`` guards ``_pending`` and socket writes (KernelCalls).
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from typing import Callable

from aios_shell.client import KernelCalls, KernelError
from aios_shell.daemon import frames, paths
from aios_shell.daemon.param import MAX_SERVER_FRAME
from kernel.protocol.messages import EACCES, ECONNREFUSED, ETIMEDOUT


class NoDaemon(KernelError):
    """No daemon serves the socket (no socket file, or a stale one nobody accepts on)."""


class RemoteKernelClient(KernelCalls):
    def __init__(self, sock_path: str, on_event: Callable[[dict], None] | None = None, *,
                 interactive: bool = False, timeout: float = 10.0):
        """Connect and say hello; KernelError (one line) when no daemon answers or it refuses us."""
        self.sock_path = sock_path
        self.on_event = on_event
        self._calls_init()
        self.ready = threading.Event()
        self.ready_info: dict = {}
        self.dead = threading.Event()
        self.closing = False  # we detached ourselves: not an error
        self._lost = "the daemon closed the connection"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(sock_path)
        except (FileNotFoundError, ConnectionRefusedError):
            self.sock.close()
            raise NoDaemon(ECONNREFUSED, f"no AIOS daemon at {sock_path} (start one: aios serve)") from None
        except OSError as e:
            self.sock.close()
            raise KernelError(ECONNREFUSED, f"cannot connect to {sock_path}: {e.strerror or e}") from None
        try:
            key = self._read_key()
        except KernelError:
            self.sock.close()
            raise
        try:
            self.daemon_os_pid = peer_pid(self.sock)  # the daemon as our pid namespace numbers it
        except OSError:
            self.daemon_os_pid = None
        self._reader = threading.Thread(target=self._read_loop, name="daemon-events", daemon=True)
        self._reader.start()
        try:
            self.hello = self.request("hello", timeout=timeout, interactive=interactive, key=key)
        except KernelError:
            self.close()
            raise
        self.pid = self.hello.get("kernel_pid")
        self.ready_info = self.hello.get("ready_info") or {}
        if self.hello.get("ready"):
            self.ready.set()

    def _read_key(self) -> str:
        """The key beside the socket; after the connect, so "no daemon" stays the message when none runs."""
        path = paths.keyfile_for(self.sock_path)
        try:
            return paths.read_key(path)
        except OSError as e:
            why = e.strerror or str(e)
        except paths.PathError as e:
            why = str(e)
        raise KernelError(EACCES, f"cannot read the daemon's key {path}: {why}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def lost_reason(self) -> str:
        return self._lost

    def _read_loop(self) -> None:
        try:
            while True:
                msg = frames.read_frame(self.sock, MAX_SERVER_FRAME)
                if msg is None:
                    break
                if "reply" in msg:
                    self._resolve(msg)
                    continue
                ev = msg.get("event")
                if ev == "refused":
                    self._lost = f"the daemon refused the connection: {msg.get('error')}"
                    break
                if ev == "shutdown":
                    self._lost = f"the daemon is shutting down ({msg.get('reason')})"
                self._deliver(msg)
        except (OSError, EOFError, frames.FrameError):
            pass
        finally:
            self.dead.set()
            self._fail_all(self._lost)

    def _write(self, msg: dict) -> None:
        self.sock.sendall(frames.encode(msg))

    def _not_running(self) -> str:
        return self._lost

    def shutdown(self, wait_s: float | None = 60.0) -> None:
        """Stop the daemon: every agent, the kernel, then the daemon itself. Returns once the daemon's
        process has exited (``wait_s`` None: at once); KernelError(ETIMEDOUT) if it still runs after
        ``wait_s`` seconds."""
        gone = ProcessGone(self.daemon_os_pid) if wait_s is not None else None  # before asking: no pid reuse
        try:
            self.closing = True  # the connection's end is what we asked for, not an error
            self.request("shutdown", timeout=10)
            if gone is not None and not gone.wait(wait_s):
                raise KernelError(ETIMEDOUT, f"the daemon (pid {self.daemon_os_pid}) is still stopping after "
                                             f"{wait_s:g}s")
        finally:
            if gone is not None:
                gone.close()

    def close(self) -> None:
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Detach: the daemon and its agents go on. Idempotent."""
        self.close()
        self._reader.join(timeout)


def peer_pid(sock: socket.socket) -> int:
    """The pid of the process at the other end of a unix socket (SO_PEERCRED), in our pid namespace."""
    import struct

    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", data)[0]


class ProcessGone:
    """Waits for a process that is not our child to exit: a pidfd (Linux 5.3+) turns readable when
    it does, so the wait blocks instead of polling; without pidfds, a check every 50 ms."""

    def __init__(self, pid: int | None):
        self.pid, self.fd = pid, None
        if pid:
            try:
                self.fd = os.pidfd_open(pid)
            except ProcessLookupError:
                self.pid = None  # already gone
            except (OSError, AttributeError):
                pass  # no pidfds here: poll

    def _alive(self) -> bool:
        if not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"  # a zombie has exited
        except (OSError, IndexError):
            return True

    def wait(self, timeout: float) -> bool:
        """True once the process has exited, False after ``timeout`` seconds."""
        if self.fd is not None:
            return bool(select.select([self.fd], [], [], timeout)[0])
        deadline = time.monotonic() + timeout
        while self._alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
