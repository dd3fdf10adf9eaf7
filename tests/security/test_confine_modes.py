"""The attacks of issue 24, in every confinement mode this machine can provide: bubblewrap (``target``,
``--confine strict``) and the Landlock-only fallback of Ubuntu 24.04+ (``fallback``, ``--confine landlock``).

Each hostile agent tries what a reviewer did in the fallback: the user's unix sockets (tmux, the AIOS
daemon), the host's socket list, its endpoint's port on another address, UDP and raw sockets, root's
powers, a setuid file left in its workspace, and (as a command) its runtime's channel to the kernel.
Every attempt must fail with a clear error; what it aimed at is checked from outside."""

from __future__ import annotations

import glob
import json
import os
import socket
import stat
import time

import pytest
from conftest import start_kernel
from secure_kernel import MARK_BYTES, failed_clearly, fallback, target  # noqa: F401 (fixtures)


@pytest.fixture(params=["target", "fallback"])
def kern(request):
    return request.getfixturevalue(request.param)


def _listeners(tmp_path):
    """A unix socket (standing for tmux's or the daemon's), a TCP and a UDP port on 127.0.0.1: the test's
    own, so it can tell whether anything reached them."""
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = str(tmp_path / "tmux-0.sock")
    unix.bind(path)
    unix.listen()
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    for s in (unix, tcp, udp):
        s.setblocking(False)
    return path, (unix, tcp, udp)


def _nothing_arrived(socks) -> None:
    unix, tcp, udp = socks
    for s in (unix, tcp):
        with pytest.raises(BlockingIOError):
            s.accept()
    with pytest.raises(BlockingIOError):
        udp.recv(64)


def test_sockets_the_host_and_other_addresses_are_out_of_reach(kern, tmp_path):
    os.chmod(tmp_path, 0o755)  # the agent may name the folder; only the layers stop it
    path, socks = _listeners(tmp_path)
    try:
        tried = kern.attack("SocketThiefAgent", unix_path=path, tcp_port=socks[1].getsockname()[1],
                            udp_port=socks[2].getsockname()[1])
        failed_clearly(tried, allow=("my own endpoint still answers",))
        by = {t["what"]: t for t in tried}
        assert by["my own endpoint still answers"]["got"] == "connected"  # the layers leave its one way open
        assert "Operation not permitted" in by["connect to the user's unix socket"]["error"]  # seccomp: no AF_UNIX
        if kern.layers[0] != "namespaces":  # no network namespace: the kernel's connect() check answers
            assert "Permission denied" in by["tcp to 127.0.0.2 on my endpoint's port"]["error"]
            assert "Permission denied" in by["tcp to ::ffff:127.0.0.2 on my endpoint's port"]["error"]
        _nothing_arrived(socks)
    finally:
        for s in socks:
            s.close()


def test_no_power_of_root_and_no_setuid_file(kern):
    tried = kern.attack("PrivilegeKeeperAgent")
    failed_clearly(tried, allow=("my credentials",))
    creds = tried[0]["got"]
    assert int(creds["CapEff"], 16) == 0 and int(creds["CapPrm"], 16) == 0, creds
    assert creds["NoNewPrivs"] == "1" and creds["Seccomp"] == "2", creds
    if creds["Uid"].split()[0] == "0":  # a root kernel that could not move the agent to uid 65534
        assert int(creds["CapBnd"], 16) == 0, creds  # exec gives no capability back
    ws = os.path.join(kern.data_dir, "workspaces", "PrivilegeKeeperAgent")
    for path in glob.glob(os.path.join(ws, "**"), recursive=True):
        mode = os.lstat(path).st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), f"{path} is {stat.filemode(mode)}"


def test_a_command_agent_cannot_take_its_runtimes_channel(kern):
    db = os.path.join(kern.data_dir, "storage.sqlite3")
    snap = kern.client.wait(kern.client.spawn("RuntimeThiefAgent", "go"), timeout=60)
    assert snap["state"] == "done", snap
    tried = json.loads(snap["result"])
    failed_clearly(tried)
    assert {t["what"] for t in tried} >= {"reopen the runtime's fds", "read the runtime's memory",
                                          "ptrace the runtime"}
    for path in (db, db + "-wal"):
        if os.path.exists(path):
            assert MARK_BYTES not in open(path, "rb").read()


def test_agent_log_files_work_without_namespaces(tmp_path):
    """Item 6: with --agent-log-mode file every agent failed at start in the fallback (Landlock refused the
    log folder the runtime thought it could open)."""
    client, _ = start_kernel(tmp_path, confine="landlock", agent_log_mode="file")
    try:
        snap = client.wait(client.spawn("EchoAgent", "logged in the fallback"), timeout=60)
        assert snap["state"] == "done", snap
        deadline = time.time() + 10
        text = ""
        while time.time() < deadline and "end: status=done" not in text:
            text = "".join(open(f, errors="replace").read() for f in glob.glob(
                str(tmp_path / "logs" / "agents" / "EchoAgent" / "*")) if os.path.isfile(f))
            time.sleep(0.1)
        assert "logged in the fallback" in text and "end: status=done" in text, text
    finally:
        client.stop()


def test_confine_landlock_is_what_auto_falls_back_to(fallback):
    texts = " ".join(e.get("text", "") for e in fallback.events.events)
    assert "confinement landlock: landlock, seccomp, rlimits" in texts
