"""What the inside of confinement can apply on this machine, as one JSON object on stdout:
``{"landlock_abi": N, "seccomp_why": ""}`` (ABI 0: no Landlock; seccomp_why "": the filter and its
connect() supervision work here, else why not).

The kernel's probe (kernel/confine/probe.py) runs it as a child (``python -m agent_apps.confine.check``):
the same code an agent confines itself with answers, and the kernel imports none of it.
"""

from __future__ import annotations

import json

from agent_apps.confine import landlock, seccomp


def seccomp_why() -> str:
    why = seccomp.supported()
    if why:
        return why
    try:
        seccomp.notif_sizes()
    except OSError as e:
        return f"seccomp user notifications unavailable ({e.strerror or e}; Linux >= 5.9 needed)"
    return ""


if __name__ == "__main__":
    print(json.dumps({"landlock_abi": landlock.abi(), "seccomp_why": seccomp_why()}))
