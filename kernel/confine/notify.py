"""The kernel's answer to an agent's connect(), in the fallback without a network namespace (kernel side).

Landlock's TCP rule names a port, not an address: alone it would let an agent
reach any host that listens on its endpoint's port number. So in that mode the
agent's seccomp filter (agent_apps/confine/seccomp.py) sends every ``connect()``
here (SECCOMP_RET_USER_NOTIF), and this supervisor:

1. reads the address from the caller's memory (/proc/PID/mem; the kernel is
   its ancestor), and the ID_VALID check makes sure the caller is still the
   process that asked;
2. refuses (EACCES, as Landlock would) anything but 127.0.0.1 or ::1 on the
   agent's own endpoint port;
3. for an allowed call, connects a socket itself to 127.0.0.1:PORT and
   installs it in place of the caller's fd (SECCOMP_IOCTL_NOTIF_ADDFD with
   SETFD, its O_NONBLOCK kept), then answers 0. The call is never let
   continue with the caller's own arguments, so a thread that rewrites the
   address after the check (the time-of-check race the seccomp_unotify man
   page warns of) changes nothing: the kernel chose where the socket leads.

One thread per agent (``watch``): a hostile agent that stalls its own endpoint
stalls only its own connects. The thread first receives the listener fd over
a socketpair the agent's runtime writes once, before any agent code runs, with
the endpoint's port; it ends when every process of the agent has exited (the
listener hangs up). Linux >= 5.9 (ADDFD); older kernels refuse the filter flag
and the probe reports it.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import logging
import os
import select
import socket
import struct
import threading

log = logging.getLogger("aios.kernel")

_IOWR, _IOW = 3 << 30, 1 << 30
NOTIF_SIZE, RESP_SIZE = 80, 24  # struct seccomp_notif, seccomp_notif_resp (Linux 5.5+)
NOTIF_RECV = _IOWR | (NOTIF_SIZE << 16) | (ord("!") << 8) | 0
NOTIF_SEND = _IOWR | (RESP_SIZE << 16) | (ord("!") << 8) | 1
NOTIF_ID_VALID = _IOW | (8 << 16) | (ord("!") << 8) | 2
NOTIF_ADDFD = _IOW | (24 << 16) | (ord("!") << 8) | 3
ADDFD_FLAG_SETFD = 1
O_NONBLOCK, O_CLOEXEC = 0o4000, 0o2000000
MAX_ADDR = 128  # bytes of a sockaddr read from the caller
LOOPBACK = {socket.AF_INET: ipaddress.ip_address("127.0.0.1"), socket.AF_INET6: ipaddress.ip_address("::1")}
HELLO_MAX = 256


def parse_sockaddr(raw: bytes) -> tuple[int, str, int] | None:
    """(family, host, port) of a sockaddr_in / sockaddr_in6, or None for anything else."""
    if len(raw) < 2:
        return None
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        return family, str(ipaddress.IPv4Address(raw[4:8])), struct.unpack_from(">H", raw, 2)[0]
    if family == socket.AF_INET6 and len(raw) >= 24:
        addr = ipaddress.IPv6Address(raw[8:24])
        host = str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)
        return family, host, struct.unpack_from(">H", raw, 2)[0]
    return None


def allowed(parsed: tuple[int, str, int] | None, port: int) -> bool:
    if parsed is None or not port:
        return False
    _, host, p = parsed
    return p == port and ipaddress.ip_address(host) in LOOPBACK.values()


def _fd_flags(pid: int, fd: int) -> int | None:
    """The caller's file status flags of ``fd`` (None unless it is a socket we may inspect)."""
    try:
        if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
            return None
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        return None
    return None


class Supervisor(threading.Thread):
    """Answers one agent's connect() calls (its tree of processes shares the listener)."""

    def __init__(self, hello: socket.socket, name: str):
        super().__init__(name=f"connect-{name}", daemon=True)
        self.hello = hello
        self.agent = name
        self.port = 0
        self.denied = 0  # calls refused (tests and the kernel log read it)
        self.allowed = 0

    def run(self) -> None:
        listener = self._receive()
        if listener is None:
            return
        poller = select.poll()
        poller.register(listener, select.POLLIN)
        try:
            while True:
                events = poller.poll()
                if any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, ev in events):
                    return  # every process of the agent is gone: the filter has no user left (never spin here)
                buf = bytearray(NOTIF_SIZE)
                try:
                    fcntl.ioctl(listener, NOTIF_RECV, buf, True)
                except OSError as e:
                    if e.errno in (2, 4):  # ENOENT: the caller died first; EINTR
                        continue
                    return  # every process of the agent is gone (the listener hung up)
                self._answer(listener, buf)
        finally:
            os.close(listener)

    def _receive(self) -> int | None:
        """The listener fd and the endpoint port, sent once by the agent's runtime before agent code ran."""
        try:
            msg, fds, _, _ = socket.recv_fds(self.hello, HELLO_MAX, 1)
        except OSError:
            return None
        finally:
            self.hello.close()
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return None
        try:
            self.port = int(json.loads(msg or b"{}").get("port") or 0)
        except (ValueError, AttributeError, TypeError):
            self.port = 0
        return fds[0]

    def _answer(self, listener: int, buf: bytearray) -> None:
        nid, pid, _flags = struct.unpack_from("=QII", buf, 0)
        args = struct.unpack_from("=6Q", buf, 32)  # seccomp_data: nr, arch, ip (16 bytes), then args
        fd, addr, addrlen = args[0] & 0xFFFFFFFF, args[1], args[2] & 0xFFFFFFFF
        parsed = None
        try:
            with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
                mem.seek(addr)
                parsed = parse_sockaddr(mem.read(min(addrlen, MAX_ADDR)))
            fcntl.ioctl(listener, NOTIF_ID_VALID, struct.pack("=Q", nid))  # still the process that asked
        except OSError as e:
            if e.errno == 2:  # ENOENT from ID_VALID: the caller is gone
                return
            log.warning("%s: connect() of pid %d refused: cannot read its address (%s)", self.agent, pid, e)
        if allowed(parsed, self.port):
            flags = _fd_flags(pid, fd)
            if flags is not None and self._hand_over(listener, nid, fd, flags):
                self.allowed += 1
                self._respond(listener, nid, 0, 0)
                return
        self.denied += 1
        if parsed is not None:
            log.info("%s: connect() of pid %d to %s port %d refused (only 127.0.0.1:%d, its endpoint)",
                     self.agent, pid, parsed[1], parsed[2], self.port)
        self._respond(listener, nid, 0, -13)  # -EACCES, what Landlock answers

    def _hand_over(self, listener: int, nid: int, fd: int, flags: int) -> bool:
        """Connect to the endpoint ourselves and put that socket at the caller's ``fd``."""
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2.0)
        except OSError as e:
            log.warning("%s: its endpoint 127.0.0.1:%d does not accept: %s", self.agent, self.port, e)
            return False
        try:
            s.setblocking(not flags & O_NONBLOCK)
            req = struct.pack("=QIIII", nid, ADDFD_FLAG_SETFD, s.fileno(), fd, flags & O_CLOEXEC)
            fcntl.ioctl(listener, NOTIF_ADDFD, req)
            return True
        except OSError as e:
            log.warning("%s: could not hand the connection over: %s", self.agent, e)
            return False
        finally:
            s.close()

    @staticmethod
    def _respond(listener: int, nid: int, val: int, error: int) -> None:
        try:
            fcntl.ioctl(listener, NOTIF_SEND, bytearray(struct.pack("=QqiI", nid, val, error, 0)))
        except OSError:
            pass  # the caller died meanwhile


def watch(name: str) -> tuple[int, Supervisor]:
    """A socketpair for one agent: (the fd to pass to it, its started supervisor)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sup = Supervisor(ours, name)
    sup.start()
    fd = theirs.detach()
    os.set_inheritable(fd, False)  # pass_fds makes it inheritable in the agent alone
    return fd, sup
