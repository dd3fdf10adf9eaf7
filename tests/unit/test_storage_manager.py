"""The storage manager's worker and its per-owner usage counters (what quotas read), without agents.

A plain queue stands in for the kernel's loop: the manager hands results back with ``post(fn)``.
"""

from __future__ import annotations

import queue

import pytest

from kernel.config import KernelConfig
from kernel.protocol import messages
from kernel.storage import StorageManager
from kernel.storage.cost import record_cost, version_cost
from kernel.syscall import SyscallFailure


class Loop:
    """What the manager needs of the kernel: post(fn) onto the loop thread (here: the test's)."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue()
        self.agents: dict = {}

    def post(self, fn) -> None:
        self.q.put(fn)

    def run(self, sm: StorageManager, job):
        out = []
        sm.submit(job, lambda result, error: out.append((result, error)))
        while not out:
            self.q.get(timeout=30)()
        result, error = out[0]
        if error is not None:
            raise error
        return result


def test_usage_bytes_follow_writes_pruning_rollback_and_delete(tmp_path):
    cfg = KernelConfig.from_flags(data_dir=str(tmp_path), storage_keep_versions=3)
    loop, sm = Loop(), StorageManager(cfg)
    sm.start(loop)
    try:
        for i in range(5):  # 10 + 20 + ... : versions 1..5, the first two pruned
            loop.run(sm, sm.write_job("A", "x", b"a" * 10 * (i + 1), "A", 1, None))
        a = lambda *sizes: record_cost("A", "x", "A") + sum(version_cost("A", "x", n) for n in sizes)  # noqa: E731
        assert sm.usage_bytes("A") == a(30, 40, 50)
        loop.run(sm, sm.write_job("B", "y", b"b" * 7, "B", 2, None))
        b = record_cost("B", "y", "B") + version_cost("B", "y", 7)
        loop.run(sm, sm.rollback_job("A", "x", 3, "A", 1))  # adds v6 (v3's 30 bytes), prunes v3
        assert sm.usage_bytes("A") == a(40, 50, 30) and sm.usage_bytes("B") == b
        assert sm.usage_bytes("A") == sm.db.usage()["A"]  # the counter and the SQL sum agree
        loop.run(sm, sm.delete_job("A", "x", None))
        assert sm.usage_bytes("A") == 0 and sm.usage_bytes("nobody") == 0
        with pytest.raises(SyscallFailure) as e:
            loop.run(sm, sm.delete_job("A", "x", None))
        assert e.value.code == messages.ENOENT
    finally:
        sm.stop()
    again = StorageManager(cfg)  # a restarted kernel counts from the DB
    again.start(Loop())
    try:
        assert again.usage_bytes("B") == b and again.usage_bytes("A") == 0
    finally:
        again.stop()


def test_unopenable_db_fails_calls_not_the_kernel(tmp_path):
    (tmp_path / "storage.sqlite3").write_bytes(b"this is not a database" * 100)
    loop, sm = Loop(), StorageManager(KernelConfig.from_flags(data_dir=str(tmp_path)))
    sm.start(loop)
    try:
        assert sm.error and "storage unavailable" in sm.error
        with pytest.raises(SyscallFailure) as e:
            loop.run(sm, sm.write_job("A", "x", b"1", "A", 1, None))
        assert e.value.code == messages.EIO and "storage unavailable" in e.value.message
    finally:
        sm.stop()
