"""Start and stop a real AIOS daemon (simulator.py --daemon) for tests, and talk to it raw.

Every daemon runs in its own process tree with its own socket, logs and
data under the test's tmp folder; ``stop_daemon`` SIGTERMs it (then
SIGKILLs) and waits until the daemon, its kernel and its agents are gone.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SIM = str(ROOT / "simulator.py")


def env_for(tmp: Path, **extra) -> dict:
    """The environment of the programs a test runs; ``extra`` overrides (AIOS_AGENT_PATH included)."""
    return {**os.environ, "AIOS_AGENT_PATH": str(ROOT / "tests" / "agents"), "XDG_STATE_HOME": str(tmp / "state"),
            "XDG_RUNTIME_DIR": str(tmp / "run"), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", **extra}


class Daemon:
    def __init__(self, tmp: Path, sock: Path, start: subprocess.CompletedProcess):
        self.tmp, self.sock, self.start = tmp, sock, start
        self.pidfile = sock.with_suffix(".pid")
        self.keyfile = sock.with_suffix(".key")
        self.pid = int(self.pidfile.read_text())
        self.proc = psutil.Process(self.pid)
        self.kernel_pid = int(re.search(r"kernel pid (\d+)", start.stdout).group(1))
        self.log_dir = tmp / "logs"

    def tree(self) -> list[psutil.Process]:
        """The daemon, its kernel and the agents, as now."""
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def client(self, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        """``simulator.py --connect --socket SOCK ARGS`` to completion."""
        return subprocess.run([sys.executable, SIM, "--connect", "--socket", str(self.sock), *args],
                              cwd=str(self.tmp), env=env_for(self.tmp), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, **kw)

    def key(self) -> str:
        """This run's key, read as a legitimate client (the user) reads it."""
        return self.keyfile.read_text().strip()

    def connect(self, interactive: bool = False) -> socket.socket:
        """A raw connection that has said hello with the key (what every real client does first)."""
        s = raw_connect(self.sock)
        send_obj(s, {"op": "hello", "id": HELLO_ID, "key": self.key(), "interactive": interactive})
        msg = reply_to(s, HELLO_ID)
        assert msg["ok"] is True and msg["result"]["daemon_pid"] == self.pid, msg
        return s

    def daemon_log(self) -> str:
        return "".join(p.read_text() for p in sorted(self.log_dir.glob("daemon-*.log")))


def start_daemon(tmp: Path, *extra: str, sock: Path | None = None, env: dict | None = None) -> Daemon:
    """``env``: variables for the daemon (and so its kernel and agents) over env_for's."""
    sock = sock or tmp / "run" / "aios" / "aios.sock"
    r = subprocess.run([sys.executable, SIM, "--daemon", "--socket", str(sock), "--log_dir", str(tmp / "logs"),
                        "--data_dir", str(tmp / "data"), "--max_new_tokens", "4", *extra],
                       cwd=str(tmp), env=env_for(tmp, **(env or {})), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return Daemon(tmp, sock, r)


def stop_daemon(d: Daemon) -> None:
    procs = d.tree()
    for p in procs[:1]:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=30)
    for p in alive:
        p.kill()
    psutil.wait_procs(alive, timeout=10)


# -- a raw client: frames by hand ------------------------------------------------------
HELLO_ID = 1_000_000  # the id Daemon.connect gives its hello (tests number their own requests from 1)


def raw_connect(sock: Path, timeout: float = 20) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(sock))
    return s


def send_raw(s: socket.socket, payload: bytes) -> None:
    s.sendall(struct.pack(">I", len(payload)) + payload)


def send_obj(s: socket.socket, obj) -> None:
    send_raw(s, json.dumps(obj).encode())


def recv_obj(s: socket.socket) -> dict | None:
    """The next frame, or None at EOF."""
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">I", head)
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def recv_until(s: socket.socket, pred) -> dict:
    """Frames until one satisfies ``pred`` (events in between are skipped)."""
    while True:
        msg = recv_obj(s)
        assert msg is not None, "the daemon closed the connection"
        if pred(msg):
            return msg


def reply_to(s: socket.socket, req_id: int) -> dict:
    return recv_until(s, lambda m: m.get("reply") == req_id)


# -- another user (tests run as root here; most users are not) --------------------------
def other_user(name: str = "aiosdaemontest") -> pwd.struct_passwd:
    """An ordinary user, created once with useradd (root only)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True)
        return pwd.getpwnam(name)


def as_user(user: pwd.struct_passwd):
    """preexec_fn that drops to ``user`` (no supplementary groups)."""
    def drop():
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    return drop


def python_for_others() -> str:
    """An interpreter another user can run (ours may sit under a 0700 home); stdlib-only scripts."""
    for cand in (sys.executable, shutil.which("python3") or "", "/usr/bin/python3"):
        path = Path(os.path.realpath(cand)) if cand else None
        if path and path.is_file() and all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents]):
            return str(path)
    raise AssertionError("no Python interpreter that another user may execute")
