"""AgentProc: the kernel's handle on one live agent process.

Owned by the kernel's loop thread: only that thread reads its channel,
writes its output buffer and reaps it. Other threads hand replies to the
loop with ``Kernel.post``.
"""

from __future__ import annotations

import collections
import errno
import multiprocessing as mp
import os
import signal

import psutil

from kernel.channel import HEADER, FrameDecoder
from kernel.process.table import PCB

SPAWN = mp.get_context("spawn")
LOG_TAIL = 2000  # lines of console-mode output kept per agent for `logs`
MAX_OUTBUF = 64 << 20  # bytes of unread replies before the kernel stops buffering for an agent


class AgentProc:
    def __init__(self, pcb: PCB, boot: dict):
        self.pcb = pcb
        k_rx, a_tx = SPAWN.Pipe(duplex=False)  # agent -> kernel
        a_rx, k_tx = SPAWN.Pipe(duplex=False)  # kernel -> agent
        from agent_apps.runtime import agent_main

        self.process = SPAWN.Process(target=agent_main, args=(boot, a_rx, a_tx),
                                     name=f"aios-agent-{pcb.pid}-{pcb.name}", daemon=True)
        self.process.start()
        a_rx.close()  # the kernel keeps only its own ends: EOF/EPIPE when the agent dies
        a_tx.close()
        self._conns = (k_rx, k_tx)  # keep the Connection objects alive: they own the fds
        self.rx_fd = k_rx.fileno()
        self.tx_fd = k_tx.fileno()
        os.set_blocking(self.rx_fd, False)
        os.set_blocking(self.tx_fd, False)
        self.decoder = FrameDecoder()
        self.outbuf = bytearray()
        self.rx_open = True
        self.tx_open = True
        self.pcb.os_pid = self.process.pid
        self.ps = psutil.Process(self.process.pid)  # kept alive so cpu_percent() has a baseline
        self.ps.cpu_percent(None)
        self.output = collections.deque(maxlen=LOG_TAIL)  # console-mode lines

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

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

    # -- signals -----------------------------------------------------------------
    def signal_group(self, sig: int) -> None:
        """Signal the agent's process group (it calls setpgrp at start), falling back to the pid."""
        pid = self.process.pid
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
                return
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        """The polite half of a kill: the kernel schedules the SIGKILL half (Kernel.kill)."""
        self.signal_group(signal.SIGTERM)

    def close(self) -> None:
        """Reap: kill what is left of the group (while the zombie still holds the pid), then join."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.join(timeout=1)
        for c in self._conns:
            c.close()
        self.rx_open = self.tx_open = False

    def resources(self) -> dict:
        """CPU% since the last call and RSS, read inside one oneshot()."""
        try:
            with self.ps.oneshot():
                return {"cpu_percent": self.ps.cpu_percent(None), "rss": self.ps.memory_info().rss,
                        "cpu_time_s": sum(self.ps.cpu_times()[:2])}
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return {"cpu_percent": 0.0, "rss": 0, "cpu_time_s": 0.0}
