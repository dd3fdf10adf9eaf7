"""The shell tool's sandbox cannot be escaped: files, network, processes, privileges, time, output.

Runs tools.shell.run_sandboxed directly (the kernel path, with confirmation,
is in test_access.py). The bwrap sandbox is required: ./install.sh installs
bubblewrap; without it these tests fail rather than pretend.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import psutil
import pytest

from conftest import ROOT
from kernel.param import TMP_BYTES
from tools import shell


@pytest.fixture
def box(tmp_path):
    """Two agent workspaces side by side; the sandbox runs in T's."""
    ws = tmp_path / "workspaces" / "T"
    ws.mkdir(parents=True)
    other = tmp_path / "workspaces" / "Other"
    other.mkdir()
    (other / "secret.txt").write_text("other agent's secret")
    return ws


def sh(cmd, ws, seconds=5.0, **kw):
    return shell.run_sandboxed(cmd, str(ws), seconds, **kw)


def test_bubblewrap_is_the_sandbox():
    assert shell.backend() == "bwrap", "bubblewrap is missing or unusable: run ./install.sh (apt-get install bubblewrap)"


def test_host_files_are_invisible(box, tmp_path):
    secret = tmp_path / "workspaces" / "Other" / "secret.txt"
    probes = ["cat /etc/passwd", "cat /etc/shadow", f"cat {secret}", "cat ../Other/secret.txt",
              "cat /workspace/../Other/secret.txt", f"ls {ROOT}/kernel", f"ls {tmp_path}", "ls /root /home"]
    out = sh("; ".join(f"{p} 2>&1" for p in probes) + "; ls /", box)
    assert out["exit_code"] == 0 and out["sandbox"] == "bwrap"
    assert "other agent's secret" not in out["output"] and "root:" not in out["output"]
    assert "kernel.py" not in out["output"]
    assert set(out["output"].split()[-10:]) >= {"usr", "workspace", "tmp", "proc"}
    assert "No such file" in out["output"]


def test_writes_land_only_in_the_workspace(box):
    marker = f"aios-escape-{uuid.uuid4().hex}"
    out = sh(f"echo in > inside.txt; echo x > /tmp/{marker}; touch /usr/{marker} 2>&1; "
             f"mkdir -p /etc 2>&1; echo x > /{marker} 2>&1; ln -s /etc/passwd link; cat link 2>&1; true", box)
    assert (box / "inside.txt").read_text() == "in\n"
    assert not os.path.exists(f"/tmp/{marker}") and not os.path.exists(f"/usr/{marker}")
    assert not os.path.exists(f"/{marker}")
    assert "Read-only file system" in out["output"] or "Permission denied" in out["output"]
    assert "root:" not in out["output"]  # the link resolves inside the sandbox, to nothing


def test_no_network_even_to_localhost(box):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(3)
    port = srv.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(_accept(srv)), daemon=True).start()
    code = (f"import socket\ntry:\n socket.create_connection(('127.0.0.1', {port}), timeout=2); print('CONNECTED')\n"
            f"except OSError as e: print('refused', e)\ntry:\n socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
            "except OSError as e: print('no route', e)")
    out = sh(f"python3 -c \"{code}\"", box)
    assert "CONNECTED" not in out["output"] and "refused" in out["output"] and "no route" in out["output"]
    time.sleep(0.2)
    srv.close()
    assert accepted in ([], [None])


def _accept(srv):
    try:
        return srv.accept()
    except OSError:
        return None


def test_unprivileged_and_no_host_processes(box):
    out = sh(f"id -u; grep CapEff /proc/self/status; kill -0 {os.getpid()} 2>&1; echo kill=$?; ls /proc | grep -c '^[0-9]'",
             box)
    lines = out["output"].split("\n")
    assert lines[0] == "65534"
    assert lines[1].split()[1] == "0000000000000000"
    assert "kill=1" in out["output"] or "kill=2" in out["output"]  # the kernel's pid does not exist in here
    assert int(lines[-2]) < 10  # only the sandbox's own processes


def test_no_nested_namespaces_and_the_command_is_pid_1(box):
    """The agent sandbox's bubblewrap (one builder): no user namespace inside, the command is pid 1."""
    out = sh("unshare --user --map-root-user id -u 2>&1; echo unshare=$?; "
             "python3 -c 'import os; os.unshare(os.CLONE_NEWUSER)' 2>&1 | tail -1; echo pid=$$", box)
    assert out["sandbox"] == "bwrap"
    assert "unshare=0" not in out["output"] and "unshare=" in out["output"]
    assert "Error" in out["output"]  # os.unshare refused (PermissionError / OSError)
    assert "pid=1" in out["output"]


def test_tmp_is_capped_across_files(box):
    """/tmp is a tmpfs in host memory: many files under the per-file limit still stop at its size."""
    mib = TMP_BYTES >> 20
    out = sh(f"for i in $(seq 1 {mib // 16 + 4}); do head -c 16M /dev/zero > /tmp/f$i || break; done 2>&1; "
             "du -sm /tmp | cut -f1", box, seconds=20.0)
    assert "No space left on device" in out["output"], out["output"][-300:]
    assert int(out["output"].split()[-1]) <= mib


def test_timeout_kills_the_whole_tree(box):
    tag = str(3000 + os.getpid() % 1000)
    t0 = time.monotonic()
    out = sh(f"sleep {tag} & sleep {tag} & sleep 30", box, seconds=1.0)
    assert out["timed_out"] and out["exit_code"] is None and time.monotonic() - t0 < 4
    deadline = time.monotonic() + 5  # the namespace's teardown is asynchronous: wait for it, not a fixed time
    while (left := [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", tag]]) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, "background processes survived the sandbox"


def test_output_and_memory_are_capped(box):
    t0 = time.monotonic()
    out = sh("yes", box)
    assert out["truncated"] and len(out["output"]) == shell.MAX_OUTPUT and time.monotonic() - t0 < 4
    out = sh("python3 -c 'x = bytearray(2 << 30)' 2>&1 | tail -1", box)
    assert "MemoryError" in out["output"]


def test_unshare_fallback_still_has_no_network_and_a_deadline(box):
    if shell.backend() is None:
        pytest.fail("neither bwrap nor unshare works here")
    out = sh("python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)\" 2>&1 | tail -1; "
             "sleep 30", box, seconds=1.0, sandbox="unshare")
    assert out["sandbox"] == "unshare" and out["timed_out"]
    assert "unreachable" in out["output"] or "OSError" in out["output"]
