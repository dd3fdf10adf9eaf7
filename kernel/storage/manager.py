"""StorageManager: the kernel service behind the fs.* syscalls.

Threads and ownership:
  loop thread     runs the syscall handlers: validates, checks access
                  (``guard.authorize``), asks for confirmations
                  (``guard.confirm``), replies. Never touches SQLite.
  storage thread  owns ``self.db`` and runs every SQLite operation, one job at
                  a time (SQLite serialises writers anyway), then hands the
                  result back to the loop with ``kernel.post``. An fsync on
                  commit therefore never stalls other agents' syscalls.
``_usage`` (bytes charged per owner, cost.py: every kept version and record,
names and overheads included) is written by the storage thread and read
from any thread under ``_usage_lock``.

Files: ``<data_dir>/storage.sqlite3`` (+ ``-wal``, ``-shm``).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

from kernel.protocol import messages
from kernel.storage.db import StorageDB
from kernel.syscall import SyscallFailure

log = logging.getLogger("aios.storage")
DB_NAME = "storage.sqlite3"


class StorageManager:
    def __init__(self, config):
        self.data_dir = Path(config.data_dir)
        self.sync = config.storage.sync
        self.keep_versions = config.storage.keep_versions
        self.max_record_bytes = config.storage.max_record_bytes
        self.max_records = config.storage.max_records  # records per app; a new one past it is ENOSPC
        self.confirm_overwrite = config.storage.confirm_overwrite  # else only overwrites that prune a version
        self.kernel = None
        self.db: StorageDB | None = None  # storage thread only, after start()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._usage: dict[str, int] = {}
        self._usage_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="storage", daemon=True)
        self.error: str | None = None  # set when the DB could not be opened

    # -- service hooks --------------------------------------------------------------
    def start(self, kernel) -> None:
        """Open the DB (SQLite recovers a WAL left by a killed kernel here) and start the storage thread.

        A DB that cannot be opened does not stop the kernel: every fs.* call then fails with EIO.
        """
        self.kernel = kernel
        try:
            self.db = StorageDB(self.data_dir / DB_NAME, self.sync, self.keep_versions, self.max_records)
            self._usage = self.db.usage()
            log.info("storage: %s (sync=%s, %d owners)", self.db.path, self.sync, len(self._usage))
        except (sqlite3.Error, OSError) as e:
            self.db = None
            self.error = f"storage unavailable: cannot open {self.data_dir / DB_NAME}: {e}"
            log.error("%s", self.error)
        self._thread.start()

    def stop(self) -> None:
        """Finish the queued jobs (their replies are dropped: the loop has ended), close the DB."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        if self.db is not None:
            self.db.close()

    # -- for the access manager (any thread) ---------------------------------------------
    def usage_bytes(self, owner: str) -> int:
        """Bytes charged to ``owner`` (what --quota_storage_bytes limits): data, names, rows, index entries."""
        with self._usage_lock:
            return self._usage.get(owner, 0)

    def _account(self, owner: str, delta: int) -> None:
        with self._usage_lock:
            self._usage[owner] = self._usage.get(owner, 0) + delta

    # -- the worker -----------------------------------------------------------------------
    def submit(self, job: Callable[[StorageDB], Any], then: Callable[[Any, BaseException | None], None]) -> None:
        """Any thread: run ``job(db)`` on the storage thread, then ``then(result, error)`` on the loop."""
        self._jobs.put((job, then))

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, then = item
            try:
                if self.db is None:
                    raise SyscallFailure(messages.EIO, self.error or "storage is not open")
                result, error = job(self.db), None
            except BaseException as e:  # handed to the loop, which answers the agent with it
                result, error = None, e
            self.kernel.post(lambda then=then, result=result, error=error: then(result, error))

    # -- jobs that keep the usage counters right (storage thread) -----------------------------
    # ``charge(nbytes)`` raises EDQUOT when the owner's quota cannot take nbytes more (charged bytes: cost.py).
    # The DB calls it inside the write's transaction, here on the storage thread that runs every job in
    # turn, so pipelined writes cannot all pass one stale check.
    def write_job(self, owner: str, name: str, data: bytes, group: str, pid: int, expect_head: int | None,
                  charge: Callable[[int], None] | None = None):
        def job(db: StorageDB):
            info = db.write(owner, name, data, group, pid, expect_head, charge)
            self._account(owner, info["charged"] - info["freed"])
            return info
        return job

    def rollback_job(self, owner: str, name: str, version: int, group: str, pid: int,
                     charge: Callable[[int], None] | None = None):
        def job(db: StorageDB):
            info = db.rollback(owner, name, version, group, pid, charge)
            self._account(owner, info["charged"] - info["freed"])
            return info
        return job

    def delete_job(self, owner: str, name: str, expect_head: int | None):
        def job(db: StorageDB):
            info = db.delete(owner, name, expect_head)
            self._account(owner, -info["freed"])
            return info
        return job
