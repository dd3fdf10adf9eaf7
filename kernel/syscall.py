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

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from kernel.protocol import messages
from kernel.protocol.control import schema_error, validator
from kernel.protocol.messages import CodedError

DEFERRED = object()  # a handler's result meaning "a Reply answers this call later"
log = logging.getLogger("aios.kernel")


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
        check = validator(schema)
        schema = check.schema

        def deco(fn):
            self.specs.append(SyscallSpec(name, schema, fn, help, check))
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
    why = schema_error(call.name, spec.validator, call.args)
    if why is not None:
        raise SyscallFailure(messages.EINVAL, why)
    return spec


class Reply:
    """What a deferred syscall owes its caller: one answer, given once, from any thread.

    A handler that cannot answer at once makes one, hands it to whatever finishes the work (the LLM
    engine, the storage or tool thread, a confirmation, a timer) and returns DEFERRED. ``ok``, ``fail``,
    ``error`` and ``run`` send the frame through ``kernel.reply_later`` (written on the loop thread,
    dropped if the process has ended). Only the first answer counts: a timeout racing a result, or a
    confirmation racing a kill, is safe. ``before`` runs once, just before that answer (a state move).
    ``span``: the call's trace span (kernel/trace), the one whose handler made this Reply; the answer ends it.
    """

    def __init__(self, kernel, pid: int, call_id: int, before: Callable[[], None] | None = None):
        self.kernel, self.pid, self.call_id, self._before = kernel, pid, call_id, before
        self._lock = threading.Lock()
        self.done = False
        self.tracer = getattr(kernel, "trace", None)
        self.span = self.tracer.current if self.tracer is not None else None

    def _claim(self) -> bool:
        with self._lock:
            if self.done:
                return False
            self.done = True
        if self._before is not None:
            self._before()
        return True

    def ok(self, result: Any) -> bool:
        if not self._claim():
            return False
        try:
            data = messages.ok(self.call_id, result)
            if self.span is not None:
                self.tracer.end(self.span, size=len(data), result=result)
        except (TypeError, ValueError) as e:
            data = messages.error(self.call_id, messages.EIO, f"unserialisable result: {e}")
            if self.span is not None:
                self.tracer.end(self.span, messages.EIO, str(e))
        self.kernel.reply_later(self.pid, data)
        return True

    def fail(self, code: str, message: str) -> bool:
        if not self._claim():
            return False
        if self.span is not None:
            self.tracer.end(self.span, code, message)
        self.kernel.reply_later(self.pid, messages.error(self.call_id, code, message))
        return True

    def error(self, e: BaseException) -> bool:
        """Answer with ``e``: its code and message if it has them, else EIO."""
        if isinstance(e, CodedError):
            return self.fail(e.code, e.message)
        return self.fail(getattr(e, "code", messages.EIO), getattr(e, "message", None) or str(e))

    def run(self, fn: Callable[[], Any], what: str = "the kernel") -> bool:
        """Answer with fn()'s result, or with the error it raises (an unexpected one is logged: EIO).
        A result of DEFERRED means fn handed this reply on (to a confirmation): no answer now."""
        try:
            result = fn()
        except CodedError as e:
            return self.error(e)
        except Exception as e:
            log.exception("call %d of pid %d failed", self.call_id, self.pid)
            return self.fail(messages.EIO, f"{what} failed: {type(e).__name__}: {e}")
        return False if result is DEFERRED else self.ok(result)


# -- schemas shared by several syscalls ------------------------------------------
TOOL_CALL = {  # a call the model made, as llm.chat returned it; ``id`` is what a tool message answers
    "type": "object", "required": ["name", "arguments"], "additionalProperties": False,
    "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 64},
                   "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},  # as llm.chat's tools
                   "arguments": {"type": "object"}},
}
CHAT_MESSAGES = {
    "type": "array", "minItems": 1, "maxItems": 256,
    "items": {
        "type": "object", "required": ["role", "content"], "additionalProperties": False,
        "properties": {"role": {"enum": ["system", "user", "assistant", "tool"]},
                       "content": {"type": "string", "maxLength": 200_000},
                       "tool_calls": {"type": "array", "minItems": 1, "maxItems": 16, "items": TOOL_CALL},
                       "tool_call_id": {"type": "string", "minLength": 1, "maxLength": 64}},
    },
}
PID = {"type": "integer", "minimum": 1, "maximum": 2**31}
