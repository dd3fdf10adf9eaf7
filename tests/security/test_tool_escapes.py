"""The kernel-side tools' escapes of issue 10 item 3, tried as the attacker did: a workspace swapped
for a symlink to /, a setuid file left behind, background processes, files over the cap."""

from __future__ import annotations

import os
import stat

import pytest

from tools import shell
from tools.base import ToolError
from tools.files import ListFiles, ReadFile


class Ctx:
    def __init__(self, workspace):
        self.workspace = str(workspace)
        self.workspace_max_bytes = 10 << 20


def test_shell_refuses_a_workspace_that_is_a_link_to_root(tmp_path):
    (tmp_path / "ws").symlink_to("/")
    with pytest.raises(ToolError, match="symbolic link"):
        shell.run_sandboxed("touch /workspace/pwned; ls /workspace", str(tmp_path / "ws"), 5.0)
    assert not os.path.exists("/pwned")


def test_file_tools_refuse_a_workspace_that_is_a_link(tmp_path):
    (tmp_path / "ws").symlink_to("/etc")
    for tool, args in ((ReadFile(), {"path": "passwd"}), (ListFiles(), {})):
        with pytest.raises(ToolError, match="symbolic link"):
            tool.run(args, Ctx(tmp_path / "ws"))


def test_no_setuid_file_is_left_on_the_host(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    out = shell.run_sandboxed("cp /bin/sh ./sh && chmod 6755 ./sh && ls -l sh", str(ws), 5.0)
    assert out["exit_code"] == 0, out
    mode = os.stat(ws / "sh").st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and out["setid_cleared"] == 1


def test_background_processes_are_limited_and_die_with_the_command(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    out = shell.run_sandboxed("n=0; for i in $(seq 20); do sleep 30 & n=$((n+1)); done; echo started $n; "
                              "ls /proc | grep -c '^[0-9]'", str(ws), 5.0)
    if os.geteuid() != 0:  # RLIMIT_NPROC; uid 0 is exempt (docs/security.md)
        assert "Resource temporarily unavailable" in out["output"] or "fork" in out["output"], out
    assert not out["timed_out"]  # the sleepers held the output pipe: had they lived, the read would time out


def test_one_file_cannot_outgrow_the_room_left(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    out = shell.run_sandboxed("head -c 20000000 /dev/zero > big; ls -l big", str(ws), 5.0, fsize=10 << 20)
    assert os.path.getsize(ws / "big") <= 10 << 20, out
