"""The process table's state machine (no kernel)."""

from __future__ import annotations

import pytest

from kernel.process.table import ENDED, NEXT, ProcessTable, ProcState

LIVE = [s for s in ProcState if s not in ENDED]


def test_every_state_has_its_moves_and_nothing_returns_to_new():
    assert set(NEXT) == set(ProcState)
    assert all(ProcState.NEW not in moves for moves in NEXT.values())
    assert all(NEXT[s] == frozenset() for s in ENDED)


@pytest.mark.parametrize("frm", LIVE)
@pytest.mark.parametrize("to", list(ProcState))
def test_transition_follows_the_table(frm, to):
    table = ProcessTable()
    pcb = table.new("A", "t")
    pcb.state = frm  # the starting point under test
    if to in NEXT[frm]:
        assert table.transition(pcb, to) and pcb.state == to
    else:
        with pytest.raises(ValueError, match=f"no move from {frm.value} to {to.value}"):
            table.transition(pcb, to)
        assert pcb.state == frm


@pytest.mark.parametrize("end", sorted(ENDED))
def test_an_ended_process_stays_ended(end):
    """A late event (the LLM's callback for a killed agent) is no error, and changes nothing."""
    table = ProcessTable()
    pcb = table.new("A", "t")
    assert table.transition(pcb, ProcState.RUNNING) and table.transition(pcb, end)
    for to in ProcState:
        assert table.transition(pcb, to) is False and pcb.state == end


def test_transition_may_be_called_with_the_lock_held():
    table = ProcessTable()
    pcb = table.new("A", "t")
    with table.lock:
        assert table.transition(pcb, ProcState.LLM_QUEUED) and table.transition(pcb, ProcState.LLM_RUNNING)
