"""Where the daemon listens, and the checks that keep its socket private to its user.

Default socket: ``$XDG_RUNTIME_DIR/aios/aios.sock`` (systemd's per-user
runtime folder, /run/user/UID). Without ``$XDG_RUNTIME_DIR`` (cron, su,
containers): ``/tmp/aios-UID/aios.sock``, as tmux does with /tmp/tmux-UID
(a short path: unix socket paths are limited to 107 bytes). The pid file
sits beside the socket: ``aios.sock`` -> ``aios.pid``.

Privacy: the folder is created 0700; an existing folder must belong to us
and be closed to group and others (otherwise we refuse rather than chmod
something we did not create: another user could own or watch it, the
classic /tmp squatting attack). The socket is bound under umask 0177, so it
is 0600 from its first instant. The daemon also checks each peer's uid
(SO_PEERCRED), which holds even when someone loosens the modes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat

SOCKET_NAME = "aios.sock"
MAX_SOCKET_PATH = 107  # bytes, sun_path of Linux minus the NUL


class PathError(Exception):
    """The socket's folder is not private, or the socket path cannot be used; one line."""


def default_socket() -> str:
    run = os.environ.get("XDG_RUNTIME_DIR")
    base = os.path.join(run, "aios") if run and os.path.isabs(run) else f"/tmp/aios-{os.geteuid()}"
    return os.path.join(base, SOCKET_NAME)


def pidfile_for(sock_path: str) -> str:
    root, ext = os.path.splitext(sock_path)
    return (root if ext == ".sock" else sock_path) + ".pid"


def ensure_private_dir(folder: str) -> None:
    """Create ``folder`` 0700 (with parents), or check that an existing one is ours and private."""
    try:
        os.makedirs(folder, mode=0o700, exist_ok=False)
        return
    except FileExistsError:
        pass
    except OSError as e:
        raise PathError(f"cannot create the socket folder {folder}: {e.strerror}") from None
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise PathError(f"{folder} is not a folder (a symlink or a file): refusing to put the socket there")
    if st.st_uid != os.geteuid():
        raise PathError(f"{folder} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}): refusing "
                        "to put the socket there")
    if st.st_mode & 0o077:
        raise PathError(f"{folder} is mode {stat.S_IMODE(st.st_mode):04o}; the socket needs a private folder: "
                        f"chmod 700 {folder}, or choose another --socket")


def check_socket_path(path: str) -> str:
    path = os.path.abspath(path)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise PathError(f"socket path {path} is longer than {MAX_SOCKET_PATH} bytes (a unix socket limit); "
                        "choose a shorter --socket")
    return path


def daemon_alive(path: str, timeout: float = 2.0) -> bool:
    """Does something accept connections on the socket at ``path``?"""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class PidFile:
    """``aios.pid``: the daemon's pid, held under an exclusive flock for the daemon's life.

    The lock (not the file's presence) says a daemon lives: a daemon killed
    with SIGKILL leaves the file, and the next one takes the lock, then
    removes the stale socket safely (no other starter can hold the lock).
    """

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        """Raises PathError naming the live daemon's pid if another daemon holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                other = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                    raise PathError(f"a daemon (pid {other}) already serves this socket") from None
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # locked a file its holder unlinked on the way out: take the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still locked: no starter can read our stale pid
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None
