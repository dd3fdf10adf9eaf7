"""Hostile clients of the daemon's socket (black box: raw frames over a real socket).

Each attack is written as the attacker would; after each one the daemon must
still answer a well-behaved client, and the kernel must still run. The
frame attacks here come from a client that has presented the daemon's key
(the worst case: a buggy or hostile tool of the user's own); clients without
the key are in test_daemon_key.py. Proves:
garbage, truncated, oversized, non-object, deeply nested and badly typed
frames get an error (or a closed connection) and nothing else; a client
cannot reach the kernel's own ``stop`` or pass arguments the shell never
sends; a client that floods requests and never reads is dropped without
slowing others; a client of another uid is refused (SO_PEERCRED) even when
the socket's modes are loosened, and cannot open the socket at all with the
daemon's own modes; a socket folder another user could read is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from daemon_helpers import (SIM, as_user, env_for, other_user, python_for_others, raw_connect, recv_obj,
                            recv_until, reply_to, send_obj, send_raw, start_daemon, stop_daemon)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    base = Path(tempfile.mkdtemp(prefix="aios-sec-"))  # 0700, outside pytest's 0700 tree (see the uid test)
    d = start_daemon(tmp_path_factory.mktemp("daemon"), sock=base / "run" / "aios.sock")
    d.base = base
    yield d
    stop_daemon(d)
    shutil.rmtree(base, ignore_errors=True)


def still_serves(d) -> None:
    s = d.connect()
    send_obj(s, {"op": "ps", "id": 1, "all": True})
    msg = reply_to(s, 1)
    s.close()
    assert msg["ok"] is True and isinstance(msg["result"], list)
    assert d.proc.is_running() and len(d.tree()) >= 2  # the daemon and its kernel


def error_event(s) -> dict:
    return recv_until(s, lambda m: m.get("event") == "error")


def test_malformed_frames_get_an_error_and_the_connection_goes_on(daemon):
    s = daemon.connect()
    for payload in (b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'"a string"', b"",
                    b"[" * 100_000 + b"]" * 100_000):
        send_raw(s, payload)
        ev = error_event(s)
        assert ev["code"] == "EPROTO" and ev["error"].startswith("bad frame"), (payload[:20], ev)
    for obj, why in (({"op": "ps"}, "integer id"), ({"op": "ps", "id": "7"}, "integer id"),
                     ({"op": "ps", "id": True}, "integer id"), ({"op": "ps", "id": -3}, "integer id")):
        send_obj(s, obj)
        assert why in error_event(s)["error"]
    cases = [({"op": "stop"}, "ENOSYS"),  # the kernel's own stop is not a client op
             ({"op": None}, "EINVAL"), ({"op": "x" * 5000}, "ENOSYS"),
             ({"op": "kill", "pid": "1; rm -rf /"}, "EINVAL"), ({"op": "kill", "pid": 10 ** 40}, "EINVAL"),
             ({"op": "spawn", "agent": "EchoAgent", "task": "x", "priority": 1.5}, "EINVAL"),
             ({"op": "spawn", "agent": "EchoAgent", "task": "x", "timeout": 0}, "EINVAL"),
             ({"op": "ps", "all": "yes"}, "EINVAL"), ({"op": "confirm", "cid": 1, "allow": 1}, "EINVAL"),
             ({"op": "kill", "pid": 424242}, "ESRCH")]
    for i, (obj, code) in enumerate(cases, 100):
        send_obj(s, {**obj, "id": i})
        msg = reply_to(s, i)
        assert msg["ok"] is False and msg["code"] == code, (obj, msg)
    send_obj(s, {"op": "hello", "id": 999})  # the same connection still works (the key was checked once)
    assert reply_to(s, 999)["result"]["daemon_pid"] == daemon.pid
    s.close()
    still_serves(daemon)


def test_oversized_truncated_and_silent_clients_are_dropped(daemon):
    s = daemon.connect()
    s.sendall(struct.pack(">I", 2 ** 31) + b"{")  # claims 2 GiB
    ev = error_event(s)
    assert "over the" in ev["error"]
    try:  # told, then closed (a reset: the daemon did not read what we sent after the header)
        assert recv_obj(s) is None
    except ConnectionResetError:
        pass
    s.close()
    s = raw_connect(daemon.sock)
    s.sendall(struct.pack(">I", 1000) + b'{"op": "ps", ')  # half a frame, then gone
    s.close()
    idle = [raw_connect(daemon.sock) for _ in range(10)]  # connect and say nothing
    still_serves(daemon)
    for c in idle:
        c.close()
    still_serves(daemon)


def test_a_client_that_floods_and_never_reads_is_dropped(daemon):
    s = daemon.connect()
    s.settimeout(60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent, dropped = 0, False
    try:
        for i in range(1, 200_000):
            send_obj(s, {"op": "stats", "id": i})
            sent += 1
    except (BrokenPipeError, ConnectionResetError):
        dropped = True
    except socket.timeout:
        dropped = False  # our own send buffer filled: the daemon stopped reading us
    assert sent > 1000
    still_serves(daemon)  # meanwhile others are served
    s.close()
    log = daemon.daemon_log()
    assert dropped or "unread: dropping it" in log or "requests already unanswered" in log
    still_serves(daemon)


ATTACKER = """
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect": e.errno})); sys.exit(0)
body = json.dumps({"op": "spawn", "id": 1, "agent": "EchoAgent", "task": "pwned"}).encode()
try:
    s.sendall(struct.pack(">I", len(body)) + body)
except OSError:
    pass  # refused already: read why
try:
    head = s.recv(4)
    n = struct.unpack(">I", head)[0]
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    print(json.dumps({"frame": json.loads(data)}))
except OSError as e:
    print(json.dumps({"io": str(e)}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a second user (useradd) and switch to it")
def test_a_client_of_another_uid_is_refused(daemon):
    user = other_user()

    def attack() -> dict:
        r = subprocess.run([python_for_others(), "-I", "-c", ATTACKER, str(daemon.sock)], preexec_fn=as_user(user),
                           capture_output=True, text=True, timeout=60, cwd="/")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert attack() == {"connect": 13}  # EACCES: the 0700 folder keeps other users out
    try:  # the owner loosened every mode by mistake: the uid check still refuses
        os.chmod(daemon.base, 0o755)
        os.chmod(daemon.sock.parent, 0o777)
        os.chmod(daemon.sock, 0o666)
        got = attack()
    finally:
        os.chmod(daemon.base, 0o700)
        os.chmod(daemon.sock.parent, 0o700)
        os.chmod(daemon.sock, 0o600)
    frame = got.get("frame")
    assert frame and frame["event"] == "refused" and frame["code"] == "EACCES", got
    assert "refused pid" in daemon.daemon_log() and f"of uid {user.pw_uid}" in daemon.daemon_log()
    r = daemon.client("-c", "ps -a")
    assert "pwned" not in r.stdout  # nothing it sent reached the kernel
    still_serves(daemon)


def test_a_socket_folder_others_can_enter_is_refused(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    r = subprocess.run([sys.executable, SIM, "--daemon", "--socket", str(loose / "aios.sock"),
                        "--log_dir", str(tmp_path / "logs")], cwd=str(tmp_path), env=env_for(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert f"{loose} is mode 0755; the socket needs a private folder" in r.stderr
    assert not (loose / "aios.sock").exists()
    link = tmp_path / "link"
    os.symlink(tmp_path, link)
    r = subprocess.run([sys.executable, SIM, "--daemon", "--socket", str(link / "aios.sock"),
                        "--log_dir", str(tmp_path / "logs")], cwd=str(tmp_path), env=env_for(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "symlink" in r.stderr, r.stderr
