"""Start one agent process, confined (kernel side).

``launch()`` execs ``python -m agent_apps.runtime RX TX`` under bubblewrap
when the probe found it working, else as a plain child in its own session;
either way the runtime applies rlimits, PR_SET_NO_NEW_PRIVS and Landlock
itself (agent_apps/confine/inside.py) from the plan the kernel sends in the boot
frame, before it imports the agent's code.

The sandbox's filesystem (bwrap): /usr and the /bin, /lib... links, the
Python install and virtualenv, the SDK's own files (agent_apps/*.py and the
few kernel modules it imports, one by one), the app's folder (plus the
``read_paths`` its profile lists), all read-only; a
private /proc, /dev and size-capped /tmp; the app's workspace, opened
O_NOFOLLOW by the kernel and bound by fd at /workspace (the cwd, read-write).
Nothing else: not $HOME, the kernel's data or log folders, other apps or
other workspaces. The environment is cleared except PATH, LANG, HOME,
TMPDIR and PYTHONPATH. Extra channels (e.g. a per-agent endpoint socket)
travel like RX/TX: as fds listed in ``pass_fds``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kernel.param import TMP_BYTES

ROOT = Path(__file__).resolve().parents[2]  # the project: agent_apps/ and kernel/ live here
# What an agent process may read of the project: the SDK and runtime (agent_apps/, the inside of
# confinement included) and the protocol (kernel/protocol/, which imports nothing else of the project;
# kernel/__init__.py is empty). tests/unit/test_layers.py checks that the agent side imports no more.
SDK_FILES = ("agent_apps/__init__.py", "agent_apps/sdk.py", "agent_apps/base.py", "agent_apps/pot.py",
             "agent_apps/toolcall.py", "agent_apps/runtime.py",
             "agent_apps/endpoint.py", "agent_apps/command.py",  # the agent's OpenAI endpoint, command agents
             "agent_apps/confine/__init__.py", "agent_apps/confine/inside.py", "agent_apps/confine/landlock.py",
             "agent_apps/confine/seccomp.py",
             "kernel/__init__.py", "kernel/protocol/__init__.py", "kernel/protocol/limits.py",
             "kernel/protocol/profile.py",
             "kernel/protocol/messages.py", "kernel/protocol/channel.py", "kernel/protocol/http.py")
# Public CA certificates (an HTTP client builds its TLS context at start, even for the local endpoint),
# never /etc/ssl itself: /etc/ssl/private holds the host's keys.
CA_RO = ("/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/ca-certificates", "/etc/pki/tls/certs",
         "/etc/pki/ca-trust/extracted")
SYSTEM_RO = ("/usr", "/etc/ld.so.cache", "/etc/localtime", *CA_RO)
TOP_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
NET_RO = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/services",
          "/etc/protocols")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
WORKSPACE = "/workspace"  # where the app's workspace appears inside bwrap
# What of /proc an agent may read (Landlock; "self" is the runtime's own pid, resolved as the rule is made):
# not /proc/self/net (every unix socket of the host), mountinfo (host paths), nor any other process.
PROC_RO = ("/proc/self/fd", "/proc/self/stat", "/proc/self/status", "/proc/self/statm", "/proc/self/cmdline",
           "/proc/self/limits", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/loadavg", "/proc/uptime")
LIMIT_KEYS = {"memory_mb": "memory_bytes", "processes": "processes", "files": "files", "cpu_s": "cpu_s"}


class ConfineError(Exception):
    """The agent cannot be started confined as asked (the message says why)."""


def limits_for(config, profile: dict) -> dict:
    """Kernel defaults (flags), replaced by the app profile's ``"limits"`` where it names one."""
    lim = {"memory_bytes": config.confine.memory_mb << 20, "processes": config.confine.processes,
           "files": config.confine.files, "cpu_s": config.confine.cpu_s,
           "file_bytes": config.tools.workspace_max_bytes or None}
    asked = profile.get("limits") or {}
    if not isinstance(asked, dict):
        raise ConfineError("profile 'limits' must be an object like {\"memory_mb\": 4096}")
    for key, value in asked.items():
        if key not in LIMIT_KEYS or not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfineError(f"profile limit {key!r}={value!r}: use positive integers for "
                               f"{', '.join(LIMIT_KEYS)}")
        lim[LIMIT_KEYS[key]] = value << 20 if key == "memory_mb" else value
    return lim


def python_paths() -> list[str]:
    """The interpreter's install and the virtualenv (sys.prefix may be a link: kept as the path Python uses)."""
    out = []
    for p in (sys.base_prefix, os.path.realpath(sys.base_prefix), sys.prefix,
              os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))):
        if p and p not in out and p != "/usr":
            out.append(p)
    return out


def precompile(paths) -> None:
    """Write the .pyc of files the agent imports (the kernel can; the sandbox is read-only), so an
    agent loads bytecode instead of compiling its SDK at every start. Best effort: a read-only
    install just compiles in memory."""
    import compileall

    for p in paths:
        if str(p).endswith(".py"):
            compileall.compile_file(str(p), quiet=2)  # skips a file whose .pyc is up to date


def sdk_paths() -> list[str]:
    out = []
    for rel in SDK_FILES:
        src = ROOT / rel
        precompile([src])
        out.append(str(src))
        out += glob.glob(str(src.parent / "__pycache__" / f"{src.stem}.*.pyc"))
    return out


def app_paths(app) -> list[str]:
    """The app's folder, plus the profile's ``read_paths``: folders relative to the app, inside its
    folder of apps, or ``agent_apps/<app>`` (a bundled app's code, e.g. to subclass it)."""
    folder = Path(app.path).resolve().parent
    out = [str(folder)]
    precompile(glob.glob(str(folder / "*.py")))  # cheap when up to date (a stat per file)
    extra = app.config.get("read_paths") or []
    if not isinstance(extra, list):
        raise ConfineError("profile 'read_paths' must be a list of folders relative to the app")
    bundled = ROOT / "agent_apps"
    for rel in extra:
        rel = str(rel)
        p = (ROOT / rel if rel.startswith("agent_apps/") else folder / rel).resolve()
        if folder.parent not in p.parents and bundled not in p.parents:
            raise ConfineError(f"read_paths entry {rel!r} leaves the folder of apps {folder.parent} "
                               f"(and is not a bundled app under {bundled})")
        out.append(str(p))
    return out


def open_workspace(path: str) -> int:
    """O_PATH fd of the workspace directory; refuses a symlink in its place (never follows one)."""
    try:
        return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise ConfineError(f"workspace {path}: {e.strerror} (a symlink is refused)") from None


def bwrap_argv(bwrap: str, ro: list[str], ws_fd: int, network: bool, env: dict) -> list[str]:
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534",
            "--die-with-parent", "--new-session", "--as-pid-1", "--cap-drop", "ALL", "--clearenv"]
    if network:
        argv.append("--share-net")
    for k, v in env.items():
        argv += ["--setenv", k, v]
    for top in TOP_LINKS:
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    # The private /tmp first: bwrap mounts in order, so a project, virtualenv or app folder that lives
    # under /tmp is bound on top of it instead of being hidden by it.
    argv += ["--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    for p in ro:
        argv += ["--ro-bind-try", p, p]
    argv += ["--proc", "/proc", "--dev", "/dev", "--bind-fd", str(ws_fd), WORKSPACE, "--chdir", WORKSPACE]
    return argv


def uid_processes(uid: int) -> int:
    """Processes (threads count for RLIMIT_NPROC too) the uid runs now, read from /proc."""
    n = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    with open(f"/proc/{entry.name}/status") as f:
                        n += next((int(line.split()[1]) for line in f if line.startswith("Threads:")), 1)
            except (OSError, ValueError):
                pass
    return n


def give_to(path: str, uid: int) -> None:
    """chown the tree at ``path`` to ``uid`` (links themselves, never followed): a root kernel's agents run
    as ``uid`` without namespaces and must own their workspace and private /tmp."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.chown(fd, uid, uid)
        for _, dirs, files, dfd in os.fwalk(dir_fd=fd):
            for name in dirs + files:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if st.st_uid != uid:
                    os.chown(name, uid, uid, dir_fd=dfd, follow_symlinks=False)
    finally:
        os.close(fd)


def launch(config, layers, app, workspace: str, fds: list[int], stdout) -> tuple[subprocess.Popen, dict, str]:
    """Start the agent; returns (process, the plan for boot["confine"], a one-line summary for ps/info).

    fds: the agent's channel ends (passed through, numbers unchanged). stdout: a file object or DEVNULL.
    Without namespaces and with seccomp, the agent's connect() calls are checked by a supervisor thread
    (kernel/confine/notify.py), returned in the plan's "supervisor" key (not sent to the agent).
    """
    argv_tail = [sys.executable, "-s", "-B", "-m", "agent_apps.runtime", *map(str, fds)]
    if config.confine.mode == "off":
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.Popen(argv_tail, pass_fds=fds, stdin=subprocess.DEVNULL, stdout=stdout,
                             start_new_session=True, env=env)
        return p, {"sandbox": "none"}, "off"
    missing = layers.missing()
    if config.confine.mode == "strict" and missing:
        raise ConfineError("--confine strict: missing " + "; ".join(f"{k} ({v})" for k, v in missing.items()))
    wants_net = app.config.get("network") is True
    if wants_net and not config.confine.allow_network:
        raise ConfineError(f"{app.name} asks for network access (\"network\": true) but the kernel does not "
                           "allow it (start it with --confine_allow_network)")
    limits = limits_for(config, app.config)
    ro = [*SYSTEM_RO, *python_paths(), *sdk_paths(), *app_paths(app), *(NET_RO if wants_net else ())]
    ws_fd = open_workspace(workspace)
    tmp = notify_fd = supervisor = None
    try:
        if layers.bwrap:
            inner_ws, inner_tmp = WORKSPACE, "/tmp"
        else:
            tmp = tempfile.mkdtemp(prefix=f"aios-{app.name[:32]}-")
            inner_ws, inner_tmp = workspace, tmp
        env = {"PATH": SANDBOX_PATH, "LANG": "C.UTF-8", "HOME": inner_ws, "TMPDIR": inner_tmp,
               "PYTHONPATH": str(ROOT)}
        ll = None
        if layers.landlock_abi >= 1:
            # A command agent's program shares the runtime's Landlock domain, where "self" is the runtime: it
            # gets none of those entries, so it cannot even list the runtime's fds (the runtime does not need them).
            proc = [p for p in PROC_RO if not (app.config.get("command") and p.startswith("/proc/self/"))]
            ll = {"ro": ro + proc, "rw": [inner_ws, inner_tmp, *DEVICES], "block_tcp": not wants_net}
        sc = None
        if not layers.seccomp_why:
            sc = {"network": wants_net, "supervise": not layers.bwrap and not wants_net}
            if sc["supervise"]:
                from kernel.confine import notify

                notify_fd, supervisor = notify.watch(app.name)
                sc["notify_fd"] = notify_fd
        plan = {"sandbox": "bwrap" if layers.bwrap else "session", "limits": limits, "landlock": ll,
                "seccomp": sc, "tmp": tmp}
        extra = [notify_fd] if notify_fd is not None else []
        if layers.bwrap:
            argv = bwrap_argv(layers.bwrap, ro, ws_fd, wants_net, env) + ["--", *argv_tail]
            p = subprocess.Popen(argv, pass_fds=[*fds, ws_fd, *extra], stdin=subprocess.DEVNULL, stdout=stdout,
                                 env={"PATH": SANDBOX_PATH, "LANG": "C.UTF-8"})
        else:
            # RLIMIT_NPROC counts every process of the agent's uid without a user namespace of its own: the
            # limit becomes what the uid runs now plus the agent's allowance (a hard stop for a fork bomb);
            # the kernel's watcher keeps the agent's own tree at its limit (kernel/process/watch.py).
            uid = layers.run_as if layers.root and layers.run_as is not None else os.getuid()
            plan["nproc"] = limits["processes"] + uid_processes(uid)
            user = {}
            if layers.root and layers.run_as is not None:
                give_to(workspace, layers.run_as)
                give_to(tmp, layers.run_as)
                user = {"user": layers.run_as, "group": layers.run_as, "extra_groups": []}
            p = subprocess.Popen(argv_tail, pass_fds=[*fds, *extra], stdin=subprocess.DEVNULL, stdout=stdout,
                                 cwd=workspace, start_new_session=True, env=env, **user)
    except BaseException:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(ws_fd)
        if notify_fd is not None:
            os.close(notify_fd)  # the agent has its copy; the supervisor sees EOF if it never writes
    plan_out = dict(plan)
    if supervisor is not None:
        plan_out["supervisor"] = supervisor
    summary = "+".join(layers.names()) + ("+net" if wants_net else "")
    return p, plan_out, summary
