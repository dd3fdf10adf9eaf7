"""The tool interface: what a tool declares and how the tool manager runs it.

A tool is an object with

  name          unique, [a-z0-9_]+ (what agents pass to ``tool.call``)
  description   one or two sentences the model reads
  schema        JSON schema of its arguments (an object); the kernel validates
                arguments against it before the tool runs
  side_effect   READ_ONLY | WRITES | IRREVERSIBLE; ``effect(args)`` may raise
                it for one call (``write_file`` onto an existing file is an
                irreversible overwrite); IRREVERSIBLE calls need confirmation
  parallel      how many calls of this tool may run at once; more are queued
  timeout_s     default per-call deadline (seconds); the caller may ask less
  isolation     "thread": runs on a kernel worker thread; only for tools whose
                every call is bounded (no blocking I/O that can hang).
                "process": runs in a child process the kernel kills at the
                deadline (network, subprocesses, anything that can hang).

``run(args, ctx)`` returns a JSON-serialisable result or raises ToolError.
It never sees the kernel: ``ctx`` carries the calling agent's identity, its
workspace directory and the call's deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kernel.protocol.messages import CodedError

READ_ONLY = "read_only"
WRITES = "writes"
IRREVERSIBLE = "irreversible"
SIDE_EFFECTS = (READ_ONLY, WRITES, IRREVERSIBLE)


class ToolError(CodedError):
    """A clear failure of one call. ``code`` reads like errno (EINVAL, EPERM, ENOENT, EIO...)."""


@dataclass
class ToolContext:
    """What a call may know about its caller. Plain data: crosses to child processes as JSON."""

    agent: str  # agent app name, e.g. MathAgent
    pid: int  # AIOS pid of the caller
    workspace: str  # absolute path of the agent's workspace directory (exists)
    docs_dirs: list[str] = field(default_factory=list)  # extra read-only document folders
    deadline: float = 0.0  # time.monotonic() by which the call must end (0: none)
    workspace_max_bytes: int = 0  # 0: no cap on the workspace's total size
    approved: str = READ_ONLY  # side-effect class this call was admitted (and, if irreversible, confirmed) under

    def remaining(self) -> float:
        """Seconds left before the deadline (inf if none)."""
        return float("inf") if not self.deadline else self.deadline - time.monotonic()

    def to_json(self) -> dict:
        return {"agent": self.agent, "pid": self.pid, "workspace": self.workspace, "docs_dirs": self.docs_dirs,
                "remaining_s": None if not self.deadline else max(0.0, self.remaining()),
                "workspace_max_bytes": self.workspace_max_bytes, "approved": self.approved}

    @classmethod
    def from_json(cls, d: dict) -> "ToolContext":
        rem = d.get("remaining_s")
        return cls(agent=d["agent"], pid=d["pid"], workspace=d["workspace"], docs_dirs=list(d.get("docs_dirs", [])),
                   deadline=0.0 if rem is None else time.monotonic() + rem,
                   workspace_max_bytes=d.get("workspace_max_bytes", 0), approved=d.get("approved", READ_ONLY))


class Tool:
    name: str = ""
    description: str = ""
    schema: dict = {"type": "object", "properties": {}, "additionalProperties": False}
    side_effect: str = READ_ONLY
    parallel: int = 4
    timeout_s: float = 10.0
    isolation: str = "thread"
    # Words of a task this tool serves (lowercase). An agent may show a small model only the tools
    # its task mentions (agent_apps/react_agent: a shortlist); the kernel never reads them.
    keywords: tuple[str, ...] = ()
    # Words an argument accepts, for arguments that take a name from a known set (units, currencies),
    # matched without case. Not enforced by the kernel (the tool reports an unknown one itself); an
    # agent may keep a small model's call to the words its task contains.
    values: dict[str, tuple[str, ...]] = {}

    def effect(self, args: dict, ctx: ToolContext) -> str:
        """Side-effect class of this call (default: the tool's). Must be cheap and must not block."""
        return self.side_effect

    def summary(self, args: dict) -> str:
        """One line shown when the user is asked to confirm this call."""
        parts = ", ".join(f"{k}={str(v)[:200]!r}" for k, v in args.items())
        return f"{self.name}({parts})"

    def run(self, args: dict, ctx: ToolContext) -> Any:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "side_effect": self.side_effect,
                "parallel": self.parallel, "timeout_s": self.timeout_s, "isolation": self.isolation,
                "schema": self.schema, "keywords": list(self.keywords),
                "values": {k: list(v) for k, v in self.values.items()}}


def obj_schema(required: list[str], **props: dict) -> dict:
    """Shorthand for an object schema with no extra properties."""
    return {"type": "object", "required": required, "properties": props, "additionalProperties": False}
