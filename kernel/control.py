"""Control requests from the front process (shell, batch runner, main.py).

The front is trusted (it started the kernel); control messages are JSON
objects over a duplex Pipe, framed like every other wire of the project
(kernel/protocol/control.py encode/decode, never pickle):
``{"op": "spawn", "id": 3, ...}`` answered by ``{"reply": 3, "ok": True, "result": ...}``. Handlers run on the loop
thread. Every op is in OPS, assembled once below from this module's ops,
the access manager's and the tracer's, each with the JSON schema of its
arguments from kernel/protocol/control.py, checked before its handler runs
(as for syscalls). A handler returns its
result, raises SyscallFailure, or returns DEFERRED and answers later through
the ``reply`` it was given (``wait``: when the process ends).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import psutil

from kernel.access import control_ops
from kernel.process.history import Results
from kernel.protocol import control as protocol
from kernel.protocol import messages
from kernel.syscall import DEFERRED, SyscallFailure
from kernel.trace import ops as trace_ops

log = logging.getLogger("aios.kernel")


@dataclass(frozen=True)
class ControlOp:
    name: str
    handler: Callable[..., Any]  # handler(kernel, args, reply) -> result | DEFERRED
    validator: Any


def ops(*tables: dict[str, Callable]) -> dict[str, ControlOp]:
    """OPS from tables of name -> handler, each name once, with its validator from the protocol's table
    (kernel/protocol/control.py); a name without a schema there, or a schema without a handler, is a bug."""
    out: dict[str, ControlOp] = {}
    for table in tables:
        for name, fn in table.items():
            if name in out or name not in protocol.SCHEMAS:
                raise ValueError(f"control op {name!r} defined twice or without a schema")
            out[name] = ControlOp(name, fn, protocol.VALIDATORS[name])
    if set(out) != set(protocol.SCHEMAS):
        raise ValueError(f"control ops without a handler: {sorted(set(protocol.SCHEMAS) - set(out))}")
    return out


def op_spawn(kernel, a, reply):
    return kernel.spawn(a["agent"], a["task"], a.get("priority", 0), restart_max=a.get("restart_max"))


def op_kill(kernel, a, reply):
    kernel.kill(a["pid"])
    return True


def op_ps(kernel, a, reply):
    return process_snapshots(kernel, include_ended=a.get("all", True))


def op_info(kernel, a, reply):
    pid = a["pid"]
    for snap in process_snapshots(kernel, True):
        if snap["pid"] == pid:
            return Results.whole(snap)
    raise SyscallFailure(messages.ESRCH, f"no process with pid {pid}{_pruned(kernel, pid)}")


def _pruned(kernel, pid: int) -> str:
    """Why an earlier pid is missing: its entry left the bounded history."""
    return (f" (it ended and left the history of the last {kernel.config.procs.history_max_procs} processes, "
            "--history_max_procs)") if 0 < pid < kernel.table.next_pid else ""


def op_wait(kernel, a, reply):
    """Answer when the process ends (at once if it already has)."""
    pid = a["pid"]
    pcb = kernel.table.get(pid)
    if pcb is None:
        raise SyscallFailure(messages.ESRCH, f"no process with pid {pid}{_pruned(kernel, pid)}")
    if pid not in kernel.agents:
        with kernel.table.lock:
            return Results.whole(pcb.snapshot())
    kernel.waiters[pid].append(lambda snap: reply(True, Results.whole(snap)))
    return DEFERRED


def op_stats(kernel, a, reply):
    return kernel_stats(kernel)


def op_logs(kernel, a, reply):
    """Console-mode output lines kept by the kernel, and the log file path in file mode."""
    pid = a["pid"]
    pcb = kernel.table.get(pid)
    if pcb is None:
        raise SyscallFailure(messages.ESRCH, f"no process with pid {pid}")
    ap = kernel.agents.get(pid)
    lines = list(ap.output) if ap else list(kernel.ended_output.get(pid, []))
    return {"pid": pid, "lines": lines, "log_path": pcb.log_path, "ended": pcb.state.ended}


def op_tools(kernel, a, reply):
    """Installed tools as plain dicts (the tool manager's describe())."""
    return list(kernel.tools.describe())


def op_apps(kernel, a, reply):
    """The kernel's catalog of agent apps (kernel/apps.py), read now: what a spawn would find."""
    from kernel import apps

    return apps.catalog()


def op_stop(kernel, a, reply):
    kernel.shutdown()
    return True


OPS = ops({"spawn": op_spawn, "kill": op_kill, "wait": op_wait, "ps": op_ps, "info": op_info, "logs": op_logs,
           "stats": op_stats, "tools": op_tools, "apps": op_apps, "stop": op_stop}, control_ops.HANDLERS, trace_ops.HANDLERS)
CLIENT_OPS = protocol.CLIENT_OPS


def check(op: ControlOp, args: dict) -> str | None:
    """Why ``args`` do not fit ``op``'s schema, or None (kernel/protocol/control.py: the daemon's check too)."""
    return protocol.check(op.name, args)


def handle(kernel, req) -> None:
    if not isinstance(req, dict):
        log.warning("control: ignoring %r", type(req).__name__)
        return
    req_id, name = req.get("id"), req.get("op")

    def reply(ok: bool, result=None, error: str | None = None, code: str | None = None) -> None:
        kernel.send_front({"reply": req_id, "ok": ok, "result": result, "error": error, "code": code})

    op = OPS.get(name) if isinstance(name, str) else None
    if op is None:
        return reply(False, error=f"unknown control op {name!r}", code=messages.ENOSYS)
    args = {k: v for k, v in req.items() if k not in ("op", "id")}
    bad = check(op, args)
    if bad is not None:
        return reply(False, error=bad, code=messages.EINVAL)
    try:
        result = op.handler(kernel, args, reply)
    except SyscallFailure as e:
        return reply(False, error=e.message, code=e.code)
    except Exception as e:
        log.exception("control op %s failed", name)
        return reply(False, error=f"{type(e).__name__}: {e}", code=messages.EIO)
    if result is not DEFERRED:
        reply(True, result)


# -- accounting: the one layer ps/top/reports read ----------------------------------
def process_snapshots(kernel, include_ended: bool = True) -> list[dict]:
    """Process table rows plus live CPU%/RSS of each agent process."""
    snaps = kernel.table.snapshots(include_ended)
    busy = kernel.engine.stats().get("busy_s") or 0.0
    for s in snaps:
        ap = kernel.agents.get(s["pid"])
        s.update(ap.resources() if ap else {"cpu_percent": 0.0, "rss": 0, "cpu_time_s": None})
        s["llm_share"] = (s["llm_time_s"] / busy) if busy else 0.0
    return snaps


@functools.cache
def _kernel_ps() -> psutil.Process:
    """This (kernel) process, made on the first stats request: its first cpu_percent is 0."""
    return psutil.Process()


def kernel_stats(kernel) -> dict:
    ps = _kernel_ps()
    with ps.oneshot():
        me = {"kernel_pid": os.getpid(), "kernel_cpu_percent": ps.cpu_percent(None), "kernel_rss": ps.memory_info().rss}
    live = kernel.table.live()
    tools = kernel.tools.describe()
    mem = kernel.memory.stats()
    return {**kernel.engine.stats(), **me, "uptime_s": time.time() - kernel.boot_time,
            "scheduler": kernel.config.sched.policy, "agents_live": len(live),
            "agents_total": len(kernel.table.all()),
            "mem_processes": mem["processes"], "mem_resident_bytes": mem["resident_bytes"],
            "mem_evicted_bytes": mem["evicted_bytes"],
            "tools_running": sum(t["running"] for t in tools), "tools_queued": sum(t["queued"] for t in tools)}
