"""The ``aios`` verbs that are shell commands: each builds the shell's command line and runs it
through the one dispatcher (handlers.TABLE), on the daemon's kernel; plus the shell itself and
``script`` (the REPL and the batch runner, attached or on a kernel of their own).

    aios ps -a -o json     ->  ``ps -a -o json`` on the daemon, output on stdout
    aios logs 3 -f         ->  ``logs 3 -f`` (Ctrl-C stops following)
    aios script jobs.aios  ->  the batch runner over the file's lines
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from aios_shell.cli import (Failed, Usage, arg, attach, config_from, kernel_flags_given, no_daemon, print_json,
                            quiet, refuse_kernel_flags, say_attached, socket_path, verb)

PID = arg("pid", type=int, metavar="PID", help="the agent's pid (aios ps lists them)")
PIDS = arg("pids", type=int, nargs="+", metavar="PID", help="agent pids (aios ps lists them)")


# -- on the daemon: one shell command ---------------------------------------------------------
def on_daemon(args, line: str, interactive: bool = False) -> int:
    """Run one shell command line on the daemon's kernel; 0 if it succeeded, 1 if not."""
    from aios_shell.commands import Dispatcher, ExitShell
    from aios_shell.context import ShellContext
    from aios_shell.handlers import TABLE

    ctx = ShellContext(interactive=interactive, show_output=False, notify_exit=False)
    ctx.remote = True  # `exit` detaches, as in an attached shell
    ctx.top_interval = getattr(args, "top_interval", None) or 1.5
    if interactive:
        from aios_shell.confirm import ConfirmBroker

        ctx.confirm = ConfirmBroker(send=lambda cid, allow: ctx.client.request("confirm", timeout=10, cid=cid,
                                                                                allow=allow),
                                    wake=ctx.wake, echo=ctx.echo)
    client = attach(args, ctx.on_event, interactive=interactive)
    if client is None:
        raise Failed(no_daemon(args))
    say_attached(args, client)
    ctx.llm_name = client.hello.get("model") or ""
    ctx.attach(client)
    try:
        return 0 if Dispatcher(TABLE, ctx).onecmd(line) else 1
    except ExitShell:
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        client.stop()


def line_of(*words) -> str:
    return " ".join(shlex.quote(str(w)) for w in words if w not in (None, ""))


@verb("ps", "[-a] [-o table|wide|json]", "list agent processes (-a: finished ones too)",
      arg("-a", "--all", action="store_true", help="finished processes too"),
      arg("-o", "--output", choices=("table", "wide", "json"), default="table",
          help="table (fits the terminal), wide (every column, nothing cut) or json (one array)"))
def ps(args):
    return on_daemon(args, line_of("ps", "-a" if args.all else "", *(["-o", args.output] if args.output != "table"
                                                                       else [])))


@verb("top", "", "live full-screen view of the kernel and its agents (q quits)")
def top(args):
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise Failed("top needs a terminal (for a snapshot on a pipe: aios ps -o json)")
    return on_daemon(args, "top", interactive=True)


@verb("logs", "PID [-f] [--tail N]", "an agent's output (-f: follow until it ends)", PID,
      arg("-f", "--follow", action="store_true", help="follow the output until the agent ends (Ctrl-C stops)"),
      arg("--tail", type=int, metavar="N", help="only the last N lines (then follow, with -f)"))
def logs(args):
    if args.tail is not None and args.tail < 0:
        raise Usage("--tail must be >= 0")
    tail = ["--tail", args.tail] if args.tail is not None else []
    return on_daemon(args, line_of("logs", args.pid, "-f" if args.follow else "", *tail))


@verb("kill", "PID...", "stop agents (SIGTERM, then SIGKILL after a grace period)", PIDS)
def kill(args):
    return on_daemon(args, line_of("kill", *args.pids))


@verb("wait", "PID...", "wait until agents end and print their results (exit 1 if one did not finish)", PIDS)
def wait(args):
    from aios_shell.client import KernelError

    status = on_daemon(args, line_of("wait", *args.pids))
    if status != 0:
        return status
    client = attach(args)  # the results were printed; now their states, for the exit status
    if client is None:
        return 1
    try:
        return 0 if all(client.info(pid).get("state") == "done" for pid in args.pids) else 1
    except KernelError:
        return 1
    finally:
        client.stop()


@verb("info", "PID [-o json]", "every accounting field of one agent process", PID,
      arg("-o", "--output", choices=("text", "json"), default="text", help="text, or json (one object)"))
def info(args):
    return on_daemon(args, line_of("info", args.pid, *(["-o", "json"] if args.output == "json" else [])))


@verb("result", "PID", "the full result of an agent (or its state while it runs)", PID)
def result(args):
    return on_daemon(args, line_of("result", args.pid))


@verb("trace", "PID [-a] [-o json] | --timeline FILE",
      "strace for agents: each call of an agent as it completes (Ctrl-C stops)",
      arg("pid", type=int, nargs="?", metavar="PID", help="the agent's pid (aios ps lists them)"),
      arg("-a", "--all", action="store_true", help="first replay the calls the kernel kept (the default for an "
                                                   "agent that has ended)"),
      arg("-o", "--output", choices=("text", "json"), default="text",
          help="text (strace-style lines) or json (one span per line)"),
      arg("--timeline", metavar="FILE", help="write every kept agent's calls as one HTML timeline to FILE"))
def trace(args):
    """aios_shell/trace_view.py through the dispatcher (docs/tracing.md)."""
    if (args.pid is None) == (args.timeline is None):
        raise Usage("give a PID, or --timeline FILE")
    if args.timeline is not None:
        return on_daemon(args, line_of("trace", "--timeline", args.timeline))
    return on_daemon(args, line_of("trace", "-a" if args.all else "",
                                   *(["-o", "json"] if args.output == "json" else []), args.pid))


# -- local: no kernel needed -------------------------------------------------------------------
@verb("agents", "", "installed agent apps and what they do", where="local")
def agents(args):
    from aios_shell.commands import Dispatcher
    from aios_shell.context import ShellContext
    from aios_shell.handlers import TABLE

    return 0 if Dispatcher(TABLE, ShellContext(interactive=False)).onecmd("agents") else 1


@verb("models", "[-o json]", "model names --llm-name takes (kernel/llm/models.json and yours)",
      arg("-o", "--output", choices=("table", "json"), default="table", help="table, or json (one array)"),
      where="local")
def models(args):
    from kernel.config import EMBEDDED_MODEL
    from kernel.llm import catalog

    try:
        table, prefixes = catalog.load_tables()
    except catalog.ModelConfigError as e:
        raise Failed(str(e)) from None
    rows = [{"name": n, "backend": e.get("backend"), "model": e.get("model", n), "base_url": e.get("base_url"),
             "default": n == EMBEDDED_MODEL, "note": e.get("note", "")} for n, e in sorted(table.items())
            if isinstance(e, dict)]
    if args.output == "json":
        print_json(rows)
        return 0
    w = max(len(r["name"]) for r in rows) + 2
    wb = max(len(str(r["backend"])) for r in rows) + 2
    print(f"{'NAME':<{w}}{'BACKEND':<{wb}}MODEL")
    for r in rows:
        print(f"{r['name']:<{w}}{r['backend']:<{wb}}{r['model']}{'  (default)' if r['default'] else ''}")
    print("Any model by prefix: " + ", ".join(f"{p}:<model>" for p in prefixes) +
          "; more in ~/.config/aios/models.json (aios run --llm-name NAME, aios serve --llm-name NAME)")
    return 0


# -- the shell and scripts: attached, or on a kernel of their own --------------------------------
def session_args(args, **kw) -> argparse.Namespace:
    """What aios_shell.connect.run_connected reads from simulator.py's flags."""
    base = dict(command=None, json=False, top_interval=getattr(args, "top_interval", None) or 1.5,
                history=getattr(args, "history", None), verbosity=getattr(args, "verbosity", None))
    return argparse.Namespace(**{**base, **kw})


def front(args, batch: bool, name: str, lines, json_mode: bool = False) -> int:
    """The REPL (batch False) or the batch runner, on the daemon or a kernel of their own."""
    from aios_shell.connect import run_connected
    from aios_shell.session import Session, run_own_kernel

    config = config_from(args)
    what = "script" if batch else "shell"

    def standalone() -> int:
        if getattr(args, "socket", None) and not args.standalone:
            raise Failed(no_daemon(args))
        if not quiet(args):
            why = "--standalone" if args.standalone else "no AIOS daemon is running"
            print(f"{why}: this {what} starts a kernel of its own (model {config.llm.name}; it stops when the "
                  f"{what} ends{'' if args.standalone else '; aios serve keeps one running'})", file=sys.stderr)
        return run_own_kernel(config, Session(batch=batch, name=name, lines=lines, json_mode=json_mode,
                                              verbosity=args.verbosity or 0,
                                              top_interval=getattr(args, "top_interval", None) or 1.5,
                                              history=getattr(args, "history", None)), prog="aios")

    if args.standalone:
        return standalone()
    if kernel_flags_given(args):
        from aios_shell.daemon import paths

        if paths.daemon_alive(socket_path(args), timeout=2):
            refuse_kernel_flags(args)
    return run_connected(session_args(args, json=json_mode), socket_path(args), batch, name, lines, prog="aios",
                         standalone=standalone)


def shell(args) -> int:
    """``aios`` alone: the REPL; with commands on a pipe, a script of them."""
    return front(args, batch=not sys.stdin.isatty(), name="<stdin>", lines=sys.stdin)


@verb("script", "[FILE|-] [--json]", "run shell commands from FILE (or stdin), wait for the agents, report",
      arg("file", nargs="?", default="-", metavar="FILE", help="a file of shell commands, one a line (- or "
          "absent: stdin); # starts a comment"),
      arg("--json", action="store_true", help="one JSON record per agent on stdout, everything else on stderr"),
      where="kernel")
def script(args):
    if args.file == "-":
        return front(args, batch=True, name="<stdin>", lines=sys.stdin, json_mode=args.json)
    try:
        with open(args.file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise Usage(f"script file {args.file!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise Usage(f"cannot read script {args.file!r}: {e}") from None
    return front(args, batch=True, name=os.path.relpath(args.file) if not os.path.isabs(args.file) else args.file,
                 lines=lines, json_mode=args.json)
