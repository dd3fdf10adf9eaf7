"""``aios``: one command for AIOS, the way ``ollama`` and ``docker`` front theirs.

Usage::

    aios                                  # the interactive shell (attached to your daemon if one serves)
    aios run MathAgent "What is 12*7?"    # prints the agent's answer: 84
    aios run -d EchoAgent hello           # against the daemon: prints the pid and returns
    aios serve                            # the daemon: a kernel in the background on a private socket
    aios ps -a    aios logs 3 -f    aios kill 3    aios status    aios stop

Each verb is one row of VERBS (name, summary, its arguments, its handler) and
a thin layer over what the shell already has: the one command table and
dispatcher (handlers.py) for ps/top/logs/kill/wait/info/result/agents, the
batch runner for ``script``, the REPL for ``aios`` alone, the daemon's
start/serve for ``serve``. ``aios help VERB`` and ``aios VERB --help`` show a
verb's flags.

Where the kernel is: every verb first tries the user's daemon
(``$XDG_RUNTIME_DIR/aios/aios.sock``, or ``--socket``) and says so once on
stderr: ``attached to the AIOS daemon (pid N)``. Without one, ``run``,
``script`` and the shell start a kernel of their own and say so in one line;
the verbs that only make sense against a daemon (ps, top, logs, trace, kill, wait,
info, result) say ``no AIOS daemon is running (start one: aios serve)``.
``--standalone`` forces an own kernel. Kernel flags (``--llm-name``, ...)
go where a kernel starts: ``serve``, a standalone ``run``/``script``/shell;
given while a daemon serves, they are refused (the daemon's kernel has its
own).

Exit status: 0 success; 1 a failed command or agent, or no daemon where one
is needed; 2 bad arguments; 3 ``status`` with no daemon (as systemctl);
130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Callable

from aios_shell.daemon import paths
from aios_shell.flags import (HIDDEN_DEFAULT, FlagGroup, HelpFormatter, add_kernel_args, add_verbosity,
                              config_from_args, spellings)
from aios_shell.suggest import ArgumentParser, hint
from kernel.config import KEYS, KernelConfig

PROG = "aios"
NO_DAEMON = "no AIOS daemon is running (start one: aios serve)"
SHELL_DEFAULTS = {"top_interval": 1.5}


class Usage(Exception):
    """A bad command line: ``aios VERB: error: ...``, exit 2."""


class Failed(Exception):
    """The command could not be done (no daemon, a refused connection): ``aios VERB: error: ...``, exit 1."""


@dataclass(frozen=True)
class Verb:
    name: str
    usage: str  # its arguments, for the overview: "[-a] [-o table|wide|json]"
    summary: str  # one line for `aios --help`
    run: Callable[[argparse.Namespace], int]
    args: tuple = ()  # arg(...) rows: (flags, argparse keywords)
    where: str = "daemon"  # daemon: talks to the daemon (--socket); kernel: the daemon or a kernel of its own
    #                        (--socket, --standalone, kernel flags); serve: starts the daemon; local: neither


VERBS: dict[str, Verb] = {}  # filled by @verb in runone.py, verbs.py, service.py; load_verbs() orders it
ORDER = ("run", "ps", "top", "logs", "trace", "kill", "wait", "info", "result", "agents", "models", "script",
         "serve", "stop", "status")  # `aios --help` order: the everyday verbs first, the daemon's last


def arg(*flags: str, **kw) -> tuple:
    return flags, kw


def verb(name: str, usage: str, summary: str, *args: tuple, where: str = "daemon"):
    """Decorator over the handler ``fn(args) -> exit status``: one row of VERBS."""
    def deco(fn):
        VERBS[name] = Verb(name, usage, summary, fn, args, where)
        return fn
    return deco


# -- parsers ------------------------------------------------------------------------------
def add_client_args(p: argparse.ArgumentParser, standalone: bool = False) -> None:
    g = p.add_argument_group("where the kernel is")
    g.add_argument("--socket", metavar="PATH", help=f"the daemon's socket (default {paths.default_socket()})")
    if standalone:
        g.add_argument("--standalone", action="store_true",
                       help="start a kernel of its own even when a daemon serves (it stops with this command)")


def parser_for(v: Verb) -> argparse.ArgumentParser:
    flags = " [KERNEL FLAGS]" if v.where in ("kernel", "serve") else ""
    p = ArgumentParser(prog=f"{PROG} {v.name}", description=v.summary, formatter_class=HelpFormatter,
                                usage=f"{PROG} {v.name} {v.usage}{flags}")
    for flags, kw in v.args:
        p.add_argument(*flags, **kw)
    if v.where in ("kernel", "serve"):
        add_kernel_args(p)  # --version and the kernel's groups (model, scheduler, ...)
    if v.where != "local":
        add_client_args(p, standalone=v.where == "kernel")
        add_verbosity(p.add_argument_group("output"))
    return p


def shell_parser() -> argparse.ArgumentParser:
    w = max(len(n) + len(v.usage) for n, v in VERBS.items()) + 2
    lines = "\n".join(f"  {PROG} {n} {v.usage}".ljust(w + 8) + v.summary for n, v in VERBS.items())
    p = ArgumentParser(
        prog=PROG, formatter_class=HelpFormatter, usage=f"{PROG} [VERB] [ARGS]   ({PROG} alone: the shell)",
        description="AIOS, an LLM agent operating system: agents are processes, the kernel owns the model.\n\n"
                    f"Verbs:\n{lines}\n\n{PROG} VERB --help shows a verb's flags. {PROG} alone (the flags below) "
                    "starts the interactive shell:\nattached to your daemon when one serves, else on a kernel "
                    "of its own. Commands on a pipe run as a script.")
    add_kernel_args(p)
    g = FlagGroup(p.add_argument_group("shell"), lambda dest: SHELL_DEFAULTS.get(dest, HIDDEN_DEFAULT))
    g.add_argument("--top_interval", type=float, help="seconds between top refreshes")
    g.add_argument("--history", help="history file (default: <state>/shell_history)")
    add_verbosity(g)
    add_client_args(p, standalone=True)
    return p


def kernel_flags_given(args: argparse.Namespace) -> list[str]:
    """The kernel flags on the command line (argparse leaves the others None)."""
    return [spellings(f"--{key}")[0] for key in KEYS if getattr(args, key, None) is not None]


def config_from(args: argparse.Namespace) -> KernelConfig:
    try:
        return config_from_args(args)
    except ValueError as e:
        raise Usage(str(e)) from None


# -- where the kernel is ----------------------------------------------------------------------
def socket_path(args) -> str:
    return getattr(args, "socket", None) or paths.default_socket()


def quiet(args) -> bool:
    return (getattr(args, "verbosity", None) or 0) < 0


def attach(args, on_event=None, interactive: bool = False):
    """A RemoteKernelClient on the user's daemon, or None when none serves (a stale socket counts as
    none). Raises Failed when one serves but will not have us (its key unreadable, refused)."""
    from aios_shell.client import KernelError
    from aios_shell.daemon.remote import NoDaemon, RemoteKernelClient

    try:
        return RemoteKernelClient(socket_path(args), on_event=on_event, interactive=interactive)
    except NoDaemon:
        return None
    except KernelError as e:
        raise Failed(e.message) from None


def no_daemon(args) -> str:
    """The line for a verb that needs the daemon when none serves."""
    if getattr(args, "socket", None):
        return f"no AIOS daemon at {args.socket} (start one: aios serve --socket {args.socket})"
    return NO_DAEMON


def say_attached(args, client) -> None:
    """Once per command, on stderr (stdout stays the command's output)."""
    if not quiet(args):
        print(f"attached to the AIOS daemon (pid {client.hello.get('daemon_pid')})", file=sys.stderr)


def refuse_kernel_flags(args) -> None:
    """Kernel flags while a daemon serves: its kernel has its own; we do not ignore them silently."""
    given = kernel_flags_given(args)
    if given:
        raise Usage(f"{', '.join(given)}: kernel flags go where a kernel starts, and the AIOS daemon at "
                    f"{socket_path(args)} has its own kernel; add --standalone for a kernel of this command's own, "
                    "or give them to aios serve")


def load_verbs() -> dict[str, Verb]:
    from aios_shell import runone, service, verbs  # noqa: F401  (their @verb rows fill VERBS)

    rank = {n: i for i, n in enumerate(ORDER)}
    ordered = sorted(VERBS.items(), key=lambda kv: rank.get(kv[0], len(rank)))
    VERBS.clear()
    VERBS.update(ordered)
    return VERBS


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    load_verbs()
    from aios_shell import verbs

    name = argv[0] if argv and not argv[0].startswith("-") else None
    if name == "help":
        return show_help(argv[1:])
    if name is not None and name not in VERBS:
        print(f"{PROG}: error: unknown verb {name!r}{hint(name, VERBS)} ({PROG} --help lists them)", file=sys.stderr)
        return 2
    v = VERBS.get(name) if name else None
    parser = parser_for(v) if v else shell_parser()
    args = parser.parse_args(argv[1:] if v else argv)
    args.argv = argv[1:] if v else argv  # as given (a detached `serve` hands them to the daemon)
    try:
        return v.run(args) if v else verbs.shell(args)
    except Usage as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    except Failed as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def show_help(rest: list[str]) -> int:
    if not rest:
        shell_parser().print_help()
        return 0
    v = VERBS.get(rest[0])
    if v is None:
        print(f"{PROG}: error: unknown verb {rest[0]!r}{hint(rest[0], VERBS)}", file=sys.stderr)
        return 2
    parser_for(v).print_help()
    return 0


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


if __name__ == "__main__":  # python -m aios_shell.cli: run the one copy the verbs register with
    from aios_shell.cli import main as _main

    sys.exit(_main())
