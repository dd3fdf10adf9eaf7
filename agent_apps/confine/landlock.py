"""Landlock (Linux >= 5.13) through ctypes: the kernel's own unprivileged sandbox LSM.

No Python binding of Landlock is packaged for this project's platforms, and
the ABI is three system calls and two structs, so this module is a thin,
literal transcription of <linux/landlock.h>. ``restrict(ro, rw, ...)``
confines the calling thread and every thread and process it starts later,
for good: files outside ``ro``/``rw`` cannot be opened, TCP bind/connect is
denied (ABI 4+), and signals and abstract unix sockets cannot reach outside
the domain (ABI 6+). A Landlock domain also forbids ptrace of any process
outside it (every ABI).

Runs inside the agent process before agent code (light: stdlib only).
"""

from __future__ import annotations

import ctypes
import os
import platform

_NR = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446), "riscv64": (444, 445, 446)}
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3, 5
FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # rights a rule on a non-directory may hold
READ = EXECUTE | READ_FILE | READ_DIR


RULE_NET_PORT = 2  # ABI 4


class _NetPort(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi() -> int:
    """The running kernel's Landlock ABI version; 0 if Landlock is absent or disabled."""
    nr = _NR.get(platform.machine())
    if nr is None:
        return 0
    libc = _libc()
    v = libc.syscall(nr[0], None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(0, v)


def restrict(ro: list[str], rw: list[str], block_tcp: bool = True, connect_ports: tuple = ()) -> dict:
    """Confine this process; returns what was enforced. Raises OSError if Landlock refuses.

    ro: paths readable/executable (missing ones are skipped); rw: paths fully writable.
    connect_ports: TCP ports the agent may still connect to when TCP is blocked (its own
    OpenAI endpoint, agent_apps/endpoint.py; Landlock matches the port, not the address).
    """
    version = abi()
    if version < 1:
        raise OSError("Landlock is not available on this kernel")
    nr = _NR[platform.machine()]
    libc = _libc()
    fs = FS_BY_ABI.get(version, FS_BY_ABI[5])
    attr = _RulesetAttr(fs, (NET_BIND_TCP | NET_CONNECT_TCP) if version >= 4 and block_tcp else 0,
                        (SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL) if version >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if version >= 6 else 16 if version >= 4 else 8
    rfd = libc.syscall(nr[0], ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if rfd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for paths, rights in ((ro, READ), (rw, fs)):
            for path in paths:
                try:
                    pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue  # not on this machine (e.g. /lib64 on aarch64)
                try:
                    allowed = rights if os.path.isdir(path) else rights & FILE_ONLY
                    rule = _PathBeneath(allowed & fs, pfd)
                    if libc.syscall(nr[1], rfd, RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)):
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule {path} failed")
                finally:
                    os.close(pfd)
        for port in connect_ports if attr.handled_access_net else ():
            rule = _NetPort(NET_CONNECT_TCP, int(port))
            if libc.syscall(nr[1], rfd, RULE_NET_PORT, ctypes.byref(rule), ctypes.c_uint32(0)):
                raise OSError(ctypes.get_errno(), f"landlock_add_rule tcp port {port} failed")
        if libc.prctl(38, 1, 0, 0, 0):  # PR_SET_NO_NEW_PRIVS: required to self-restrict unprivileged
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        if libc.syscall(nr[2], rfd, ctypes.c_uint32(0)):
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(rfd)
    return {"abi": version, "tcp": bool(attr.handled_access_net), "scoped": bool(attr.scoped)}
