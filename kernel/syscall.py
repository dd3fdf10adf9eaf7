"""The syscall table: name -> argument schema, handler, help (like xv6's syscalls[]).

Every agent message passes ``messages.decode_request`` (envelope) and then the
syscall's JSON schema here before its handler runs, so handlers see only
well-typed arguments. A handler returns the result, raises SyscallFailure for
a clear error, or returns DEFERRED when it will reply later (LLM, wait).

Each service declares its calls in an ``Entries`` (``SYSCALLS = Entries("fs")``,
then ``@SYSCALLS.register(...)`` on each handler); kernel/systable.py assembles
the one table from all of them, so the whole list is visible in one place and
importing a module registers nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jsonschema

from kernel import messages
from kernel.messages import CodedError

DEFERRED = object()


class SyscallFailure(CodedError):
    """A syscall handler's failure: the agent gets ``{"code", "message"}``."""


@dataclass(frozen=True)
class SyscallSpec:
    name: str
    schema: dict
    handler: Callable[..., Any]  # handler(kernel, agentproc, syscall) -> result | DEFERRED
    help: str
    validator: Any


class Entries:
    """One service's syscalls, all named ``<prefix>.<call>``, in the order they were declared."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.specs: list[SyscallSpec] = []

    def register(self, name: str, schema: dict, help: str):
        """Decorator: declare a handler with its argument schema (checked here, once)."""
        if not name.startswith(self.prefix + ".") or name in {s.name for s in self.specs}:
            raise ValueError(f"syscall {name!r} does not belong in {self.prefix}.* or is declared twice")
        schema = {"type": "object", "additionalProperties": False, **schema}
        jsonschema.Draft202012Validator.check_schema(schema)

        def deco(fn):
            self.specs.append(SyscallSpec(name, schema, fn, help, jsonschema.Draft202012Validator(schema)))
            return fn
        return deco


def assemble(*services: Entries) -> dict[str, SyscallSpec]:
    """The syscall table from every service's entries; two services may not share a prefix."""
    prefixes = [e.prefix for e in services]
    if len(set(prefixes)) != len(prefixes):
        raise ValueError(f"a syscall prefix appears twice in {prefixes}")
    return {spec.name: spec for e in services for spec in e.specs}


def validate(table: dict[str, SyscallSpec], call: messages.Syscall) -> SyscallSpec:
    spec = table.get(call.name)
    if spec is None:
        raise SyscallFailure(messages.ENOSYS, f"unknown syscall {call.name!r}")
    err = jsonschema.exceptions.best_match(spec.validator.iter_errors(call.args))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path)
        raise SyscallFailure(messages.EINVAL, f"{call.name}: {err.message}" + (f" (at {where})" if where else ""))
    return spec


# -- schemas shared by several syscalls ------------------------------------------
CHAT_MESSAGES = {
    "type": "array", "minItems": 1, "maxItems": 256,
    "items": {
        "type": "object", "required": ["role", "content"], "additionalProperties": False,
        "properties": {"role": {"enum": ["system", "user", "assistant", "tool"]},
                       "content": {"type": "string", "maxLength": 200_000}},
    },
}
PID = {"type": "integer", "minimum": 1, "maximum": 2**31}
