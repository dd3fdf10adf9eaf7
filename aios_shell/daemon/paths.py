"""Where the daemon listens, and the checks that keep its socket private to its user.

Default socket: ``$XDG_RUNTIME_DIR/aios/aios.sock`` (systemd's per-user
runtime folder, /run/user/UID). Without ``$XDG_RUNTIME_DIR`` (cron, su,
containers): ``/tmp/aios-UID/aios.sock``, as tmux does with /tmp/tmux-UID
(a short path: unix socket paths are limited to 107 bytes). The pid file
and the key file sit beside the socket: ``aios.sock`` -> ``aios.pid``,
``aios.key``.

Privacy: the folder is created 0700; an existing folder must belong to us
and be closed to group and others (otherwise we refuse rather than chmod
something we did not create: another user could own or watch it, the
classic /tmp squatting attack). The socket is bound under umask 0177, so it
is 0600 from its first instant. The daemon also checks each peer's uid
(SO_PEERCRED), which holds even when someone loosens the modes.

The uid is not enough: a confined agent runs with the user's uid, and
Landlock does not mediate connect() to a pathname unix socket. So each
daemon run writes a fresh random key (``aios.key``, 0600, in the 0700
folder that no agent sandbox binds or lists), and a client must present it
in its first frame (conn.py). Reading that file is the proof of being the
user rather than one of the user's agents.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import socket
import stat

SOCKET_NAME = "aios.sock"
MAX_SOCKET_PATH = 107  # bytes, sun_path of Linux minus the NUL
KEY_BYTES = 32  # random bytes in a daemon's key (written as 64 hex characters)
MAX_KEY_FILE = 256  # bytes read from a key file: a real one is 65


class PathError(Exception):
    """The socket's folder is not private, or the socket path cannot be used; one line."""


def default_socket() -> str:
    run = os.environ.get("XDG_RUNTIME_DIR")
    base = os.path.join(run, "aios") if run and os.path.isabs(run) else f"/tmp/aios-{os.geteuid()}"
    return os.path.join(base, SOCKET_NAME)


def _beside(sock_path: str, suffix: str) -> str:
    root, ext = os.path.splitext(sock_path)
    return (root if ext == ".sock" else sock_path) + suffix


def pidfile_for(sock_path: str) -> str:
    return _beside(sock_path, ".pid")


def keyfile_for(sock_path: str) -> str:
    return _beside(sock_path, ".key")


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


class KeyFile:
    """``aios.key``: this daemon run's secret, which every client presents in its hello.

    Invariants: created and removed only while the daemon holds the pid file
    lock (so a starting daemon never deletes a live one's key, and no two
    daemons write it at once); created O_EXCL|O_NOFOLLOW, 0600 from its first
    instant (umask cannot widen it, a planted file or symlink is unlinked, not
    written through); a new key for every run, so an old copy opens nothing.
    """

    def __init__(self, path: str):
        self.path = path
        self.key: str | None = None

    def create(self) -> str:
        """Replace any stale key file with a fresh key; the key (hex)."""
        try:
            os.unlink(self.path)  # a SIGKILLed daemon's, or anything planted: unlink, never follow
        except FileNotFoundError:
            pass
        key = secrets.token_hex(KEY_BYTES)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask: never wider
            os.write(fd, f"{key}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self.key = key
        return key

    def remove(self) -> None:
        """Idempotent; call before releasing the pid file lock."""
        if self.key is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.key = None


def read_key(path: str) -> str:
    """The key in a daemon's key file (client side). Raises OSError (a missing file, a symlink,
    ELOOP) or PathError (a file that is not ours, is open to others, or holds no key)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PathError("not a regular file")
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            # not the daemon's own (uid, 0600): do not send whatever it holds to the socket
            raise PathError(f"owned by uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}; "
                            f"a daemon's key is yours (uid {os.geteuid()}) and 0600")
        data = os.read(fd, MAX_KEY_FILE)
    finally:
        os.close(fd)
    key = data.decode("ascii", "replace").strip()
    if not key:
        raise PathError("the file is empty")
    return key
