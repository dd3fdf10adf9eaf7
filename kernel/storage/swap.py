"""SwapArea: where the memory manager evicts working-memory blocks.

A scratch SQLite file of this kernel, ``<data_dir>/swap-<os pid>.sqlite3``.
Working memory belongs to a process and processes do not outlive their
kernel, so nothing here needs to survive a restart: commits are not fsynced
(``synchronous=OFF``), the file is deleted at close, and swap files left by a
kernel that was killed are removed by the next one that opens the directory.

Thread ownership: the kernel's loop thread only (the memory manager). One
put or get is a single-row statement on a local file (tens of microseconds:
bench/bench_memory.py measures it), short enough for the loop.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import psutil


class SwapArea:
    def __init__(self, data_dir: str | os.PathLike):
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        self.path = self.dir / f"swap-{os.getpid()}.sqlite3"
        for p in self._files(self.path):
            p.unlink(missing_ok=True)
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("CREATE TABLE blocks (pid INTEGER NOT NULL, id INTEGER NOT NULL, content TEXT NOT NULL, "
                          "PRIMARY KEY (pid, id))")
        self.bytes = 0  # UTF-8 bytes of content held here
        self.puts = 0
        self.gets = 0

    @staticmethod
    def _files(path: Path) -> list[Path]:
        return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]

    def _remove_stale(self) -> None:
        for p in self.dir.glob("swap-*.sqlite3"):
            try:
                pid = int(p.stem.split("-", 1)[1])
            except ValueError:
                continue
            if pid != os.getpid() and not psutil.pid_exists(pid):
                for f in self._files(p):
                    f.unlink(missing_ok=True)

    def put(self, pid: int, block_id: int, content: str, size: int) -> None:
        self.conn.execute("INSERT OR REPLACE INTO blocks (pid, id, content) VALUES (?, ?, ?)", (pid, block_id, content))
        self.bytes += size
        self.puts += 1

    def take(self, pid: int, block_id: int, size: int) -> str:
        """Read a block back and free its slot. KeyError if it is not here."""
        row = self.conn.execute("SELECT content FROM blocks WHERE pid=? AND id=?", (pid, block_id)).fetchone()
        if row is None:
            raise KeyError((pid, block_id))
        self.conn.execute("DELETE FROM blocks WHERE pid=? AND id=?", (pid, block_id))
        self.bytes -= size
        self.gets += 1
        return row[0]

    def peek(self, pid: int, block_id: int) -> str:
        """Read a block without taking it back (for embedding it). KeyError if it is not here."""
        row = self.conn.execute("SELECT content FROM blocks WHERE pid=? AND id=?", (pid, block_id)).fetchone()
        if row is None:
            raise KeyError((pid, block_id))
        return row[0]

    def drop(self, pid: int, block_ids: list[int] | None = None, size: int = 0) -> None:
        """Forget blocks of ``pid`` (all when block_ids is None); ``size``: their bytes."""
        if block_ids is None:
            self.conn.execute("DELETE FROM blocks WHERE pid=?", (pid,))
        else:
            self.conn.executemany("DELETE FROM blocks WHERE pid=? AND id=?", [(pid, i) for i in block_ids])
        self.bytes -= size

    def close(self) -> None:
        self.conn.close()
        for p in self._files(self.path):
            p.unlink(missing_ok=True)
