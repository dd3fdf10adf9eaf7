"""Span: one call of one process as the kernel saw it (a plain record, no OpenTelemetry here).

Times are time.time() seconds. A span is written by the thread that begins it
(the loop) and, until it ends, by whichever thread reports on the call (the
LLM engine, a tool thread, the loop) under ``Tracer.lock``; once ``end`` is set
nothing writes it again, so the exporter reads finished spans without a lock.

Kinds: ``agent`` is a process's root span (spawn to reap; its parent is the
``proc.spawn`` span of the agent that spawned it, if one did), ``syscall``
every call the process made (``llm.chat`` and ``tool.call`` carry the detail
in ``attrs``).
"""

from __future__ import annotations

import random

_rand = random.Random()  # seeded from os.urandom; ids need uniqueness, not secrecy (one C call: GIL-atomic)


def new_id(bits: int) -> int:
    """A non-zero random id (W3C trace context: 128-bit trace ids, 64-bit span ids)."""
    return _rand.getrandbits(bits) or 1


class Span:
    __slots__ = ("trace_id", "span_id", "parent_id", "pid", "name", "kind", "start", "end", "args",
                 "error", "message", "size", "result", "attrs", "events", "lost_events")

    def __init__(self, trace_id: int, parent_id: int | None, pid: int, name: str, kind: str, start: float,
                 args: str = ""):
        self.trace_id = trace_id
        self.span_id = new_id(64)
        self.parent_id = parent_id
        self.pid = pid
        self.name = name  # the syscall's name (cut to 64 characters), or "agent"
        self.kind = kind  # "agent" | "syscall"
        self.start = start
        self.end: float | None = None
        self.args = args  # kernel.trace.brief.args: at most TRACE_ARGS_MAX characters
        self.error: str | None = None  # an error code (EPERM, ...) once it failed
        self.message: str | None = None  # the error's message (only with --trace-content)
        self.size: int | None = None  # bytes of the reply the agent got
        self.result: str | None = None  # a preview of the result (only with --trace-content)
        self.attrs: dict | None = None  # detail: LLM timings and tokens, tool, confirmation, exit status
        self.events: list | None = None  # [(time, name, attrs | None)], at most TRACE_EVENTS_MAX
        self.lost_events = 0  # events past that bound

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def traceparent(self) -> str:
        """The W3C ``traceparent`` header naming this span (sampled)."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-01"

    def as_dict(self) -> dict:
        """Plain built-in types, for the front (``trace``) and the exporter."""
        return {"trace_id": f"{self.trace_id:032x}", "span_id": f"{self.span_id:016x}",
                "parent_id": f"{self.parent_id:016x}" if self.parent_id else None, "pid": self.pid,
                "name": self.name, "kind": self.kind, "start": self.start, "end": self.end, "args": self.args,
                "error": self.error, "message": self.message, "size": self.size, "result": self.result,
                "attrs": dict(self.attrs) if self.attrs else {},
                "events": [[t, n, dict(a) if a else {}] for t, n, a in (self.events or ())],
                "lost_events": self.lost_events}
