"""What confinement this machine supports, detected once per kernel process.

Layers (each stops something the others do not):
  namespaces   bubblewrap: user, pid, mount, net, ipc, uts namespaces, no
               capabilities, no nested user namespaces. Hides every file not
               bound in; no network; the agent cannot name (so cannot signal or
               ptrace) any process outside; all its descendants die with it.
  landlock     Linux's unprivileged LSM: files outside the read/write lists
               cannot be opened even if a mount leaks them; TCP bind/connect
               denied (ABI 4); signals and abstract unix sockets scoped to the
               agent (ABI 6); no ptrace outside the domain.
  rlimits      memory (address space), processes, open files, CPU seconds,
               file size, no core dumps; PR_SET_NO_NEW_PRIVS (no setuid gain).
Nothing here writes system state: probing runs ``bwrap ... true`` once.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

from kernel.confine import landlock

LAYERS = ("namespaces", "landlock", "rlimits")
BWRAP_TEST = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--as-pid-1",
              "--cap-drop", "ALL", "--ro-bind", "/", "/", "true"]


@dataclass(frozen=True)
class Layers:
    bwrap: str | None  # path of a working bwrap, or None
    bwrap_why: str  # why not, when None
    landlock_abi: int
    root: bool

    def missing(self) -> dict[str, str]:
        """layer -> what its absence costs (empty: everything is there)."""
        out = {}
        if not self.bwrap:
            out["namespaces"] = (f"{self.bwrap_why}: agents see the host's files (landlock still limits which they "
                                 "open), share the host network (landlock blocks TCP only, not UDP), and a child "
                                 "that calls setsid can outlive its agent")
        if self.landlock_abi < 1:
            out["landlock"] = "Landlock is not enabled in this Linux kernel: files are hidden by namespaces only"
        elif self.landlock_abi < 6:
            out["landlock"] = (f"Landlock ABI {self.landlock_abi} < 6: signals and abstract unix sockets are not "
                               "scoped by Landlock (namespaces still isolate them)")
        return out

    def notes(self) -> list[str]:
        """Limits of the layers that hold (reported at boot, whatever the mode)."""
        if self.root:
            return ["the kernel runs as root: Linux exempts uid 0 from RLIMIT_NPROC, so the per-agent process limit "
                    "is not enforced (run the kernel as an ordinary user to enforce it); every other layer holds"]
        return []

    def names(self) -> list[str]:
        have = {"namespaces": bool(self.bwrap), "landlock": self.landlock_abi >= 1, "rlimits": True}
        return [n for n in LAYERS if have[n]]


def _bwrap() -> tuple[str | None, str]:
    path = shutil.which("bwrap")
    if path is None:
        return None, "bubblewrap is not installed (apt-get install bubblewrap)"
    try:
        r = subprocess.run([path, *BWRAP_TEST], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"bubblewrap does not run: {e}"
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip().splitlines()
        hint = ""
        try:
            with open("/proc/sys/user/max_user_namespaces") as f:
                if f.read().strip() == "0":
                    hint = " (user namespaces are off: sysctl user.max_user_namespaces=15000)"
        except OSError:
            pass
        if os.path.exists("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"):
            hint = hint or " (AppArmor may restrict unprivileged user namespaces: see README, Security model)"
        return None, f"bubblewrap cannot create namespaces: {err[-1] if err else 'exit ' + str(r.returncode)}{hint}"
    return path, ""


@functools.lru_cache(maxsize=1)
def probe() -> Layers:
    forced = os.environ.get("AIOS_CONFINE_NO_BWRAP")  # tests and benchmarks of the landlock-only path
    path, why = (None, "bubblewrap disabled by AIOS_CONFINE_NO_BWRAP") if forced else _bwrap()
    return Layers(bwrap=path, bwrap_why=why, landlock_abi=landlock.abi(), root=os.geteuid() == 0)


def boot_report(mode: str, layers: Layers) -> list[tuple[str, str]]:
    """(level, line) records the kernel logs once at boot."""
    if mode == "off":
        return [("warning", "--confine off: agents run UNCONFINED, with the kernel's user, files, network, "
                            "environment and signals; a hostile agent can read and change all of them")]
    missing = layers.missing()
    out = [("info", f"confinement {mode}: {', '.join(layers.names()) or 'none'}"
                    f"{' (landlock ABI %d)' % layers.landlock_abi if layers.landlock_abi else ''}")]
    for name, cost in missing.items():
        level = "error" if mode == "strict" else "warning"
        out.append((level, f"confinement layer {name} missing: {cost}" +
                    ("; --confine strict refuses to start agents" if mode == "strict" else "")))
    out += [("warning", n) for n in layers.notes()]
    return out
