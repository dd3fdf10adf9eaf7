"""AIOS deployment mode and scripted batch runs: the shell in front of a kernel process.

Usage:
    python simulator.py                                   # interactive shell
    python simulator.py -q                                # results and errors only (-v: kernel INFO too)
    python simulator.py --scheduler-log-mode file --agent-log-mode file
                                                          # deployment: logs go to logs/, the terminal shows the shell
    python simulator.py --script jobs.aios [--json]       # batch run of shell commands
    printf 'run MathAgent: What is 12*7?\\n' | python simulator.py --json
    python simulator.py --daemon [--foreground] [--socket PATH]   # the kernel as a service
    python simulator.py --connect [--socket PATH] [-c 'COMMAND' | --script FILE]

The ``aios`` command (aios_shell/cli.py, docs/cli.md) fronts the same code:
``aios`` is this shell, attached to the user's daemon when one serves;
``aios serve`` is ``--daemon``; ``aios script FILE`` is ``--script FILE``.

Interactive: a banner, then the prompt ``[smollm2-135m-instruct]> ``;
``help`` lists the commands (run, ps, top, kill, wait, result, info, logs,
agents, tools, sched, help, exit).

Batch (``--script FILE``, or whenever stdin is not a terminal): runs each
line (``#`` starts a comment), waits for every agent the script started and
prints each one's result; with ``--json`` one JSON object per agent per line
on stdout, e.g. ``{"pid": 1, "agent": "MathAgent", "task": "...", "status":
"done", "result": "...", "waiting_s": 0.01, "turnaround_s": 2.3,
"tokens_in": 92, "tokens_out": 16, ...}``, everything else on stderr.
Exit status: 0 all succeeded, 1 a command or an agent failed, 2 bad
arguments or script file, 130 interrupted.

Leaving (exit, Ctrl-D, end of script, SIGTERM or SIGHUP; SIGINT in batch
mode) stops every agent and the kernel, which flushes its logs.

Service (aios_shell/daemon): ``--daemon`` prints ``AIOS daemon pid N serving on
SOCKET ...`` and returns once the daemon serves (exit 0), or one ``error:``
line (exit 1). ``--connect`` attaches this shell to it: ``exit`` only
detaches, ``shutdown`` stops the daemon, its kernel and every agent;
``-c 'ps'`` runs one command and exits 0 if it succeeded, 1 if not.
"""

from __future__ import annotations

import argparse
import os
import sys

from aios_shell import suggest
from aios_shell.daemon import paths
from aios_shell.flags import (HIDDEN_DEFAULT, FlagGroup, HelpFormatter, add_kernel_args, add_verbosity,
                              config_from_args)
from aios_shell.session import Session, run_own_kernel

SHELL_DEFAULTS = {"top_interval": 1.5, "history": "~/.local/state/aios/shell_history"}


def build_parser() -> argparse.ArgumentParser:
    p = suggest.ArgumentParser(prog="simulator.py", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter,
                                epilog="Shell commands: run help at the prompt.")
    add_kernel_args(p)
    g = FlagGroup(p.add_argument_group("shell"), lambda dest: SHELL_DEFAULTS.get(dest, HIDDEN_DEFAULT))
    g.add_argument("--script", metavar="FILE", help="run shell commands from FILE, then exit (batch mode)")
    g.add_argument("--json", action="store_true", help="batch mode: one JSON object per finished agent on stdout")
    g.add_argument("--timeline", metavar="FILE", help="batch mode: at the end, write the run's timeline (every "
                   "agent's calls on one time axis, HTML) to FILE")
    g.add_argument("--top_interval", type=float, help="seconds between top refreshes")
    g.add_argument("--history", help="history file")
    add_verbosity(g)
    g = p.add_argument_group("service (a kernel that runs as a daemon; shells attach to it)")
    g.add_argument("--daemon", action="store_true", help="start the kernel as a detached service on a unix socket "
                   "and return once it serves")
    g.add_argument("--foreground", action="store_true", help="with --daemon: serve in the foreground, logging to "
                   "stderr too (for systemd Type=simple)")
    g.add_argument("--connect", action="store_true", help="attach the shell to a running daemon")
    g.add_argument("--socket", metavar="PATH", help=f"the daemon's socket (default {paths.default_socket()}; "
                   "$XDG_RUNTIME_DIR/aios/aios.sock, or /tmp/aios-UID/aios.sock without XDG_RUNTIME_DIR)")
    g.add_argument("-c", "--command", metavar="COMMAND", help="with --connect: run one shell command and exit with "
                   "its status (0 ok, 1 failed)")
    g.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)  # set by --daemon for its detached child
    return p


def check_modes(args) -> str | None:
    """An error message if the service flags are combined wrongly."""
    if args.daemon and args.connect:
        return "--daemon and --connect exclude each other"
    if args.daemon and (args.script is not None or args.command is not None or args.json):
        return "--daemon takes no --script, -c or --json (attach with --connect to run commands)"
    if args.foreground and not args.daemon:
        return "--foreground goes with --daemon"
    if args.command is not None and not args.connect:
        return "-c COMMAND goes with --connect (a foreground shell: use --script or a pipe)"
    if args.command is not None and args.script is not None:
        return "give -c or --script, not both"
    if args.socket is not None and not (args.daemon or args.connect):
        return "--socket goes with --daemon or --connect"
    return None


def note_daemon(sock_path: str) -> None:
    """One line when the user's daemon serves: this program starts a second kernel beside it."""
    pid = paths.read_pid(paths.pidfile_for(sock_path))
    if pid and os.path.exists(sock_path) and paths.daemon_alive(sock_path, timeout=0.5):
        print(f"note: the AIOS daemon (pid {pid}) serves {sock_path}; this starts a second kernel beside it "
              "(attach instead: aios, or simulator.py --connect)", file=sys.stderr)


def read_script(path: str) -> list[str]:
    """The script's lines; raises OSError/UnicodeDecodeError with a usable message."""
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as e:
        print(f"simulator.py: error: {e}", file=sys.stderr)
        return 2
    problem = check_modes(args)
    if problem:
        print(f"simulator.py: error: {problem}", file=sys.stderr)
        return 2
    sock_path = args.socket or paths.default_socket()
    if args.daemon:
        from aios_shell.daemon import run

        if args.foreground:
            return run.serve(config, sock_path, ready_fd=args.ready_fd)
        return run.start_detached([sys.executable, os.path.abspath(__file__), *argv], config, sock_path)
    batch = args.script is not None or args.command is not None or not sys.stdin.isatty()
    if args.json and not batch:
        print("simulator.py: error: --json is for batch runs (--script FILE, or commands on a pipe)", file=sys.stderr)
        return 2
    name, lines = "<stdin>", sys.stdin
    if args.script is not None:
        name = args.script
        try:
            lines = read_script(args.script)
        except FileNotFoundError:
            print(f"simulator.py: error: script file {args.script!r} does not exist", file=sys.stderr)
            return 2
        except (OSError, UnicodeDecodeError) as e:
            print(f"simulator.py: error: cannot read script {args.script!r}: {e}", file=sys.stderr)
            return 2
    if args.connect:
        from aios_shell.connect import run_connected

        return run_connected(args, sock_path, batch, name, lines)
    note_daemon(sock_path)
    return run_own_kernel(config, Session(batch=batch, name=name, lines=lines, json_mode=args.json,
                                          verbosity=args.verbosity or 0,
                                          top_interval=args.top_interval or SHELL_DEFAULTS["top_interval"],
                                          history=args.history, timeline=args.timeline))


if __name__ == "__main__":
    sys.exit(main())
