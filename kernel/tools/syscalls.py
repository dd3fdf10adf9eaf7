"""tool.* syscalls: list the installed tools, call one.

tool.call path (loop thread, never blocks): look up + validate the arguments
(ToolManager.prepare) -> the agent's profile must list the tool
(AccessManager.check_tool) -> an irreversible call waits for confirmation
(AccessManager.confirm: the user, or the policy) -> ToolManager.submit runs
or queues it. The process is WAITING_TOOL until the reply.

MCP tools (``mcp__<server>__<tool>``) take the same path. While the MCP
servers' first start is under way, tool.list and calls of MCP tools are held
(ToolManager.mcp.when_started) so that an agent started with the kernel sees
them; the hold is bounded by the servers' start timeout.
"""

from __future__ import annotations

from kernel.process.table import ProcState
from kernel.protocol import messages
from kernel.syscall import DEFERRED, Entries, Reply, SyscallFailure
from tools.base import IRREVERSIBLE

SYSCALLS = Entries("tool")


def _listing(kernel, pcb) -> list[dict]:
    keys = ("name", "description", "side_effect", "parallel", "timeout_s", "schema")
    return [{k: d[k] for k in keys} | {"keywords": d.get("keywords", []),
                                       "values": d.get("values", {}),
                                       "allowed": kernel.access.tool_allowed(pcb, d["name"])}
            for d in kernel.tools.describe()]


@SYSCALLS.register("tool.list", {},
                   "the installed tools: name, description, side_effect, parallel, schema, keywords, values, allowed")
def tool_list(kernel, ap, call):
    mcp = kernel.tools.mcp
    if mcp is None or not mcp.unstarted:
        return _listing(kernel, ap.pcb)
    reply = Reply(kernel, ap.pcb.pid, call.id)
    mcp.when_started(lambda: reply.run(lambda: _listing(kernel, ap.pcb)))
    return DEFERRED


@SYSCALLS.register("tool.call", {
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 128},
                   "args": {"type": "object"},
                   "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600}},
}, "run a tool with JSON arguments (validated against its schema); returns its result")
def tool_call(kernel, ap, call):
    pcb = ap.pcb
    name = call.args["name"]
    mcp = kernel.tools.mcp
    if mcp is None or not mcp.unstarted or not name.startswith("mcp__"):
        return _call(kernel, pcb, call)
    kernel.table.transition(pcb, ProcState.WAITING_TOOL)
    reply = _reply(kernel, pcb, call)

    def later():
        if kernel.agents.get(pcb.pid) is not ap:
            return  # ended while held
        try:
            _call(kernel, pcb, call, reply)
        except SyscallFailure as e:
            reply.error(e)
    mcp.when_started(later)
    return DEFERRED


def _reply(kernel, pcb, call) -> Reply:
    return Reply(kernel, pcb.pid, call.id, before=lambda: kernel.table.transition(pcb, ProcState.RUNNING))


def _call(kernel, pcb, call, reply: Reply | None = None):
    name = call.args["name"]
    job = kernel.tools.prepare(pcb, name, call.args.get("args", {}), call.args.get("timeout"))
    kernel.access.check_tool(pcb, name)
    reply = reply or _reply(kernel, pcb, call)
    server = name.split("__")[1] if name.startswith("mcp__") and name.count("__") >= 2 else None
    kernel.trace.note(reply.span, tool=name, side_effect=job.effect, mcp_server=server)  # the call's span

    def on_done(result, error):
        reply.error(error) if error is not None else reply.ok(result)

    kernel.table.transition(pcb, ProcState.WAITING_TOOL)
    if job.effect != IRREVERSIBLE:
        kernel.tools.submit(job, on_done)
        return DEFERRED

    def decided(allow: bool, reason: str) -> None:
        if allow:
            kernel.tools.submit(job, on_done)
        else:
            on_done(None, SyscallFailure(messages.EPERM, f"tool {name}: irreversible action not confirmed ({reason})"))

    kernel.access.confirm(pcb, "tool.call", f"tool {name}", job.tool.summary(job.args), decided)
    return DEFERRED
