"""Scheduling policies on their own: plans over stand-in sequences (no model)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from kernel.llm.scheduler import AGING_S, make_policy

_arrival = itertools.count()


def seq(name: str, priority: int = 0):
    return SimpleNamespace(name=name, priority=priority, arrival=next(_arrival), enqueued=0.0, slice_tokens=0,
                           admitted_rank=0.0, cancelled=False)


def names(xs) -> list[str]:
    return [s.name for s in xs]


class Sim:
    """Drives a policy the way the engine does: plan, preempt to the back, admit, decode one token each."""

    def __init__(self, policy):
        self.policy = policy
        self.running: list = []
        self.now = 0.0
        self.log: list[list[str]] = []  # running names after each step

    def step(self, dt: float = 0.1) -> None:
        plan = self.policy.plan(self.running, self.now)
        for s in plan.preempt:
            self.running.remove(s)
            self.policy.add(s, self.now)
        for s in plan.admit:
            s.slice_tokens = 0
            self.running.append(s)
        for s in self.running:
            s.slice_tokens += 1
        self.log.append(sorted(names(self.running)))
        self.now += dt


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_policy("lottery", 4, 2)


def test_serial_runs_one_at_a_time_in_arrival_order():
    p = make_policy("serial", 16, 2)
    a, b = seq("a"), seq("b")
    p.add(a, 0)
    p.add(b, 0)
    assert names(p.plan([], 0).admit) == ["a"]
    assert p.plan([a], 0).admit == [] and p.plan([a], 0).preempt == []  # never preempts, never batches
    assert names(p.plan([], 0).admit) == ["b"]


def test_fifo_fills_the_batch_in_order_and_never_preempts():
    p = make_policy("fifo", 3, 1)
    xs = [seq(c) for c in "abcde"]
    for s in xs:
        p.add(s, 0)
    assert names(p.plan([], 0).admit) == ["a", "b", "c"]
    for s in xs[:3]:
        s.slice_tokens = 100
    plan = p.plan(xs[:3], 0)
    assert plan.admit == [] and plan.preempt == []
    assert names(p.plan(xs[:2], 0).admit) == ["d"]


def test_rr_preempts_after_a_quantum_only_when_others_wait():
    sim = Sim(make_policy("rr", 2, 3))
    xs = [seq(c) for c in "abc"]
    for s in xs:
        sim.policy.add(s, 0)
    for _ in range(9):
        sim.step()
    # a,b run 3 tokens; then the one with the longest slice yields to c; then round robin.
    assert sim.log[:3] == [["a", "b"]] * 3
    assert sim.log[3] in (["a", "c"], ["b", "c"])
    assert all(len(r) == 2 for r in sim.log)
    served = {n: sum(n in r for r in sim.log) for n in "abc"}
    assert max(served.values()) - min(served.values()) <= 3  # fair shares, a quantum apart at most
    # Alone, nothing is preempted however long it runs.
    solo = Sim(make_policy("rr", 2, 1))
    solo.policy.add(seq("x"), 0)
    for _ in range(5):
        solo.step()
    assert solo.log == [["x"]] * 5


def test_priority_orders_by_priority_then_arrival():
    p = make_policy("priority", 2, 4)
    lo, hi, mid, hi2 = seq("lo", 0), seq("hi", 5), seq("mid", 2), seq("hi2", 5)
    for s in (lo, hi, mid, hi2):
        p.add(s, 0)
    assert names(p.plan([], 0).admit) == ["hi", "hi2"]


def test_priority_preempts_for_a_higher_one_after_a_quantum():
    p = make_policy("priority", 1, 2)
    lo = seq("lo", 0)
    p.add(lo, 0)
    p.plan([], 0)
    hi = seq("hi", 10)
    p.add(hi, 0)
    lo.slice_tokens = 1
    assert p.plan([lo], 0).preempt == []  # has not had its quantum yet
    lo.slice_tokens = 2
    plan = p.plan([lo], 0)
    assert plan.preempt == [lo] and plan.admit == [hi]


def test_priority_aging_prevents_starvation():
    """A stream of high-priority work cannot keep a low-priority sequence out forever."""
    sim = Sim(make_policy("priority", 1, 2))
    low = seq("low", -10)
    sim.policy.add(low, 0)
    sim.policy.add(seq("hi0", 10), 0)
    admitted_at = None
    for i in range(1, 1000):
        if i % 4 == 0:
            sim.policy.add(seq(f"hi{i}", 10), sim.now)  # new high-priority work keeps arriving
        sim.step()
        if "low" in sim.log[-1]:
            admitted_at = sim.now
            break
    # Never, without aging (new work always outranks it); with it, once it made up the 20 levels
    # against the queue's own aging (nothing here ever finishes, so the queue only grows).
    assert admitted_at is not None and admitted_at >= 20 * AGING_S


def test_drop_cancelled():
    p = make_policy("fifo", 2, 2)
    a, b = seq("a"), seq("b")
    p.add(a, 0)
    p.add(b, 0)
    a.cancelled = True
    assert names(p.drop_cancelled()) == ["a"] and names(p.waiting) == ["b"]


def test_program_aware_admits_the_least_served_agent_first():
    """PLAS (--program_aware on): admission by the agent's service so far; ties keep arrival order;
    off, arrival order alone; priority levels still come first."""
    def pseq(name, pid, priority=0):
        s = seq(name, priority)
        s.req = SimpleNamespace(pid=pid)
        return s

    for name in ("fifo", "rr", "priority"):
        p = make_policy(name, 1, 2, program_aware=True)
        p.charge(1, 5.0)  # agent 1 has had 5 s of the engine, agent 2 none, agent 3 0.5 s
        p.charge(3, 0.5)
        xs = [pseq("a1", 1), pseq("b1", 1), pseq("c2", 2), pseq("d3", 3)]
        for s in xs:
            p.add(s, 0)
        order = [names(p.plan([], 0).admit)[0] for _ in xs]
        assert order == ["c2", "d3", "a1", "b1"], (name, order)
        p.forget(1)
        assert 1 not in p.served
    plain = make_policy("fifo", 1, 2)
    plain.charge(1, 5.0)
    for s in (pseq("a1", 1), pseq("c2", 2)):
        plain.add(s, 0)
    assert names(plain.plan([], 0).admit) == ["a1"]
    prio = make_policy("priority", 1, 2, program_aware=True)
    prio.charge(1, 5.0)
    for s in (pseq("low2", 2, priority=0), pseq("high1", 1, priority=3)):
        prio.add(s, 0)
    assert names(prio.plan([], 0).admit) == ["high1"]  # a higher priority level outranks less service


def test_a_request_counts_its_own_preemptions_and_its_readers_see_that_count():
    """One counter per call (LLMRequest.preemptions, bumped by state("preempted") whichever engine calls it):
    the kernel's on_state reads it; nothing else counts."""
    from kernel.llm.request import LLMRequest, SamplingParams

    seen = []
    req = LLMRequest(pid=1, req_id=1, messages=[], sampling=SamplingParams(max_new_tokens=4),
                     on_state=lambda r, s: seen.append((s, r.preemptions)))
    for s in ("queued", "running", "preempted", "running", "preempted", "running"):
        req.state(s)
    assert seen == [("queued", 0), ("running", 0), ("preempted", 1), ("running", 1), ("preempted", 2),
                    ("running", 2)]
    assert req.preemptions == 2
