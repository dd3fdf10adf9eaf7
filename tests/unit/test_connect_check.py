"""The kernel's connect() check of the Landlock fallback (kernel/confine/notify.py), with a real seccomp filter
in a real child process: only 127.0.0.1 on the endpoint's port gets through, and the supervisor's thread ends
with the child (it once spun on a dead listener and slowed every later connect() to tens of milliseconds)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading

from conftest import ROOT

from kernel.confine import notify

CHILD = textwrap.dedent("""
    import ctypes, json, os, socket, sys
    from agent_apps.confine import seccomp
    fd, port, other = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS, as inside.apply
    listener = seccomp.install(False, True, True)
    with socket.socket(fileno=fd) as s:
        socket.send_fds(s, [json.dumps({"port": port}).encode()], [listener])
    os.close(listener)
    out = {}
    for name, fam, host, p in (("endpoint", socket.AF_INET, "127.0.0.1", port),
                               ("endpoint v6-mapped", socket.AF_INET6, "::ffff:127.0.0.1", port),
                               ("port elsewhere", socket.AF_INET, "127.0.0.2", port),
                               ("other port", socket.AF_INET, "127.0.0.1", other)):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect((host, p))
            s.sendall(b"ping")
            out[name] = "connected " + s.recv(16).decode()
        except OSError as e:
            out[name] = f"{type(e).__name__}: {e.strerror}"
        finally:
            s.close()
    print(json.dumps(out))
""")


def _server() -> tuple[socket.socket, int]:
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                c.sendall(c.recv(16).replace(b"ping", b"pong"))
    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_only_the_endpoint_on_loopback_gets_through_and_the_thread_ends():
    endpoint, port = _server()
    other, other_port = _server()
    fd, sup = notify.watch("TestAgent")
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, str(fd), str(port), str(other_port)], pass_fds=[fd],
                           capture_output=True, text=True, timeout=60, cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    finally:
        import os
        os.close(fd)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["endpoint"] == "connected pong" and got["endpoint v6-mapped"] == "connected pong", got
    assert got["port elsewhere"] == got["other port"] == "PermissionError: Permission denied", got
    sup.join(10)
    assert not sup.is_alive(), "the supervisor outlived every process of its agent"
    assert (sup.allowed, sup.denied) == (2, 2)
    endpoint.close()
    other.close()


def test_addresses_are_parsed_as_the_kernel_reads_them():
    v4 = socket.inet_aton("127.0.0.1")
    raw4 = (2).to_bytes(2, "little") + (8080).to_bytes(2, "big") + v4 + bytes(8)
    assert notify.parse_sockaddr(raw4) == (socket.AF_INET, "127.0.0.1", 8080)
    assert notify.allowed(notify.parse_sockaddr(raw4), 8080) and not notify.allowed(notify.parse_sockaddr(raw4), 80)
    raw6 = (10).to_bytes(2, "little") + (8080).to_bytes(2, "big") + bytes(4) + socket.inet_pton(
        socket.AF_INET6, "::1") + bytes(4)
    assert notify.allowed(notify.parse_sockaddr(raw6), 8080)
    other = raw4[:4] + socket.inet_aton("127.0.0.2") + bytes(8)
    assert not notify.allowed(notify.parse_sockaddr(other), 8080)
    assert notify.parse_sockaddr(b"\x01\x00/tmp/x.sock") is None and not notify.allowed(None, 8080)
