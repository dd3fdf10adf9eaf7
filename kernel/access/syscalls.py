"""access.* syscalls: what a process may do, and asking to change its group."""

from __future__ import annotations

from kernel.access.manager import GROUP_RE
from kernel.process.table import ProcState
from kernel.protocol import messages
from kernel.syscall import DEFERRED, Entries, Reply, SyscallFailure

SYSCALLS = Entries("access")


@SYSCALLS.register("access.info", {}, "this process's group, the group's members, its quotas and usage, its tools")
def access_info(kernel, ap, call):
    acc, pcb = kernel.access, ap.pcb
    group = acc.group_of(pcb.name)
    tools = acc.allowed_tools(pcb)
    return {"pid": pcb.pid, "agent": pcb.name, "group": group, "members": acc.members(group),
            "quotas": acc.quotas.describe(),
            "usage": {"llm_tokens": acc.quotas.llm_used(pcb.group),
                      "syscalls_throttled": acc.quotas.throttled.get(pcb.pid, 0)},
            "tools": None if tools is None else sorted(tools),
            "workspace": kernel.tools.workspace(pcb.name)}


@SYSCALLS.register("access.setgroup", {
    "required": ["group"],
    "properties": {"group": {"type": "string", "minLength": 1, "maxLength": 64}},
}, "move this agent app into a privilege group (irreversible: needs confirmation)")
def access_setgroup(kernel, ap, call):
    pcb, acc = ap.pcb, kernel.access
    group = call.args["group"]
    if not GROUP_RE.match(group):
        raise SyscallFailure(messages.EINVAL, f"bad group name {group!r} (letters, digits, _ . : -, at most 64)")
    if acc.group_of(pcb.name) == group:
        return {"group": group, "changed": False}
    members = acc.members(group)
    detail = (f"{pcb.name} (pid {pcb.pid}) asks to join group {group!r} (members now: "
              f"{', '.join(members) or 'none'}); its members could read each other's memory and storage")

    reply = Reply(kernel, pcb.pid, call.id, before=lambda: kernel.table.transition(pcb, ProcState.RUNNING))

    def decided(allow: bool, reason: str) -> None:
        if not allow:
            reply.fail(messages.EPERM, f"joining group {group!r} was not confirmed ({reason})")
            return
        try:
            acc.set_group(pcb.name, group, by="agent", pcb=pcb)
        except (SyscallFailure, OSError) as e:  # groups.json could not be written: EIO with the reason
            reply.error(e)
        else:
            reply.ok({"group": group, "changed": True})

    kernel.table.transition(pcb, ProcState.SLEEPING)
    acc.confirm(pcb, "access.setgroup", f"group {group}", detail, decided)
    return DEFERRED
