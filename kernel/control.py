"""Control requests from the front process (shell, batch runner, main.py).

The front is trusted (it started the kernel), so control messages are plain
pickled dicts over a duplex Pipe: ``{"op": "spawn", "id": 3, ...}`` answered
by ``{"reply": 3, "ok": True, "result": ...}``. Handlers run on the loop
thread; ``wait`` replies later, when the process ends.
"""

from __future__ import annotations

import logging
import os
import time

import psutil

from kernel import messages
from kernel.process.history import Results
from kernel.syscall import SyscallFailure

log = logging.getLogger("aios.kernel")
_kernel_ps = psutil.Process()
_kernel_ps.cpu_percent(None)


def _reply(kernel, req_id, ok: bool, result=None, error: str | None = None, code: str | None = None) -> None:
    kernel.send_front({"reply": req_id, "ok": ok, "result": result, "error": error, "code": code})


def _pid(req) -> int:
    pid = req.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise SyscallFailure(messages.EINVAL, f"pid must be an integer, not {pid!r}")
    return pid


def op_spawn(kernel, req):
    task = req.get("task")
    if not isinstance(task, str) or not task.strip():
        raise SyscallFailure(messages.EINVAL, "a task is required")
    restart = req.get("restart_max")
    return kernel.spawn(str(req.get("agent", "")), task, int(req.get("priority", 0)),
                        restart_max=None if restart is None else int(restart))


def op_kill(kernel, req):
    kernel.kill(_pid(req))
    return True


def op_ps(kernel, req):
    return process_snapshots(kernel, include_ended=bool(req.get("all", True)))


def op_info(kernel, req):
    pid = _pid(req)
    for snap in process_snapshots(kernel, True):
        if snap["pid"] == pid:
            return Results.whole(snap)
    raise SyscallFailure(messages.ESRCH, f"no process with pid {pid}{_pruned(kernel, pid)}")


def _pruned(kernel, pid: int) -> str:
    """Why an earlier pid is missing: its entry left the bounded history."""
    return (f" (it ended and left the history of the last {kernel.config.history_max_procs} processes, "
            "--history_max_procs)") if 0 < pid < kernel.table.next_pid else ""


def op_stats(kernel, req):
    return kernel_stats(kernel)


def op_logs(kernel, req):
    """Console-mode output lines kept by the kernel, and the log file path in file mode."""
    pid = _pid(req)
    pcb = kernel.table.get(pid)
    if pcb is None:
        raise SyscallFailure(messages.ESRCH, f"no process with pid {pid}")
    ap = kernel.agents.get(pid)
    lines = list(ap.output) if ap else list(kernel.ended_output.get(pid, []))
    return {"pid": pid, "lines": lines, "log_path": pcb.log_path, "ended": pcb.state.ended}


def op_stop(kernel, req):
    kernel.shutdown()
    return True


OPS = {"spawn": op_spawn, "kill": op_kill, "ps": op_ps, "info": op_info, "stats": op_stats,
       "logs": op_logs, "stop": op_stop}


def op_tools(kernel, req):
    """Installed tools as plain dicts (the tool manager's describe()); [] when there is none."""
    tools = getattr(kernel, "tools", None)
    return list(tools.describe()) if tools is not None and hasattr(tools, "describe") else []


OPS["tools"] = op_tools

from kernel.access.control_ops import OPS as _ACCESS_OPS  # noqa: E402  (confirm, access, setgroup)
OPS.update(_ACCESS_OPS)


def handle(kernel, req) -> None:
    if not isinstance(req, dict):
        log.warning("control: ignoring %r", type(req).__name__)
        return
    req_id, op = req.get("id"), req.get("op")
    if op == "wait":
        return op_wait(kernel, req)
    fn = OPS.get(op)
    if fn is None:
        return _reply(kernel, req_id, False, error=f"unknown control op {op!r}", code=messages.ENOSYS)
    try:
        _reply(kernel, req_id, True, fn(kernel, req))
    except SyscallFailure as e:
        _reply(kernel, req_id, False, error=e.message, code=e.code)
    except Exception as e:
        log.exception("control op %s failed", op)
        _reply(kernel, req_id, False, error=f"{type(e).__name__}: {e}", code=messages.EIO)


def op_wait(kernel, req) -> None:
    """Reply when the process ends (at once if it already has)."""
    req_id = req.get("id")
    try:
        pid = _pid(req)
    except SyscallFailure as e:
        return _reply(kernel, req_id, False, error=e.message, code=e.code)
    pcb = kernel.table.get(pid)
    if pcb is None:
        return _reply(kernel, req_id, False, error=f"no process with pid {pid}{_pruned(kernel, pid)}",
                      code=messages.ESRCH)
    if pid not in kernel.agents:
        with kernel.table.lock:
            snap = pcb.snapshot()
        return _reply(kernel, req_id, True, Results.whole(snap))
    kernel.waiters[pid].append(lambda snap: _reply(kernel, req_id, True, Results.whole(snap)))


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


def kernel_stats(kernel) -> dict:
    with _kernel_ps.oneshot():
        me = {"kernel_pid": os.getpid(), "kernel_cpu_percent": _kernel_ps.cpu_percent(None),
              "kernel_rss": _kernel_ps.memory_info().rss}
    live = kernel.table.live()
    tools = kernel.tools.describe()
    mem = kernel.memory.stats()
    return {**kernel.engine.stats(), **me, "uptime_s": time.time() - kernel.boot_time,
            "scheduler": kernel.config.scheduler, "agents_live": len(live),
            "agents_total": len(kernel.table.all()),
            "mem_processes": mem["processes"], "mem_resident_bytes": mem["resident_bytes"],
            "mem_evicted_bytes": mem["evicted_bytes"],
            "tools_running": sum(t["running"] for t in tools), "tools_queued": sum(t["queued"] for t in tools)}
