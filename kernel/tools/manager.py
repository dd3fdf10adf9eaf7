"""ToolManager: runs tool calls off the loop and off the LLM engine's thread.

Per tool, a slot set of ``tool.parallel`` places and a FIFO queue: a call
runs at once while the tool has a free place, otherwise it waits in that
tool's queue (never rejected, never behind a global lock: a busy shell does
not delay the calculator). Each running call gets a deadline (``timeout``,
default the tool's own, at most ``config.tools.timeout_s``), counted from the
moment it starts; time spent queued is bounded by the deadlines of the calls
ahead of it. (``--tool_scheduling global_lock`` puts every tool behind one
shared place instead: the original system's behaviour, kept as the
benchmark baseline.)

Isolation:
  thread   a daemon worker thread runs ``tool.run``; at the deadline the
           caller gets ETIMEDOUT (a loop timer). Only tools whose calls are
           bounded by construction run here; the slot is freed when the
           thread really ends, so the parallel limit holds even then.
  process  ``python -m kernel.tools.child`` in its own session; at the
           deadline the worker SIGKILLs the whole process group, so a hung
           call frees its slot on time.
  mcp      a tool of an MCP server (--mcp_config; kernel/tools/mcp/): the
           call runs on the MCP client's own thread, which answers by the
           deadline and cancels the request at the server; the loop timer
           answers ETIMEDOUT as for thread tools.

Threads: ``prepare``, ``submit``, ``on_exit``, ``describe`` run on the kernel's
loop thread and own ``_slots`` (no lock). Workers touch only their Job and
hand results back with ``kernel.post``.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jsonschema

from kernel.param import TOOL_MAX_RESULT as MAX_RESULT
from kernel.protocol import messages
from kernel.syscall import SyscallFailure
from tools import registry
from tools.base import IRREVERSIBLE, Tool, ToolContext, ToolError

log = logging.getLogger("aios.tools")
ROOT = Path(__file__).resolve().parents[2]  # the repo: tools/ and kernel/ live here
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def workspace_name(agent: str) -> str:
    """Folder name of an agent's workspace: the app name, made path-safe."""
    name = _SAFE.sub("_", agent)[:128].lstrip(".")
    return name or "_"


@dataclass(eq=False)  # identity: jobs live in sets
class Job:
    """One tool call. Loop thread owns every field except ``proc`` (worker, under ``lock``)."""

    pid: int
    tool: Tool
    origin: str
    args: dict
    ctx: ToolContext
    timeout: float  # seconds of run time
    effect: str  # side-effect class of this call
    on_done: Callable[[Any, SyscallFailure | None], None] | None = None
    seq: int = 0
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    answered: bool = False
    cancelled: bool = False
    proc: subprocess.Popen | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Slots:
    """Places and queue of one tool (loop thread only)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.running: set[Job] = set()
        self.queue: collections.deque[Job] = collections.deque()
        self.calls = self.errors = self.timeouts = self.max_running = 0


class ToolManager:
    def __init__(self, config):
        self.data_dir = os.path.abspath(config.data_dir)
        self.docs_dirs = [os.path.abspath(d) for d in [config.tools.docs_dir or os.path.join(config.data_dir, "docs")]]
        self.max_timeout = float(config.tools.timeout_s)
        self.workspace_max_bytes = int(config.tools.workspace_max_bytes)
        self.kernel = None
        self._seq = itertools.count(1)
        self.tools: dict[str, tuple[Tool, str]] = {}
        self.validators: dict[str, jsonschema.protocols.Validator] = {}
        for name, (tool, origin) in registry.discover().items():
            try:
                jsonschema.Draft202012Validator.check_schema(tool.schema)
            except jsonschema.SchemaError as e:
                log.warning("tools: %s has an invalid schema, not loaded: %s", name, e.message)
                continue
            self.tools[name] = (tool, origin)
            self.validators[name] = jsonschema.Draft202012Validator(tool.schema)
        self.scheduling = config.tools.scheduling
        if self.scheduling == "global_lock":  # the original system: every tool behind one lock (benchmark baseline)
            self._one = _Slots(1)
            self._slots = {name: self._one for name in self.tools}
        else:
            self._slots = {name: _Slots(tool.parallel) for name, (tool, _) in self.tools.items()}
        self.mcp = None
        if config.tools.mcp_config:
            from kernel.tools.mcp.service import McpService

            self.mcp = McpService(config, self)

    def register(self, tool: Tool, origin: str, validator) -> None:
        """Loop thread: add a tool found at run time (an MCP server's). Its slots outlive it."""
        self.tools[tool.name] = (tool, origin)
        self.validators[tool.name] = validator
        if tool.name not in self._slots:
            self._slots[tool.name] = self._one if self.scheduling == "global_lock" else _Slots(tool.parallel)
        else:
            self._slots[tool.name].limit = 1 if self.scheduling == "global_lock" else tool.parallel

    def unregister(self, name: str) -> None:
        """Loop thread: withdraw a tool; calls already admitted finish, and its counters stay."""
        self.tools.pop(name, None)
        self.validators.pop(name, None)

    # -- service hooks ----------------------------------------------------------------
    def start(self, kernel) -> None:
        self.kernel = kernel
        log.info("tools: %d loaded (%s)", len(self.tools), ", ".join(sorted(self.tools)))
        if self.mcp is not None:
            self.mcp.start(kernel)

    def on_exit(self, pcb) -> None:
        """Drop the ended process's queued calls; kill its running child processes."""
        for slots in self._slots.values():
            kept = collections.deque(j for j in slots.queue if j.pid != pcb.pid)
            slots.queue = kept
            for job in list(slots.running):
                if job.pid == pcb.pid:
                    job.answered = True  # nobody to answer
                    self._kill(job)

    def stop(self) -> None:
        for slots in self._slots.values():
            slots.queue.clear()
            for job in list(slots.running):
                self._kill(job)
        if self.mcp is not None:
            self.mcp.stop()

    # -- queries ------------------------------------------------------------------------
    def describe(self) -> list[dict]:
        """name, description, side_effect, parallel, timeout_s, isolation, schema, and live counters."""
        out = []
        for name in sorted(self.tools):
            s = self._slots[name]
            out.append({**self.tools[name][0].describe(), "running": len(s.running), "queued": len(s.queue),
                        "calls": s.calls, "errors": s.errors, "timeouts": s.timeouts, "max_running": s.max_running})
        return out

    def workspace(self, agent: str) -> str:
        path = os.path.join(self.data_dir, "workspaces", workspace_name(agent))
        os.makedirs(path, exist_ok=True)
        return path

    # -- calls (loop thread) ------------------------------------------------------------
    def prepare(self, pcb, name: str, args: dict, timeout: float | None = None) -> Job:
        """Look the tool up and validate ``args``; raises SyscallFailure (ENOENT, EINVAL)."""
        entry = self.tools.get(name)
        if entry is None and self.mcp is not None and (down := self.mcp.down_error(name)) is not None:
            raise down
        if entry is None:
            raise SyscallFailure(messages.ENOENT, f"no tool named {name!r} (installed: {', '.join(sorted(self.tools))})")
        tool, origin = entry
        try:
            err = jsonschema.exceptions.best_match(self.validators[name].iter_errors(args))
        except Exception as e:  # an MCP server's schema that cannot be applied ($ref cycles...)
            raise SyscallFailure(messages.EINVAL, f"tool {name}: its schema cannot check arguments: "
                                                  f"{type(e).__name__}") from None
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path)
            raise SyscallFailure(messages.EINVAL, f"tool {name}: bad arguments: {err.message}"
                                                  + (f" (at {where})" if where else ""))
        limit = min(timeout if timeout is not None else tool.timeout_s, self.max_timeout)
        ctx = ToolContext(agent=pcb.name, pid=pcb.pid, workspace=self.workspace(pcb.name), docs_dirs=self.docs_dirs,
                          workspace_max_bytes=self.workspace_max_bytes)
        try:
            effect = tool.effect(args, ctx)
        except Exception:
            log.exception("tools: %s.effect failed; treating the call as irreversible", name)
            effect = IRREVERSIBLE
        return Job(pid=pcb.pid, tool=tool, origin=origin, args=args, ctx=ctx, timeout=limit, effect=effect,
                   seq=next(self._seq))

    def submit(self, job: Job, on_done: Callable[[Any, SyscallFailure | None], None]) -> None:
        """Run now if the tool has a free place, else queue. ``on_done`` is called once, on the loop."""
        job.on_done = on_done
        job.ctx.approved = job.effect
        slots = self._slots[job.tool.name]
        slots.calls += 1
        if len(slots.running) < slots.limit:
            self._start(job, slots)
        else:
            slots.queue.append(job)

    def _start(self, job: Job, slots: _Slots) -> None:
        job.started_at = time.monotonic()
        job.ctx.deadline = job.started_at + job.timeout
        slots.running.add(job)
        slots.max_running = max(slots.max_running, len(slots.running))
        if job.tool.isolation == "mcp":
            self.mcp.submit(job, self._finished)
            self.kernel.call_later(job.timeout, lambda: self._expire(job))
            return
        target = self._work_process if job.tool.isolation == "process" else self._work_thread
        threading.Thread(target=target, args=(job,), name=f"tool-{job.tool.name}-{job.pid}", daemon=True).start()
        if job.tool.isolation == "thread":
            self.kernel.call_later(job.timeout, lambda: self._expire(job))

    def _expire(self, job: Job) -> None:
        if not job.answered and job in self._slots[job.tool.name].running:
            log.warning("tools: %s from pid %d passed its %.1fs deadline", job.tool.name, job.pid, job.timeout)
            self._slots[job.tool.name].timeouts += 1
            self._answer(job, None, SyscallFailure(messages.ETIMEDOUT,
                                                   f"tool {job.tool.name} timed out after {job.timeout:g}s"))

    def _answer(self, job: Job, result: Any, error: SyscallFailure | None) -> None:
        if job.answered:
            return
        job.answered = True
        if error is not None:
            self._slots[job.tool.name].errors += 1
        if job.on_done is not None:
            job.on_done(result, error)

    def _finished(self, job: Job, result: Any, error: SyscallFailure | None, timed_out: bool = False) -> None:
        """Loop thread: a worker ended. Answer (unless already), free the place, start the next call."""
        slots = self._slots[job.tool.name]
        if timed_out:
            slots.timeouts += 1
        self._answer(job, result, error)
        slots.running.discard(job)
        while slots.queue and len(slots.running) < slots.limit:
            self._start(slots.queue.popleft(), slots)

    # -- workers --------------------------------------------------------------------------
    def _work_thread(self, job: Job) -> None:
        result, error = None, None
        try:
            result = _checked(job.tool.run(job.args, job.ctx))
        except ToolError as e:
            error = _failure(job.tool.name, e)
        except Exception as e:  # a tool bug is the caller's error, not the kernel's crash
            log.exception("tools: %s failed", job.tool.name)
            error = SyscallFailure(messages.EIO, f"{job.tool.name} failed: {type(e).__name__}: {e}")
        self.kernel.post(lambda: self._finished(job, result, error))

    def _work_process(self, job: Job) -> None:
        req = json.dumps({"origin": job.origin, "tool": job.tool.name, "args": job.args,
                          "ctx": job.ctx.to_json()}).encode()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        result, error, timed_out = None, None, False
        try:
            with job.lock:
                if job.cancelled:
                    raise _Cancelled()
                job.proc = subprocess.Popen([sys.executable, "-m", "kernel.tools.child"], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=env,
                                            start_new_session=True, close_fds=True)
            try:
                out, err = job.proc.communicate(req, timeout=max(0.0, job.ctx.remaining()))
            except subprocess.TimeoutExpired:
                self._kill(job)
                job.proc.communicate()
                timed_out = True
                raise SyscallFailure(messages.ETIMEDOUT, f"tool {job.tool.name} timed out after {job.timeout:g}s "
                                                         "(its process was killed)") from None
            if job.proc.returncode != 0 or not out:
                raise SyscallFailure(messages.EIO, f"tool {job.tool.name}: its process ended with code "
                                                   f"{job.proc.returncode}: {err.decode(errors='replace')[-500:]}")
            reply = json.loads(out)
            if reply.get("ok"):
                result = _checked(reply.get("result"))
            else:
                error = _failure(job.tool.name, ToolError(reply.get("code", messages.EIO), str(reply.get("message"))))
        except _Cancelled:
            error = SyscallFailure(messages.ECANCELED, "cancelled")
        except SyscallFailure as e:
            error = e
        except ToolError as e:
            error = _failure(job.tool.name, e)
        except (OSError, ValueError) as e:
            error = SyscallFailure(messages.EIO, f"tool {job.tool.name}: {type(e).__name__}: {e}")
        self.kernel.post(lambda: self._finished(job, result, error, timed_out))

    def _kill(self, job: Job) -> None:
        """Any thread: SIGKILL the call's process group (thread tools cannot be killed; they are bounded)."""
        with job.lock:
            job.cancelled = True
            p = job.proc
        if job.tool.isolation == "mcp" and self.mcp is not None:
            self.mcp.cancel(job)
        if p is not None and p.returncode is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class _Cancelled(Exception):
    pass


def _failure(tool: str, e: ToolError) -> SyscallFailure:
    """A tool's error as the caller sees it, named after the tool once."""
    msg = e.message if e.message.startswith(f"{tool}:") else f"{tool}: {e.message}"
    return SyscallFailure(e.code, msg)


def _checked(result: Any) -> Any:
    try:
        size = len(json.dumps(result))
    except (TypeError, ValueError) as e:
        raise ToolError(messages.EIO, f"result is not JSON: {e}") from None
    if size > MAX_RESULT:
        raise ToolError(messages.E2BIG, f"result of {size} bytes exceeds {MAX_RESULT}")
    return result
