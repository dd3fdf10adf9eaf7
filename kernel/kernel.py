"""The kernel process: one event loop over every agent channel and the front.

Threads:
  main (the loop)  selector over: the control pipe from the front, each
                   agent's request pipe, reply pipe (when output is pending)
                   and process sentinel, and a wakeup pipe. Owns AgentProcs:
                   spawns, reads, writes, reaps. Never blocks on an agent.
  llm-engine       owns the model; reports back through ``post``.
Other threads never touch AgentProcs; they call ``post(fn)`` to run ``fn``
on the loop.
"""

from __future__ import annotations

import collections
import heapq
import logging
import os
import selectors
import signal
import threading
import time
from typing import Any, Callable

from kernel.access.manager import AccessManager
from kernel.confine.probe import boot_report, probe, reachable
from kernel.confine.sandbox import ConfineError
from kernel.llm.factory import make_engine
from kernel.memory import MemoryManager
from kernel.param import ENDED_OUTPUT_KEPT, OUTPUT_LINE_MAX
from kernel.process.agentproc import AgentProc
from kernel.process.history import Results, kept_bytes
from kernel.process.supervisor import Supervisor
from kernel.process.table import ProcessTable, ProcState
from kernel.process.watch import Watcher
from kernel.protocol import control as control_wire
from kernel.protocol import messages
from kernel.protocol.channel import Oversize
from kernel.storage import StorageManager
from kernel.syscall import DEFERRED, SyscallFailure, validate
from kernel.systable import TABLE
from kernel.tools.manager import ToolManager
from kernel.trace.recorder import Tracer

log = logging.getLogger("aios.kernel")


class Kernel:
    def __init__(self, config, ctrl_conn):
        self.config = config
        self.ctrl = ctrl_conn
        self.ctrl_lock = threading.Lock()  # serialises sends to the front
        self.table = ProcessTable()
        self.engine = make_engine(config)  # local batching Engine or RemoteEngine, one interface
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self._posted: collections.deque[Callable[[], None]] = collections.deque()  # thread-safe appends
        self._timers: list[tuple[float, int, Callable[[], None]]] = []  # heap of (monotonic, seq, fn)
        self._timer_seq = 0
        self.agents: dict[int, AgentProc] = {}  # live agents, loop thread only
        self.ended_output: collections.OrderedDict[int, collections.deque] = collections.OrderedDict()
        self.waiters: dict[int, list[Callable[[dict], None]]] = collections.defaultdict(list)
        self.stopping = False
        self.boot_time = time.time()
        # Kernel services (memory, storage, tools, access...): objects with optional
        # start(kernel), on_exit(pcb) (release what the ended process held) and stop().
        self.services: list = []
        self.trace = self.add_service(Tracer(config))  # a span per call of every process (kernel/trace)
        self.access = self.add_service(AccessManager(config))  # first: the other services ask it
        self.tools = self.add_service(ToolManager(config))
        self.storage = self.add_service(StorageManager(config))
        self.memory = self.add_service(MemoryManager(config))
        self.watch = self.add_service(Watcher(config.tools))  # memory per agent tree, workspace totals, setuid sweep
        self.supervisor = Supervisor(config.procs.restart_period_s)
        self.results = Results(config.logs.dir)  # large proc.exit results, kept whole on disk
        self.confine_layers = reachable(probe(no_bwrap=config.confine.mode == "landlock"), config.data_dir)

    def add_service(self, service):
        """Register a service (started in order, stopped in reverse); returns it."""
        self.services.append(service)
        return service

    # -- cross-thread entry points ------------------------------------------------
    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread soon. Safe from any thread and from signal handlers."""
        self._posted.append(fn)
        try:
            os.write(self.wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # pipe full: the loop is already awake

    def event(self, **ev: Any) -> None:
        """Send an event to the front (output, exit, log, ready). Any thread."""
        self.send_front(ev)

    def send_front(self, obj: dict) -> None:
        try:
            data = control_wire.encode(obj)
        except (TypeError, ValueError, RecursionError):  # a bug in what we send: say so, never stop the caller
            log.exception("control: cannot send %s to the front", str(obj.get("event") or obj.get("reply"))[:40])
            return
        with self.ctrl_lock:
            try:
                self.ctrl.send_bytes(data)
            except (OSError, EOFError, BrokenPipeError):
                pass  # front gone: the loop sees EOF and stops

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Loop thread only: run ``fn`` after ``delay_s`` seconds (no sleeping)."""
        self._timer_seq += 1
        heapq.heappush(self._timers, (time.monotonic() + delay_s, self._timer_seq, fn))

    # -- replies to agents ---------------------------------------------------------
    def reply(self, ap: AgentProc, data: bytes) -> None:
        """Loop thread: queue a reply frame and try to write it now."""
        if not ap.queue_reply(data):
            return  # the agent is gone or stopped reading: drop (DESIGN: never wait on an agent)
        if ap.flush() and not self._registered(ap.tx_fd, ap):
            self.sel.register(ap.tx_fd, selectors.EVENT_WRITE, ("tx", ap))  # finish when the pipe drains

    def reply_later(self, pid: int, data: bytes) -> None:
        """Any thread: reply to ``pid`` if it is still alive."""
        def send():
            ap = self.agents.get(pid)
            if ap is not None:
                self.reply(ap, data)
        self.post(send)

    def _registered(self, fd: int, owner=None) -> bool:
        """Is ``fd`` in the selector (for ``owner``)? fd numbers are reused as soon as a
        reaped agent's pipes close, so a check for an agent must match the agent too."""
        try:
            key = self.sel.get_key(fd)
        except (KeyError, ValueError):  # ValueError: fd -1, a channel closed at kill
            return False
        return owner is None or key.data[1] is owner

    # -- the loop -------------------------------------------------------------------
    def serve(self) -> None:
        signal.signal(signal.SIGTERM, lambda *a: self.post(self.shutdown))
        signal.signal(signal.SIGINT, lambda *a: self.post(self.shutdown))
        self.sel.register(self.ctrl.fileno(), selectors.EVENT_READ, ("ctrl", None))
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        self.engine.on_ready = lambda: self.event(event="ready", stats=self.engine.stats())
        self.engine.on_progress = lambda **p: self.event(event="progress", **p)  # model conversion/load
        self.engine.start()
        for svc in self.services:
            if hasattr(svc, "start"):
                svc.start(self)
        self.event(event="booted", kernel_pid=os.getpid())
        log.info("kernel up (pid %d), model %s, scheduler %s", os.getpid(), self.config.llm.name,
                 self.config.sched.policy)
        for level, line in boot_report(self.config.confine.mode, self.confine_layers):
            getattr(log, level)(line)
        from kernel import apps

        for app in apps.broken():  # once, at boot: an app whose profile cannot be used is not installed
            log.warning("agent app %s is broken and not installed: %s: %s", app.folder, app.path, app.error)
        while not (self.stopping and not self.agents):
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            for key, mask in self.sel.select(timeout):
                kind, ap = key.data
                if ap is not None and self.agents.get(ap.pcb.pid) is not ap:
                    continue  # reaped earlier in this batch; its fd number may belong to a new agent
                if kind == "wake":
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
                elif kind == "ctrl":
                    self._on_ctrl()
                elif kind == "rx":
                    self._on_rx(ap)
                elif kind == "tx":
                    if not ap.flush() and self._registered(ap.tx_fd, ap):
                        self.sel.unregister(ap.tx_fd)
                elif kind == "sentinel":
                    self._reap(ap)
            while self._posted:
                self._posted.popleft()()
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                heapq.heappop(self._timers)[2]()
        if self.engine.ready.is_set():
            self.engine.stop()
        else:  # stopped while the model converts or loads: do not wait for it (kernel/boot.py exits at once)
            log.info("stopping while the model loads: not waiting for the load to finish")
        for svc in reversed(self.services):
            if hasattr(svc, "stop"):
                try:
                    svc.stop()
                except Exception:
                    log.exception("stopping service %s", type(svc).__name__)
        log.info("kernel stopped")

    def _on_ctrl(self) -> None:
        try:
            data = self.ctrl.recv_bytes()
        except (EOFError, OSError):
            log.warning("front process gone: stopping")
            self.sel.unregister(self.ctrl.fileno())
            self.shutdown()
            return
        try:
            req = control_wire.decode(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            log.warning("control: ignoring a message that is not a JSON object: %s", str(e)[:120])
            return
        from kernel import control
        control.handle(self, req)

    # -- agent messages -----------------------------------------------------------
    def _on_rx(self, ap: AgentProc) -> None:
        if ap.pcb.os_pid == ap.process.pid and ap.bwrap:  # the agent speaks, so bwrap's child exists now
            pid = ap.agent_pid()
            with self.table.lock:
                ap.pcb.os_pid = pid or ap.pcb.os_pid
        for frame in ap.read_available():
            self._on_frame(ap, frame)
        if not ap.rx_open and self._registered(ap.rx_fd, ap):
            self.sel.unregister(ap.rx_fd)  # EOF: the sentinel will reap it

    def _on_frame(self, ap: AgentProc, frame) -> None:
        pcb = ap.pcb
        if isinstance(frame, Oversize):
            log.warning("pid %d sent a %d-byte message (limit %d): refused", pcb.pid, frame.size, ap.decoder.limit)
            self.reply(ap, messages.error(None, messages.E2BIG,
                                          f"message of {frame.size} bytes exceeds the {ap.decoder.limit}-byte limit"))
            return
        try:
            msg = messages.decode_request(frame)
            if msg.pid != pcb.pid:
                raise messages.ProtocolError(messages.EPERM, f"pid {msg.pid} is not yours (you are pid {pcb.pid})",
                                             getattr(msg, "id", None))
        except messages.ProtocolError as e:
            with self.table.lock:
                pcb.syscalls["<invalid>"] += 1
            log.warning("pid %d: bad message: %s", pcb.pid, e.message)
            self.reply(ap, messages.error(e.req_id, e.code, e.message))
            return
        if isinstance(msg, messages.LogRecord):
            self._on_agent_output(ap, msg.level, msg.text)
            return
        if pcb.exit_reported is not None:  # proc.exit was its last call: it is on its way out
            with self.table.lock:
                pcb.syscalls["<refused>"] += 1
            self.reply(ap, messages.error(msg.id, messages.ESRCH, f"pid {pcb.pid} has reported its exit "
                                          "(proc.exit): no more system calls"))
            return
        if pcb.first_syscall_at is None:
            with self.table.lock:
                pcb.first_syscall_at = time.time()
            self.table.transition(pcb, ProcState.RUNNING)
        counted = False  # every message is counted once: under its name once valid, else <refused>/<invalid>
        span = self.trace.begin(pcb.pid, msg.name, msg.args)  # ended below, or by the handler's Reply
        try:
            bucket = "<refused>"
            self.access.admit_syscall(pcb, msg.name)  # syscall rate quota: EAGAIN, never a wait
            bucket = "<invalid>"
            spec = validate(TABLE, msg)
            with self.table.lock:
                pcb.syscalls[msg.name] += 1
            counted = True
            self.trace.current = span
            result = spec.handler(self, ap, msg)
        except SyscallFailure as e:
            if not counted:
                with self.table.lock:
                    pcb.syscalls[bucket] += 1
            self.trace.end(span, e.code, e.message)
            self.reply(ap, messages.error(msg.id, e.code, e.message))
            return
        except Exception as e:  # a handler bug must not take the kernel down
            log.exception("syscall %s from pid %d failed", msg.name, pcb.pid)
            self.trace.end(span, messages.EIO, str(e))
            self.reply(ap, messages.error(msg.id, messages.EIO, f"{msg.name} failed in the kernel: {e}"))
            return
        finally:
            self.trace.current = None
        if result is not DEFERRED:
            try:
                data = messages.ok(msg.id, result)
                self.trace.end(span, size=len(data), result=result)
            except (TypeError, ValueError) as e:
                data = messages.error(msg.id, messages.EIO, f"unserialisable result: {e}")
                self.trace.end(span, messages.EIO, str(e))
            self.reply(ap, data)

    def _on_agent_output(self, ap: AgentProc, level: str, text: str) -> None:
        ap.output.append(text[:OUTPUT_LINE_MAX])
        self.event(event="output", pid=ap.pcb.pid, agent=ap.pcb.name, level=level, text=text)

    # -- process management --------------------------------------------------------
    def spawn(self, name: str, task: str, priority: int = 0, parent: int | None = None,
              restart_max: int | None = None, lineage: int = 0, tree: int = 0) -> int:
        """Loop thread: start an agent process; returns its AIOS pid.

        ``parent``: the agent that asked (proc.spawn), None for the user's own spawn. ``tree``: the spawn
        tree it joins (a restart keeps its predecessor's); 0: its parent's, or a new tree rooted at itself.
        """
        from kernel import apps
        from kernel.logs import agent_log_path, prune_agent_runs

        if self.stopping:
            raise SyscallFailure(messages.EAGAIN, "kernel is stopping")
        if not task.strip():  # the one check both ways in share beyond their schema (SPAWN_ARGS)
            raise SyscallFailure(messages.EINVAL, "a task is required")
        procs = self.config.procs
        if len(self.agents) >= procs.max_agents:
            raise SyscallFailure(messages.EAGAIN, f"{len(self.agents)} agents are running, the most the kernel "
                                                  f"runs at once (--max_agents {procs.max_agents}); try later")
        if parent is not None and self.table.live_children(parent) >= procs.max_children:
            raise SyscallFailure(messages.EAGAIN, f"pid {parent} already has {procs.max_children} live "
                                                  f"children (--max_children); wait for one first")
        app = apps.find(name)
        if app is None:
            raise SyscallFailure(messages.ESRCH, apps.not_found(name))
        if parent is not None and not tree:
            up = self.table.get(parent)
            tree = (up.tree or up.pid) if up is not None else parent
        self._admit(app.name, parent, tree)
        workspace = self.tools.workspace(app.name)
        file_bytes = self.watch.admit(app.name, workspace)  # ENOSPC when its workspace is over its cap
        pcb = self.table.new(app.name, task, priority, group=self.access.group_of(app.name))
        pcb.restart_max = self.config.procs.restart_max if restart_max is None else restart_max
        pcb.parent = parent
        pcb.lineage = lineage or pcb.pid
        pcb.tree = tree or pcb.pid
        pcb.tools = self.access.profile_tools(app)  # its rights, from the profile it is launched with
        if self.config.logs.agent_mode == "file":
            prune_agent_runs(self.config.logs.dir, app.name, self.config.logs.keep_runs,
                             [a.pcb.log_path for a in self.agents.values() if a.pcb.log_path])
            pcb.log_path = agent_log_path(self.config.logs.dir, app.name, pcb.pid)
        boot = {"pid": pcb.pid, "name": app.name, "task": task, "kernel_pid": os.getpid(),
                "log_path": pcb.log_path, "log_max_bytes": self.config.logs.max_bytes,
                "log_backups": self.config.logs.backups,
                "model": self.config.llm.name,  # the agent's endpoint names it
                "app": {"module": app.module, "path": app.path, "description": app.description,
                        "steps": app.steps, "tools": app.tools, "config": app.config}}
        try:
            ap = AgentProc(pcb, boot, self.config, self.confine_layers, app, workspace, file_bytes)
        except (OSError, ConfineError) as e:
            with self.table.lock:
                self.table.transition(pcb, ProcState.FAILED)
                pcb.error, pcb.end_time = f"spawn failed: {e}", time.time()
            code = messages.EPERM if isinstance(e, ConfineError) else messages.EAGAIN
            raise SyscallFailure(code, f"cannot start {app.name}: {e}") from None
        with self.table.lock:
            pcb.confinement = ap.confinement
        self.agents[pcb.pid] = ap
        self.trace.spawned(pcb, ap.confinement)  # its root span, under the current proc.spawn span if any
        self.sel.register(ap.rx_fd, selectors.EVENT_READ, ("rx", ap))
        self.sel.register(ap.sentinel, selectors.EVENT_READ, ("sentinel", ap))
        if ap.flush():  # a boot record (its task) larger than the pipe: the rest goes when the pipe drains
            self.sel.register(ap.tx_fd, selectors.EVENT_WRITE, ("tx", ap))
        log.info("spawned %s pid %d (os pid %d, confinement %s)%s", app.name, pcb.pid, ap.process.pid,
                 ap.confinement, f" from pid {parent}" if parent else "")
        return pcb.pid

    def _admit(self, app: str, parent: int | None, tree: int) -> None:
        """Loop thread: EAGAIN unless a spawn from an agent fits the slots agents may take.

        The user's own spawns (``parent`` None) are held by --max_agents alone: the user is trusted.
        A spawn from an agent (proc.spawn, or the restart of a process an agent spawned) also needs a
        slot outside the user's reserve (KernelConfig.user_reserve), fewer than agents_per_tree live
        agents in its spawn tree and fewer than agents_per_app live agents of its app (the user's
        runs of it included). So no app and no tree takes every slot, and a `run` of the user's always
        finds one.
        """
        if parent is None:
            return
        cfg = self.config
        room = cfg.procs.max_agents - cfg.procs.user_reserve
        if len(self.agents) >= room:
            raise SyscallFailure(messages.EAGAIN, f"{len(self.agents)} agents are running; agents may start at most "
                                                  f"{room} of the --max_agents {cfg.procs.max_agents} slots, the other "
                                                  f"{cfg.procs.user_reserve} are kept for the user's own spawns; "
                                                  "try later")
        n = self.table.live_of(tree=tree)
        if n >= cfg.procs.agents_per_tree:
            raise SyscallFailure(messages.EAGAIN, f"the spawn tree of pid {tree} already has {n} live agents "
                                                  f"(--max_agents_per_tree {cfg.procs.agents_per_tree}); wait for one "
                                                  f"to end")
        n = self.table.live_of(name=app)
        if n >= cfg.procs.agents_per_app:
            raise SyscallFailure(messages.EAGAIN, f"{n} {app} agents are running (--max_agents_per_app "
                                                  f"{cfg.procs.agents_per_app}); wait for one to end")

    def kill(self, pid: int, reason: str | None = None, now: bool = False) -> None:
        """Loop thread: SIGTERM the agent's group now, SIGKILL after the grace period.

        ``reason``: why the kernel kills it on its own ("memory: ...", kernel/process/watch.py), its error
        once reaped; ``now``: SIGKILL the sandbox at once, no grace period."""
        ap = self.agents.get(pid)
        if ap is None:
            pcb = self.table.get(pid)
            if pcb is None:
                raise SyscallFailure(messages.ESRCH, f"no process with pid {pid}")
            raise SyscallFailure(messages.ESRCH, f"pid {pid} has already ended ({pcb.state.value})")
        with self.table.lock:
            ap.pcb.kill_requested = True
            ap.pcb.kill_reason = reason or ap.pcb.kill_reason
        self.trace.killed(pid, reason)
        self.engine.cancel_pid(pid)
        for fd in (ap.rx_fd, ap.tx_fd):
            if self._registered(fd, ap):
                self.sel.unregister(fd)
        ap.close_channel()  # from now on nothing speaks in this agent's name
        if now:
            ap.kill()
        else:
            ap.terminate()
            self.call_later(self.config.procs.kill_grace_s, lambda: pid in self.agents and ap.kill())
        log.info("kill pid %d %s", pid, f"({reason})" if reason else "requested")

    def _reap(self, ap: AgentProc) -> None:
        pcb = ap.pcb
        for frame in ap.read_available():  # a last proc.exit may still sit in the pipe
            self._on_frame(ap, frame)
        for fd in (ap.rx_fd, ap.tx_fd, ap.sentinel):
            if self._registered(fd, ap):
                self.sel.unregister(fd)
        ap.close()
        code = ap.exitcode  # < 0: ended by signal -code (agentproc decodes bwrap's 128 + signal)
        self.agents.pop(pcb.pid, None)
        self.engine.cancel_pid(pcb.pid)
        self.engine.forget_pid(pcb.pid)  # its prefix-cache entries and scheduling record go
        for svc in self.services:
            if hasattr(svc, "on_exit"):
                try:
                    svc.on_exit(pcb)
                except Exception:
                    log.exception("service %s: releasing pid %d", type(svc).__name__, pcb.pid)
        self.ended_output[pcb.pid] = ap.output
        while len(self.ended_output) > ENDED_OUTPUT_KEPT:
            self.ended_output.popitem(last=False)
        with self.table.lock:
            pcb.end_time = time.time()
            pcb.exit_code, pcb.exit_signal = (None, -code) if code is not None and code < 0 else (code, None)
            state, why_failed = ended_state(pcb)
            self.table.transition(pcb, state)
            pcb.error = pcb.error if pcb.state == ProcState.FAILED and pcb.exit_reported == "error" else why_failed
            pcb.kept_bytes = kept_bytes(pcb)
            restart, why = self.supervisor.decide(pcb)
            if why and not restart:
                pcb.error = f"{pcb.error}; {why}"
        log.info("pid %d (%s) ended: %s, exit code %s", pcb.pid, pcb.name, pcb.state.value, code)
        self.trace.exited(pcb)  # before the exit event: a follower sees the last spans first
        if restart and not self.stopping:
            try:
                # Same parent and tree: a restart neither leaves its tree's cap nor takes the user's reserve.
                new = self.spawn(pcb.name, pcb.task, pcb.priority, parent=pcb.parent, restart_max=pcb.restart_max,
                                 lineage=pcb.lineage, tree=pcb.tree)
                with self.table.lock:
                    pcb.restarted_as = new
                log.warning("supervisor: pid %d (%s) %s; restarted as pid %d (%s)",
                            pcb.pid, pcb.name, pcb.state.value, new, why)
            except SyscallFailure as e:
                log.error("supervisor: could not restart pid %d: %s", pcb.pid, e.message)
        with self.table.lock:
            snap = pcb.snapshot()
        self.event(event="exit", pid=pcb.pid, snapshot=snap)
        for notify in self.waiters.pop(pcb.pid, []):
            notify(snap)
        for pid in self.table.prune(self.config.procs.history_max_procs, self.config.procs.history_max_bytes):
            self.ended_output.pop(pid, None)

    def expect_exit(self, ap: AgentProc) -> None:
        """Loop thread: ``ap`` reported its exit; SIGKILL its group if it has not exited after the grace period."""
        def overdue():
            if self.agents.get(ap.pcb.pid) is ap:
                log.warning("pid %d did not exit within %.1f s of proc.exit: killing it", ap.pcb.pid,
                            self.config.procs.kill_grace_s)
                with self.table.lock:
                    ap.pcb.exit_overdue = True
                ap.kill()  # the whole sandbox: every process it started
        self.call_later(self.config.procs.kill_grace_s, overdue)

    def shutdown(self) -> None:
        """Loop thread: stop accepting work, terminate every agent; serve() returns when all are reaped."""
        if self.stopping:
            return
        self.stopping = True
        log.info("shutting down: %d agents to stop", len(self.agents))
        for pid in list(self.agents):
            self.kill(pid)


def ended_state(pcb) -> tuple[ProcState, str | None]:
    """(final state, error) of a reaped process from its report and its OS exit status (lock held).

    done    it reported a result (proc.exit ok) and exited with status 0
    killed  it ended by a signal (a kill request, or SIGKILL after overstaying proc.exit)
    failed  anything else: a reported failure, a crash, an exit without a result, a non-zero status
    """
    if pcb.exit_signal is not None:
        name = signal.Signals(pcb.exit_signal).name if pcb.exit_signal in signal.valid_signals() else \
            f"signal {pcb.exit_signal}"
        if pcb.kill_reason:
            return ProcState.KILLED, f"killed ({name}): {pcb.kill_reason}"
        if pcb.kill_requested:
            return ProcState.KILLED, f"killed on request ({name})"
        if pcb.exit_overdue:
            return ProcState.KILLED, f"killed ({name}): still running after proc.exit"
        return ProcState.KILLED, f"killed by {name}"
    if pcb.exit_reported == "ok" and pcb.exit_code == 0:
        return ProcState.DONE, None  # finished (even if a kill request came too late to matter)
    if pcb.kill_requested:
        why = f": {pcb.kill_reason}" if pcb.kill_reason else " on request"
        return ProcState.KILLED, f"killed{why} (it exited with status {pcb.exit_code} first)"
    if pcb.exit_reported == "error":
        return ProcState.FAILED, pcb.error
    if pcb.exit_reported == "ok":
        return ProcState.FAILED, f"reported a result but exited with status {pcb.exit_code}"
    return ProcState.FAILED, f"exited with status {pcb.exit_code} without a result"
