"""The storage manager's SQLite layer on its own: versions, rollback, delete, pruning, checksums, reopen."""

from __future__ import annotations

import sqlite3

import pytest

from kernel.protocol import messages
from kernel.storage import StorageDB
from kernel.storage.cost import record_cost, version_cost
from kernel.syscall import SyscallFailure


@pytest.fixture
def db(tmp_path):
    d = StorageDB(tmp_path / "storage.sqlite3", sync="full", keep_versions=0)
    yield d
    d.close()


def code_of(fn, *args, **kw) -> str:
    with pytest.raises(SyscallFailure) as e:
        fn(*args, **kw)
    return e.value.code


def test_wal_mode_and_full_sync(db):
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_every_write_is_a_new_version_and_rollback_appends(db):
    for i, text in enumerate([b"one", b"two", b"three"], start=1):
        info = db.write("A", "notes", text, "A", pid=7)
        assert info["version"] == i and info["size"] == len(text) and info["created_record"] == (i == 1)
    assert db.read("A", "notes")["data"] == b"three"
    assert [db.read("A", "notes", v)["data"] for v in (1, 2, 3)] == [b"one", b"two", b"three"]
    rb = db.rollback("A", "notes", 1, "A", pid=8)
    assert (rb["version"], rb["op"], rb["base"]) == (4, "rollback", 1)
    latest = db.read("A", "notes")
    assert latest["data"] == b"one" and latest["version"] == latest["head"] == 4
    assert [(v["version"], v["op"], v["base"]) for v in db.versions("A", "notes")] == \
        [(1, "write", None), (2, "write", None), (3, "write", None), (4, "rollback", 1)]
    assert db.read("A", "notes", 3)["data"] == b"three"  # history is never rewritten
    assert code_of(db.rollback, "A", "notes", 9, "A") == messages.ENOENT
    assert code_of(db.read, "A", "notes", 9) == messages.ENOENT


def test_owners_are_separate_namespaces(db):
    db.write("A", "x", b"a's", "A")
    db.write("B", "x", b"b's", "B")
    assert db.read("A", "x")["data"] == b"a's" and db.read("B", "x")["data"] == b"b's"
    assert [r["name"] for r in db.list("A")] == ["x"]
    assert code_of(db.read, "C", "x") == messages.ENOENT


def test_delete_removes_every_version_and_frees_usage(db):
    db.write("A", "x", b"12345", "A")
    db.write("A", "x", b"678", "A")
    db.write("A", "keep", b"k", "A")
    x = record_cost("A", "x", "A") + version_cost("A", "x", 5) + version_cost("A", "x", 3)
    keep = record_cost("A", "keep", "A") + version_cost("A", "keep", 1)
    assert db.usage() == {"A": x + keep}  # charged bytes: data, names, rows and index entries
    out = db.delete("A", "x")
    assert out["versions"] == 2 and out["freed"] == x
    assert code_of(db.read, "A", "x") == messages.ENOENT
    assert code_of(db.versions, "A", "x") == messages.ENOENT
    assert code_of(db.delete, "A", "x") == messages.ENOENT
    assert db.usage() == {"A": keep}
    assert db.write("A", "x", b"new", "A")["version"] == 1  # a new record of the same name starts over


def test_keep_versions_prunes_oldest(tmp_path):
    d = StorageDB(tmp_path / "s.sqlite3", keep_versions=3)
    for i in range(5):
        info = d.write("A", "x", f"v{i + 1}".encode(), "A")
    assert info["version"] == 5 and info["freed"] == version_cost("A", "x", 2)
    assert [v["version"] for v in d.versions("A", "x")] == [3, 4, 5]
    assert d.head("A", "x")["kept"] == 3
    assert code_of(d.read, "A", "x", 1) == messages.ENOENT
    assert code_of(d.rollback, "A", "x", 2, "A") == messages.ENOENT
    assert d.rollback("A", "x", 3, "A")["version"] == 6
    assert d.usage() == {"A": record_cost("A", "x", "A") + 3 * version_cost("A", "x", 2)}  # v4 v5 v6(=v3)
    d.close()


def test_expect_head_guards_against_a_changed_record(db):
    db.write("A", "x", b"1", "A", expect_head=0)
    assert code_of(db.write, "A", "x", b"2", "A", expect_head=0) == messages.EAGAIN
    db.write("A", "x", b"2", "A", expect_head=1)
    assert code_of(db.delete, "A", "x", expect_head=1) == messages.EAGAIN
    assert db.read("A", "x")["data"] == b"2"


def test_failed_transaction_leaves_nothing(db):
    db.write("A", "x", b"1", "A")
    with pytest.raises(SyscallFailure):
        db.write("A", "x", b"2", "A", expect_head=5)
    assert [v["version"] for v in db.versions("A", "x")] == [1]
    assert db.conn.in_transaction is False


def test_list_prefix_is_literal(db):
    for name in ("a%b", "a_c", "ab", "notes/1", "notes/2", "other"):
        db.write("A", name, b"x", "A")
    assert [r["name"] for r in db.list("A", "a%")] == ["a%b"]
    assert [r["name"] for r in db.list("A", "a_")] == ["a_c"]
    assert [r["name"] for r in db.list("A", "notes/")] == ["notes/1", "notes/2"]
    row = db.list("A", "ab")[0]
    assert row["version"] == 1 and row["versions"] == 1 and row["size"] == 1


def test_checksum_catches_damaged_bytes(db, tmp_path):
    db.write("A", "x", b"precious", "A")
    raw = sqlite3.connect(tmp_path / "storage.sqlite3")
    raw.execute("UPDATE versions SET data=? WHERE owner='A' AND name='x'", (b"precioUs",))
    raw.commit()
    raw.close()
    assert code_of(db.read, "A", "x") == messages.EIO


def test_reopen_keeps_everything(tmp_path):
    path = tmp_path / "s.sqlite3"
    d = StorageDB(path)
    blob = bytes(range(256)) * 100
    d.write("A", "bin", blob, "A")
    d.write("A", "bin", b"second", "A")
    d.close()
    d2 = StorageDB(path)
    assert d2.integrity_check() == "ok"
    assert d2.read("A", "bin", 1)["data"] == blob
    assert d2.read("A", "bin")["data"] == b"second"
    d2.close()
