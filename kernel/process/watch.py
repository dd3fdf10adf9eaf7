"""The resource watcher: memory of each agent's process tree, its app's workspace, setuid files.

RLIMIT_AS bounds one process and RLIMIT_FSIZE one file; an agent with three
children or three files goes around both. So the kernel's loop runs this
watcher on a timer (every WATCH_PERIOD_S while agents run; disarmed when none
do) and, for each live agent:

memory   sums the resident set (RSS, /proc/<pid>/stat) of its OS process tree:
         the kernel's child (bwrap, or the agent itself under Landlock alone)
         and every descendant; without namespaces also every process of the
         agent's session, and every process seen in its tree before (an orphan
         reparented to init is still counted). Past the agent's memory limit
         (``limits_for``: --confine-memory-mb, or the profile's
         ``"limits": {"memory_mb": N}``) the kernel SIGKILLs the whole sandbox
         at once; the agent ends ``killed`` with the reason as its error. RSS
         counts a page shared by two processes twice (a fork's untouched pages,
         the interpreter's libraries): an upper bound of what the tree holds.
disk     measures the app's workspace (kernel/process/wswatch.py: regular
         files' sizes, hard links once, links never followed) on the walker's
         thread, so a huge tree never stalls the loop: when inotify reports a
         write in it (within WALK_MIN_S, or WALK_DUTY x the last walk's
         CPU time), and at the ticks. Past --workspace-max-bytes every running
         agent of that app is SIGKILLed. Nothing is deleted: the user decides
         what goes (the kernel log says where). The total is enforced after the
         fact: it passes the cap by what the app's agents write between the
         write that crossed it and the kill (milliseconds while inotify watches
         the folder written to; up to a tick beyond WATCH_MAX_DIRS folders). At
         spawn the agent's RLIMIT_FSIZE is lowered to the room left
         (AgentProc), so no single file outgrows it, and a spawn into a
         workspace already over its cap is refused (ENOSPC).
processes  the same tree's number of processes, past the agent's
         ``processes`` limit: RLIMIT_NPROC does not bind uid 0 (a root
         kernel's agents, under bwrap too) and, without namespaces, counts
         every process of the uid, so the per-tree count is kept here.
setid    every walk clears the setuid and setgid bits of the workspace's files
         (fchmod on an fd opened O_NOFOLLOW; each one logged and audited): a
         chmod is an inotify event, so within milliseconds; and a walk when an
         agent ends, before its exit is reported.

cgroup v2 would make the memory bound exact (memory.max on a child cgroup of
the kernel's own). ``cgroup_status()`` detects at boot whether the kernel's
cgroup is delegated to it; this kernel does not create cgroups yet, so the
boot log says which of the two holds and why: the watcher, here.

Loop thread: everything here; the walker's results come back through
``Kernel.post``.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import time
from dataclasses import dataclass

from kernel.param import MEM_DUTY, SYNC_WALK_MAX_ENTRIES, WATCH_PERIOD_S
from kernel.process.wswatch import SETID, Walk, Walker, walk
from kernel.protocol import messages
from kernel.syscall import SyscallFailure

log = logging.getLogger("aios.kernel")

PAGE = os.sysconf("SC_PAGE_SIZE")


def size_text(n: float) -> str:
    """1536 -> '1.5 KiB'; 3.4 GiB stays in GiB with one decimal."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- cgroup v2 -------------------------------------------------------------------------------------
def cgroup_status(proc_self: str = "/proc/self") -> tuple[bool, str]:
    """(delegated?, why): is the kernel's own cgroup v2 one it may make memory-limited children in?

    Only a cgroup that is ours to manage counts: not the root of a hierarchy (the host's), not one
    we cannot write, not one without the memory controller, not one that holds other processes (the
    shell that started us: enabling a controller for children needs our cgroup to hold none, and
    moving them is not ours to do). Reads only; never writes a cgroup file or a sysctl."""
    try:
        with open(f"{proc_self}/cgroup") as f:
            own = next((ln.split("::", 1)[1].strip() for ln in f if ln.startswith("0::")), None)
        with open(f"{proc_self}/mountinfo") as f:
            mounts = [ln.split() for ln in f]
    except OSError as e:
        return False, f"cannot read {proc_self}/cgroup or mountinfo ({e.strerror})"
    if own is None:
        return False, "no cgroup v2 hierarchy (cgroup v1 only)"
    # mountinfo: "id parent maj:min root mountpoint options [optional...] - fstype source superoptions"
    mount = next((m[4] for m in mounts if "-" in m[6:] and m[m.index("-", 6) + 1:][:1] == ["cgroup2"]), None)
    if mount is None:
        return False, "no cgroup2 file system mounted"
    if own == "/":
        return False, f"the kernel runs in the root cgroup of {mount} (the host's, not delegated)"
    path = os.path.join(mount, own.lstrip("/"))
    try:
        with open(os.path.join(path, "cgroup.controllers")) as f:
            controllers = f.read().split()
        with open(os.path.join(path, "cgroup.procs")) as f:
            procs = [int(p) for p in f.read().split()]
    except OSError as e:
        return False, f"cannot read {path} ({e.strerror})"
    if "memory" not in controllers:
        return False, f"the memory controller is not delegated to {path} (it has: {' '.join(controllers) or 'none'})"
    if not all(os.access(os.path.join(path, f), os.W_OK) for f in ("", "cgroup.procs", "cgroup.subtree_control")):
        return False, f"{path} is not writable by uid {os.getuid()} (not delegated)"
    others = [p for p in procs if p != os.getpid()]
    if others:
        return False, (f"{path} also holds {len(others)} other process(es) (e.g. pid {others[0]}); a cgroup of "
                       "the kernel's own would need e.g. `systemd-run --user --scope -p Delegate=yes`")
    return True, f"{path} is delegated (memory controller, writable, ours alone)"


# -- processes ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class Proc:
    ppid: int
    sid: int
    start: int  # clock ticks after boot: with the pid, the identity of a process
    rss: int  # bytes


def scan_proc(root: str = "/proc") -> dict[int, Proc]:
    """Every process's parent, session, start time and RSS: one read of /proc/<pid>/stat each."""
    out = {}
    for name in os.listdir(root):
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"{root}/{name}/stat", os.O_RDONLY | os.O_CLOEXEC)  # no file object: a third cheaper
            try:
                s = os.read(fd, 4096)
            finally:
                os.close(fd)
            f_ = s[s.rindex(b")") + 2:].split(None, 22)  # after "pid (comm) ": comm may hold spaces and parens
            out[int(name)] = Proc(int(f_[1]), int(f_[3]), int(f_[19]), int(f_[21]) * PAGE)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return out


def index(procs: dict[int, Proc]) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """(children of each pid, members of each session) of a scan."""
    children: dict[int, list[int]] = {}
    sessions: dict[int, list[int]] = {}
    for pid, pr in procs.items():
        children.setdefault(pr.ppid, []).append(pid)
        sessions.setdefault(pr.sid, []).append(pid)
    return children, sessions


def pss_of(pid: int, rss: int) -> int:
    """Proportional set size of ``pid`` (its RSS where smaps_rollup cannot be read)."""
    try:
        fd = os.open(f"/proc/{pid}/smaps_rollup", os.O_RDONLY | os.O_CLOEXEC)
        try:
            s = os.read(fd, 8192)
        finally:
            os.close(fd)
        i = s.index(b"\nPss:") + 5
        return int(s[i:s.index(b"kB", i)]) << 10
    except (OSError, ValueError):
        return rss


def tree_of(root: int, procs: dict[int, Proc], children: dict[int, list[int]], sessions: dict[int, list[int]] | None,
            known: dict[int, int]) -> dict[int, int]:
    """pid -> start time of ``root`` and its descendants; with ``sessions`` also the members of the
    session ``root`` leads; and the ``known`` members of earlier ticks still alive (same start time)."""
    out: dict[int, int] = {}
    todo = [root] if root in procs else []
    todo += [p for p, st in known.items() if p in procs and procs[p].start == st]
    if sessions is not None:
        todo += sessions.get(root, ())
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out[p] = procs[p].start
        todo += children.get(p, ())
    return out


@dataclass
class Workspace:
    """What the loop knows of one workspace."""
    bytes: int = 0
    entries: int = 0
    measured: bool = False
    started: float = 0.0  # when the walk that measured it began (a result that began earlier is stale)
    over_logged: bool = False  # the "nothing deleted" line is said once per overflow


class Watcher:
    """A kernel service (start/on_exit/stop); the kernel calls ``admit`` at spawn."""

    def __init__(self, tools):  # the ToolsConfig record: its workspace cap
        self.cap = int(tools.workspace_max_bytes)
        self.period = WATCH_PERIOD_S
        self.kernel = None
        self.spaces: dict[str, Workspace] = {}
        self.known: dict[int, dict[int, int]] = {}  # AIOS pid -> {os pid: start} of its tree, last tick
        self.pss: dict[int, tuple[int, dict[int, int], float]] = {}  # AIOS pid -> (PSS, RSS per os pid, next)
        self.armed = False
        self.walker: Walker | None = None  # started with the first agent
        self.ticks = 0
        self.tick_s = 0.0  # summed cost of the ticks on the loop thread, for the log at stop
        self.tick_max_s = 0.0
        self.cgroup = cgroup_status()

    # -- service hooks -----------------------------------------------------------------------------
    def start(self, kernel) -> None:
        self.kernel = kernel
        ok, why = self.cgroup
        log.info("watch: memory per agent tree by an RSS watcher every %.2f s (cgroup v2 %s: %s); workspace cap "
                 "%s by the same watcher and inotify; setuid/setgid bits cleared in workspaces", self.period,
                 "delegated but not used yet" if ok else "not used", why,
                 size_text(self.cap) if self.cap else "off")

    def stop(self) -> None:
        if self.walker is not None:
            self.walker.stop()
        if self.ticks:
            log.info("watch: %d ticks, %.2f ms mean, %.2f ms max on the loop thread", self.ticks,
                     1e3 * self.tick_s / self.ticks, 1e3 * self.tick_max_s)

    def on_exit(self, pcb) -> None:
        """An agent was reaped: forget its tree; sweep its app's workspace before its exit is reported
        (on the loop when the workspace is small, else on the walker's thread)."""
        self.known.pop(pcb.pid, None)
        self.pss.pop(pcb.pid, None)
        path = self.kernel.tools.workspace(pcb.name)
        ws = self.spaces.setdefault(path, Workspace())
        small = not ws.measured or ws.entries <= SYNC_WALK_MAX_ENTRIES
        if not (small and self._walk_now(path, pcb, SYNC_WALK_MAX_ENTRIES)) and self.walker is not None:
            self.walker.request(path, forced=True)
        if self.walker is not None and not any(ap.workspace == path for ap in self.kernel.agents.values()):
            self.walker.forget(path)

    # -- spawn ---------------------------------------------------------------------------------------
    def admit(self, app: str, path: str) -> int | None:
        """Loop thread, before a spawn: the RLIMIT_FSIZE the agent gets (the room left in its workspace,
        at least 1 byte), None without a cap; ENOSPC when the workspace is already over its cap."""
        self._arm()
        if self.walker is None:
            self.walker = Walker(lambda p, w: self.kernel.post(lambda: self._walked(p, w, None)))
        ws = self.spaces.setdefault(path, Workspace())
        if not ws.measured or ws.entries <= SYNC_WALK_MAX_ENTRIES:  # else too big for the loop: the last walk's
            self._walk_now(path, None, max_entries=SYNC_WALK_MAX_ENTRIES)  # the user may have freed or filled it
        if self.cap and ws.bytes > self.cap:
            raise SyscallFailure(messages.ENOSPC, f"workspace of {app} holds {size_text(ws.bytes)}, over its cap "
                                                  f"{size_text(self.cap)} (--workspace-max-bytes); nothing was "
                                                  f"deleted: free some of {path} or raise the cap")
        self.walker.request(path, forced=True)  # watch its folders from now on
        return max(1, self.cap - ws.bytes) if self.cap else None

    # -- the timer -------------------------------------------------------------------------------------
    def _arm(self) -> None:
        if not self.armed and self.kernel is not None:
            self.armed = True
            self.kernel.call_later(self.period, self._tick)

    def _tick(self) -> None:
        self.armed = False
        agents = self.kernel.agents
        if not agents:
            return  # nothing to watch: the next spawn arms it again
        t0 = time.perf_counter()
        try:
            self._check_memory(agents)
            for path in {ap.workspace for ap in agents.values()}:
                self.walker.request(path)  # the walker skips it when inotify watches it whole
        except Exception:
            log.exception("watch: tick failed")
        dt = time.perf_counter() - t0
        self.ticks += 1
        self.tick_s += dt
        self.tick_max_s = max(self.tick_max_s, dt)
        self._arm()

    # -- memory -------------------------------------------------------------------------------------------
    def _check_memory(self, agents: dict) -> None:
        watched = [ap for ap in agents.values()
                   if (ap.limits.get("memory_bytes") or ap.limits.get("processes")) and ap.exitcode is None]
        if not watched:
            return
        procs = scan_proc()
        children, sessions = index(procs)
        for ap in watched:
            pcb = ap.pcb
            tree = tree_of(ap.process.pid, procs, children, None if ap.bwrap else sessions, self.known.get(pcb.pid, {}))
            self.known[pcb.pid] = tree
            nproc = len(tree) - (1 if ap.bwrap else 0)  # bwrap itself is not the agent's
            if ap.limits.get("processes") and nproc > ap.limits["processes"] and not pcb.kill_reason:
                # RLIMIT_NPROC binds no uid-0 agent (root's, or a root kernel's bwrap user namespace) and,
                # without namespaces, counts the whole uid: the tree's own count is kept here.
                self._kill(ap, f"processes: the agent runs {nproc} processes, more than its limit of "
                               f"{ap.limits['processes']} (--confine-processes)")
                if not ap.bwrap:
                    for p, st in tree.items():
                        _kill_if(p, st)
                continue
            limit = ap.limits.get("memory_bytes")
            if not limit:
                continue
            used = self._used(pcb.pid, {p: procs[p].rss for p in tree}, limit)
            if used <= limit or pcb.kill_reason:
                continue
            kids = max(0, len(tree) - (2 if ap.bwrap else 1))  # not bwrap, not the agent itself
            src = "its profile's limits.memory_mb" if (ap.app.config.get("limits") or {}).get("memory_mb") \
                else "--confine-memory-mb"
            why = (f"memory: the agent and its {kids} descendant{'' if kids == 1 else 's'} used {size_text(used)}, "
                   f"more than its {size_text(limit)} limit ({src})")
            self._kill(ap, why)
            if not ap.bwrap:  # without a pid namespace, what left the tree or the session dies here too
                for p, st in tree.items():
                    _kill_if(p, st)

    def _used(self, pid: int, rss: dict[int, int], limit: int) -> int:
        """Bytes the tree holds, as far as ``limit`` needs to know. RSS counts a page shared by two of its
        processes twice (a fork's untouched pages: 200 forks of a 16 MiB interpreter "hold" 3 GiB), so past
        the limit by RSS the tree is measured again by PSS (smaps_rollup: each page split among those who map
        it), which costs a page-table walk (about 20 ms per GiB): only when RSS says it may be over, only
        when its RSS grew since the last PSS by more than that left below the limit, and at most
        MEM_DUTY x its last cost after it."""
        total = sum(rss.values())
        last = self.pss.get(pid)
        if total <= limit:
            self.pss.pop(pid, None)
            return total
        if last is not None:
            pss, then, next_ok = last
            grown = sum(max(0, r - then.get(p, 0)) for p, r in rss.items())  # PSS grows by no more than this
            if pss + grown <= limit or time.monotonic() < next_ok:  # cannot be over, or measured too lately
                return pss
        t0 = time.thread_time()
        pss = sum(pss_of(p, r) for p, r in rss.items())
        self.pss[pid] = (pss, rss, time.monotonic() + MEM_DUTY * (time.thread_time() - t0))
        return pss

    def _kill(self, ap, why: str) -> None:
        log.warning("watch: killing pid %d (%s): %s", ap.pcb.pid, ap.pcb.name, why)
        self.kernel.access.audit.write("kill", ap.pcb, reason=why)
        self.kernel.kill(ap.pcb.pid, reason=why, now=True)

    # -- disk ------------------------------------------------------------------------------------------------
    def _walk_now(self, path: str, pcb, max_entries: int | None = None) -> bool:
        """Walk ``path`` on the loop; False when it has more than ``max_entries`` (the walker's job then)."""
        try:
            w = walk(path, max_entries)
        except FileNotFoundError:
            w = Walk()  # not made yet: empty
        except OSError as e:
            log.warning("watch: cannot walk workspace %s: %s", path, e.strerror)
            return False
        if not w.complete:
            self._cleared(path, w, pcb)  # what it met before it stopped
            return False
        self._walked(path, w, pcb)
        return True

    def _walked(self, path: str, w: Walk | None, pcb) -> None:
        """Loop thread: a walk's result. Log the bits cleared; kill the app's agents past the cap."""
        if w is None:
            return
        ws = self.spaces.setdefault(path, Workspace())
        self._cleared(path, w, pcb)
        if w.started < ws.started:
            return  # the walker's, begun before a walk on the loop that saw the workspace later
        ws.bytes, ws.entries, ws.measured, ws.started = w.bytes, w.entries, True, w.started
        app = os.path.basename(path)
        if not self.cap or ws.bytes <= self.cap:
            ws.over_logged = False
            return
        why = (f"disk: workspace of {app} holds {size_text(ws.bytes)}, over its cap {size_text(self.cap)} "
               f"(--workspace-max-bytes)")
        for ap in [ap for ap in self.kernel.agents.values() if ap.workspace == path and not ap.pcb.kill_reason]:
            self._kill(ap, why)
        if not ws.over_logged:
            ws.over_logged = True
            log.warning("watch: %s; nothing was deleted: free some of %s (its next spawn is refused until then)",
                        why, path)

    def _cleared(self, path: str, w: Walk, pcb) -> None:
        for rel, mode in w.cleared:
            log.warning("watch: workspace of %s: cleared the setuid/setgid bits of %s (mode %o -> %o)",
                        os.path.basename(path), rel, stat.S_IMODE(mode), stat.S_IMODE(mode) & ~SETID)
            self.kernel.access.audit.write("setid", pcb, workspace=path, path=rel, mode=oct(stat.S_IMODE(mode)),
                                           cleared=True)


def _kill_if(pid: int, start: int) -> None:
    """SIGKILL ``pid`` if it is still the process that started at ``start`` (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
        if int(s[s.rindex(b")") + 2:].split()[19]) == start:
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass  # gone, or not ours to signal
