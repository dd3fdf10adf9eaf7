"""The storage quota counts what is stored: cost.py's charges against the bytes SQLite really uses.

Each shape is written into a fresh database and the pages of its four b-trees are summed from SQLite's
``dbstat`` table: the charge must cover them (names, rows and index entries included), and the file must
stay within charged bytes + FILE_SLACK. Also: the records bound (ENOSPC), the quota callback, the WAL bound.
"""

from __future__ import annotations

import random
import string

import pytest

from kernel.protocol import messages
from kernel.storage import StorageDB, cost
from kernel.storage.db import FILE_SLACK, JOURNAL_SIZE_LIMIT, WAL_AUTOCHECKPOINT
from kernel.syscall import SyscallFailure

TREES = ("records", "sqlite_autoindex_records_1", "versions", "sqlite_autoindex_versions_1")


def tree_bytes(db: StorageDB) -> int:
    """Bytes in pages of the four b-trees, less the root page each has when empty."""
    rows = dict(db.conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    return sum(rows.get(t, 0) for t in TREES) - len(TREES) * db.page


def charged(db: StorageDB) -> int:
    return sum(db.usage().values())


def names(n: int, length: int, order: str, rnd: random.Random, alphabet: str = string.ascii_letters) -> list[str]:
    out = [f"{i:06d}" + "".join(rnd.choice(alphabet) for _ in range(length - 6)) for i in range(n)]
    if order == "random":
        rnd.shuffle(out)
    elif order == "desc":
        out.reverse()
    return out


def fill(tmp_path, shape, sizes, versions=1, owner="MathAgent") -> StorageDB:
    db = StorageDB(tmp_path / "s.sqlite3", sync="normal", keep_versions=0)
    for name, size in zip(shape, sizes):
        for _ in range(versions):
            db.write(owner, name, bytes(size), owner)
    return db


@pytest.mark.parametrize("length", [6, 128, 256])
@pytest.mark.parametrize("order", ["asc", "random", "desc"])
def test_empty_records_with_long_names_are_charged_what_they_use(tmp_path, length, order):
    db = fill(tmp_path, names(600, length, order, random.Random(length)), [0] * 600)
    real, paid = tree_bytes(db), charged(db)
    assert real <= paid, (real, paid)
    assert paid <= 1.7 * real  # not punitive: 1.1x what the worst order (descending) uses, 1.5x the best
    assert db.disk_bytes() <= paid + FILE_SLACK + (WAL_AUTOCHECKPOINT + 8) * (db.page + 24)
    db.close()


@pytest.mark.parametrize("size", [0, 300, 1000, 1500, 2000, 3000, 3900, 4100, 9000, 40_000])
def test_rows_of_one_size_are_charged_their_pages(tmp_path, size):
    # A 2 KB row fills a 4 KiB leaf page alone: it is charged the page, not 2 KB.
    db = fill(tmp_path, [f"note-{i:04d}" for i in range(150)], [size] * 150)
    real, paid = tree_bytes(db), charged(db)
    assert real <= paid <= 1.25 * real + 150 * 160, (real, paid)  # 160: index pages assumed half full
    db.close()


def test_random_sizes_many_versions_and_utf8_names(tmp_path):
    rnd = random.Random(7)
    shape = names(200, 70, "random", rnd, alphabet="\u00e9\u4e2d\U0001f600") + names(200, 20, "random", rnd)
    db = fill(tmp_path, shape, [rnd.randint(0, 6000) for _ in shape], versions=3)
    real, paid = tree_bytes(db), charged(db)
    assert real <= paid <= 1.5 * real, (real, paid)
    db.close()


def test_overwrites_that_prune_stay_within_the_charge(tmp_path):
    # Pruning leaves pages partly empty: the file, at its largest, still fits in the most ever charged.
    db = StorageDB(tmp_path / "s.sqlite3", sync="normal", keep_versions=3)
    rnd = random.Random(3)
    names = [f"note-{i:04d}" for i in range(150)]
    peak = 0
    for _ in range(20):
        for name in rnd.sample(names, len(names)):
            db.write("A", name, bytes(rnd.randint(1500, 4500)), "A")
        peak = max(peak, charged(db))
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (tmp_path / "s.sqlite3").stat().st_size <= peak + FILE_SLACK
    db.close()


def test_rows_sized_to_defeat_page_packing_stay_within_twice_their_charge(tmp_path):
    # The known limit (cost.py): an empty row, then one that does not fit after it, again and again.
    db = StorageDB(tmp_path / "s.sqlite3", sync="normal", keep_versions=0)
    for i in range(100):
        db.write("A", f"s{i:04d}", b"", "A")
        db.write("A", f"b{i:04d}", bytes(3900), "A")
    real, paid = tree_bytes(db), charged(db)
    assert paid < real <= 2 * paid, (real, paid)
    db.close()


def test_quota_refuses_what_names_and_versions_add(tmp_path):
    # The hostile-agent finding: 1,500 empty records with 256-character names under 10,000 bytes.
    quota = 10_000
    db = StorageDB(tmp_path / "s.sqlite3", keep_versions=0)
    used = {"A": 0}

    def charge(nbytes):
        if used["A"] + nbytes > quota:
            raise SyscallFailure(messages.EDQUOT, "over")

    refused = 0
    for i in range(1500):
        try:
            info = db.write("A", f"{i:04d}" + "n" * 252, b"", "A", charge=charge)
            used["A"] += info["charged"] - info["freed"]
        except SyscallFailure as e:
            assert e.code == messages.EDQUOT
            refused += 1
    kept = 1500 - refused
    assert 2 <= kept <= 6 and used["A"] == db.usage()["A"] <= quota  # were all 1,500
    for v in range(50):  # versions of one record are not free either
        try:
            info = db.write("A", "0000" + "n" * 252, b"", "A", charge=charge)
            used["A"] += info["charged"] - info["freed"]
        except SyscallFailure as e:
            assert e.code == messages.EDQUOT
    assert used["A"] == db.usage()["A"] <= quota
    db.close()
    size = sum(p.stat().st_size for p in tmp_path.iterdir())  # closed: the WAL is checkpointed away
    assert size <= quota + FILE_SLACK, size  # was 1,998,848


def test_a_group_change_is_charged_the_difference(tmp_path):
    db = StorageDB(tmp_path / "s.sqlite3", keep_versions=0)
    first = db.write("A", "x", b"1", "A")
    assert first["charged"] == cost.version_cost("A", "x", 1) + cost.record_cost("A", "x", "A")
    again = db.write("A", "x", b"2", "a-much-longer-group-name" * 2)
    grown = cost.record_cost("A", "x", "a-much-longer-group-name" * 2) - cost.record_cost("A", "x", "A")
    assert again["charged"] == cost.version_cost("A", "x", 1) + grown
    assert db.usage()["A"] == first["charged"] + again["charged"]
    db.close()


def test_records_per_owner_are_bounded(tmp_path):
    db = StorageDB(tmp_path / "s.sqlite3", keep_versions=0, max_records=3)
    for i in range(3):
        db.write("A", f"r{i}", b"x", "A")
    with pytest.raises(SyscallFailure) as e:
        db.write("A", "r3", b"x", "A")
    assert e.value.code == messages.ENOSPC and "--storage-max-records" in e.value.message
    assert db.write("A", "r0", b"new version", "A")["version"] == 2  # an existing record takes versions
    assert db.write("B", "r3", b"x", "B")["version"] == 1  # another app has its own bound
    db.delete("A", "r1")
    assert db.write("A", "r3", b"x", "A")["version"] == 1
    assert db.records("A") == 3 and db.conn.in_transaction is False
    db.close()


def test_the_wal_stays_bounded_while_live(tmp_path):
    db = StorageDB(tmp_path / "s.sqlite3", sync="normal", keep_versions=4)
    wal = tmp_path / "s.sqlite3-wal"
    biggest = 0
    for i in range(3000):  # ~12,000 WAL frames: 48 MB without checkpoints
        db.write("A", f"r{i % 500}", bytes(1000), "A")
        biggest = max(biggest, wal.stat().st_size)
    frame, small_txn = db.page + 24, 16  # pages one of these writes touches: leaves and interiors of four b-trees
    assert biggest <= (WAL_AUTOCHECKPOINT + small_txn) * frame + 32, biggest
    db.write("A", "large", bytes(6 << 20), "A")  # one transaction of ~1,600 pages: the WAL must hold it
    assert wal.stat().st_size > JOURNAL_SIZE_LIMIT
    db.write("A", "small", b"x", "A")  # the WAL restarts after the checkpoint and is cut back
    assert wal.stat().st_size <= JOURNAL_SIZE_LIMIT
    db.close()
    assert not wal.exists() or wal.stat().st_size == 0
