"""Agent slots per app and per spawn tree, the user's reserve, and tools captured at spawn (no kernel)."""

from __future__ import annotations

import pytest

from kernel.protocol.profile import AgentApp
from kernel.access.manager import AccessManager
from kernel.config import KernelConfig
from kernel.kernel import Kernel
from kernel.process.table import ProcessTable, ProcState
from kernel.syscall import SyscallFailure


@pytest.mark.parametrize("max_agents, reserve, per_app, per_tree", [
    (256, 32, 64, 32), (12, 1, 3, 2), (1, 1, 1, 1), (16, 2, 4, 2)])
def test_derived_limits(max_agents, reserve, per_app, per_tree):
    cfg = KernelConfig.from_flags(max_agents=max_agents)
    assert (cfg.procs.user_reserve, cfg.procs.agents_per_app, cfg.procs.agents_per_tree) == (reserve, per_app, per_tree)


def test_explicit_caps_win_and_negative_ones_are_refused():
    cfg = KernelConfig.from_flags(max_agents=12, max_agents_per_app=7, max_agents_per_tree=5)
    assert (cfg.procs.agents_per_app, cfg.procs.agents_per_tree) == (7, 5)
    with pytest.raises(ValueError, match="max_agents_per_app"):
        KernelConfig.from_flags(max_agents_per_tree=-1)


def fake_kernel(**cfg) -> Kernel:
    """A Kernel with only what spawn's slot checks read: config, table and the live agents."""
    k = Kernel.__new__(Kernel)
    k.config, k.table, k.agents = KernelConfig.from_flags(**cfg), ProcessTable(), {}
    return k


def add(k: Kernel, name: str, tree: int = 0, parent: int | None = None):
    pcb = k.table.new(name, "t")
    pcb.parent, pcb.tree = parent, tree or pcb.pid
    k.agents[pcb.pid] = object()  # a slot taken
    return pcb


def refusal(k: Kernel, app: str, parent: int | None, tree: int) -> str | None:
    try:
        k._admit(app, parent, tree)
    except SyscallFailure as e:
        assert e.code == "EAGAIN"
        return e.message
    return None


def test_a_tree_stops_at_its_cap_and_other_trees_go_on():
    k = fake_kernel(max_agents=64, max_agents_per_tree=3, max_agents_per_app=64)
    root = add(k, "A")
    add(k, "A", root.pid, root.pid)
    assert refusal(k, "B", root.pid, root.pid) is None  # 2 of 3: another app's child fits too
    add(k, "B", root.pid, root.pid)
    assert "--max_agents_per_tree 3" in refusal(k, "A", root.pid, root.pid)
    other = add(k, "A")
    assert refusal(k, "A", other.pid, other.pid) is None


def test_an_app_stops_at_its_cap_whoever_spawns_but_the_user_is_not_held():
    k = fake_kernel(max_agents=64, max_agents_per_tree=64, max_agents_per_app=3)
    roots = [add(k, "A") for _ in range(3)]
    assert "--max_agents_per_app 3" in refusal(k, "A", roots[0].pid, roots[0].pid)
    assert refusal(k, "B", roots[0].pid, roots[0].pid) is None
    assert refusal(k, "A", None, 0) is None  # the user's own run of the app


def test_agents_leave_the_users_reserve_free():
    k = fake_kernel(max_agents=8, max_agents_per_tree=8, max_agents_per_app=8)
    for _ in range(7):
        root = add(k, "A")
    message = refusal(k, "B", root.pid, root.pid)
    assert "--max_agents 8" in message and "kept for the user" in message
    assert refusal(k, "B", None, 0) is None  # the 8th slot is the user's


def test_ended_processes_free_their_slots():
    table = ProcessTable()
    root = table.new("A", "t")
    root.tree = root.pid
    kids = [table.new("A", "t") for _ in range(2)]
    for kid in kids:
        kid.tree = root.pid
    assert table.live_of(tree=root.pid) == 3 and table.live_of(name="A") == 3
    table.transition(kids[0], ProcState.KILLED)
    assert table.live_of(tree=root.pid) == 2 and table.live_of(name="A", tree=root.pid) == 2
    assert table.live_of(name="B") == 0


def test_tools_are_the_profile_at_spawn_and_nothing_else(tmp_path, monkeypatch):
    acc = AccessManager(KernelConfig.from_flags(log_dir=str(tmp_path / "logs"), data_dir=str(tmp_path / "data")))
    app = AgentApp("A", "m", "/x/agent.py", "", tools=["calculator", "mcp__time__*"])
    pcb = ProcessTable().new("A", "t")
    assert acc.allowed_tools(pcb) == frozenset()  # a PCB nobody set up may call nothing
    pcb.tools = acc.profile_tools(app)

    from kernel import apps as registry

    def no_disk(*a, **kw):
        raise AssertionError("the profile was read again")
    monkeypatch.setattr(registry, "find", no_disk)
    monkeypatch.setattr(registry, "discover", no_disk)
    assert acc.tool_allowed(pcb, "calculator") and acc.tool_allowed(pcb, "mcp__time__now")
    assert not acc.tool_allowed(pcb, "shell")
    with pytest.raises(SyscallFailure, match="read at spawn"):
        acc.check_tool(pcb, "shell")
    assert acc.profile_tools(AgentApp("B", "m", "/x/agent.py", "", tools=["*"])) is None
    acc.stop()
