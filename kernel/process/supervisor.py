"""Supervision: restart crashed agents within a restart intensity (Erlang/OTP style).

An agent whose process ended ``failed``, or ``killed`` by a signal nobody
asked the kernel for (an OOM kill, a stray SIGKILL), is restarted with the
same agent, task and priority under a new pid, unless its chain (``lineage``:
the pid of the first process) has already been restarted ``restart_max``
times within the last ``restart_period_s`` seconds; then it stays down and
its error says why. A kill through the kernel (``kill <pid>``) is never
undone. Off unless restart_max > 0 (per spawn, or --restart_max).
"""

from __future__ import annotations

import collections
import time

from kernel.process.table import PCB, ProcState


class Supervisor:
    def __init__(self, period_s: float):
        self.period_s = period_s
        self._restarts: dict[int, collections.deque[float]] = collections.defaultdict(collections.deque)

    def decide(self, pcb: PCB) -> tuple[bool, str]:
        """Call under the table lock with the final state set; returns (restart?, reason)."""
        if pcb.restart_max <= 0 or pcb.kill_requested:
            return False, ""
        if pcb.state not in (ProcState.FAILED, ProcState.KILLED):
            return False, ""
        lineage = pcb.lineage or pcb.pid
        now = time.monotonic()
        recent = self._restarts[lineage]
        while recent and now - recent[0] > self.period_s:
            recent.popleft()
        if len(recent) >= pcb.restart_max:
            return False, (f"not restarted: {len(recent)} restarts within {self.period_s:g}s "
                           f"reached the limit of {pcb.restart_max}")
        recent.append(now)
        return True, f"restart {len(recent)} of {pcb.restart_max} within {self.period_s:g}s"
