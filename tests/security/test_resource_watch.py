"""Issue 24, items 4 and 7: limits that hold per process or per file, gone around with several of them.

Before: three children of 1,200 MiB each held 3.6 GiB under a 2 GiB limit (RLIMIT_AS is per process);
three files of 40 MiB each filled a workspace past its 64 MiB cap (RLIMIT_FSIZE is per file); a setuid-root
copy of ``id`` stayed in the workspace on the host. Now the kernel's watcher (kernel/process/watch.py) sums
the memory of an agent's whole process tree and measures its app's workspace, and kills past either limit;
no setuid or setgid file survives in a workspace. Small limits keep the tests light: a profile's
``"memory_mb": 512`` (TreeHogAgent) and an 8 MiB workspace cap.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from pathlib import Path

import psutil
import pytest

from aios_shell.client import KernelError
from secure_kernel import start_hostile_kernel

CAP = 8 << 20  # --workspace-max-bytes of these kernels
MiB = 1 << 20


def _kernel(tmp, **flags):
    client, events = start_hostile_kernel(tmp, workspace_max_bytes=CAP, **flags)
    return client, events, tmp / "data" / "workspaces"


@pytest.fixture(scope="module")
def k(tmp_path_factory):
    client, events, spaces = _kernel(tmp_path_factory.mktemp("watch"))
    yield client, events, spaces
    client.stop()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def used(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def setid_files(folder: Path) -> list[str]:
    return [f"{p.relative_to(folder)} {oct(p.lstat().st_mode)}" for p in folder.rglob("*")
            if not p.is_symlink() and p.lstat().st_mode & (stat.S_ISUID | stat.S_ISGID)]


def audit_lines(client, kind: str) -> list[dict]:
    path = client.request("access", timeout=5)["audit_log"]
    with open(path) as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]


@pytest.fixture(scope="module")
def fallback(tmp_path_factory):
    """A kernel without namespaces (what `auto` runs where user namespaces are off): no pid namespace
    takes the tree down, the watcher kills what it counted."""
    client, events, spaces = _kernel(tmp_path_factory.mktemp("watch-ll"), confine="landlock")
    yield client, events, spaces
    client.stop()


@pytest.mark.parametrize("mode", ["namespaces", "landlock"])
def test_memory_of_an_agent_and_its_children_is_bounded_together(mode, request):
    client, _, spaces = request.getfixturevalue("k" if mode == "namespaces" else "fallback")
    bystander = client.spawn("SleepyAgent", "120")
    # 250 + 150 MiB stay under the 512 MiB limit; the third child passes it ~70 MiB into its 100 MiB.
    pid = client.spawn("TreeHogAgent", json.dumps({"mb": [250, 150, 100]}))
    snap = client.wait(pid, timeout=60)
    assert snap["state"] == "killed", snap
    err = snap["error"]
    assert "memory: the agent and its" in err and "descendants used" in err, err
    assert "more than its 512.0 MiB limit (its profile's limits.memory_mb)" in err, err
    assert client.info(pid)["error"] == err  # what `info` shows
    assert [p["error"] for p in client.ps() if p["pid"] == pid] == [err]  # and `ps`
    ws = spaces / "TreeHogAgent"
    passed_after, _ = (ws / "child-2.start").read_text().split()  # the sum was under the limit before this
    # Killed by the watcher (0.14-0.5 s here, docs/security.md); 10 s only tells a busy machine from a watcher that never fired.
    assert snap["end_time"] - float(passed_after) < 10.0, "not killed within 10 s of passing its limit"
    if mode == "landlock":  # host pids: every child is gone too
        pids = [int(f.read_text().split()[1]) for f in ws.glob("child-*.start")]
        deadline = time.time() + 5
        while any(_alive(p) for p in pids) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), pids
    alive = client.info(bystander)
    assert alive["state"] not in ("done", "failed", "killed"), alive  # another agent is not touched
    client.kill(bystander)
    client.wait(bystander, timeout=30)


def test_one_file_stops_at_the_room_left(k):
    client, _, spaces = k
    snap = client.wait(client.spawn("DiskHogAgent", json.dumps({"files": [CAP + 4 * MiB]})), timeout=60)
    assert snap["state"] == "done", snap
    assert snap["result"][0].startswith("OSError: [Errno 27] File too large"), snap["result"]  # inside the agent
    ws = spaces / "DiskHogAgent"
    assert used(ws) <= CAP
    for p in ws.iterdir():
        p.unlink()


def test_files_together_cannot_fill_the_workspace_past_its_cap(k):
    client, _, spaces = k
    ws = spaces / "DiskHogAgent"
    shutil.rmtree(ws, ignore_errors=True)
    # The finding, scaled down: three files of 40% of the cap each, then the agent waits (30 s) to be caught.
    pid = client.spawn("DiskHogAgent", json.dumps({"files": [int(0.4 * CAP)] * 3, "then_sleep": 30}))
    snap = client.wait(pid, timeout=60)
    assert snap["state"] == "killed", snap
    assert re.fullmatch(r"killed \(SIGKILL\): disk: workspace of DiskHogAgent holds \d+\.\d MiB, over its cap "
                        r"8\.0 MiB \(--workspace-max-bytes\)", snap["error"]), snap["error"]
    assert snap["elapsed_s"] < 10
    assert CAP < used(ws) <= 1.2 * CAP  # stopped in its third file; nothing of what it wrote was deleted
    # Over the cap, the app does not start again until the user frees some of it.
    with pytest.raises(KernelError) as refused:
        client.spawn("DiskHogAgent", "{}")
    assert refused.value.code == "ENOSPC" and "over its cap 8.0 MiB" in str(refused.value), refused.value
    for p in ws.iterdir():
        p.unlink()
    assert client.wait(client.spawn("DiskHogAgent", "{}"), timeout=60)["state"] == "done"


def test_a_writer_at_full_speed_is_stopped_a_few_mebibytes_past_the_cap(k):
    client, _, spaces = k
    ws = spaces / "DiskHogAgent"
    shutil.rmtree(ws, ignore_errors=True)
    pid = client.spawn("DiskHogAgent", json.dumps({"files": [MiB] * 512}))  # 512 MiB if nothing stopped it
    snap = client.wait(pid, timeout=120)
    assert snap["state"] == "killed" and "disk: workspace of DiskHogAgent" in snap["error"], snap
    # inotify wakes the watcher at the write that crosses the cap; the kill follows within milliseconds
    # (1-5 MiB past the cap at ~250 MiB/s here). The bound asserted leaves room for a loaded machine.
    assert used(ws) <= CAP + 32 * MiB, used(ws)
    shutil.rmtree(ws, ignore_errors=True)


def test_no_setuid_file_survives_in_a_workspace(k):
    client, _, spaces = k
    ws = spaces / "SetuidAgent"
    pid = client.spawn("SetuidAgent", json.dumps({"then_sleep": 5}))
    deadline = time.time() + 30
    while not (ws / "sub").exists() and time.time() < deadline:
        time.sleep(0.05)
    # What the agent could not do (a seccomp filter refuses the chmod), its workspace on a machine without
    # that filter would hold: a setuid-root binary, put there while the agent runs.
    planted = ws / "sub" / "planted-id"
    shutil.copyfile(shutil.which("id"), planted)
    os.chmod(planted, 0o6755)
    deadline = time.time() + 2
    while planted.stat().st_mode & (stat.S_ISUID | stat.S_ISGID) and time.time() < deadline:
        time.sleep(0.02)
    assert not planted.stat().st_mode & (stat.S_ISUID | stat.S_ISGID), "setuid bits still there after 2 s"
    assert stat.S_IMODE(planted.stat().st_mode) == 0o755  # the rest of its mode kept
    snap = client.wait(pid, timeout=60)
    assert snap["state"] == "done", snap
    assert setid_files(ws) == []
    cleared = {r["path"] for r in audit_lines(client, "setid")}
    assert "sub/planted-id" in cleared, cleared
    for t in snap["result"]:  # whatever the agent managed, it was swept (and audited) by the time it ended
        assert not t["ok"] or t["what"] in cleared, t
