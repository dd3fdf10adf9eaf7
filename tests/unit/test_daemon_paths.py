"""The daemon's socket location and privacy checks, and its wire format (no daemon needed).

Proves: the default socket follows $XDG_RUNTIME_DIR, else /tmp/aios-<uid>;
a private folder is created 0700, an existing one must be ours, a real folder
and closed to others; the pid file lock admits one holder, survives a stale
file and names the live pid; frames round-trip and bad ones raise.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from aios_shell.daemon import frames, paths
from aios_shell.daemon import param as daemon_param


def test_default_socket_follows_xdg_runtime_dir(monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1234")
    assert paths.default_socket() == "/run/user/1234/aios/aios.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert paths.default_socket() == f"/tmp/aios-{os.geteuid()}/aios.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/dir")  # not absolute: ignored, as the XDG spec says
    assert paths.default_socket().startswith("/tmp/aios-")
    assert paths.pidfile_for("/x/aios.sock") == "/x/aios.pid" and paths.pidfile_for("/x/s") == "/x/s.pid"


def test_private_folder_checks(tmp_path):
    new = tmp_path / "a" / "b"
    paths.ensure_private_dir(str(new))
    assert (os.stat(new).st_mode & 0o777) == 0o700
    paths.ensure_private_dir(str(new))  # ours and private: fine
    os.chmod(new, 0o750)
    with pytest.raises(paths.PathError, match="is mode 0750"):
        paths.ensure_private_dir(str(new))
    os.chmod(new, 0o700)
    (tmp_path / "file").write_text("")
    with pytest.raises(paths.PathError, match="not a folder"):
        paths.ensure_private_dir(str(tmp_path / "file"))
    os.symlink(new, tmp_path / "link")
    with pytest.raises(paths.PathError, match="symlink"):
        paths.ensure_private_dir(str(tmp_path / "link"))
    if os.geteuid() == 0:  # a folder someone else made for us (the /tmp squatting attack)
        os.chown(new, 65534, 65534)
        with pytest.raises(paths.PathError, match="belongs to uid 65534"):
            paths.ensure_private_dir(str(new))
    with pytest.raises(paths.PathError, match="longer than 107 bytes"):
        paths.check_socket_path("/tmp/" + "x" * 120)


def test_pid_file_lock_admits_one_daemon(tmp_path):
    path = str(tmp_path / "aios.pid")
    with open(path, "w") as f:
        f.write("999999\n")  # stale: nobody holds the lock
    first = paths.PidFile(path)
    first.acquire()
    assert paths.read_pid(path) == os.getpid()
    other = subprocess.run([sys.executable, "-c", "import sys; from aios_shell.daemon import paths\n"
                            "try:\n    paths.PidFile(sys.argv[1]).acquire()\nexcept paths.PathError as e:\n"
                            "    print(e)", path], capture_output=True, text=True, timeout=60,
                           cwd=os.path.dirname(paths.__file__) + "/../..")
    assert other.stdout.strip() == f"a daemon (pid {os.getpid()}) already serves this socket", other.stderr
    first.release()
    assert not os.path.exists(path)
    again = paths.PidFile(path)
    again.acquire()
    again.release()


def test_frames_round_trip_and_reject_bad_input():
    a, b = socket.socketpair()
    try:
        a.sendall(frames.encode({"op": "ps", "id": 1, "text": "naïve ✓"}))
        assert frames.read_frame(b, daemon_param.MAX_CLIENT_FRAME) == {"op": "ps", "id": 1, "text": "naïve ✓"}
        a.sendall(frames.HEADER.pack(3) + b"[1]")
        with pytest.raises(frames.FrameError, match="JSON object"):
            frames.read_frame(b, 100)
        a.sendall(frames.HEADER.pack(101))
        with pytest.raises(frames.FrameTooLarge):
            frames.read_frame(b, 100)
        a.sendall(frames.HEADER.pack(10) + b"{}")
        a.close()
        with pytest.raises(EOFError):
            frames.read_frame(b, 100)
    finally:
        a.close()
        b.close()


USER_SCRIPT = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from aios_shell.daemon import paths
os.environ.pop("XDG_RUNTIME_DIR", None)
sock = paths.default_socket()
try:
    paths.ensure_private_dir(os.path.dirname(sock))
    pid = paths.PidFile(paths.pidfile_for(sock))
    pid.acquire()
    st = os.stat(os.path.dirname(sock))
    print(json.dumps({"sock": sock, "mode": st.st_mode & 0o777, "uid": st.st_uid,
                      "pidfile_mode": os.stat(pid.path).st_mode & 0o777}))
    pid.release()
except paths.PathError as e:
    print(json.dumps({"error": str(e)}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a second user (useradd) and switch to it")
def test_an_ordinary_user_gets_a_private_fallback_folder_and_refuses_a_squatted_one():
    import json
    import shutil

    from daemon_helpers import ROOT, as_user, other_user, python_for_others

    user = other_user()
    folder = f"/tmp/aios-{user.pw_uid}"
    shutil.rmtree(folder, ignore_errors=True)

    def run() -> dict:
        r = subprocess.run([python_for_others(), "-I", "-c", USER_SCRIPT, str(ROOT)], preexec_fn=as_user(user),
                           capture_output=True, text=True, timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    try:
        got = run()
        assert got == {"sock": f"{folder}/aios.sock", "mode": 0o700, "uid": user.pw_uid, "pidfile_mode": 0o600}
        shutil.rmtree(folder)
        os.mkdir(folder, 0o777)  # someone else (root here) made the folder first: /tmp squatting
        assert run() == {"error": f"{folder} belongs to uid 0, not to you (uid {user.pw_uid}): refusing to put "
                                  "the socket there"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
