"""The layers an agent process applies to itself, first thing, before any agent code runs.

Called by agent_apps/runtime.py with the plan the kernel put in the boot
frame (``boot["confine"]``). Order matters: resource limits, then
PR_SET_NO_NEW_PRIVS, then Landlock (which locks the file list in). The
RLIMIT_NPROC count starts here, inside the agent's own user namespace, so it
counts the agent's processes only, not its user's. Stdlib only.
"""

from __future__ import annotations

import ctypes
import resource

PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4

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


def apply(plan: dict) -> dict:
    """Apply ``plan`` ({limits, landlock: {ro, rw, block_tcp} | None}); returns what holds.

    A layer the plan asks for and the machine refuses raises OSError: the
    kernel only plans layers its probe found working, so a failure here means
    the agent must not run.
    """
    held = {"limits": set_limits(plan.get("limits") or {})}
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    held["no_new_privs"] = True
    ll = plan.get("landlock")
    if ll:
        from kernel.confine import landlock

        held["landlock"] = landlock.restrict(ll["ro"], ll["rw"], ll.get("block_tcp", True),
                                             tuple(ll.get("connect_ports", ())))
    return held
