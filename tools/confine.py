"""Paths confined to a directory, openat-style (helpers; defines no tools).

An agent names files relative to its workspace. A name is refused before any
I/O if it is absolute, contains a NUL byte or has a ``..`` component. It is
then opened one component at a time from the workspace's directory fd with
O_NOFOLLOW, so no symlink is ever followed, wherever it points (the
workspace folder itself included) (a symlink
inside the workspace is refused too: simpler than deciding where it leads,
and nothing legitimate needs one). Files are opened O_NONBLOCK and must be
regular files, so a FIFO or device cannot hang a kernel thread.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager

from kernel.protocol.messages import EACCES, EINVAL, EIO, ENOENT, ENOTDIR, EPERM
from tools.base import ToolError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def parts(path: str) -> list[str]:
    """Split a relative path into checked components ([] is the root itself)."""
    if "\0" in path:
        raise ToolError(EINVAL, "path contains a NUL byte")
    if path.startswith("/") or path.startswith("~"):
        raise ToolError(EPERM, f"{path!r}: absolute paths are refused; name files relative to your workspace")
    out = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in out:
        raise ToolError(EPERM, f"{path!r}: '..' is refused; paths must stay inside your workspace")
    return out


def _why(e: OSError, name: str, dir_fd: int) -> ToolError:
    if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        try:
            if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                return ToolError(EPERM, f"{name!r} is a symbolic link; links are not followed")
        except OSError:
            pass
        return ToolError(ENOTDIR, f"{name!r} is not a directory")
    if e.errno == errno.ENOENT:
        return ToolError(ENOENT, f"{name!r} does not exist")
    if e.errno == errno.EACCES:
        return ToolError(EACCES, f"{name!r}: permission denied")
    return ToolError(EIO, f"{name!r}: {e.strerror}")


def open_root(root: str) -> int:
    """fd of the workspace itself, never through a link: a workspace replaced by a symlink (to / or
    another app's workspace) is refused, not followed."""
    os.makedirs(root, exist_ok=True)
    try:
        return os.open(root, DIR_FLAGS)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ToolError(EPERM, "the workspace folder is a symbolic link; refused") from None
        raise ToolError(EIO, f"workspace: {e.strerror}") from None


@contextmanager
def walk_to(root: str, comps: list[str], create: bool = False):
    """Yield an fd of the directory ``root/comps...`` (opened without following links)."""
    fd = open_root(root)
    try:
        for c in comps:
            try:
                nfd = os.open(c, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise ToolError(ENOENT, f"directory {'/'.join(comps)!r} does not exist") from None
                try:
                    os.mkdir(c, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                try:
                    nfd = os.open(c, DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    raise _why(e, c, fd) from None
            except OSError as e:
                raise _why(e, c, fd) from None
            os.close(fd)
            fd = nfd
        yield fd
    finally:
        os.close(fd)


def open_file(dir_fd: int, name: str, flags: int = os.O_RDONLY) -> int:
    """Open a regular file in dir_fd without following links or blocking on FIFOs."""
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        raise _why(e, name, dir_fd) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ToolError(EINVAL, f"{name!r} is not a regular file")
    return fd


def lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def tree_bytes(root: str) -> int:
    """Total size of regular files under root (links not followed)."""
    total = 0
    fd = open_root(root)
    try:
        for _, _, files, dfd in os.fwalk(dir_fd=fd):
            for f in files:
                st = lstat(dfd, f)
                if st is not None and stat.S_ISREG(st.st_mode):
                    total += st.st_size
    finally:
        os.close(fd)
    return total
