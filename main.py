"""AIOS interactive mode: run the demo agents concurrently and show their steps live.

Usage::

    python main.py                      # MathAgent, NarrativeAgent, RecAgent on their demo tasks
    python main.py --agents MathAgent TravelAgent --scheduler rr
    python main.py --llm-name gpt-4     # any model from kernel/llm/models.json
    python main.py -q                   # only the summary table (and errors/warnings)

Shows a progress bar while the model is converted (first run) and loaded,
prints each agent step as it arrives (``[MathAgent 1] step 1/1: ...``, the
prefix every front uses), then a summary table and, last, one answer line per
agent (under -q too)::

    PID  AGENT           STATE  LLM CALLS  AVG WAIT  AVG TURNAROUND
    1    MathAgent       done   1          0.41s     3.02s
    ...
    [1] MathAgent done in 12.3s: 2 * 16 + 2 * 8 = 48
    [2] NarrativeAgent done in 41.0s: The island of Elysium was ...

Exits 0 when every agent finished with a result, 1 otherwise; no agent or
kernel process is left behind either way.
"""

from __future__ import annotations

import signal
import sys

DEMO_AGENTS = ["MathAgent", "NarrativeAgent", "RecAgent"]


class ModelProgress:
    """A rich progress bar fed by the kernel's "progress" events (model conversion and load).

    Events arrive on the KernelClient reader thread; rich's Progress has its own lock.
    Transient: it disappears once the model is ready.
    """

    def __init__(self, console):
        self.console = console
        self.progress = None
        self.task = None
        self.stage = None
        self.closed = False

    def update(self, ev: dict) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if self.closed:  # stopping (Ctrl-C): a late progress event draws no new bar
            return
        if self.progress is None:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=self.console, transient=True)
            self.progress.start()
        text, done, total = str(ev.get("text") or ev.get("stage")), ev.get("done"), ev.get("total")
        if ev.get("stage") != self.stage and not isinstance(done, int):  # a new stage without counts
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(text, total=None)
        self.stage = ev.get("stage")
        if self.task is None:
            self.task = self.progress.add_task(text, total=None)
        if isinstance(done, int):
            self.progress.update(self.task, description=text, completed=done, total=total)
        else:
            self.progress.update(self.task, description=text)

    def close(self, final: bool = False) -> None:
        """Take the bar down; ``final``: and draw none again (the run is stopping)."""
        self.closed = self.closed or final
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def main(argv=None) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from aios_shell import views
    from aios_shell.client import KernelClient, KernelError
    from aios_shell.flags import (HIDDEN_DEFAULT, FlagGroup, HelpFormatter, add_kernel_args, add_verbosity,
                                  config_from_args)
    from aios_shell.suggest import ArgumentParser, hint
    from kernel import apps as registry  # the kernel's catalog: the demo's agents are checked before it boots

    parser = ArgumentParser(prog="main.py", description="Run AIOS demo agents concurrently.",
                            formatter_class=HelpFormatter)
    add_kernel_args(parser)
    g = FlagGroup(parser.add_argument_group("shell"), lambda dest: HIDDEN_DEFAULT)
    g.add_argument("--agents", nargs="+", default=DEMO_AGENTS, help=f"agent apps to run on their demo tasks "
                   f"(default: {' '.join(DEMO_AGENTS)})")
    add_verbosity(g)
    args = parser.parse_args(argv)
    verbosity = args.verbosity or 0
    console = Console(highlight=False, emoji=False)
    if not console.is_terminal:  # a pipe or a file: nothing is cut or wrapped to fit 80 columns
        console = Console(highlight=False, emoji=False, width=1000)
    bar = ModelProgress(console)
    try:
        config = config_from_args(args)
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    apps = registry.discover()
    unknown = [a for a in args.agents if registry.find(a) is None]
    if unknown:
        console.print(f"[red]error:[/red] unknown agent(s) {', '.join(unknown)}{hint(unknown[0], apps)}; "
                      f"installed: {', '.join(sorted(apps))}", soft_wrap=True, markup=True)
        return 2

    colors = ["cyan", "magenta", "green", "yellow", "blue"]

    def on_event(ev: dict) -> None:
        kind = ev.get("event")
        if kind == "output" and verbosity >= 0:
            color = colors[ev["pid"] % len(colors)]
            text = escape(views.printable(ev["text"]))  # no terminal control from an agent
            prefix = escape(views.agent_prefix(ev["agent"], ev["pid"]))
            console.print(f"[{color}]{prefix}[/{color}] {text}", soft_wrap=True)
        elif kind == "log":
            level = ev.get("level")
            if level in ("WARNING", "ERROR", "CRITICAL"):
                style = "yellow" if level == "WARNING" else "red"
                console.print(f"[{style}]kernel {level.lower()}:[/{style}] {escape(ev['text'])}")
            elif verbosity >= (2 if level == "DEBUG" else 1):
                console.print(f"[dim]kernel: {escape(ev['text'])}[/dim]")
        elif kind == "progress":
            bar.update(ev)
        elif kind == "ready":
            bar.close()
            if ev.get("stats", {}).get("load_error"):
                console.print(f"[red]error:[/red] {escape(ev['stats']['load_error'])}")

    if verbosity >= 0:
        console.print(f"[bold]AIOS[/bold] booting kernel with model {config.llm.name} "
                      f"(scheduler {config.sched.policy})...")
    try:
        kernel = KernelClient(config, on_event=on_event)
    except KernelError as e:  # the model cannot be found, or the kernel did not start: one line
        console.print(f"[red]error:[/red] {escape(e.message)}", soft_wrap=True)
        return 1
    # SIGTERM/SIGHUP end the demo like Ctrl-C does: the finally below stops everything.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    snaps = []
    try:
        kernel.ready.wait()
        if kernel.ready_info.get("load_error"):
            return 1
        pids = []
        for name in args.agents:
            app = registry.find(name)
            task = app.config.get("demo_task") or "Introduce yourself."
            pid = kernel.spawn(app.name, task)
            if verbosity >= 0:
                console.print(f"[bold]run[/bold] {app.name} (pid {pid}): {escape(task)}")
            pids.append(pid)
        snaps = [kernel.wait(pid) for pid in pids]
    except KeyboardInterrupt:
        bar.close(final=True)
        console.print("[yellow]interrupted: stopping the kernel and all agents[/yellow]")
        return 130
    except KernelError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        return 1
    finally:
        bar.close()
        kernel.stop()

    table = Table(title="AIOS run summary")
    for col in ("PID", "AGENT", "STATE", "LLM CALLS", "TOKENS IN/OUT", "AVG WAIT", "AVG TURNAROUND"):
        table.add_column(col)
    fmt = lambda v: "-" if v is None else f"{v:.2f}s"  # noqa: E731
    for s in snaps:
        table.add_row(str(s["pid"]), s["agent"], s["state"], str(s["llm_calls"]),
                      f"{s['tokens_in']}/{s['tokens_out']}", fmt(s["waiting_s"]), fmt(s["turnaround_s"]))
    console.print(table)
    width = console.width if console.is_terminal else None  # a pipe or a file gets the whole answer
    for s in snaps:  # last: one answer line per agent (its error when it has none)
        line = escape(views.exit_line(s, width))
        console.print(line if s["state"] == "done" else f"[red]{line}[/red]", soft_wrap=True)
    return 0 if snaps and all(s["state"] == "done" for s in snaps) else 1


if __name__ == "__main__":
    sys.exit(main())
