"""The daemon's key file (aios_shell/daemon/paths.py: keyfile_for, KeyFile, read_key), without a daemon."""

from __future__ import annotations

import os
import re
import stat

import pytest

from aios_shell.daemon import paths


def test_the_key_file_sits_beside_the_socket():
    assert paths.keyfile_for("/x/aios.sock") == "/x/aios.key" and paths.keyfile_for("/x/s") == "/x/s.key"


def test_a_key_is_fresh_0600_under_any_umask_and_removed(tmp_path):
    path = str(tmp_path / "aios.key")
    old = os.umask(0)  # the daemon's own umask cannot widen it
    try:
        kf = paths.KeyFile(path)
        first = kf.create()
    finally:
        os.umask(old)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert paths.read_key(path) == first
    second = paths.KeyFile(path).create()  # a stale file (a SIGKILLed run) is replaced
    assert second != first and paths.read_key(path) == second
    kf.key = first
    kf.remove()
    kf.remove()  # idempotent
    assert not os.path.exists(path)


def test_a_planted_symlink_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("mine\n")
    path = tmp_path / "aios.key"
    os.symlink(victim, path)
    key = paths.KeyFile(str(path)).create()
    assert victim.read_text() == "mine\n" and not path.is_symlink() and path.read_text().strip() == key


def test_a_client_refuses_a_key_file_that_is_not_the_daemons(tmp_path):
    path = tmp_path / "aios.key"
    with pytest.raises(FileNotFoundError):
        paths.read_key(str(path))
    target = tmp_path / "elsewhere"
    target.write_text("k" * 64)
    os.chmod(target, 0o600)
    os.symlink(target, path)
    with pytest.raises(OSError):  # ELOOP: O_NOFOLLOW
        paths.read_key(str(path))
    os.unlink(path)
    path.write_text("k" * 64)
    os.chmod(path, 0o644)
    with pytest.raises(paths.PathError, match="mode 0644"):
        paths.read_key(str(path))
    os.chmod(path, 0o600)
    assert paths.read_key(str(path)) == "k" * 64
    path.write_text("\n")
    with pytest.raises(paths.PathError, match="empty"):
        paths.read_key(str(path))
    os.unlink(path)
    os.mkfifo(path, 0o600)  # a FIFO would block a plain open
    with pytest.raises(paths.PathError, match="not a regular file"):
        paths.read_key(str(path))
