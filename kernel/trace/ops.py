"""The ``trace`` and ``untrace`` control ops (the front's ``trace`` command; merged into kernel/control.py).

Only the front (the user's shell, batch runner or an authenticated daemon client) reaches these:
agents have no syscall for traces, so no agent reads another's calls, or its own.

    trace {}                        every kept process: [{"pid", "agent", "ended", "dropped", "root", "spans"}]
    trace {"pid": N}                what is kept of N (the same record)
    trace {"pid": N, "follow": true}  ... and from now on each of N's finished spans as an event
                                    ``{"event": "span", "pid": N, "span": {...}}`` until N ends or untrace
    untrace {"pid": N}              stop those events
"""

from __future__ import annotations

from kernel.protocol import messages
from kernel.syscall import SyscallFailure


def _tracer(kernel):
    if not kernel.trace.enabled:
        raise SyscallFailure(messages.ENOSYS, "tracing is off in this kernel (--trace off)")
    return kernel.trace


def op_trace(kernel, a, reply):
    tracer = _tracer(kernel)
    if "pid" not in a:
        return {"procs": tracer.dump(), "stats": tracer.stats()}
    pid = a["pid"]
    snap = tracer.snapshot(pid, follow=bool(a.get("follow")) and pid in kernel.agents)
    if snap is None:
        known = kernel.table.get(pid) is not None
        raise SyscallFailure(messages.ESRCH, f"no trace of pid {pid}" + (
            " (its calls left the trace history: only the last ended processes are kept)" if known else
            " (no such process)"))
    return snap


def op_untrace(kernel, a, reply):
    _tracer(kernel).unwatch(a["pid"])
    return True


HANDLERS = {"trace": op_trace, "untrace": op_untrace}  # schemas: kernel/protocol/control.py
