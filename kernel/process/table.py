"""Process table: agent states, control blocks and their accounting.

Lock ownership: every mutable field of a PCB and the table's dict are guarded
by ``ProcessTable.lock`` (one lock for the whole table; hold it only for field
updates, never across I/O). The kernel's loop thread creates and reaps PCBs;
the engine and tool threads update LLM/tool accounting through the table's
methods.
"""

from __future__ import annotations

import enum
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class ProcState(str, enum.Enum):
    """Lifecycle of an agent process, in the spirit of xv6's proc.h.

    NEW           spawned, has not yet made its first syscall
    RUNNING       executing its own code on the CPU
    LLM_QUEUED    its LLM call waits for the engine (queued, or preempted)
    LLM_RUNNING   its LLM call is being decoded
    WAITING_TOOL  blocked in a tool call
    SLEEPING      blocked in another syscall (proc.wait, a confirmation)
    DONE          its OS process exited after reporting a result
    FAILED        crashed, exited without a result, or reported failure
    KILLED        killed on request or by a signal

    Moves go through ProcessTable.transition and follow NEXT below.
    """

    NEW = "new"
    RUNNING = "running"
    LLM_QUEUED = "llm-queued"
    LLM_RUNNING = "llm-running"
    WAITING_TOOL = "waiting-tool"
    SLEEPING = "sleeping"
    DONE = "done"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def ended(self) -> bool:
        return self in ENDED


ENDED = frozenset({ProcState.DONE, ProcState.FAILED, ProcState.KILLED})
_BLOCKED = frozenset({ProcState.RUNNING, ProcState.LLM_QUEUED, ProcState.LLM_RUNNING, ProcState.WAITING_TOOL,
                      ProcState.SLEEPING})
# The allowed moves. A live process moves between the running and blocked states in any order (an agent may
# pipeline an LLM call, a tool call and a wait); only the reaper ends it, and nothing leaves an ended state.
NEXT: dict[ProcState, frozenset] = {
    ProcState.NEW: _BLOCKED | ENDED,
    **{s: _BLOCKED | ENDED for s in _BLOCKED},
    **{s: frozenset() for s in ENDED},
}


@dataclass
class LLMCallTiming:
    """One llm.chat call; times are time.time() seconds."""

    created: float
    started: float | None = None
    finished: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    preemptions: int = 0
    max_new: int = 0  # the new tokens the engine granted when it admitted the call (0 before)

    @property
    def waiting(self) -> float | None:
        return None if self.started is None else self.started - self.created

    @property
    def turnaround(self) -> float | None:
        return None if self.finished is None else self.finished - self.created


@dataclass
class PCB:
    """Process control block. Fields below ``lock-guarded`` need the table lock."""

    pid: int
    name: str  # agent app name, e.g. MathAgent
    task: str
    priority: int = 0
    group: str = ""  # privilege group; defaults to the agent's own
    os_pid: int | None = None
    confinement: str = ""  # layers the agent runs under (kernel/confine), e.g. namespaces+landlock+seccomp+rlimits; "off"
    # Set at spawn, never changed (read without the lock):
    tree: int = 0  # pid of its spawn tree's root: the process the user started; proc.spawn children inherit it
    tools: frozenset | None = frozenset()  # tools its profile listed at spawn (None: any, "*"); the rights it
    # runs with, whatever its config.json on disk says later (kernel.access.AccessManager.allowed_tools)
    start_time: float = field(default_factory=time.time)
    # lock-guarded:
    state: ProcState = ProcState.NEW
    end_time: float | None = None
    # The OS exit status, the one source of truth once the process is reaped: exit_code for a
    # normal exit, exit_signal (a signal number) for a process ended by a signal; never both.
    exit_code: int | None = None
    exit_signal: int | None = None
    exit_reported: str | None = None  # "ok" or "error" from proc.exit; later syscalls are refused
    result: Any = None  # what proc.exit(ok) returned; None when there is none
    result_path: str | None = None  # a large result kept whole in this file; ``result`` holds its start
    answer: str | None = None  # the plain answer derived from the result (kernel/protocol/results.py); None: none
    error: str | None = None  # the traceback or the reason, once
    parent: int | None = None  # pid of the agent that spawned it (None: the user)
    kept_bytes: int = 0  # set when reaped: bytes of task, result and error it keeps (history.kept_bytes)
    kill_requested: bool = False
    kill_reason: str | None = None  # why the kernel killed it on its own (kernel/process/watch.py): its error
    exit_overdue: bool = False  # still running kill_grace_s after proc.exit: SIGKILLed
    syscalls: Counter = field(default_factory=Counter)
    llm_calls: list[LLMCallTiming] = field(default_factory=list)
    llm_time: float = 0.0  # seconds of engine time attributed to this agent
    log_path: str | None = None
    first_syscall_at: float | None = None  # spawn -> first syscall is the agent's start-up time
    restart_max: int = 0  # supervision: restarts allowed per period (0: off)
    lineage: int = 0  # pid of the first process of a restarted chain (itself if never restarted)
    restarted_as: int | None = None  # pid of the process that replaced this one

    def snapshot(self) -> dict:
        """Plain dict of built-in types for ps/top/reports (call under the lock)."""
        done = [c for c in self.llm_calls if c.finished is not None]
        waits = [c.waiting for c in done]
        turns = [c.turnaround for c in done]
        end = self.end_time or time.time()
        return {
            "pid": self.pid, "os_pid": self.os_pid, "agent": self.name, "task": self.task,
            "state": self.state.value, "priority": self.priority, "group": self.group,
            "start_time": self.start_time, "end_time": self.end_time, "elapsed_s": end - self.start_time,
            "exit_code": self.exit_code, "exit_signal": self.exit_signal, "exit": exit_text(self),
            "answer": self.answer, "result": self.result, "result_path": self.result_path, "error": self.error, "parent": self.parent,
            "syscalls": dict(self.syscalls), "syscalls_total": sum(self.syscalls.values()),
            "llm_calls": len(self.llm_calls), "llm_calls_done": len(done),
            "tokens_in": sum(c.tokens_in for c in self.llm_calls),
            "tokens_out": sum(c.tokens_out for c in self.llm_calls),
            "preemptions": sum(c.preemptions for c in self.llm_calls),
            "waiting_s": sum(waits) / len(waits) if waits else None,
            "turnaround_s": sum(turns) / len(turns) if turns else None,
            "llm_time_s": self.llm_time, "log_path": self.log_path,
            "restart_max": self.restart_max, "lineage": self.lineage or self.pid, "restarted_as": self.restarted_as,
            "tree": self.tree or self.pid,
            "startup_s": None if self.first_syscall_at is None else self.first_syscall_at - self.start_time,
            "confinement": self.confinement,
        }


def exit_text(pcb: PCB) -> str | None:
    """How the OS process ended, as every view prints it: ``0``, ``1``, ``SIGTERM``; None while alive."""
    if pcb.exit_signal is not None:
        try:
            return signal.Signals(pcb.exit_signal).name
        except ValueError:
            return f"signal {pcb.exit_signal}"
    return None if pcb.exit_code is None else str(pcb.exit_code)


class ProcessTable:
    def __init__(self):
        self.lock = threading.RLock()
        self._procs: dict[int, PCB] = {}
        self._next_pid = 1

    def new(self, name: str, task: str, priority: int = 0, group: str | None = None) -> PCB:
        with self.lock:
            pid = self._next_pid
            self._next_pid += 1
            pcb = PCB(pid=pid, name=name, task=task, priority=priority, group=group or f"{name}:{pid}")
            self._procs[pid] = pcb
            return pcb

    @property
    def next_pid(self) -> int:
        return self._next_pid

    def get(self, pid: int) -> PCB | None:
        with self.lock:
            return self._procs.get(pid)

    def all(self) -> list[PCB]:
        with self.lock:
            return list(self._procs.values())

    def live(self) -> list[PCB]:
        with self.lock:
            return [p for p in self._procs.values() if not p.state.ended]

    def transition(self, pcb: PCB, state: ProcState) -> bool:
        """Move ``pcb`` to ``state`` if NEXT allows it; False when it had ended already (a late event for a
        killed process is not an error). Any other move is a kernel bug: ValueError.
        Takes the table lock (reentrant: callers may hold it)."""
        with self.lock:
            if pcb.state.ended:
                return False
            if state not in NEXT[pcb.state]:
                raise ValueError(f"pid {pcb.pid}: no move from {pcb.state.value} to {state.value}")
            pcb.state = state
            return True

    def prune(self, max_procs: int, max_bytes: int) -> list[int]:
        """Drop the oldest ended processes beyond ``max_procs`` or ``max_bytes``; returns their pids."""
        with self.lock:
            ended = [p for p in self._procs.values() if p.state.ended]  # in pid (= spawn) order
            total = sum(p.kept_bytes for p in ended)
            dropped = []
            for p in ended:
                if len(ended) - len(dropped) <= max_procs and total <= max_bytes:
                    break
                total -= p.kept_bytes
                del self._procs[p.pid]
                dropped.append(p.pid)
            return dropped

    def live_children(self, parent: int) -> int:
        with self.lock:
            return sum(1 for p in self._procs.values() if p.parent == parent and not p.state.ended)

    def live_of(self, *, name: str | None = None, tree: int | None = None) -> int:
        """Live processes of app ``name`` and/or of spawn tree ``tree`` (the per-app and per-tree caps)."""
        with self.lock:
            return sum(1 for p in self._procs.values() if not p.state.ended
                       and (name is None or p.name == name) and (tree is None or (p.tree or p.pid) == tree))

    def snapshots(self, include_ended: bool = True) -> list[dict]:
        with self.lock:
            return [p.snapshot() for p in self._procs.values() if include_ended or not p.state.ended]
