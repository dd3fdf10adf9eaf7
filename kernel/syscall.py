"""The syscall table: name -> argument schema, handler, help (like xv6's syscalls[]).

Every agent message passes ``messages.decode_request`` (envelope) and then the
syscall's JSON schema here before its handler runs, so handlers see only
well-typed arguments. A handler returns the result, raises SyscallFailure for
a clear error, or returns DEFERRED when it will reply later (LLM, wait).

Services add their own entries with ``register`` (memory, storage, tools).
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


TABLE: dict[str, SyscallSpec] = {}


def register(name: str, schema: dict, help: str):
    """Decorator: add a handler to the table with its argument schema."""
    schema = {"type": "object", "additionalProperties": False, **schema}
    jsonschema.Draft202012Validator.check_schema(schema)

    def deco(fn):
        TABLE[name] = SyscallSpec(name, schema, fn, help, jsonschema.Draft202012Validator(schema))
        return fn
    return deco


def validate(call: messages.Syscall) -> SyscallSpec:
    spec = TABLE.get(call.name)
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
