"""Workspaces measured off the loop: ``walk()`` and the thread that runs it (kernel/process/watch.py).

A walk sums the sizes of a workspace's regular files (each inode once, links
never followed, the root included) and clears the setuid and setgid bits it
meets (fchmod of an fd opened O_NOFOLLOW, so a file swapped for a link
meanwhile is never touched through it).

The ``Walker`` thread walks what the loop asks for (each tick, each ended
agent) and, to react in milliseconds rather than at the next tick, what
inotify says changed: it watches each workspace's folders (at most
WATCH_MAX_DIRS each; a deeper tree is left to the ticks) for writes, new
files and mode changes, and walks the workspace again as soon as its
throttle allows: WALK_DUTY x the CPU time of its last walk after it ends,
so walking takes at most 1/WALK_DUTY of a CPU per workspace. A
workspace watched whole is walked by the ticks only every WALK_IDLE_S; one
that is not, at every tick. Results go to the loop through ``post``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import stat
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from kernel.param import WALK_DUTY, WALK_IDLE_S, WALK_MIN_S, WATCH_MAX_DIRS

log = logging.getLogger("aios.kernel")

SETID = stat.S_ISUID | stat.S_ISGID
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# inotify(7)
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x4, 0x8, 0x80, 0x100
IN_Q_OVERFLOW, IN_IGNORED, IN_ONLYDIR = 0x4000, 0x8000, 0x01000000
MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR  # the fd's magic link is followed
EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


@dataclass
class Walk:
    bytes: int = 0  # sizes of regular files, each inode once
    entries: int = 0  # files, folders, links... below the root
    cleared: list[tuple[str, int]] = field(default_factory=list)  # (relative path, mode before) of setid files
    started: float = 0.0  # time.monotonic() when it began: of two results, the later start is the truer
    seconds: float = 0.0  # CPU time the walk took (this thread's: a loaded machine's waits are not its cost)
    complete: bool = True  # False: stopped past max_entries (bytes is then a lower bound)
    watched_all: bool = False  # every folder is watched by inotify (set by the Walker)


def _clear_setid(dfd: int, name: str, st: os.stat_result) -> bool:
    """Drop S_ISUID/S_ISGID of the regular file ``name`` in ``dfd`` (never through a link)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:  # unreadable to us (a kernel not root, mode 0): by name, links not followed
        try:
            os.chmod(name, stat.S_IMODE(st.st_mode) & ~SETID, dir_fd=dfd, follow_symlinks=False)
            return True
        except (OSError, NotImplementedError):
            return False
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or not now.st_mode & SETID:
            return False  # swapped meanwhile: the next walk sees what is there now
        os.fchmod(fd, stat.S_IMODE(now.st_mode) & ~SETID)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def walk(root: str, max_entries: int | None = None, on_dir: Callable[[int], None] | None = None) -> Walk:
    """Measure ``root`` and clear setid bits on the way. ``on_dir(fd)``: called with each folder's fd."""
    t0 = time.thread_time()
    w = Walk(started=time.monotonic())
    seen: set[tuple[int, int]] = set()
    fd = os.open(root, DIR_FLAGS)
    try:
        for dirpath, dirs, files, dfd in os.fwalk(dir_fd=fd):
            if on_dir is not None:
                on_dir(dfd)
            w.entries += len(dirs) + len(files)
            if max_entries is not None and w.entries > max_entries:
                w.complete = False
                break
            for name in files:
                try:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    w.bytes += st.st_size
                if st.st_mode & SETID and _clear_setid(dfd, name, st):
                    w.cleared.append((os.path.normpath(os.path.join(dirpath, name)), st.st_mode))
    finally:
        os.close(fd)
    w.seconds = time.thread_time() - t0
    return w


@dataclass
class _Space:
    """The Walker's own record of one workspace (its thread only)."""
    pending: bool = False
    forced: bool = False  # walk even if throttled (an agent ended)
    next_ok: float = 0.0  # monotonic time before which it is not walked (throttle)
    last: float = 0.0  # when the last walk ended
    wds: set = field(default_factory=set)  # its inotify watch descriptors
    watched_all: bool = False


class Walker:
    """One thread: walks workspaces on request and on inotify events; ``done(path, Walk | None)`` gets
    each result (it should hand it to the loop). Thread-safe entry points: ``request``, ``forget``, ``stop``."""

    def __init__(self, done: Callable[[str, Walk | None], None]):
        self.done = done
        self._inbox: deque = deque()  # ("walk", path, forced) | ("forget", path) | None (stop)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        libc = ctypes.CDLL(None, use_errno=True)
        self._add = libc.inotify_add_watch
        self._rm = libc.inotify_rm_watch
        self._ino = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)  # -1: none, the ticks alone then
        self._spaces: dict[str, _Space] = {}
        self._wd_path: dict[int, str] = {}
        self.thread = threading.Thread(target=self._run, name="workspace-watch", daemon=True)
        self.thread.start()

    # -- any thread -------------------------------------------------------------------------------
    def request(self, path: str, forced: bool = False) -> None:
        self._send(("walk", path, forced))

    def forget(self, path: str) -> None:
        """No agent uses ``path`` now: stop watching it."""
        self._send(("forget", path))

    def stop(self) -> None:
        self._send(None)

    def _send(self, item) -> None:
        self._inbox.append(item)
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # pipe full: the thread is awake anyway

    # -- the thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        poll = select.poll()
        poll.register(self._wake_r, select.POLLIN)
        if self._ino >= 0:
            poll.register(self._ino, select.POLLIN)
        try:
            while True:
                now = time.monotonic()
                due = [s.next_ok for s in self._spaces.values() if s.pending and not s.forced]
                wait = None if not due else max(0, int(1000 * (min(due) - now)) + 1)
                for fd, _ in poll.poll(wait):
                    if fd == self._wake_r:
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                    else:
                        self._events()
                if not self._inbox_done():
                    return
                now = time.monotonic()
                for path, s in list(self._spaces.items()):
                    if s.pending and (s.forced or now >= s.next_ok):
                        self._walk(path, s)
        finally:
            for fd in (self._wake_r, self._wake_w, self._ino):
                if fd >= 0:
                    os.close(fd)

    def _inbox_done(self) -> bool:
        """Apply requests; False on stop."""
        while self._inbox:
            item = self._inbox.popleft()
            if item is None:
                return False
            if item[0] == "forget":
                s = self._spaces.pop(item[1], None)
                for wd in (s.wds if s else ()):
                    self._wd_path.pop(wd, None)
                    self._rm(self._ino, wd)
                continue
            _, path, forced = item
            s = self._spaces.setdefault(path, _Space())
            if forced or not s.watched_all or time.monotonic() - s.last >= WALK_IDLE_S:
                s.pending = True
                s.forced = s.forced or forced
        return True

    def _events(self) -> None:
        try:
            data = os.read(self._ino, 1 << 16)
        except (BlockingIOError, OSError):
            return
        i = 0
        while i + EVENT.size <= len(data):
            wd, mask, _, n = EVENT.unpack_from(data, i)
            i += EVENT.size + n
            if mask & IN_Q_OVERFLOW:  # events lost: walk every watched workspace
                for s in self._spaces.values():
                    s.pending = True
                continue
            path = self._wd_path.get(wd)
            if path is None or path not in self._spaces:
                continue
            if mask & IN_IGNORED:  # its folder went away
                self._wd_path.pop(wd, None)
                self._spaces[path].wds.discard(wd)
                continue
            self._spaces[path].pending = True

    def _walk(self, path: str, s: _Space) -> None:
        s.pending = s.forced = False
        full = [True]

        def watch(dfd: int) -> None:
            if self._ino < 0 or len(s.wds) >= WATCH_MAX_DIRS:
                full[0] = False
                return
            wd = self._add(self._ino, f"/proc/self/fd/{dfd}".encode(), MASK)  # the folder the fd holds
            if wd < 0:
                full[0] = False
                return
            s.wds.add(wd)
            self._wd_path[wd] = path

        try:
            w = walk(path, on_dir=watch)
            s.watched_all = w.watched_all = full[0]
        except OSError as e:
            log.warning("watch: cannot walk workspace %s: %s", path, e.strerror)
            w = None
        s.last = time.monotonic()
        s.next_ok = s.last + max(WALK_MIN_S, WALK_DUTY * (w.seconds if w else 1.0))
        try:
            self.done(path, w)
        except Exception:
            log.exception("watch: handing a walk of %s back", path)
