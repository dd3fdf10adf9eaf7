"""A shell or batch run on a kernel of its own: what ``simulator.py`` and ``aios --standalone`` do.

    status = run_own_kernel(config, Session(batch=False), prog="simulator.py")

Boots the kernel (KernelClient, a child process), then runs the REPL or the
batch runner over the one command table, and on leaving (exit, Ctrl-D, end
of script, SIGTERM/SIGHUP; SIGINT in batch mode) stops every agent and the
kernel, which flushes its logs. Exit status: the REPL's or the batch
runner's; 1 when the kernel cannot start; 130 after Ctrl-C; 128+N on signal N.
aios_shell/connect.py runs the same front (batch_or_repl, run_then_stop) on a daemon's kernel.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from aios_shell.batch import run_batch
from aios_shell.client import KernelClient, KernelError
from aios_shell.context import ShellContext
from aios_shell.repl import Repl, Terminated, leave_on_signals
from kernel.config import state_dir


@dataclass
class Session:
    """What the front was asked for, apart from the kernel's config."""

    batch: bool  # batch run (a script, a pipe) rather than the REPL
    name: str = "<stdin>"  # the script's name in error lines
    lines: Iterable[str] = ()  # the script's lines (batch)
    json_mode: bool = False  # batch: one JSON record per agent on stdout
    verbosity: int = 0  # -1 quiet, 0 default, 1/2 -v/-vv
    top_interval: float = 1.5  # seconds between top refreshes
    history: str | None = None  # the REPL's history file (None: <state>/shell_history)
    timeline: str | None = None  # batch: write the run's timeline here at the end (--timeline FILE)


def banner(client: KernelClient, config) -> str:
    logs = f"; logs in {config.logs.dir}/" if "file" in (config.logs.scheduler_mode, config.logs.agent_mode) else ""
    return (f"AIOS shell: kernel pid {client.pid}, model {config.llm.name}"
            f"{'' if client.ready.is_set() else ' (loading)'}, scheduler {config.sched.policy}{logs}.\n"
            "Type help for commands, Tab to complete; Ctrl-D or exit leaves.")


def batch_or_repl(ctx, s: Session, first: str) -> int:
    """The batch runner over ``s.lines``, or the REPL after the banner ``first``; its exit status."""
    if s.batch:
        ctx.release_output()
        return run_batch(ctx, s.lines, s.name, json_mode=s.json_mode,  # 1 too when the model failed to load
                         timeline=s.timeline)
    ctx.release_output(first=first)
    history = s.history or str(state_dir() / "shell_history")
    return Repl(ctx, history_path=Path(history)).run()


def run_then_stop(ctx, start: Callable[[], int], stop: Callable[[], None]) -> int:
    """start()'s exit status (130 after Ctrl-C, 128+N on signal N); then, whatever happened, stop()."""
    status = 1
    try:
        status = start()
    except KeyboardInterrupt:
        status = 130
    except Terminated as t:
        status = t.code
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the stop short
        ctx.release_output()  # (a failed boot: its messages still show)
        ctx.leaving = True
        stop()
    return status


def run_own_kernel(config, s: Session, prog: str = "simulator.py") -> int:
    if not s.batch:
        config = config.with_flags(interactive_confirm=True)  # the access manager asks us (y/N), not its policy
    ctx = ShellContext(interactive=not s.batch, llm_name=config.llm.name, out=sys.stderr if s.json_mode else None,
                       verbosity=s.verbosity)
    ctx.top_interval = s.top_interval
    leave_on_signals(ctx)
    client = None
    ctx.hold_output()  # what the kernel says while it boots comes after the banner

    def start() -> int:
        nonlocal client
        try:
            client = KernelClient(config, on_event=ctx.on_event)
        except KernelError as e:
            print(f"{prog}: error: {e.message}", file=sys.stderr)
            return 1
        ctx.attach(client)
        return batch_or_repl(ctx, s, banner(client, config))

    def stop() -> None:
        if client is None:
            return
        if ctx.interactive and ctx.live_pids() and not client.dead.is_set():
            ctx.echo(f"stopping {len(ctx.live_pids())} agent(s) and the kernel…")
        client.stop()

    return run_then_stop(ctx, start, stop)
