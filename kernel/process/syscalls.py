"""proc.* syscalls: the process manager as agents see it."""

from __future__ import annotations

from kernel.param import ERROR_KEPT, PREVIEW
from kernel.process.history import Results
from kernel.process.table import ProcState
from kernel.protocol import messages
from kernel.protocol.control import SPAWN_ARGS
from kernel.protocol.results import answer_of
from kernel.syscall import DEFERRED, PID, Entries, Reply, SyscallFailure

SYSCALLS = Entries("proc")



PUBLIC_FIELDS = ("pid", "agent", "state", "start_time", "end_time")


def visible_snapshot(kernel, caller, pcb) -> dict:
    """What ``caller`` may see of ``pcb``: everything for itself, its own children and its group;
    for another group's process only its existence and state, never its task, result or error."""
    with kernel.table.lock:
        snap = pcb.snapshot()
    if pcb.pid == caller.pid or pcb.parent == caller.pid or pcb.group == caller.group:
        return Results.whole(snap)
    return {k: snap[k] for k in PUBLIC_FIELDS}


def _lookup(kernel, pid: int):
    pcb = kernel.table.get(pid)
    if pcb is None:
        raise SyscallFailure(messages.ESRCH, f"no process with pid {pid}")
    return pcb


@SYSCALLS.register("proc.info", {"properties": {"pid": PID}}, "table entry of this process (or of pid)")
def proc_info(kernel, ap, call):
    return visible_snapshot(kernel, ap.pcb, _lookup(kernel, call.args.get("pid", ap.pcb.pid)))


@SYSCALLS.register("proc.spawn", {
    "required": ["agent", "task"],
    "properties": SPAWN_ARGS,
}, "start another agent; returns its pid")
def proc_spawn(kernel, ap, call):
    pid = kernel.spawn(call.args["agent"], call.args["task"], call.args.get("priority", 0), parent=ap.pcb.pid)
    return {"pid": pid}


@SYSCALLS.register("proc.wait", {
    "required": ["pid"],
    "properties": {"pid": PID, "timeout": {"type": "number", "minimum": 0, "maximum": 86400}},
}, "block until pid ends; returns its table entry")
def proc_wait(kernel, ap, call):
    pid = call.args["pid"]
    if pid == ap.pcb.pid:
        raise SyscallFailure(messages.EINVAL, "a process cannot wait for itself")
    pcb = _lookup(kernel, pid)
    if pid not in kernel.agents:
        return visible_snapshot(kernel, ap.pcb, pcb)
    kernel.table.transition(ap.pcb, ProcState.SLEEPING)
    reply = Reply(kernel, ap.pcb.pid, call.id, before=lambda: kernel.table.transition(ap.pcb, ProcState.RUNNING))
    kernel.waiters[pid].append(lambda snap: reply.run(lambda: visible_snapshot(kernel, ap.pcb, pcb)))
    if "timeout" in call.args:  # whichever comes first answers
        kernel.call_later(call.args["timeout"], lambda: reply.fail(messages.ETIMEDOUT, f"pid {pid} still running"))
    return DEFERRED


@SYSCALLS.register("proc.exit", {
    "properties": {"result": {}, "status": {"enum": ["ok", "error"]}},
}, "report this process's result (status ok) or failure (status error, result: the reason); "
   "the process must then exit: later syscalls are refused, and it is killed after the kill grace period")
def proc_exit(kernel, ap, call):
    """Records the report only. The process has ended when its OS process has exited: the reaper sets
    its state from the report and the OS exit status (kernel.Kernel._reap)."""
    pcb = ap.pcb
    value = call.args.get("result")
    ok = call.args.get("status", "ok") == "ok"
    stored, path = kernel.results.keep(pcb, value) if ok else (None, None)
    answer = answer_of(value) if ok else None
    if answer is not None and path and len(answer) > PREVIEW:  # the whole answer is read back with the result
        answer = answer[:PREVIEW] + " …"
    with kernel.table.lock:
        pcb.exit_reported = "ok" if ok else "error"
        if ok:
            pcb.result, pcb.result_path, pcb.answer = stored, path, answer
        else:
            pcb.error = str(value)[-ERROR_KEPT:]
    kernel.expect_exit(ap)
    return True
