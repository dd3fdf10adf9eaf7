"""AgentProc: the kernel's handle on one live agent process.

Owned by the kernel's loop thread: only that thread reads its channel,
writes its output buffer and reaps it. Other threads hand replies to the
loop with ``Kernel.post``.

The process is started confined by kernel/confine/sandbox.py. Under
bubblewrap the kernel's child is bwrap, whose only child is the agent
(pid 1 of its own pid namespace): when either dies, the namespace and every
process in it (setsid and double-forks included) die too. The kernel learns
of the end through a pidfd of its child (``sentinel``), never through an fd
the agent or its descendants could inherit and hold open. The channel is two
pipes created here, close-on-exec, passed to the agent alone; the first frame
on kernel -> agent is the boot record.
"""

from __future__ import annotations

import collections
import errno
import json
import os
import shutil
import signal
import subprocess

import psutil

from kernel.confine import sandbox
from kernel.param import LOG_TAIL, MAX_OUTBUF
from kernel.process.table import PCB
from kernel.protocol.channel import HEADER, FrameDecoder


class AgentProc:
    def __init__(self, pcb: PCB, boot: dict, config, layers, app, workspace: str, file_bytes: int | None = None):
        """file_bytes: RLIMIT_FSIZE to give the agent when lower than the plan's (the room left in its workspace,
        from Watcher.admit); not below its own log file's cap, which the limit covers too."""
        self.pcb = pcb
        k_rx, a_tx = os.pipe2(os.O_CLOEXEC)  # agent -> kernel
        a_rx, k_tx = os.pipe2(os.O_CLOEXEC)  # kernel -> agent
        out = subprocess.DEVNULL
        try:
            if boot.get("log_path"):
                os.makedirs(os.path.dirname(boot["log_path"]), mode=0o700, exist_ok=True)
                out = open(boot["log_path"], "ab", buffering=0)  # the agent writes its log without seeing logs/
            self.process, plan, self.confinement = sandbox.launch(config, layers, app, workspace, [a_rx, a_tx], out)
        except BaseException:
            for fd in (k_rx, a_tx, a_rx, k_tx):
                os.close(fd)
            raise
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        os.close(a_rx)  # the kernel keeps only its own ends: EOF/EPIPE when the agent dies
        os.close(a_tx)
        self.supervisor = plan.pop("supervisor", None)  # connect() checks (kernel/confine/notify.py), if any
        self.tmp = plan.get("tmp")
        self.bwrap = plan["sandbox"] == "bwrap"
        self.app, self.workspace = app, workspace  # what kernel/process/watch.py watches
        self.limits = plan.get("limits") or {}  # {} under --confine off: nothing to enforce
        if file_bytes is not None and self.limits:
            floor = boot["log_max_bytes"] * (boot["log_backups"] + 1) if boot.get("log_path") else 1
            fsize = max(floor, file_bytes)
            self.limits["file_bytes"] = min(fsize, self.limits.get("file_bytes") or fsize)  # never above the plan's
        self.rx_fd, self.tx_fd = k_rx, k_tx
        os.set_blocking(self.rx_fd, False)
        os.set_blocking(self.tx_fd, False)
        self.pidfd = os.pidfd_open(self.process.pid)  # readable when our child ends; nothing can inherit it
        self.decoder = FrameDecoder()
        self.outbuf = bytearray()
        self.rx_open = True
        self.tx_open = True
        self.pcb.os_pid = self.process.pid  # bwrap's pid until the agent's own is known (agent_pid())
        self.ps = psutil.Process(self.process.pid)
        self._tree: dict[int, psutil.Process] = {}  # descendants, kept so cpu_percent() has a baseline
        self.exitcode: int | None = None
        self.output = collections.deque(maxlen=LOG_TAIL)  # console-mode lines
        self.queue_reply(json.dumps({**boot, "confine": plan}).encode())
        self.flush()

    @property
    def sentinel(self) -> int:
        return self.pidfd

    def agent_pid(self) -> int | None:
        """Host pid of the agent's interpreter: bwrap's one child (None until it exists)."""
        if not self.bwrap:
            return self.process.pid
        try:
            kids = self.ps.children()
        except psutil.Error:
            return None
        return kids[0].pid if kids else None

    # -- channel I/O (loop thread) ---------------------------------------------
    def read_available(self) -> list:
        """Drain what the agent has written; returns frames (bytes or Oversize). EOF closes rx."""
        frames = []
        while self.rx_open:
            try:
                chunk = os.read(self.rx_fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.rx_open = False
                break
            frames += self.decoder.feed(chunk)
            if len(frames) >= 64:
                break  # let other agents have a turn; the selector brings us back
        return frames

    def queue_reply(self, data: bytes) -> bool:
        """Buffer one reply frame; returns False if the agent is gone or not reading."""
        if not self.tx_open:
            return False
        if len(self.outbuf) > MAX_OUTBUF:
            return False
        self.outbuf += HEADER.pack(len(data)) + data
        return True

    def flush(self) -> bool:
        """Write as much buffered output as the pipe takes; True if some remains."""
        while self.outbuf and self.tx_open:
            try:
                n = os.write(self.tx_fd, self.outbuf)
            except BlockingIOError:
                return True
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.EBADF):
                    self.tx_open = False
                    self.outbuf.clear()
                    return False
                raise
            del self.outbuf[:n]
        return False

    def close_channel(self) -> None:
        """Close the kernel's ends now: after a kill nothing can make syscalls in this agent's name."""
        for attr, flag in (("rx_fd", "rx_open"), ("tx_fd", "tx_open")):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)
            setattr(self, flag, False)
        self.outbuf.clear()

    # -- signals -----------------------------------------------------------------
    def terminate(self) -> None:
        """The polite half of a kill: SIGTERM the agent (it unwinds); the kernel schedules kill()."""
        pid = self.agent_pid()
        if pid is None:
            self.kill()
            return
        self._signal(pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the sandbox: under bwrap its pid namespace, whatever ran setsid, dies with it."""
        if self.bwrap:
            self._signal(self.agent_pid(), signal.SIGKILL)
            self._signal(self.process.pid, signal.SIGKILL)
            return
        victims = []
        try:
            victims = self.ps.children(recursive=True)  # the ones still linked to the agent
        except psutil.Error:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for v in victims:
            self._signal(v.pid, signal.SIGKILL)

    def _signal(self, pid: int | None, sig: int) -> None:
        if self.exitcode is not None or pid is None:
            return  # reaped: the pid may belong to someone else now
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        """Reap: kill what is left, collect the exit status, release fds and the private tmp."""
        self.kill()
        code = self.process.wait()
        if self.bwrap and code > 128:
            code = -(code - 128)  # bwrap reports a signal death of the agent as 128 + signal
        self.exitcode = code
        os.close(self.pidfd)
        self.close_channel()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def resources(self) -> dict:
        """CPU% since the last call, RSS and CPU time of the agent and all its descendants."""
        cpu = rss = cpu_t = 0.0
        try:
            tree = [self.ps, *self.ps.children(recursive=True)]
        except psutil.Error:
            tree = [self.ps]
        alive = {}
        for p in tree:
            p = self._tree.get(p.pid, p)
            try:
                with p.oneshot():
                    c = p.cpu_percent(None)
                    rss += p.memory_info().rss
                    cpu_t += sum(p.cpu_times()[:2])
                if p.pid in self._tree or p is self.ps:
                    cpu += c  # a first reading has no baseline yet
                alive[p.pid] = p
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        self._tree = alive
        return {"cpu_percent": cpu, "rss": int(rss), "cpu_time_s": cpu_t}
