"""StorageDB: versioned, per-owner records in one SQLite file (WAL mode).

A record is (owner, name) -> a chain of versions 1, 2, 3, ... Every write and
every rollback appends a version; nothing but ``delete`` (all versions) and
pruning past ``keep_versions`` removes one. Owners are agent app names
(processes get new pids every run; their files must not).

Durability: each operation is one ``BEGIN IMMEDIATE ... COMMIT`` transaction.
In WAL mode a commit is appended to the ``-wal`` file before ``commit``
returns, so a process killed by SIGKILL loses no acknowledged write and never
leaves half a record; ``sync="full"`` also fsyncs the WAL on every commit, so
acknowledged writes survive a power cut too (``"normal"`` skips that fsync:
faster, still safe against a killed kernel). Every version stores the sha256
of its bytes, checked on read: a torn record would be reported, not served.

Accounting: every change returns ``charged`` (bytes it adds to the owner's
usage) and ``freed`` (bytes it removes), in the units of cost.py: data,
names, rows and index entries, not only data. ``charge(nbytes)``, called in
the transaction before anything is written, may raise (EDQUOT) to refuse a
change; ``max_records`` refuses a new record past that many of one owner
(ENOSPC). ``usage()`` sums the same costs in SQL.

Size on disk: SQLite needs no more than a version or record is charged
(cost.py says how that was measured, and names the one sequence of row
sizes that can take up to twice), so with a quota per owner the file stays
within quota x owners + FILE_SLACK. The WAL is checkpointed every
WAL_AUTOCHECKPOINT pages and cut back to JOURNAL_SIZE_LIMIT when it
restarts, so it stays within (WAL_AUTOCHECKPOINT + the pages of the largest
transaction) x (page + 24) bytes, 4.7 MB with 512 KiB records, whatever the
quotas; ``close`` truncates it. Pages freed by deletes and pruning are
reused: auto_vacuum stays off (the file stops growing rather than shrinking,
and no commit pays for moving pages).

Thread ownership: one StorageDB is used by one thread at a time (the storage
manager's worker). Several StorageDBs (other kernels, tests) may open the
same file; SQLite's locks serialise their writes.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

from kernel.protocol import messages
from kernel.storage import cost
from kernel.syscall import SyscallFailure

SYNC_MODES = ("full", "normal")
# SQLite's default; 128 pages made a 2 KB write with --storage_sync normal 8x slower (0.09 -> 0.7 ms: a
# checkpoint's fsync every ~35 writes), and the WAL is a fixed-size log whatever the quotas are.
WAL_AUTOCHECKPOINT = 1000  # pages (4 MiB) in the WAL before a commit copies them into the database
JOURNAL_SIZE_LIMIT = 4 << 20  # bytes a WAL grown past it (a large write) is cut back to when it restarts
FILE_SLACK = 64 << 10  # storage.sqlite3 beyond the charged bytes: the schema and roots, last pages partly filled

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    owner   TEXT NOT NULL,            -- agent app name, e.g. MathAgent
    name    TEXT NOT NULL,
    head    INTEGER NOT NULL,         -- latest version number
    grp     TEXT NOT NULL,            -- privilege group of the last writer: who else may read it
    created REAL NOT NULL,            -- time.time() of version 1
    updated REAL NOT NULL,
    PRIMARY KEY (owner, name)
);
CREATE TABLE IF NOT EXISTS versions (
    owner   TEXT NOT NULL,
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    data    BLOB NOT NULL,
    size    INTEGER NOT NULL,         -- bytes of data
    sha256  TEXT NOT NULL,
    created REAL NOT NULL,
    pid     INTEGER,                  -- AIOS pid of the writer (pids restart with the kernel)
    op      TEXT NOT NULL,            -- write | rollback
    base    INTEGER,                  -- rollback: the version whose bytes were restored
    PRIMARY KEY (owner, name, version)
);
"""


def _fail(code: str, message: str) -> SyscallFailure:
    return SyscallFailure(code, message)


class StorageDB:
    def __init__(self, path: str | os.PathLike, sync: str = "full", keep_versions: int = 256, max_records: int = 0):
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keep_versions = keep_versions  # 0: keep every version
        self.max_records = max_records  # records one owner may have; 0: no bound
        # isolation_level=None: autocommit; transactions are the explicit BEGIN/COMMIT below.
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={sync.upper()}")
        self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
        self.conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        self.conn.executescript(SCHEMA)
        self.page = self.conn.execute("PRAGMA page_size").fetchone()[0]
        self.conn.create_function("version_cost", 3, self.version_cost, deterministic=True)
        self.conn.create_function("record_cost", 3, self.record_cost, deterministic=True)

    def close(self) -> None:
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:  # another connection still reads: it checkpoints when it closes
            pass
        self.conn.close()

    # -- what things cost (cost.py, for this database's page size) ----------------------------
    def version_cost(self, owner: str, name: str, nbytes: int) -> int:
        return cost.version_cost(owner, name, nbytes, self.page)

    def record_cost(self, owner: str, name: str, group: str) -> int:
        return cost.record_cost(owner, name, group, self.page)

    # -- transactions ---------------------------------------------------------------
    def _tx(self, fn):
        """Run fn() inside BEGIN IMMEDIATE (takes the write lock at once) .. COMMIT."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            out = fn()
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return out

    # -- queries ----------------------------------------------------------------------
    def head(self, owner: str, name: str) -> dict | None:
        """{head, group, kept (versions stored)} or None."""
        row = self.conn.execute("SELECT head, grp, (SELECT COUNT(*) FROM versions v WHERE v.owner=r.owner AND "
                                "v.name=r.name) FROM records r WHERE owner=? AND name=?", (owner, name)).fetchone()
        return None if row is None else {"head": row[0], "group": row[1], "kept": row[2]}

    def read(self, owner: str, name: str, version: int | None = None) -> dict:
        """The latest version (or ``version``) with its bytes under "data". Raises ENOENT."""
        rec = self.conn.execute("SELECT head, grp, created, updated FROM records WHERE owner=? AND name=?",
                                (owner, name)).fetchone()
        if rec is None:
            raise _fail(messages.ENOENT, f"{owner} has no record named {name!r}")
        head, grp, created, updated = rec
        v = head if version is None else version
        row = self.conn.execute("SELECT data, size, sha256, created, op, base FROM versions "
                                "WHERE owner=? AND name=? AND version=?", (owner, name, v)).fetchone()
        if row is None:
            raise _fail(messages.ENOENT, f"record {name!r} of {owner} has no version {v} "
                        f"(versions: {', '.join(map(str, self._version_numbers(owner, name)))})")
        data, size, sha, vcreated, op, base = row
        data = bytes(data)
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
            raise _fail(messages.EIO, f"record {name!r} of {owner}, version {v}: stored bytes fail their checksum")
        return {"owner": owner, "name": name, "version": v, "head": head, "group": grp, "data": data,
                "size": size, "sha256": sha, "created": vcreated, "op": op, "base": base}

    def _version_numbers(self, owner: str, name: str) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT version FROM versions WHERE owner=? AND name=? ORDER BY version", (owner, name))]

    def versions(self, owner: str, name: str) -> list[dict]:
        rows = self.conn.execute("SELECT version, size, sha256, created, pid, op, base FROM versions "
                                 "WHERE owner=? AND name=? ORDER BY version", (owner, name)).fetchall()
        if not rows:
            raise _fail(messages.ENOENT, f"{owner} has no record named {name!r}")
        return [{"version": v, "size": s, "sha256": h, "created": c, "pid": p, "op": op, "base": b}
                for v, s, h, c, p, op, b in rows]

    def list(self, owner: str, prefix: str = "", limit: int = 1000) -> list[dict]:
        """Records of ``owner`` whose name starts with ``prefix``, by name."""
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.conn.execute(
            "SELECT r.name, r.head, r.grp, r.created, r.updated, v.size, "
            "(SELECT COUNT(*) FROM versions x WHERE x.owner=r.owner AND x.name=r.name) "
            "FROM records r JOIN versions v ON v.owner=r.owner AND v.name=r.name AND v.version=r.head "
            "WHERE r.owner=? AND r.name LIKE ? ESCAPE '\\' ORDER BY r.name LIMIT ?",
            (owner, like, limit)).fetchall()
        return [{"name": n, "version": h, "group": g, "created": c, "updated": u, "size": s, "versions": k}
                for n, h, g, c, u, s, k in rows]

    def usage(self) -> dict[str, int]:
        """Bytes charged per owner (cost.py): every kept version and every record, names and overheads counted."""
        return dict(self.conn.execute(
            "SELECT owner, SUM(c) FROM (SELECT owner, version_cost(owner, name, size) AS c FROM versions "
            "UNION ALL SELECT owner, record_cost(owner, name, grp) FROM records) GROUP BY owner").fetchall())

    def records(self, owner: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM records WHERE owner=?", (owner,)).fetchone()[0]

    def disk_bytes(self) -> int:
        """Bytes of storage.sqlite3 and its -wal and -shm files, as they are on disk now."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
                   if p.exists())

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    # -- changes (one transaction each) -----------------------------------------------
    def _append(self, owner, name, data: bytes, group, pid, op, base, expect_head, charge) -> dict:
        """Append a version; returns its info with ``charged`` and ``freed`` (by pruning). In a transaction.

        ``charge(nbytes)`` is asked for the bytes this adds before anything is written, and may raise."""
        now = time.time()
        cur = self.head(owner, name)
        head = cur["head"] if cur else 0
        if expect_head is not None and head != expect_head:
            raise _fail(messages.EAGAIN, f"record {name!r} changed meanwhile (now version {head}); retry")
        if cur is None and self.max_records and self.records(owner) >= self.max_records:
            raise _fail(messages.ENOSPC, f"{owner} already keeps {self.max_records} records, the most one app may "
                                         f"(--storage-max-records); delete some or write to an existing one")
        charged = self.version_cost(owner, name, len(data)) + self.record_cost(owner, name, group)
        if cur is not None:  # the record's row stays; only its group, and so its size, may change
            charged -= self.record_cost(owner, name, cur["group"])
        if charge is not None:
            charge(charged)
        v = head + 1
        sha = hashlib.sha256(data).hexdigest()
        self.conn.execute("INSERT INTO versions (owner, name, version, data, size, sha256, created, pid, op, base) "
                          "VALUES (?,?,?,?,?,?,?,?,?,?)", (owner, name, v, data, len(data), sha, now, pid, op, base))
        if cur is None:
            self.conn.execute("INSERT INTO records (owner, name, head, grp, created, updated) VALUES (?,?,?,?,?,?)",
                              (owner, name, v, group, now, now))
        else:
            self.conn.execute("UPDATE records SET head=?, grp=?, updated=? WHERE owner=? AND name=?",
                              (v, group, now, owner, name))
        freed = 0
        if self.keep_versions and v > self.keep_versions:
            cut = v - self.keep_versions
            freed = self.conn.execute("SELECT COALESCE(SUM(version_cost(owner, name, size)), 0) FROM versions "
                                      "WHERE owner=? AND name=? AND version<=?", (owner, name, cut)).fetchone()[0]
            self.conn.execute("DELETE FROM versions WHERE owner=? AND name=? AND version<=?", (owner, name, cut))
        return {"owner": owner, "name": name, "version": v, "size": len(data), "sha256": sha, "created": now,
                "op": op, "base": base, "created_record": cur is None, "charged": charged, "freed": freed}

    def write(self, owner: str, name: str, data: bytes, group: str, pid: int | None = None,
              expect_head: int | None = None, charge=None) -> dict:
        """Append ``data`` as the next version (version 1 creates the record).

        ``expect_head``: fail with EAGAIN unless the record's head is that
        version (0: it must not exist), so a confirmed overwrite writes over
        what was confirmed. ``charge(nbytes)`` may refuse the bytes it adds
        (EDQUOT); a new record past ``max_records`` is ENOSPC. Returns the new
        version's info with ``charged`` and ``freed`` (versions pruned past
        keep_versions), both in charged bytes.
        """
        return self._tx(lambda: self._append(owner, name, data, group, pid, "write", None, expect_head, charge))

    def rollback(self, owner: str, name: str, version: int, group: str, pid: int | None = None,
                 charge=None) -> dict:
        """Make ``version``'s bytes the head again, as a new version (history is never rewritten).

        The new version stores the old bytes again, so it counts against the storage quota:
        ``charge(nbytes)`` raises (EDQUOT) to refuse it."""
        def tx():
            old = self.read(owner, name, version)  # ENOENT if gone; checksum verified
            return self._append(owner, name, old["data"], group, pid, "rollback", version, None, charge)
        return self._tx(tx)

    def delete(self, owner: str, name: str, expect_head: int | None = None) -> dict:
        """Remove the record and every version of it. Irreversible. ``freed``: the charged bytes it held."""
        def tx():
            cur = self.head(owner, name)
            if cur is None:
                raise _fail(messages.ENOENT, f"{owner} has no record named {name!r}")
            if expect_head is not None and cur["head"] != expect_head:
                raise _fail(messages.EAGAIN, f"record {name!r} changed meanwhile (now version {cur['head']}); retry")
            n, freed = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(version_cost(owner, name, size)), 0) "
                                         "FROM versions WHERE owner=? AND name=?", (owner, name)).fetchone()
            freed += self.record_cost(owner, name, cur["group"])
            self.conn.execute("DELETE FROM versions WHERE owner=? AND name=?", (owner, name))
            self.conn.execute("DELETE FROM records WHERE owner=? AND name=?", (owner, name))
            return {"owner": owner, "name": name, "versions": n, "freed": freed}
        return self._tx(tx)
