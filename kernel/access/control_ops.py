"""Control ops (front -> kernel) of the access manager.

  confirm   {cid, allow}          answer a pending "confirm" event (the shell's y/N)
  access    {}                    policy, groups, pending confirmations, quotas, audit log path
  setgroup  {agent, group}        the user moves an agent app into a group (audited, no confirmation)
(The ``tools`` op, kernel.tools.describe(), lives in kernel/control.py.)
"""

from __future__ import annotations

from kernel import messages
from kernel.syscall import SyscallFailure


def op_confirm(kernel, req):
    cid, allow = req.get("cid"), req.get("allow")
    if not isinstance(cid, int) or isinstance(cid, bool) or not isinstance(allow, bool):
        raise SyscallFailure(messages.EINVAL, "confirm needs an integer cid and a boolean allow")
    if not kernel.access.decide(cid, allow, "user"):
        raise SyscallFailure(messages.ESRCH, f"no pending confirmation {cid} (answered, timed out or its agent ended)")
    return True


def op_access(kernel, req):
    return kernel.access.describe()


def op_setgroup(kernel, req):
    agent, group = req.get("agent"), req.get("group")
    if not isinstance(agent, str) or not agent or not isinstance(group, str):
        raise SyscallFailure(messages.EINVAL, "setgroup needs an agent name and a group name")
    from agent_apps import registry

    app = registry.find(agent)
    kernel.access.set_group(app.name if app else agent, group, by="user")
    return {"agent": app.name if app else agent, "group": group}


OPS = {"confirm": op_confirm, "access": op_access, "setgroup": op_setgroup}
