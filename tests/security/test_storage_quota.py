"""A hostile agent (tests/agents/storage_flooder) against the storage quota: names, rows and versions count.

The finding (issue 24): 1,500 empty records with 256-character names under a 10,000-byte quota left
storage.sqlite3 at 1,998,848 bytes, and 4.2 MB more in the WAL while the kernel ran: only data bytes were
counted, so names, rows and versions were free. Now each version and record is charged what SQLite stores
for it (kernel/storage/cost.py), an app keeps at most --storage-max-records records, and the files on disk
stay within quota x apps + a stated constant while the kernel runs.
"""

from __future__ import annotations

import json

import pytest
from memfs_helpers import err, ok, run_ops

from conftest import start_kernel
from kernel.storage.db import FILE_SLACK, WAL_AUTOCHECKPOINT

QUOTA = 10_000
MAX_RECORDS = 20
APPS = 3  # StorageFlooder, MemFsPeer (the victim), MemFsAgent (the records bound)
PAGE = 4096
WAL_MAX = (WAL_AUTOCHECKPOINT + 16) * (PAGE + 24) + 32  # db.py: a checkpoint every 1,000 pages; small writes here


@pytest.fixture(scope="module")
def k(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("storage-quota")
    client, _ = start_kernel(tmp, quota_storage_bytes=QUOTA, storage_max_records=MAX_RECORDS, kill_grace_s=1.0)
    yield client, tmp / "data"
    client.stop()


def on_disk(data_dir) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in data_dir.glob("storage.sqlite3*")}


def test_names_rows_and_versions_count_against_the_quota(k):
    client, data_dir = k
    ok(run_ops(client, [{"call": "fs.write", "args": {"name": "victim-notes", "data": "keep me"}}],
               agent="MemFsPeer")[0])
    first = "f000000".ljust(256, "x")
    snap = client.wait(client.spawn("StorageFlooder", json.dumps({"ops": [
        {"flood": {"n": 1500, "name_len": 256}},  # the reviewer's attack: empty records, 256-character names
        {"versions": {"name": first, "n": 50}},  # versions of a record are not free either
        {"write": {"name": "\u00e9" * 200, "data": ""}},  # 200 characters, 400 bytes of UTF-8 to store twice
    ]})), timeout=300)
    assert snap["state"] == "done", snap["error"]
    flood, versions, wide = snap["result"]
    # ~2 KB charged each (two rows, two index entries, the name in all four): 4 fit in 10,000 bytes, not 1,500
    assert 2 <= flood["ok"] <= 5 and flood["errors"] == {"EDQUOT": 1500 - flood["ok"]}, flood
    assert "--quota_storage_bytes" in flood["first_error"]["msg"] and "names" in flood["first_error"]["msg"]
    assert versions["ok"] <= 2 and versions["errors"] == {"EDQUOT": 50 - versions["ok"]}, versions
    assert wide["err"] == "EINVAL" and "400 bytes" in wide["msg"], wide
    # the files, live (WAL and all): within quota x apps + the stated constant; they were 2 MB + 4.2 MB of WAL
    files = on_disk(data_dir)
    assert files["storage.sqlite3"] <= QUOTA * APPS + FILE_SLACK, files
    assert files.get("storage.sqlite3-wal", 0) <= WAL_MAX, files
    assert sum(files.values()) <= QUOTA * APPS + FILE_SLACK + WAL_MAX + 32 * 1024, files  # + the -shm index
    # the victim's data is intact, and its own quota is still its own
    res = run_ops(client, [{"call": "fs.read", "args": {"name": "victim-notes"}},
                           {"call": "fs.write", "args": {"name": "victim-more", "data": "still room"}}],
                  agent="MemFsPeer")
    assert ok(res[0])["data"] == "keep me" and ok(res[1])["version"] == 1


def test_records_per_app_are_bounded(k):
    client, data_dir = k
    # Empty records with one-character names cost ~330 bytes each: 20 fit in the quota, the bound stops the 21st.
    ops = [{"call": "fs.write", "args": {"name": f"r{i}", "data": ""}} for i in range(MAX_RECORDS + 2)]
    res = run_ops(client, ops + [{"call": "fs.write", "args": {"name": "r0", "data": "a second version"}},
                                 {"call": "fs.list", "args": {"limit": 100}}])
    assert all("ok" in r for r in res[:MAX_RECORDS]), res[:MAX_RECORDS]
    for r in res[MAX_RECORDS:MAX_RECORDS + 2]:
        assert "--storage-max-records" in err(r, "ENOSPC")
    assert ok(res[-2])["version"] == 2  # a record it has still takes new versions
    assert len(ok(res[-1])) == MAX_RECORDS
    files = on_disk(data_dir)
    assert sum(files.values()) <= QUOTA * APPS + FILE_SLACK + WAL_MAX + 32 * 1024, files
