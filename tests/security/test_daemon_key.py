"""Clients of the user's own uid without the daemon's key (black box: raw frames over a real socket).

The attacker: one of the user's agents, confined but with the user's uid, in a
mode where Landlock does not mediate connect() to a pathname unix socket. It
can reach the socket (the uid check passes) but cannot read ``aios.key``. Each
attack is written as that agent would; after each one the daemon must still
serve the user's client, with its state unchanged. Proves: without a hello
carrying the key, no op is reached (setgroup, confirm, spawn, kill, shutdown,
ps, access, a second hello) whether sent first, after a wrong hello, or
pipelined behind one; each attempt gets exactly one ``refused`` frame (EACCES,
naming the key file) and the connection is closed; no event reaches an
unproven connection; a silent connection is closed after the hello timeout;
the refusal is logged with the peer's pid. The key file is 0600 in the 0700
folder, changes with every daemon run (an old key opens nothing), is not
written through a planted symlink, and is removed at shutdown; a client whose
key file is missing or open to others stops with one clear line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import struct
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from daemon_helpers import raw_connect, recv_obj, recv_until, reply_to, send_obj, start_daemon, stop_daemon
from aios_shell.daemon.param import HELLO_TIMEOUT_S as DAEMON_HELLO_TIMEOUT_S

REFUSAL = "permission denied: this client did not present the daemon's key ({})"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    base = Path(tempfile.mkdtemp(prefix="aios-key-"))
    d = start_daemon(tmp_path_factory.mktemp("daemon"), sock=base / "run" / "aios.sock")
    yield d
    stop_daemon(d)
    shutil.rmtree(base, ignore_errors=True)


def refused_then_closed(s, d) -> dict:
    """The one frame an unproven client gets: ``refused``; then EOF. Nothing else, ever (no reply)."""
    msg = recv_obj(s)
    assert msg == {"event": "refused", "code": "EACCES", "error": REFUSAL.format(d.keyfile)}, msg
    try:
        assert recv_obj(s) is None  # closed: nothing sent after the refusal was read
    except ConnectionResetError:
        pass  # closed with our pipelined frames unread: a reset
    s.close()
    return msg


def pipeline(s, *objs, raw: bytes = b"") -> None:
    """Send ``raw`` then every frame in one write, without waiting for an answer; the daemon may
    already have refused and closed (a broken pipe is then the attacker's answer too)."""
    data = raw + b"".join(struct.pack(">I", len(b)) + b for b in (json.dumps(o).encode() for o in objs))
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def wrong_key(d) -> str:
    key = d.key()
    return ("0" if key[0] != "0" else "1") + key[1:]  # same length, one character off


def access(d) -> dict:
    s = d.connect()
    send_obj(s, {"op": "access", "id": 1})
    msg = reply_to(s, 1)
    s.close()
    assert msg["ok"] is True, msg
    return msg["result"]


def ps(d) -> list[dict]:
    s = d.connect()
    send_obj(s, {"op": "ps", "id": 1, "all": True})
    msg = reply_to(s, 1)
    s.close()
    assert msg["ok"] is True, msg
    return msg["result"]


def spawn(d, agent: str, task: str) -> int:
    s = d.connect()
    send_obj(s, {"op": "spawn", "id": 1, "agent": agent, "task": task})
    msg = reply_to(s, 1)
    s.close()
    assert msg["ok"] is True, msg
    return msg["result"]


ATTACKS = {  # what a hostile agent would send first, with the user's uid and without the key
    "setgroup": {"op": "setgroup", "agent": "EchoAgent", "group": "pwned"},
    "spawn": {"op": "spawn", "agent": "EchoAgent", "task": "pwned"},
    "shutdown": {"op": "shutdown"},
    "ps": {"op": "ps", "all": True},
    "access": {"op": "access"},
    "stop": {"op": "stop"},
}


def hellos(d) -> dict:
    """Hellos an attacker could forge without reading the key file."""
    key = d.key()
    return {"no key": {"op": "hello", "interactive": True},
            "wrong key": {"op": "hello", "key": wrong_key(d)},
            "empty key": {"op": "hello", "key": ""},
            "key prefix": {"op": "hello", "key": key[:32]},
            "key with a suffix": {"op": "hello", "key": key + "0"},
            "key as a number": {"op": "hello", "key": 0},
            "key as a list": {"op": "hello", "key": [key[:1]]},
            "key as null": {"op": "hello", "key": None},
            "non-ASCII key": {"op": "hello", "key": "é" * 64},
            "a token in other fields": {"op": "hello", "token": "x", "secret": "x", "auth": "x"}}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_op_without_hello_is_refused_and_the_connection_closed(daemon, name):
    before = access(daemon)["groups"]
    s = raw_connect(daemon.sock)
    send_obj(s, {**ATTACKS[name], "id": 1})
    refused_then_closed(s, daemon)
    assert access(daemon)["groups"] == before
    assert daemon.proc.is_running() and daemon.sock.exists()  # shutdown did not happen
    assert not any(p["task"] == "pwned" for p in ps(daemon))


def test_forged_hellos_are_refused_and_nothing_behind_them_runs(daemon):
    before = access(daemon)["groups"]
    for name, hello in hellos(daemon).items():
        s = raw_connect(daemon.sock)
        pipeline(s, {**hello, "id": 1},  # the attacker does not wait for the verdict on its hello
                 {"op": "setgroup", "id": 2, "agent": "EchoAgent", "group": "pwned"},
                 {"op": "spawn", "id": 3, "agent": "EchoAgent", "task": "pwned"},
                 {"op": "shutdown", "id": 4})
        refused_then_closed(s, daemon)
    assert access(daemon)["groups"] == before
    assert daemon.proc.is_running() and daemon.sock.exists()
    assert not any(p["task"] == "pwned" for p in ps(daemon))


def test_garbage_or_a_bad_id_before_hello_is_refused(daemon):
    for payload in (b"{not json", b"\xff\xfe", b"[1]", b"", json.dumps({"op": "hello", "id": "1"}).encode()):
        s = raw_connect(daemon.sock)
        pipeline(s, {"op": "shutdown", "id": 2}, raw=struct.pack(">I", len(payload)) + payload)  # never read
        refused_then_closed(s, daemon)
    s = raw_connect(daemon.sock)
    s.sendall((2 ** 31).to_bytes(4, "big") + b"{")  # a 2 GiB claim before hello
    refused_then_closed(s, daemon)


def test_kill_and_confirm_without_the_key_change_nothing(daemon):
    """A real agent to kill and a real pending question to approve: the attacker gets neither."""
    d = daemon
    sleepy = spawn(d, "SleepyAgent", "600")
    user = d.connect(interactive=True)  # the user's shell: it is asked
    asker = spawn(d, "ToolAgent", json.dumps([{"sys": "access.setgroup", "args": {"group": "keytest"}}]))
    question = recv_until(user, lambda m: m.get("event") == "confirm" and m.get("pid") == asker)
    cid = question["cid"]
    attacks = [[{"op": "kill", "id": 1, "pid": sleepy}],
               [{"op": "confirm", "id": 1, "cid": cid, "allow": True}],
               [{"op": "hello", "id": 1, "key": wrong_key(d), "interactive": True},
                {"op": "confirm", "id": 2, "cid": cid, "allow": True},
                {"op": "kill", "id": 3, "pid": sleepy}]]
    for frames in attacks:
        s = raw_connect(d.sock)
        pipeline(s, *frames)
        refused_then_closed(s, d)  # the unproven connection heard no confirm question either
    state = {p["pid"]: p["state"] for p in ps(d)}
    assert state[sleepy] not in ("killed", "done", "failed"), state
    assert any(p.get("cid") == cid for p in access(d)["pending"]), "the question was answered"
    send_obj(user, {"op": "confirm", "id": 7, "cid": cid, "allow": False})  # the user says no
    assert reply_to(user, 7)["ok"] is True
    user.close()
    s = d.connect()
    send_obj(s, {"op": "kill", "id": 1, "pid": sleepy})  # the user's kill works
    assert reply_to(s, 1)["ok"] is True
    send_obj(s, {"op": "wait", "id": 2, "pid": asker})
    assert reply_to(s, 2)["ok"] is True
    s.close()
    assert "keytest" not in access(d)["groups"].values()


def test_refusals_are_logged_with_the_peer_pid(daemon):
    for first in ({"op": "setgroup", "id": 1, "agent": "EchoAgent", "group": "pwned"},
                  {"op": "hello", "id": 1, "key": wrong_key(daemon)}):
        s = raw_connect(daemon.sock)
        send_obj(s, first)
        refused_then_closed(s, daemon)
    log = daemon.daemon_log()
    assert re.search(rf"WARNING .*refused client \d+ \(pid {os.getpid()}\): its first frame is 'setgroup'", log)
    assert re.search(rf"refused client \d+ \(pid {os.getpid()}\): its hello has a wrong key", log)
    assert daemon.key() not in log  # the key is never written to the log


def test_a_silent_client_is_closed_after_the_hello_timeout(daemon):
    s = raw_connect(daemon.sock, timeout=DAEMON_HELLO_TIMEOUT_S + 20)
    t0 = time.monotonic()
    refused_then_closed(s, daemon)
    assert DAEMON_HELLO_TIMEOUT_S - 1 <= time.monotonic() - t0 <= DAEMON_HELLO_TIMEOUT_S + 10
    assert "no hello within" in daemon.daemon_log()


def test_the_key_file_is_private_and_clients_need_it(daemon):
    d = daemon
    st = os.lstat(d.keyfile)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    assert stat.S_IMODE(os.stat(d.keyfile.parent).st_mode) == 0o700
    assert re.fullmatch(r"[0-9a-f]{64}", d.key())
    assert d.client("-c", "ps").returncode == 0  # the user's shell reads it and is served
    hidden = d.keyfile.with_name("aios.key.hidden")
    os.rename(d.keyfile, hidden)
    try:
        r = d.client("-c", "ps")
        assert r.returncode == 1 and r.stderr == (f"simulator.py: error: cannot read the daemon's key {d.keyfile}: "
                                                  "No such file or directory\n"), r.stderr
    finally:
        os.rename(hidden, d.keyfile)
    os.chmod(d.keyfile, 0o644)
    try:
        r = d.client("-c", "ps")
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert f"cannot read the daemon's key {d.keyfile}: " in r.stderr and "mode 0644" in r.stderr, r.stderr
    finally:
        os.chmod(d.keyfile, 0o600)
    assert d.client("-c", "ps").returncode == 0


def test_the_key_is_new_every_run_never_written_through_a_symlink_and_removed_at_shutdown(tmp_path):
    d1 = start_daemon(tmp_path)
    try:
        old = d1.key()
        tree = d1.tree()
        d1.proc.kill()  # no cleanup: the key file stays behind
        psutil.wait_procs(tree, timeout=30)
        assert d1.keyfile.exists()
    finally:
        stop_daemon(d1)
    victim = tmp_path / "victim"
    victim.write_text("the user's file\n")
    os.unlink(d1.keyfile)
    os.symlink(victim, d1.keyfile)  # planted: the next start must not write the key into the victim
    d2 = start_daemon(tmp_path)
    try:
        assert victim.read_text() == "the user's file\n"
        assert not d2.keyfile.is_symlink() and stat.S_IMODE(os.lstat(d2.keyfile).st_mode) == 0o600
        new = d2.key()
        assert new != old and re.fullmatch(r"[0-9a-f]{64}", new)
        s = raw_connect(d2.sock)
        send_obj(s, {"op": "hello", "id": 1, "key": old})  # a key copied during the last run opens nothing
        refused_then_closed(s, d2)
        r = d2.client("-c", "shutdown")
        assert r.returncode == 0, r.stderr
        _, alive = psutil.wait_procs(d2.tree(), timeout=60)
        assert alive == []
        assert not d2.keyfile.exists() and not d2.sock.exists() and not d2.pidfile.exists()
        assert list(d2.sock.parent.iterdir()) == []
    finally:
        stop_daemon(d2)


def test_a_confined_agent_of_the_user_cannot_act_through_the_daemon(tmp_path):
    """The attack of issue 24, from a real agent: under Landlock alone (no user namespaces, as on
    Ubuntu 24.04+) an agent of the daemon's own kernel reads for the key and sends ops to the socket.
    Whichever layer stops each attempt (Landlock the key file, seccomp the unix socket, the daemon
    a client without the key: the tests above), none may succeed."""
    from daemon_helpers import ROOT
    from secure_kernel import HOSTILE, failed_clearly

    agents = os.pathsep.join([str(ROOT / "tests" / "agents"), str(HOSTILE)])
    d = start_daemon(tmp_path, env={"AIOS_CONFINE_NO_BWRAP": "1", "AIOS_AGENT_PATH": agents})
    try:
        before = access(d)["groups"]
        task = json.dumps({"sock": str(d.sock), "keyfile": str(d.keyfile), "daemon_pid": d.pid})
        s = d.connect()
        send_obj(s, {"op": "spawn", "id": 1, "agent": "DaemonIntruderAgent", "task": task})
        pid = reply_to(s, 1)["result"]
        send_obj(s, {"op": "wait", "id": 2, "pid": pid})
        snap = reply_to(s, 2)["result"]
        s.close()
        assert snap["state"] == "done" and "landlock" in snap["confinement"], snap
        tried = snap["result"]
        assert len(tried) == 9, tried
        failed_clearly(tried)
        assert not any(d.key() in t.get("got", "") + t.get("error", "") for t in tried)
        assert access(d)["groups"] == before
        assert d.proc.is_running() and d.sock.exists()
        assert not any(p["task"] == "pwned" for p in ps(d))
    finally:
        stop_daemon(d)
