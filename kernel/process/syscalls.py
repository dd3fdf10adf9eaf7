"""proc.* syscalls: the process manager as agents see it."""

from __future__ import annotations

from kernel import messages
from kernel.process.table import ProcState
from kernel.syscall import DEFERRED, PID, SyscallFailure, register


@register("proc.info", {"properties": {"pid": PID}}, "table entry of this process (or of pid)")
def proc_info(kernel, ap, call):
    pid = call.args.get("pid", ap.pcb.pid)
    pcb = kernel.table.get(pid)
    if pcb is None:
        raise SyscallFailure(messages.ESRCH, f"no process with pid {pid}")
    with kernel.table.lock:
        snap = pcb.snapshot()
    if pid != ap.pcb.pid and pcb.group != ap.pcb.group:
        # Another group's process: its existence and state, not its task or result.
        snap = {k: snap[k] for k in ("pid", "agent", "state", "start_time", "end_time")}
    return snap


@register("proc.spawn", {
    "required": ["agent", "task"],
    "properties": {"agent": {"type": "string", "minLength": 1, "maxLength": 128},
                   "task": {"type": "string", "minLength": 1, "maxLength": 100_000},
                   "priority": {"type": "integer", "minimum": -20, "maximum": 20}},
}, "start another agent; returns its pid")
def proc_spawn(kernel, ap, call):
    pid = kernel.spawn(call.args["agent"], call.args["task"], call.args.get("priority", 0), parent=ap.pcb.pid)
    return {"pid": pid}


@register("proc.wait", {
    "required": ["pid"],
    "properties": {"pid": PID, "timeout": {"type": "number", "minimum": 0, "maximum": 86400}},
}, "block until pid ends; returns its table entry")
def proc_wait(kernel, ap, call):
    pid = call.args["pid"]
    if pid == ap.pcb.pid:
        raise SyscallFailure(messages.EINVAL, "a process cannot wait for itself")
    pcb = kernel.table.get(pid)
    if pcb is None:
        raise SyscallFailure(messages.ESRCH, f"no process with pid {pid}")
    if pid not in kernel.agents:
        with kernel.table.lock:
            return pcb.snapshot()
    kernel.table.set_state(ap.pcb, ProcState.SLEEPING)
    answered = []

    def done(snap):
        if not answered:
            answered.append(1)
            kernel.table.set_state(ap.pcb, ProcState.RUNNING)
            kernel.reply(ap, messages.ok(call.id, snap))

    def timeout():
        if not answered:
            answered.append(1)
            kernel.table.set_state(ap.pcb, ProcState.RUNNING)
            kernel.reply(ap, messages.error(call.id, messages.ETIMEDOUT, f"pid {pid} still running"))

    kernel.waiters[pid].append(done)
    if "timeout" in call.args:
        kernel.call_later(call.args["timeout"], timeout)
    return DEFERRED


@register("proc.exit", {
    "properties": {"result": {}, "status": {"enum": ["ok", "error"]}},
}, "record this process's result; the process should then return")
def proc_exit(kernel, ap, call):
    with kernel.table.lock:
        pcb = ap.pcb
        pcb.result = call.args.get("result")
        if call.args.get("status", "ok") == "ok":
            pcb.state = ProcState.DONE if not pcb.kill_requested else pcb.state
        else:
            pcb.state = ProcState.FAILED
            pcb.error = str(pcb.result)[-2000:]
    return True
