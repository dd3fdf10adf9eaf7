"""The fallback of a machine without user namespaces (or bubblewrap): ``--confine auto`` then runs
agents under Landlock, seccomp and rlimits (``--confine landlock`` forces it; the ``fallback`` kernel of
secure_kernel.py). The agent sees the host's directory tree, so these attacks name real host paths;
the layers must still refuse them. tests/security/test_confine_modes.py runs the attacks of issue 24 in
both modes."""

from __future__ import annotations

import os

import pytest

from secure_kernel import VICTIM_SECRET, digest, failed_clearly, fallback  # noqa: F401 (fixture)


def test_boot_says_what_is_missing(fallback):
    texts = " ".join(e.get("text", "") for e in fallback.events.events)
    assert "confinement layer namespaces missing" in texts and "connect() check" in texts


@pytest.mark.parametrize("agent", ["StorageThiefAgent", "SwapReaderAgent", "WorkspaceSnoopAgent",
                                   "GroupsForgerAgent", "AuditForgerAgent", "SourceRewriterAgent",
                                   "KernelMemoryAgent", "MemoryHogAgent", "FileHogAgent"])
def test_files_memory_and_limits_hold_without_namespaces(fallback, agent):
    db = os.path.join(fallback.data_dir, "storage.sqlite3")
    before = digest(db)
    tried = fallback.attack(agent)
    failed_clearly(tried)
    assert not any(VICTIM_SECRET in t.get("got", "") for t in tried)
    assert digest(db) == before


def test_signals_are_scoped_without_a_pid_namespace(fallback):
    from kernel.confine.probe import probe
    assert probe().landlock_abi >= 6, "without Landlock signal scoping this attack would stop the kernel"
    other = fallback.client.spawn("SleepyAgent", "forever")
    from secure_kernel import running
    other_pid = running(fallback.client, other)["os_pid"]
    tried = fallback.attack("SignalAgent", other_pid=other_pid)
    failed_clearly(tried)
    assert "Operation not permitted" in tried[0]["error"]  # Landlock ABI 6 signal scoping
    assert fallback.client.info(other)["end_time"] is None
    fallback.client.kill(other)


def test_environment_is_cleared_without_namespaces(fallback):
    tried = fallback.attack("EnvThiefAgent")
    failed_clearly(tried, allow=("environment names",))
    assert "AIOS_CONFINE_NO_BWRAP" not in tried[-1]["got"]


def test_process_limit_without_a_user_namespace(fallback):
    """RLIMIT_NPROC counts the whole uid here (root: nothing at all), so the kernel caps it at what the uid
    runs plus the agent's allowance and its watcher keeps the tree itself at --confine-processes."""
    snap = fallback.client.wait(fallback.client.spawn("ForkBombAgent", fallback.task(n=200, hold=20)), timeout=60)
    if snap["state"] == "killed":  # the watcher saw the tree over --confine-processes (always so for uid 0)
        assert "processes: the agent runs" in snap["error"], snap
    else:  # an ordinary user: RLIMIT_NPROC stopped the burst first
        tried = snap["result"]
        assert os.geteuid() != 0 and snap["state"] == "done" and tried[0]["ok"] is False, snap
        assert tried[0]["forked"] < 200, snap
