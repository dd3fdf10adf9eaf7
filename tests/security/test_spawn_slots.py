"""A self-spawning app against the agent slots, and a profile widened on disk under a running agent.

Attacks that worked before (issue 24): a tree of SpawnTreeAgent (tests/security/agents/spawn_tree)
held every slot of ``--max_agents`` (``--max_children`` limits only each parent), so the user's own
``run`` got EAGAIN; and the access manager read an app's tools from its config.json at the first
tool call, so a profile widened after spawn widened a running agent's rights.

Kernel: --max_agents 8 (one slot kept for the user: agents' spawns may fill 7), --max_children 3,
--max_agents_per_tree 3, --max_agents_per_app 5.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import start_kernel

HOSTILE = Path(__file__).resolve().parent / "agents"
HOLD = 300  # seconds each tree process keeps its slot; the test kills them first


@pytest.fixture(scope="module")
def kt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slots")
    apps = tmp / "apps"  # copies: the profile test edits its app's config.json
    for folder in ("spawn_tree", "profile_swap"):
        shutil.copytree(HOSTILE / folder, apps / folder)
    saved = os.environ.get("AIOS_AGENT_PATH", "")
    os.environ["AIOS_AGENT_PATH"] = os.pathsep.join([saved, str(apps)])
    try:
        client, _ = start_kernel(tmp, max_agents=8, max_children=3, max_agents_per_tree=3, max_agents_per_app=5)
    finally:
        os.environ["AIOS_AGENT_PATH"] = saved
    yield client, apps
    client.stop()


def spawned(k, pid: int, timeout: float = 90) -> list[dict]:
    """What pid's spawn attempts got (its "spawned [...]" line)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in k.logs(pid)["lines"]:
            if line.startswith("spawned "):
                return json.loads(line[len("spawned "):])
        snap = k.info(pid)
        assert snap["state"] not in ("done", "failed", "killed"), snap
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} never reported its spawns")


def whole_tree(k, root: int) -> dict[int, list[dict]]:
    """Every process of root's tree -> its spawn outcomes, once each has tried all of its spawns."""
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        out[pid] = spawned(k, pid)
        todo += [t["pid"] for t in out[pid] if "pid" in t]
    return out


def tree_task(fanout: int, depth: int, **extra) -> str:
    return json.dumps({"fanout": fanout, "depth": depth, "hold": HOLD, **extra})


def test_a_self_spawning_app_cannot_take_every_slot(kt):
    k, _ = kt
    try:
        # 1. One tree spawning itself 3 wide, 2 deep (up to 13 processes) stops at its tree's 3.
        r1 = k.spawn("SpawnTreeAgent", tree_task(3, 2))
        tree = whole_tree(k, r1)
        tries = [t for outcomes in tree.values() for t in outcomes]
        assert len(tree) == 3 and sum("pid" in t for t in tries) == 2, tree
        refused = [t for t in tries if "pid" not in t]
        assert refused and all(t["err"] == "EAGAIN" and "--max_agents_per_tree 3" in t["msg"] for t in refused), tries
        live = [s for s in k.ps(all=False) if s["tree"] == r1]
        assert sorted(s["pid"] for s in live) == sorted(tree), live

        # 2. A second tree of the app (the user's run of it) gets one child: the app then has its 5.
        r2 = k.spawn("SpawnTreeAgent", tree_task(3, 1))
        got = spawned(k, r2)
        assert "pid" in got[0] and [t.get("err") for t in got[1:]] == ["EAGAIN", "EAGAIN"], got
        assert all("--max_agents_per_app 5" in t["msg"] for t in got[1:]), got

        # 3. A third tree spawning another app fills the slots agents may take (7 of 8), not the user's.
        r3 = k.spawn("SpawnTreeAgent", tree_task(3, 1, agent="SleepyAgent"))
        got = spawned(k, r3)
        assert "pid" in got[0] and [t.get("err") for t in got[1:]] == ["EAGAIN", "EAGAIN"], got
        assert all("--max_agents 8" in t["msg"] and "kept for the user" in t["msg"] for t in got[1:]), got
        assert len(k.ps(all=False)) == 7

        # 4. The user's own run still finds a slot, and finishes.
        mine = k.wait(k.spawn("EchoAgent", "still mine"), timeout=120)
        assert mine["state"] == "done" and mine["result"] == "still mine", mine
    finally:
        pids = [snap["pid"] for snap in k.ps(all=False)]
        for pid in pids:
            k.kill(pid)
        for pid in pids:
            k.wait(pid, timeout=30)


def test_a_profile_widened_on_disk_does_not_widen_a_running_agent(kt):
    k, apps = kt
    profile = apps / "profile_swap" / "config.json"
    original = profile.read_text()
    convert = {"tool": "unit_converter", "args": {"value": 5, "from_unit": "km", "to_unit": "mi"}}
    try:
        pid = k.spawn("ProfileSwapAgent", json.dumps({**convert, "wait_s": 60}))
        data = json.loads(original)
        profile.write_text(json.dumps({**data, "tools": [*data["tools"], "unit_converter"]}))  # after its spawn
        snap = k.wait(pid, timeout=120)
        assert snap["state"] == "done", snap["error"]
        out = snap["result"]
        assert out["saw_widened"] is True, out  # its first tool call came after the change
        assert out["tool"]["err"] == "EPERM" and "read at spawn" in out["tool"]["msg"], out  # was allowed
        assert out["calculator"]["ok"]["value"] == 42, out
        assert out["listed_allowed"] == [False] and out["access_tools"] == ["calculator"], out
        # The next spawn runs with the profile as it now is.
        later = k.wait(k.spawn("ProfileSwapAgent", json.dumps({**convert, "wait_s": 0})), timeout=120)
        assert later["state"] == "done" and "ok" in later["result"]["tool"], later
    finally:
        profile.write_text(original)
