"""Scheduling policies for both engines (``--scheduler``).

Between two decode steps the local engine asks its policy for a Plan: which
running sequences to preempt and which waiting ones to admit. A policy owns
the waiting queue; the batch (the running sequences) belongs to the engine.
The remote engine (remote.py) asks the same question whenever a slot frees
or a call arrives; its "sequences" are in-flight calls and ``max_batch`` is
the backend's ``max_concurrency``. A policy has no lock of its own: the
local engine calls it from its one thread, the remote engine under its
condition variable.

A scheduled item has ``req.pid``, ``priority``, ``arrival``, ``enqueued``,
``slice_tokens``, ``admitted_rank`` and ``cancelled``.

serial    one sequence at a time, in arrival order, never preempted: the
          original system's behaviour, kept as the benchmark baseline.
fifo      batching in arrival order up to ``max_batch``; never preempts.
rr        as fifo, but when others wait and the batch is full, a sequence
          that has decoded ``quantum`` tokens since its admission is
          preempted and goes to the back of the queue.
priority  the highest effective priority first, where effective priority
          = agent priority (higher goes first, -20..20) + seconds waited /
          AGING_S, so every waiting sequence eventually outranks the rest
          (no starvation). A running sequence keeps the effective priority
          it was admitted with; it is preempted for a waiting one that
          outranks it once it has decoded ``quantum`` tokens, so every
          admission makes progress and two sequences cannot ping-pong.

Program-aware admission (``--program_aware on``, Autellix's PLAS: least
attained service first): an agent is a program of many calls, and what it
has been served so far (engine seconds charged to its pid, ``served``) says
how far along it is. With the flag, fifo, rr and priority admit the waiting
sequence whose agent has been served least first (priority: within one
effective priority level), so short programs are not stuck behind long ones
and mean agent completion time drops. Ties keep arrival order. An agent's
record is dropped when the kernel says its pid ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernel.param import AGING_S


@dataclass
class Plan:
    preempt: list = field(default_factory=list)  # running Sequences to take out of the batch
    admit: list = field(default_factory=list)    # waiting Sequences to put in (removed from the queue)


class Policy:
    """FIFO: the base class; others override ``plan``/``order``."""

    name = "fifo"

    def __init__(self, max_batch: int, quantum: int, program_aware: bool = False):
        self.max_batch = max(1, max_batch)
        self.quantum = max(1, quantum)
        self.program_aware = program_aware
        self.waiting: list = []  # Sequences, in the order add() saw them
        self.served: dict[int, float] = {}  # pid -> engine seconds charged to its calls so far

    def __len__(self) -> int:
        return len(self.waiting)

    def charge(self, pid: int, seconds: float) -> None:
        self.served[pid] = self.served.get(pid, 0.0) + seconds

    def forget(self, pid: int) -> None:
        self.served.pop(pid, None)

    def _by_program(self) -> None:
        """PLAS: least attained service first; sort is stable, so ties keep queue order."""
        if self.program_aware and len(self.waiting) > 1:
            self.waiting.sort(key=lambda s: self.served.get(s.req.pid, 0.0))

    def add(self, seq, now: float) -> None:
        """A new or preempted sequence joins the back of the queue."""
        seq.enqueued = now
        self.waiting.append(seq)

    def drop_cancelled(self) -> list:
        gone = [s for s in self.waiting if s.cancelled]
        if gone:
            self.waiting = [s for s in self.waiting if not s.cancelled]
        return gone

    def take_all(self) -> list:
        out, self.waiting = self.waiting, []
        return out

    def plan(self, running: list, now: float) -> Plan:
        free = self.max_batch - len(running)
        return Plan(admit=self._pop(free, now))

    def _pop(self, n: int, now: float) -> list:
        if n <= 0 or not self.waiting:
            return []
        self._by_program()
        out = self.waiting[:n]
        del self.waiting[:n]
        return out


class Serial(Policy):
    name = "serial"

    def __init__(self, max_batch: int, quantum: int, program_aware: bool = False):
        super().__init__(1, quantum)  # the baseline: arrival order only


class RoundRobin(Policy):
    name = "rr"

    def plan(self, running: list, now: float) -> Plan:
        free = self.max_batch - len(running)
        need = len(self.waiting) - free
        preempt = []
        if need > 0:
            spent = [s for s in running if s.slice_tokens >= self.quantum]
            spent.sort(key=lambda s: -s.slice_tokens)  # longest slice first
            preempt = spent[:need]
        # The preempted go to the back only after this round's admissions.
        return Plan(preempt=preempt, admit=self._pop(free + len(preempt), now))


class Priority(Policy):
    name = "priority"

    @staticmethod
    def rank(seq, now: float) -> float:
        return seq.priority + (now - seq.enqueued) / AGING_S

    def plan(self, running: list, now: float) -> Plan:
        if not self.waiting:
            return Plan()
        if self.program_aware:  # PLAS within one effective priority level
            self.waiting.sort(key=lambda s: (-int(self.rank(s, now) // 1), self.served.get(s.req.pid, 0.0),
                                             s.arrival))
        else:
            self.waiting.sort(key=lambda s: (-self.rank(s, now), s.arrival))
        free = self.max_batch - len(running)
        admit = self.waiting[:max(0, free)]
        rest = self.waiting[len(admit):]
        preempt = []
        # Running sequences that may be preempted, lowest admitted rank first.
        victims = sorted((s for s in running if s.slice_tokens >= self.quantum), key=lambda s: s.admitted_rank)
        for w, v in zip(rest, victims):
            if self.rank(w, now) <= v.admitted_rank:
                break
            preempt.append(v)
            admit.append(w)
        taken = set(map(id, admit))
        self.waiting = [s for s in self.waiting if id(s) not in taken]
        for s in admit:
            s.admitted_rank = self.rank(s, now)
        return Plan(preempt=preempt, admit=admit)


POLICIES = {p.name: p for p in (Serial, Policy, RoundRobin, Priority)}


def make_policy(name: str, max_batch: int, quantum: int, program_aware: bool = False) -> Policy:
    try:
        return POLICIES[name](max_batch, quantum, program_aware)
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r} (choose from {', '.join(POLICIES)})") from None
