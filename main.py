"""AIOS interactive mode: run the demo agents concurrently and show their steps live.

Usage::

    python main.py                      # MathAgent, NarrativeAgent, RecAgent on their demo tasks
    python main.py --agents MathAgent TravelAgent --scheduler rr
    python main.py --llm_name gpt-4     # any model from kernel/llm/models.json

Prints each agent step as it arrives, then a summary table::

    PID  AGENT           STATE  LLM CALLS  AVG WAIT  AVG TURNAROUND
    1    MathAgent       done   2          0.41s     3.02s
    ...

Exits 0 when every agent finished with a result, 1 otherwise; no agent or
kernel process is left behind either way.
"""

from __future__ import annotations

import argparse
import signal
import sys

DEMO_AGENTS = ["MathAgent", "NarrativeAgent", "RecAgent"]


def main(argv=None) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from agent_apps import registry
    from kernel.boot import KernelClient, KernelError
    from kernel.config import KernelConfig, add_kernel_args

    parser = argparse.ArgumentParser(description="Run AIOS demo agents concurrently.")
    parser.add_argument("--agents", nargs="+", default=DEMO_AGENTS, help="agent apps to run on their demo tasks")
    add_kernel_args(parser)
    args = parser.parse_args(argv)
    console = Console(highlight=False, emoji=False)
    try:
        config = KernelConfig.from_args(args)
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    apps = registry.discover()
    unknown = [a for a in args.agents if registry.find(a) is None]
    if unknown:
        console.print(f"[red]error:[/red] unknown agent(s) {', '.join(unknown)}; installed: {', '.join(sorted(apps))}")
        return 2

    colors = ["cyan", "magenta", "green", "yellow", "blue"]

    def on_event(ev: dict) -> None:
        kind = ev.get("event")
        if kind == "output":
            color = colors[ev["pid"] % len(colors)]
            console.print(f"[{color}]{ev['agent']}\\[{ev['pid']}][/{color}] {escape(ev['text'])}", soft_wrap=True)
        elif kind == "log" and ev.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            console.print(f"[dim]kernel: {escape(ev['text'])}[/dim]")
        elif kind == "ready" and ev.get("stats", {}).get("load_error"):
            console.print(f"[red]error:[/red] {escape(ev['stats']['load_error'])}")

    console.print(f"[bold]AIOS[/bold] booting kernel with model {config.llm_name} (scheduler {config.scheduler})...")
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
            console.print(f"[bold]run[/bold] {app.name} (pid {pid}): {escape(task)}")
            pids.append(pid)
        snaps = [kernel.wait(pid) for pid in pids]
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping the kernel and all agents[/yellow]")
        return 130
    except KernelError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        return 1
    finally:
        kernel.stop()

    table = Table(title="AIOS run summary")
    for col in ("PID", "AGENT", "STATE", "LLM CALLS", "TOKENS IN/OUT", "AVG WAIT", "AVG TURNAROUND"):
        table.add_column(col)
    fmt = lambda v: "-" if v is None else f"{v:.2f}s"  # noqa: E731
    for s in snaps:
        table.add_row(str(s["pid"]), s["agent"], s["state"], str(s["llm_calls"]),
                      f"{s['tokens_in']}/{s['tokens_out']}", fmt(s["waiting_s"]), fmt(s["turnaround_s"]))
    console.print(table)
    for s in snaps:
        if s["state"] != "done":
            console.print(f"[red]{s['agent']} (pid {s['pid']}) {s['state']}:[/red] {escape(str(s.get('error')))}")
    return 0 if snaps and all(s["state"] == "done" for s in snaps) else 1


if __name__ == "__main__":
    sys.exit(main())
