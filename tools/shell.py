"""shell: run ``sh -c COMMAND`` in a sandbox (process-isolated, irreversible).

Sandbox, strongest available (``AIOS_SHELL_SANDBOX=bwrap|unshare`` forces one):

bwrap     bubblewrap, built by the agent sandbox's own builder
          (kernel/confine/sandbox.py bwrap_argv, with the same probe): new
          user, pid, net, ipc, uts and mount namespaces, no nested user
          namespaces, the command as pid 1; uid 65534 with no capabilities;
          the filesystem is /usr (read-only), the /bin, /lib... links, a
          private /proc, /dev and a size-capped /tmp, and the agent's
          workspace at /workspace (the cwd, read-write). Nothing else of the
          host is visible: not /etc, /home, the repo, other workspaces or the
          kernel's data. No network. Dies with its parent.
unshare   util-linux unshare: new user, net, pid and mount namespaces (no
          network, a private /proc), cwd = the workspace, empty environment.
          It does NOT hide the host's files: weaker; install bubblewrap.

Either way: resource limits (CPU seconds, address space, file size, open
files, no core dumps), PR_SET_PDEATHSIG so the sandbox dies with the tool's
process, output capped at MAX_OUTPUT bytes (the command is killed when it
writes more), and a deadline a little inside the call's timeout. The tool
manager runs this tool in a child process and kills that process group at
the call's deadline regardless. Without bwrap or a working unshare the tool
refuses to run.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import time

from kernel.protocol.messages import ENOSYS
from tools import confine
from tools.base import IRREVERSIBLE, Tool, ToolError, obj_schema

MAX_OUTPUT = 64 * 1024  # bytes of stdout+stderr returned
MEM_LIMIT = 1 << 30  # RLIMIT_AS, bytes
DEFAULT_FSIZE = 64 << 20  # RLIMIT_FSIZE when the workspace has no cap
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
MAX_PROCS = 16  # processes one command may run at once (RLIMIT_NPROC inside the sandbox)


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=1)
def _bwrap() -> str | None:
    """Path of a bwrap that passes the agent sandbox's probe (kernel.confine.probe), once per process."""
    from kernel.confine import probe

    return probe.bwrap_path()


def backend() -> str | None:
    """'bwrap', 'unshare' or None (no usable sandbox)."""
    forced = os.environ.get("AIOS_SHELL_SANDBOX", "")
    if forced in ("bwrap", "") and _bwrap():
        return "bwrap"
    if forced in ("unshare", "") and shutil.which("unshare") and _works(["unshare", "-r", "-n", "true"]):
        return "unshare"
    return None


RO = ("/usr", "/etc/alternatives", "/etc/ld.so.cache")  # besides the /bin, /lib... links: what a command reads


def bwrap_argv(ws_fd: int, command: str) -> list[str]:
    """The command in the agent sandbox's bubblewrap; ws_fd: the workspace, opened O_NOFOLLOW by the caller."""
    from kernel.confine import sandbox

    env = {"PATH": SANDBOX_PATH, "HOME": sandbox.WORKSPACE, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    return sandbox.bwrap_argv(_bwrap() or "bwrap", list(RO), ws_fd, False, env) + \
        ["--", *_nproc(), "/bin/sh", "-c", command]


def _nproc() -> list[str]:
    """RLIMIT_NPROC set inside the sandbox's user namespace, so it counts the command's processes
    only (set outside, it would count every process of the user). uid 0 is exempt (README)."""
    prlimit = "/usr/bin/prlimit"
    return [prlimit, f"--nproc={MAX_PROCS}", "--"] if os.path.exists(prlimit) else []


def clear_setid(workspace: str) -> int:
    """Drop setuid/setgid bits a command left on workspace files (links not followed); returns how many."""
    n = 0
    fd = confine.open_root(workspace)
    try:
        for _, _, files, dfd in os.fwalk(dir_fd=fd):
            for f in files:
                st = confine.lstat(dfd, f)
                if st is not None and stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    os.chmod(f, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID), dir_fd=dfd,
                             follow_symlinks=False)
                    n += 1
    finally:
        os.close(fd)
    return n


def unshare_argv(command: str) -> list[str]:
    return ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child",
            "--mount", "--mount-proc", "--", "/bin/sh", "-c", command]


def _limits(cpu_s: int, fsize: int):
    def apply():  # runs in the forked child before exec (this process is single-threaded)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    return apply


def run_sandboxed(command: str, workspace: str, seconds: float, fsize: int = DEFAULT_FSIZE,
                  sandbox: str | None = None) -> dict:
    sandbox = sandbox or backend()
    if sandbox is None:
        raise ToolError(ENOSYS, "shell: no sandbox available (install bubblewrap: apt-get install bubblewrap)")
    ws_fd = confine.open_root(workspace)  # O_NOFOLLOW: a workspace swapped for a symlink is refused
    try:
        argv = bwrap_argv(ws_fd, command) if sandbox == "bwrap" else unshare_argv(command)
        env = {"PATH": SANDBOX_PATH, "LANG": "C.UTF-8", "HOME": "/workspace"}
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             cwd=f"/proc/self/fd/{ws_fd}", env=env, pass_fds=[ws_fd],
                             preexec_fn=_limits(max(1, int(seconds) + 1), fsize))
    finally:
        os.close(ws_fd)
    out, truncated, timed_out = bytearray(), False, False
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    try:
        while True:
            left = seconds - (time.monotonic() - t0)
            if left <= 0:
                timed_out = True
                break
            if not sel.select(left):
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            if len(out) > MAX_OUTPUT:
                truncated = True
                break
    finally:
        sel.close()
        if p.poll() is None and (timed_out or truncated):
            p.kill()  # bwrap/unshare: the namespace's processes die with it (pid namespace, PDEATHSIG)
        code = p.wait()
        p.stdout.close()
    cleared = clear_setid(workspace)  # bwrap binds are nosuid, but the files outlive the sandbox
    return {"setid_cleared": cleared, "exit_code": None if timed_out else code, "timed_out": timed_out, "truncated": truncated,
            "output": bytes(out[:MAX_OUTPUT]).decode("utf-8", errors="replace"), "sandbox": sandbox,
            "elapsed_s": round(time.monotonic() - t0, 3)}


class Shell(Tool):
    name = "shell"
    keywords = ("shell", "command", "bash", "script", "terminal")
    description = ("Run a shell command in a sandbox: your workspace is the current folder (/workspace); "
                   "no network, no other files. Asks for confirmation.")
    schema = obj_schema(["command"], command={"type": "string", "minLength": 1, "maxLength": 4000})
    side_effect = IRREVERSIBLE
    parallel = 2
    timeout_s = 10.0
    isolation = "process"

    def summary(self, args):
        return f"shell: {args['command'][:500]}"

    def run(self, args, ctx):
        seconds = max(0.1, min(ctx.remaining(), self.timeout_s * 30) - 0.5)  # report before the manager kills us
        fsize = DEFAULT_FSIZE
        if ctx.workspace_max_bytes:  # no one file may outgrow the room left (README: the cap's limits)
            fsize = max(1, ctx.workspace_max_bytes - confine.tree_bytes(ctx.workspace))
        return run_sandboxed(args["command"], ctx.workspace, seconds, fsize)


TOOLS = [Shell()]
