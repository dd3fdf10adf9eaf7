"""kernel/process/watch.py and wswatch.py without a kernel: cgroup detection, the walk, process trees,
and the watcher's decisions against a stand-in kernel (real processes and folders, no model)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

from kernel.process.watch import Proc, Watcher, cgroup_status, index, scan_proc, size_text, tree_of
from kernel.process.wswatch import Walker, walk
from kernel.syscall import SyscallFailure


def test_size_text():
    assert size_text(512) == "512 B"
    assert size_text(1536) == "1.5 KiB"
    assert size_text(512 << 20) == "512.0 MiB"
    assert size_text(3.4 * (1 << 30)) == "3.4 GiB"


def _kill_all(pids) -> None:
    """SIGKILL each of ``pids`` (a copy is taken first); one already gone is passed over."""
    for q in list(pids):
        try:
            os.kill(q, 9)
        except ProcessLookupError:
            pass


def _fake_proc(tmp, cgroup: str, controllers="cpu memory pids", procs=None):
    """A /proc/self with a cgroup2 mount at tmp/cg and the kernel in ``cgroup`` there."""
    (tmp / "self").mkdir()
    (tmp / "self" / "cgroup").write_text(cgroup)
    (tmp / "self" / "mountinfo").write_text(
        f"22 1 0:20 / /proc rw,nosuid - proc proc rw\n41 31 0:38 / {tmp}/cg rw,relatime shared:9 - cgroup2 cgroup2 rw\n")
    d = tmp / "cg" / "user.slice" / "aios.scope"
    d.mkdir(parents=True)
    (d / "cgroup.controllers").write_text(controllers + "\n")
    (d / "cgroup.procs").write_text("\n".join(str(p) for p in (procs or [os.getpid()])) + "\n")
    (d / "cgroup.subtree_control").write_text("")
    return str(tmp / "self")


def test_cgroup_detection(tmp_path):
    ok, why = cgroup_status()  # this machine, whatever it is: a reason either way, and nothing written
    assert why
    for name, kw, expect in (
            ("v1", {"cgroup": "4:memory:/x\n"}, "cgroup v1 only"),
            ("root", {"cgroup": "0::/\n"}, "root cgroup"),
            ("nomem", {"cgroup": "0::/user.slice/aios.scope\n", "controllers": "cpu pids"}, "memory controller"),
            ("shared", {"cgroup": "0::/user.slice/aios.scope\n", "procs": [os.getpid(), 1]}, "other process"),
            ("ours", {"cgroup": "0::/user.slice/aios.scope\n"}, "is delegated")):
        d = tmp_path / name
        d.mkdir()
        ok, why = cgroup_status(_fake_proc(d, **kw))
        assert expect in why and ok == (name == "ours"), (name, why)


def test_walk_counts_each_file_once_follows_no_link_and_clears_setid(tmp_path):
    ws = tmp_path / "ws"
    (ws / "d").mkdir(parents=True)
    (ws / "a").write_bytes(b"x" * 1000)
    os.link(ws / "a", ws / "d" / "a-again")  # the same inode: counted once
    outside = tmp_path / "big"
    outside.write_bytes(b"y" * 100_000)
    os.symlink(outside, ws / "link")  # never followed
    os.symlink(tmp_path, ws / "dirlink")
    shutil.copyfile(shutil.which("id"), ws / "d" / "id")
    os.chmod(ws / "d" / "id", 0o6755)
    size_id = (ws / "d" / "id").stat().st_size
    w = walk(str(ws))
    assert w.complete and w.bytes == 1000 + size_id
    assert [(rel, oct(stat.S_IMODE(m))) for rel, m in w.cleared] == [("d/id", "0o6755")]
    assert stat.S_IMODE((ws / "d" / "id").stat().st_mode) == 0o755
    assert not walk(str(ws), max_entries=2).complete
    os.rename(ws, tmp_path / "ws-real")
    os.symlink(tmp_path / "ws-real", ws)  # a workspace replaced by a link is refused
    with pytest.raises(OSError):
        walk(str(ws))


def test_tree_of_follows_children_sessions_and_orphans_seen_before():
    procs = {10: Proc(1, 10, 100, 1), 11: Proc(10, 10, 101, 2), 12: Proc(11, 12, 102, 4),
             13: Proc(1, 10, 103, 8),  # left the tree, still in the session
             14: Proc(1, 14, 104, 16),  # left both: counted only if seen before
             20: Proc(1, 20, 200, 32)}
    children, sessions = index(procs)
    assert set(tree_of(10, procs, children, None, {})) == {10, 11, 12}
    assert set(tree_of(10, procs, children, sessions, {})) == {10, 11, 12, 13}
    assert set(tree_of(10, procs, children, sessions, {14: 104})) == {10, 11, 12, 13, 14}
    assert set(tree_of(10, procs, children, sessions, {14: 999})) == {10, 11, 12, 13}  # pid reused: not ours


def test_scan_proc_sees_a_real_tree():
    p = subprocess.Popen([sys.executable, "-c", "import os, time\nif os.fork() == 0: time.sleep(30)\n"
                          "else: time.sleep(30)"])
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            procs = scan_proc()
            tree = tree_of(p.pid, procs, index(procs)[0], None, {})
            if len(tree) == 2:
                break
            time.sleep(0.05)
        assert len(tree) == 2 and all(procs[q].rss > 1 << 20 for q in tree)
    finally:
        _kill_all(tree)
        p.wait()


class FakeKernel:
    """What the watcher uses of the kernel: its agents, the tools' workspaces, audit, kill, post, timers."""

    def __init__(self, tmp):
        self.agents = {}
        self.tmp = tmp
        self.tools = SimpleNamespace(workspace=lambda app: str(tmp / app))
        self.audited = []
        self.access = SimpleNamespace(audit=SimpleNamespace(write=lambda kind, pcb=None, **f: self.audited.append(
            (kind, f))))
        self.killed = []
        self.posted = []

    def kill(self, pid, reason=None, now=False):
        self.killed.append((pid, reason, now))
        self.agents[pid].pcb.kill_reason = reason

    def post(self, fn):
        self.posted.append(fn)

    def call_later(self, delay, fn):
        pass


def _watcher(tmp, cap=1 << 20):
    w = Watcher(SimpleNamespace(workspace_max_bytes=cap))
    k = FakeKernel(tmp)
    w.start(k)
    return w, k


def test_admit_gives_the_room_left_and_refuses_a_full_workspace(tmp_path):
    w, k = _watcher(tmp_path)
    try:
        ws = tmp_path / "App"
        ws.mkdir()
        (ws / "f").write_bytes(b"x" * 1000)
        assert w.admit("App", str(ws)) == (1 << 20) - 1000
        (ws / "f").write_bytes(b"x" * ((1 << 20) + 1))
        with pytest.raises(SyscallFailure) as e:
            w.admit("App", str(ws))
        assert e.value.code == "ENOSPC" and "over its cap 1.0 MiB (--workspace-max-bytes)" in e.value.message
        (ws / "f").unlink()  # the user frees it: the next spawn sees it at once
        assert w.admit("App", str(ws)) == 1 << 20
    finally:
        w.stop()


def test_an_ended_agent_leaves_no_setid_file(tmp_path):
    w, k = _watcher(tmp_path)
    try:
        ws = tmp_path / "App"
        ws.mkdir()
        w.admit("App", str(ws))
        f = ws / "id"
        shutil.copyfile(shutil.which("id"), f)
        os.chmod(f, 0o4755)
        w.on_exit(SimpleNamespace(pid=1, name="App"))  # synchronous for a small workspace
        assert not f.stat().st_mode & stat.S_ISUID
        # inotify may have seen the chmod first (a busy machine): then the walker's thread cleared the bit
        # and posts its walk to the loop, which audits it; that post may come a moment after the clear
        record = ("setid", {"workspace": str(ws), "path": "id", "mode": "0o4755", "cleared": True})
        deadline = time.monotonic() + 30
        while True:
            while k.posted:  # run what the walker's thread posted, as the loop would
                k.posted.pop(0)()
            if record in k.audited or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert record in k.audited and all(a == record for a in k.audited), k.audited
    finally:
        w.stop()


def test_the_walker_reacts_to_writes_within_milliseconds(tmp_path):
    got = []
    wk = Walker(lambda path, w: got.append((time.monotonic(), w)))
    try:
        ws = tmp_path / "ws"
        (ws / "sub").mkdir(parents=True)
        wk.request(str(ws), forced=True)
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            time.sleep(0.01)
        assert got and got[-1][1].watched_all
        t0 = time.monotonic()
        (ws / "sub" / "f").write_bytes(b"z" * 5000)  # no request: inotify alone
        while got[-1][1].bytes != 5000 and time.time() < deadline:
            time.sleep(0.005)
        assert got[-1][1].bytes == 5000 and got[-1][0] - t0 < 0.5, got[-1]
    finally:
        wk.stop()
        wk.thread.join(5)


def test_memory_past_the_limit_kills_the_agent_with_the_reason(tmp_path):
    w, k = _watcher(tmp_path)
    p = subprocess.Popen([sys.executable, "-c", "import os, time\nif os.fork() == 0: time.sleep(30)\n"
                          "else: time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10  # until the fork happened: the reason counts "its 1 descendant"
        while not psutil.Process(p.pid).children() and time.monotonic() < deadline:
            time.sleep(0.02)
        pcb = SimpleNamespace(pid=7, name="App", kill_reason=None)
        ap = SimpleNamespace(pcb=pcb, process=p, bwrap=False, exitcode=None, limits={"memory_bytes": 1 << 20},
                             app=SimpleNamespace(config={}), workspace=str(tmp_path / "App"))
        k.agents[7] = ap
        w._check_memory(k.agents)
        [(pid, why, now)] = k.killed
        assert pid == 7 and now
        assert why.startswith("memory: the agent and its 1 descendant used ") and why.endswith(
            "MiB, more than its 1.0 MiB limit (--confine-memory-mb)"), why
        ap.limits["memory_bytes"] = 1 << 40
        pcb.kill_reason = None
        k.killed.clear()
        w._check_memory(k.agents)
        assert k.killed == []
    finally:
        _kill_all(w.known.get(7, {}))
        p.kill()
        p.wait()
        w.stop()


def _idx():
    procs = scan_proc()
    children, _ = index(procs)
    return procs, children, None, {}


def test_tick_cost_with_sixteen_agents(tmp_path):
    """The loop's share: one /proc scan and a tree sum per agent. The cost is printed (pytest -s), not
    asserted (a busy machine would fail a timed test); what is asserted: 16 trees under their limits, none killed."""
    w, k = _watcher(tmp_path)
    procs = []
    try:
        for i in range(16):
            p = subprocess.Popen([sys.executable, "-c", "import os, time\nif os.fork() == 0: time.sleep(60)\n"
                                  "else: time.sleep(60)"])
            procs.append(p)
            k.agents[i] = SimpleNamespace(pcb=SimpleNamespace(pid=i, name=f"A{i}", kill_reason=None), process=p,
                                          bwrap=False, exitcode=None, limits={"memory_bytes": 1 << 40},
                                          app=SimpleNamespace(config={}), workspace=str(tmp_path / f"A{i}"))
        deadline = time.time() + 30  # each has forked its child: the trees are whole
        while time.time() < deadline and sum(len(tree_of(p.pid, *_idx())) for p in procs) < 32:
            time.sleep(0.02)
        for bwrap in (False, True):  # without namespaces the session is searched too
            for ap in k.agents.values():
                ap.bwrap = bwrap
            t0 = time.perf_counter()
            for _ in range(20):
                w._check_memory(k.agents)
            per_tick = (time.perf_counter() - t0) / 20
            print(f"watch tick, 16 agents x 2 processes ({'bwrap' if bwrap else 'session'}), {len(scan_proc())} "
                  f"processes on the machine: {per_tick * 1e3:.2f} ms")
            assert not k.killed
    finally:
        for i in range(16):
            _kill_all(w.known.get(i, {}))
        for p in procs:
            p.kill()
            p.wait()
        w.stop()



def test_pages_forks_share_are_counted_once(tmp_path):
    """A parent holding 64 MiB and 8 forks that never touch it: 9 x 64 MiB by RSS, about 64 MiB by PSS."""
    w, k = _watcher(tmp_path)
    p = subprocess.Popen([sys.executable, "-c", "import os, time\nb = b'x' * (64 << 20)\nfor _ in range(8):\n"
                          "    if os.fork() == 0:\n        time.sleep(30)\n        os._exit(0)\ntime.sleep(30)"])
    try:
        ap = SimpleNamespace(pcb=SimpleNamespace(pid=3, name="App", kill_reason=None), process=p, bwrap=False,
                             exitcode=None, limits={"memory_bytes": 256 << 20}, app=SimpleNamespace(config={}),
                             workspace=str(tmp_path / "App"))
        k.agents[3] = ap
        deadline = time.time() + 20
        while len(w.known.get(3, {})) < 9 and time.time() < deadline:
            w._check_memory(k.agents)
            time.sleep(0.1)
        # A PSS taken while a fork was still being made (its pages already shared, the child not yet listed)
        # stays in use while it cannot reach the limit (_used): the figure checked here is a fresh one.
        w.pss.pop(3, None)
        w._check_memory(k.agents)
        rss = sum(scan_proc()[q].rss for q in w.known[3])
        assert rss > 256 << 20 and k.killed == [], rss
        pss = w.pss[3][0]
        assert 64 << 20 < pss < 160 << 20, pss
    finally:
        _kill_all(w.known.get(3, {}))
        p.wait()
        w.stop()
