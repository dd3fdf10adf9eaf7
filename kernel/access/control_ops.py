"""Control ops (front -> kernel) of the access manager, assembled into kernel.control.OPS (their argument
schemas are in kernel/protocol/control.py).

  confirm   {cid, allow}          answer a pending "confirm" event (the shell's y/N)
  access    {}                    policy, groups, pending confirmations, quotas, audit log path
  setgroup  {agent, group}        the user moves an agent app into a group (audited, no confirmation)
"""

from __future__ import annotations

from kernel.protocol import messages
from kernel.syscall import SyscallFailure


def op_confirm(kernel, a, reply):
    if not kernel.access.decide(a["cid"], a["allow"], "user"):
        raise SyscallFailure(messages.ESRCH,
                             f"no pending confirmation {a['cid']} (answered, timed out or its agent ended)")
    return True


def op_access(kernel, a, reply):
    return kernel.access.describe()


def op_setgroup(kernel, a, reply):
    from kernel import apps

    # The user's op, not a running agent's rights: the installed profile only spells the name (mathagent ->
    # MathAgent). Groups live in groups.json, never in a profile; live processes follow at once (set_group).
    app = apps.find(a["agent"])
    kernel.access.set_group(app.name if app else a["agent"], a["group"], by="user")
    return {"agent": app.name if app else a["agent"], "group": a["group"]}


HANDLERS = {"confirm": op_confirm, "access": op_access, "setgroup": op_setgroup}  # schemas: kernel/protocol/control.py
