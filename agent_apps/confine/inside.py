"""The layers an agent process applies to itself, first thing, before any agent code runs.

Called by agent_apps/runtime.py with the plan the kernel put in the boot
frame (``boot["confine"]``). Order matters: resource limits, capabilities
dropped, PR_SET_NO_NEW_PRIVS, then Landlock (which locks the file list in),
then the seccomp filter (seccomp.py beside this file; in the fallback its
connect() listener goes to the kernel over the one-shot socket the plan
names, with the endpoint's port, before any agent code runs). The
RLIMIT_NPROC count starts here, inside the agent's own user namespace, so it
counts the agent's processes only, not its user's. Stdlib only.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import socket

PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
SECBIT_ALL_LOCKED = 0x2F  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED and their locks: root regains nothing at exec

LIMITS = {  # plan key -> rlimit
    "memory_bytes": resource.RLIMIT_AS,
    "processes": resource.RLIMIT_NPROC,
    "files": resource.RLIMIT_NOFILE,
    "cpu_s": resource.RLIMIT_CPU,
    "file_bytes": resource.RLIMIT_FSIZE,
}


def set_limits(limits: dict) -> list[str]:
    """Lower (never raise above the hard limit) each rlimit; returns the names set."""
    done = []
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash dump would copy agent memory to disk
    for key, which in LIMITS.items():
        value = limits.get(key)
        if not value:
            continue
        _, hard = resource.getrlimit(which)
        v = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
        resource.setrlimit(which, (v, v))
        done.append(key)
    return done


def cap_eff() -> int:
    """This process's effective capability set (0: none)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def drop_capabilities() -> None:
    """Empty the bounding, effective, permitted and inheritable sets for good (a uid-0 agent the kernel
    could not move to an unprivileged uid keeps no power of root; exec gives none back)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    if libc.prctl(PR_SET_SECUREBITS, SECBIT_ALL_LOCKED, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "PR_SET_SECUREBITS failed")
    for cap in range(last + 1):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0):
            raise OSError(ctypes.get_errno(), f"dropping capability {cap} failed")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    hdr, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3, all zero
    if libc.capset(ctypes.byref(hdr), data):
        raise OSError(ctypes.get_errno(), "capset failed")
    if cap_eff():
        raise OSError(1, "capabilities remain after dropping them")


def apply(plan: dict) -> dict:
    """Apply ``plan`` ({limits, landlock: {ro, rw, block_tcp, connect_ports} | None, seccomp: {network,
    supervise, notify_fd} | None}); returns what holds.

    A layer the plan asks for and the machine refuses raises OSError: the
    kernel only plans layers its probe found working, so a failure here means
    the agent must not run.
    """
    limits = dict(plan.get("limits") or {})
    if plan.get("nproc"):  # without a user namespace RLIMIT_NPROC counts the whole uid (sandbox.launch)
        limits["processes"] = plan["nproc"]
    held = {"limits": set_limits(limits)}
    # Not PR_SET_CHILD_SUBREAPER without namespaces: the runtime would have to reap adopted orphans, and a
    # reaper of every child takes exit statuses its own subprocess.Popen objects wait for (a command agent's).
    if cap_eff():
        drop_capabilities()
        held["capabilities"] = "dropped"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    held["no_new_privs"] = True
    ll = plan.get("landlock")
    ports = tuple((ll or {}).get("connect_ports", ()))
    if ll:
        from agent_apps.confine import landlock

        held["landlock"] = landlock.restrict(ll["ro"], ll["rw"], ll.get("block_tcp", True), ports)
    sc = plan.get("seccomp")
    if sc:
        from agent_apps.confine import seccomp

        supervise = bool(sc.get("supervise")) and bool(ports)
        listener = seccomp.install(bool(sc.get("network")), bool(ports), supervise)
        notify_fd = sc.get("notify_fd")
        if notify_fd is not None:  # the kernel's supervisor waits on this; it must hear once, even "none"
            with socket.socket(fileno=int(notify_fd)) as s:
                socket.send_fds(s, [json.dumps({"port": ports[0] if ports else 0}).encode()],
                                [listener] if listener is not None else [])
        if listener is not None:
            os.close(listener)
        held["seccomp"] = "connect supervised" if supervise else True
    return held
