"""Which confinement layers hold on this machine, and why not: ``--confine-check`` of every front.

    python simulator.py --confine-check          # a table, then what --confine auto picks
    python simulator.py --confine-check json     # the same as one JSON object
    python -m kernel.confine.doctor --apparmor-profile   # the Ubuntu 24.04+ profile that lets bwrap work

Prints, for example::

    AIOS confinement on this machine (Linux 6.18, x86_64, uid 1000)
      namespaces  yes  bubblewrap /usr/bin/bwrap creates user namespaces
      landlock    yes  ABI 7: files, TCP ports, signals and abstract sockets scoped
      seccomp     yes  no unix/UDP/raw sockets, setuid bits, ptrace, namespaces; connect() checked without namespaces
      rlimits     yes  memory, processes, open files, CPU seconds, file size
    --confine auto runs agents under namespaces+landlock+seccomp+rlimits

Exit status 0 when every layer holds, 1 when one is missing (the report says
what that costs and how to get it back). Runs the same probe the kernel runs
at boot (kernel/confine/probe.py); writes nothing.
"""

from __future__ import annotations

import json
import os
import platform
import sys

from kernel.confine.probe import LAYERS, Layers, probe

APPARMOR_SYSCTL = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
APPARMOR_FILE = "/etc/apparmor.d/bwrap"
APPARMOR_PROFILE = """\
# Lets bubblewrap create the user namespaces AIOS confines its agents in
# (Ubuntu 24.04+ restricts unprivileged user namespaces with AppArmor).
abi <abi/4.0>,
include <tunables/global>

profile bwrap /usr/bin/bwrap flags=(unconfined) {
  userns,

  include if exists <local/bwrap>
}
"""
HOLDS = {
    "namespaces": "bubblewrap {bwrap} creates user namespaces: agents see only what is bound in, no network",
    "landlock": "ABI {abi}: files" + "{net}",
    "seccomp": "no unix/UDP/raw sockets, setuid bits, ptrace, namespaces, io_uring; connect() checked by the "
               "kernel without namespaces",
    "rlimits": "memory, processes, open files, CPU seconds, file size",
}


def apparmor_restricts() -> bool:
    try:
        with open(APPARMOR_SYSCTL) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def apparmor_hint() -> str:
    return (f"AppArmor restricts unprivileged user namespaces here; to let bubblewrap work, save this profile as "
            f"{APPARMOR_FILE} and load it (sudo apparmor_parser -r {APPARMOR_FILE}); ./install.sh run with sudo "
            "offers to do it:\n" + APPARMOR_PROFILE)


def report(layers: Layers, mode: str = "auto") -> dict:
    """Plain data: each layer's state and reason, what auto picks, the AppArmor hint where it applies."""
    missing = layers.missing()
    have = set(layers.names())
    net = ", TCP ports" if layers.landlock_abi >= 4 else ""
    net += ", signals and abstract sockets scoped" if layers.landlock_abi >= 6 else ""
    out = {"machine": f"Linux {platform.release().split('-')[0]}, {platform.machine()}, uid {os.geteuid()}",
           "mode": mode, "layers": {}, "agents_run_under": "+".join(layers.names()), "notes": layers.notes()}
    for name in LAYERS:
        why = HOLDS[name].format(bwrap=layers.bwrap, abi=layers.landlock_abi, net=net) if name in have else ""
        out["layers"][name] = {"holds": name in have and name not in missing, "why": missing.get(name, why)}
    if layers.root and not layers.bwrap:
        out["agent_uid"] = layers.run_as if layers.run_as is not None else 0
    if not layers.bwrap and apparmor_restricts():
        out["apparmor"] = apparmor_hint()
    return out


def render(r: dict) -> str:
    lines = [f"AIOS confinement on this machine ({r['machine']})"]
    for name, st in r["layers"].items():
        lines.append(f"  {name:<11} {'yes' if st['holds'] else 'NO ':<4} {st['why']}")
    lines.append(f"--confine {r['mode']} runs agents under {r['agents_run_under']}")
    lines += [f"note: {n}" for n in r["notes"]]
    if "apparmor" in r:
        lines.append(r["apparmor"].rstrip())
    return "\n".join(lines)


def main(fmt: str = "text", no_bwrap: bool = False) -> int:
    r = report(probe(no_bwrap=no_bwrap), "landlock" if no_bwrap else "auto")
    print(json.dumps(r, indent=2) if fmt == "json" else render(r))
    return 0 if all(st["holds"] for st in r["layers"].values()) else 1


if __name__ == "__main__":
    if "--apparmor-profile" in sys.argv[1:]:
        print(APPARMOR_PROFILE, end="")
        sys.exit(0)
    sys.exit(main("json" if "json" in sys.argv[1:] else "text", no_bwrap="--no-bwrap" in sys.argv[1:]))
