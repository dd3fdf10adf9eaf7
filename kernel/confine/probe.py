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
  seccomp      a BPF filter (agent_apps/confine/seccomp.py): no unix, UDP, raw or
               netlink sockets, no setuid bits, no ptrace, namespaces, io_uring;
               without namespaces, connect() is checked by the kernel
               (kernel/confine/notify.py): only the agent's own endpoint.
  rlimits      memory (address space), processes, open files, CPU seconds,
               file size, no core dumps; PR_SET_NO_NEW_PRIVS (no setuid gain).
A kernel running as root never gives an agent root's powers: under bubblewrap
the agent is uid 65534 in its own user namespace; without it the agent runs as
uid 65534 (``RUN_AS``) when that uid can read the interpreter and the project and
reach the data folder (``reachable``; the kernel makes that folder 0700, so only a
folder the user opened on purpose), else as uid 0 with every capability dropped
(the runtime does it, see agent_apps/confine/inside.py) and the tree's process count kept by the
kernel's watcher (kernel/process/watch.py) since RLIMIT_NPROC exempts uid 0.
Nothing here writes system state: probing runs ``bwrap ... true``, the inside's own
check (``python -m agent_apps.confine.check``: Landlock's ABI, seccomp; the kernel
never imports the agent's side) and, as root without bwrap, the interpreter as uid
65534, once each.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from kernel.confine.sandbox import ROOT

LAYERS = ("namespaces", "landlock", "seccomp", "rlimits")
RUN_AS = 65534  # nobody: the uid of an agent started by a root kernel without namespaces
BWRAP_TEST = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--as-pid-1",
              "--cap-drop", "ALL", "--ro-bind", "/", "/", "true"]


@dataclass(frozen=True)
class Layers:
    bwrap: str | None  # path of a working bwrap, or None
    bwrap_why: str  # why not, when None
    landlock_abi: int
    root: bool
    seccomp_why: str = ""  # why the seccomp layer is missing ("" = it holds)
    run_as: int | None = None  # root kernel without bwrap: the uid agents run as (None: uid 0, no capabilities)
    run_as_why: str = ""  # why not, when root, without bwrap and run_as is None

    def missing(self) -> dict[str, str]:
        """layer -> what its absence costs (empty: everything is there)."""
        out = {}
        if not self.bwrap:
            net = ("seccomp and the kernel's connect() check hold the network to the agent's own endpoint"
                   if not self.seccomp_why else "share the host network (landlock blocks TCP only, not UDP)")
            out["namespaces"] = (f"{self.bwrap_why}: agents see the host's files (landlock still limits which they "
                                 f"open), {net}, and a child that calls setsid can outlive its agent (the kernel "
                                 "kills what it can still find)")
        if self.seccomp_why:
            out["seccomp"] = (f"{self.seccomp_why}: agents may open unix sockets (the user's tmux, D-Bus and AIOS "
                              "daemon sockets" + (", hidden by namespaces" if self.bwrap else "") +
                              "), UDP and raw sockets, and set setuid bits")
        if self.landlock_abi < 1:
            out["landlock"] = "Landlock is not enabled in this Linux kernel: files are hidden by namespaces only"
        elif self.landlock_abi < 6:
            out["landlock"] = (f"Landlock ABI {self.landlock_abi} < 6: signals and abstract unix sockets are not "
                               "scoped by Landlock (namespaces still isolate them)")
        return out

    def notes(self) -> list[str]:
        """Limits of the layers that hold (reported at boot, whatever the mode)."""
        if self.root and self.bwrap:
            return ["the kernel runs as root: an agent's uid maps to root outside its user namespace, which Linux "
                    "exempts from RLIMIT_NPROC; the kernel's watcher keeps each agent's process count instead "
                    "(a fork burst between two 0.25 s ticks is stopped late)"]
        if self.root:
            if self.run_as is not None:
                return [f"the kernel runs as root: agents run as uid {self.run_as} (their workspaces are given to "
                        "it), so process and file limits bind"]
            return [f"the kernel runs as root and {self.run_as_why}: agents run as uid 0 with every capability "
                    "dropped; Linux exempts uid 0 from RLIMIT_NPROC, so the kernel's watcher keeps each agent's "
                    "process count (a fork burst between two 0.25 s ticks is stopped late)"]
        return []

    def names(self) -> list[str]:
        have = {"namespaces": bool(self.bwrap), "landlock": self.landlock_abi >= 1, "seccomp": not self.seccomp_why,
                "rlimits": True}
        return [n for n in LAYERS if have[n]]


def bwrap_path() -> str | None:
    """A bwrap that creates every namespace the sandbox asks for (BWRAP_TEST), or None; probed once."""
    return _bwrap()[0]


@functools.lru_cache(maxsize=1)
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
        if err and "unknown option" in err[-1].lower():
            return None, (f"bubblewrap at {path} is too old: {err[-1]} (--disable-userns and --as-pid-1 "
                          "need bubblewrap 0.8 or later)")
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
def _inside() -> tuple[int, str]:
    """(Landlock ABI, why seccomp does not hold or ""), as the agent's side finds them: its own check, run
    as a child (agent_apps/confine/check.py), so the answer comes from the code that will apply them."""
    try:
        r = subprocess.run([sys.executable, "-s", "-B", "-m", "agent_apps.confine.check"], cwd="/",
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)})
        out = json.loads(r.stdout)
        return int(out["landlock_abi"]), str(out["seccomp_why"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as e:
        err = getattr(e, "stderr", None) or ""
        why = f"the agent side's check did not run ({type(e).__name__}: {str(e)[:120]}{str(err)[-120:]})"
        return 0, why


def _run_as() -> tuple[int | None, str]:
    """Root without bwrap: can uid RUN_AS run the agent runtime (read the interpreter and the project)?"""
    try:
        r = subprocess.run([sys.executable, "-s", "-B", "-c", "import agent_apps.runtime, agent_apps.confine.inside"],
                           user=RUN_AS, group=RUN_AS, extra_groups=[], cwd="/", stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30,
                           env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"uid {RUN_AS} cannot start the interpreter ({e})"
    if r.returncode:
        err = r.stderr.decode(errors="replace").strip().splitlines()
        return None, (f"uid {RUN_AS} cannot read the interpreter or the project ({err[-1] if err else r.returncode}; "
                      f"make {ROOT} and {sys.prefix} readable to others)")
    return RUN_AS, ""


def reachable(layers: Layers, data_dir: str) -> Layers:
    """A root kernel runs agents as RUN_AS only if that uid can reach their workspaces under ``data_dir``
    (every folder above it searchable by others); else uid 0 without capabilities, said at boot."""
    if layers.run_as is None:
        return layers
    path = os.path.abspath(data_dir)
    while True:
        try:
            searchable = bool(os.stat(path).st_mode & 0o001)
        except FileNotFoundError:
            searchable = False  # the kernel will create it 0700, as every folder it makes
        if not searchable:
            return dataclasses.replace(layers, run_as=None, run_as_why=(
                f"uid {RUN_AS} cannot reach the workspaces in the private data folder {data_dir} ({path} is not "
                "searchable by others)"))
        if path == "/":
            return layers
        path = os.path.dirname(path)


@functools.lru_cache(maxsize=2)
def probe(no_bwrap: bool = False) -> Layers:
    """What holds here. no_bwrap: ``--confine landlock``, the fallback chosen on purpose."""
    forced = os.environ.get("AIOS_CONFINE_NO_BWRAP")  # tests and benchmarks of the landlock-only path
    if no_bwrap:
        path, why = None, "--confine landlock chose the fallback without namespaces"
    elif forced:
        path, why = None, "bubblewrap disabled by AIOS_CONFINE_NO_BWRAP"
    else:
        path, why = _bwrap()
    root = os.geteuid() == 0
    run_as, run_as_why = _run_as() if root and not path else (None, "")
    landlock_abi, seccomp_why = _inside()
    return Layers(bwrap=path, bwrap_why=why, landlock_abi=landlock_abi, root=root, seccomp_why=seccomp_why,
                  run_as=run_as, run_as_why=run_as_why)


def boot_report(mode: str, layers: Layers) -> list[tuple[str, str]]:
    """(level, line) records the kernel logs once at boot."""
    if mode == "off":
        return [("warning", "--confine off: agents run UNCONFINED, with the kernel's user, files, network, "
                            "environment and signals; a hostile agent can read and change all of them")]
    missing = layers.missing()
    out = [("info", f"confinement {mode}: {', '.join(layers.names()) or 'none'}"
                    f"{' (landlock ABI %d)' % layers.landlock_abi if layers.landlock_abi else ''}")]
    for name, cost in missing.items():
        level = "error" if mode == "strict" else "info" if mode == "landlock" and name == "namespaces" else "warning"
        out.append((level, f"confinement layer {name} missing: {cost}" +
                    ("; --confine strict refuses to start agents" if mode == "strict" else "")))
    out += [("warning", n) for n in layers.notes()]
    return out
