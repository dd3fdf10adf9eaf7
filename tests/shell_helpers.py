"""Helpers for the shell tests: a ShellContext attached to the shared kernel, and cleaning up after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aios_shell.context import ShellContext


@contextmanager
def attached(kernel, ctx: ShellContext) -> Iterator[ShellContext]:
    """Attach ``ctx`` to ``kernel``, its events chained after the kernel's own handler; that handler comes back on exit."""
    ctx.attach(kernel)
    prev = kernel.on_event

    def both(ev):
        prev(ev)
        ctx.on_event(ev)
    kernel.on_event = both
    try:
        yield ctx
    finally:
        kernel.on_event = prev


def kill_live(kernel, ctx: ShellContext) -> None:
    """Kill and reap every agent the shell still counts as live (teardown: errors are ignored)."""
    for pid in ctx.live_pids():
        try:
            kernel.kill(pid)
            kernel.wait(pid, timeout=30)
        except Exception:
            pass
