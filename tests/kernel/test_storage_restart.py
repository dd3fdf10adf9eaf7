"""Storage across a kernel SIGKILL: no acknowledged write lost, no record torn. The restarted
kernel (policy: allow) also serves confirmed deletes and overwrites that prune a version."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading

import psutil
from conftest import start_kernel
from memfs_helpers import err, ok, payload, run_ops

from kernel.protocol import messages
from kernel.storage import StorageDB
from kernel.storage.cost import record_cost, version_cost

NAMES = 5  # the writer cycles through records w0..w4, so most writes are overwrites (new versions)
SIZE = 2000
ACKS_BEFORE_KILL = 300


def test_storage_survives_kernel_sigkill_mid_write(tmp_path):
    acks_path = tmp_path / "data" / "workspaces" / "MemFsAgent" / "acks.txt"  # the agent writes only its workspace
    client, events = start_kernel(tmp_path)
    enough = threading.Event()

    def on_event(ev):
        events(ev)
        text = ev.get("text", "") if ev.get("event") == "output" else ""
        if text.startswith("ACK ") and int(text.split()[1]) >= ACKS_BEFORE_KILL:
            enough.set()
    client.on_event = on_event
    try:
        pid = client.spawn("MemFsAgent", json.dumps({"ops": [{"writeloop": {
            "ack_path": "acks.txt", "n": 1_000_000, "size": SIZE, "names": NAMES}}]}))
        assert enough.wait(120), "the writer did not get going"
        agent_os_pid = client.info(pid)["os_pid"]
        os.kill(client.pid, signal.SIGKILL)  # the writer is in the middle of its loop
        client.process.join(10)
        assert client.process.exitcode == -signal.SIGKILL
        try:  # the agent dies with its kernel (bwrap --die-with-parent)
            psutil.Process(agent_os_pid).wait(10)
        except psutil.NoSuchProcess:
            pass
    finally:
        client.stop()

    acked = []  # (i, name, version, sha256) the agent saw acknowledged; a torn last line is dropped
    for line in acks_path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and len(parts[3]) == 64:
            acked.append((int(parts[0]), parts[1], int(parts[2]), parts[3]))
    assert len(acked) >= ACKS_BEFORE_KILL
    assert [a[0] for a in acked] == list(range(len(acked)))

    # A new kernel on the same data_dir (one kernel start serves the confirmation test below too).
    client2, _ = start_kernel(tmp_path, confirm_policy="allow", storage_keep_versions=2)
    try:
        res = run_ops(client2, [{"call": "fs.versions", "args": {"name": f"w{k}"}} for k in range(NAMES)]
                      + [{"call": "fs.read", "args": {"name": f"w{k}"}} for k in range(NAMES)])
        confirmed = run_ops(client2, CONFIRM_OPS)
    finally:
        client2.stop()
    kept = {(f"w{k}", v["version"]): v["sha256"] for k in range(NAMES) for v in ok(res[k])}
    for i, name, version, sha in acked:
        assert kept.get((name, version)) == sha, f"acknowledged write {i} ({name} v{version}) is missing"
    assert 0 <= len(kept) - len(acked) <= 2  # at most the write in flight and one whose ack line was torn
    for k in range(NAMES):
        head = ok(res[NAMES + k])  # the kernel verified its checksum on read
        assert head["data"] == payload(k + NAMES * (head["version"] - 1), SIZE)

    db = StorageDB(tmp_path / "data" / "storage.sqlite3")
    try:
        assert db.integrity_check() == "ok"
        rows = db.conn.execute("SELECT name, version, data, size, sha256 FROM versions").fetchall()
        assert len(rows) == len(kept)
        for name, version, data, size, sha in rows:  # no torn record: every version is whole and right
            data = bytes(data)
            i = int(name[1:]) + NAMES * (version - 1)
            assert len(data) == size == SIZE and hashlib.sha256(data).hexdigest() == sha
            assert data.decode() == payload(i, SIZE)
    finally:
        db.close()
    check_confirmed(confirmed)


CONFIRM_OPS = [
    {"call": "fs.write", "args": {"name": "r", "data": "v1"}},
    {"call": "fs.write", "args": {"name": "r", "data": "v2"}},
    {"call": "fs.write", "args": {"name": "r", "data": "v3"}},  # prunes v1 (keep 2): confirmed by the policy
    {"call": "fs.versions", "args": {"name": "r"}},
    {"call": "fs.read", "args": {"name": "r", "version": 1}},
    {"call": "fs.delete", "args": {"name": "r"}},
    {"call": "fs.read", "args": {"name": "r"}},
    {"call": "fs.list", "args": {"prefix": "r"}},
]


def check_confirmed(res):
    assert [ok(r)["version"] for r in res[:3]] == [1, 2, 3]
    assert [v["version"] for v in ok(res[3])] == [2, 3]
    err(res[4], messages.ENOENT)
    freed = 2 * version_cost("MemFsAgent", "r", 2) + record_cost("MemFsAgent", "r", "MemFsAgent")  # quota bytes
    assert ok(res[5]) == {"owner": "MemFsAgent", "name": "r", "versions": 2, "freed": freed}
    err(res[6], messages.ENOENT)
    assert ok(res[7]) == []
