"""``simulator.py --connect`` and ``aios`` with a daemon: the shell, its batch runner and ``-c`` on a
daemon's kernel.

    python simulator.py --connect                 # the REPL; exit detaches, shutdown stops the daemon
    python simulator.py --connect -c 'ps'         # one command; exit status 0 ok, 1 failed
    python simulator.py --connect --script jobs.aios [--json]   # a batch run, as without --connect

The commands are the same table and dispatcher as the foreground shell; the
client is a RemoteKernelClient (aios_shell/daemon/remote.py). Leaving (exit,
Ctrl-D, end of script, SIGTERM/SIGHUP) detaches: the daemon, its kernel and
agents go on. Kernel flags (--llm_name ...) are the daemon's, not ours.
Exit status: as the batch runner's; 1 when the daemon cannot be reached or
goes away; 128+N on signal N. ``aios`` passes ``standalone``: what to run
instead when no daemon serves the socket (its own kernel).
"""

from __future__ import annotations

import sys
from typing import Callable

from aios_shell.client import KernelError
from aios_shell.commands import Dispatcher, ExitShell
from aios_shell.confirm import ConfirmBroker
from aios_shell.context import ShellContext
from aios_shell.handlers import TABLE
from aios_shell.repl import leave_on_signals
from aios_shell.session import Session, batch_or_repl, run_then_stop


def run_command(ctx, line: str) -> int:
    """``-c``: one line through the dispatcher; 0 if it succeeded."""
    try:
        return 0 if Dispatcher(TABLE, ctx).onecmd(line) else 1
    except ExitShell:
        return 0


def banner(client, sock_path: str, llm_name: str) -> str:
    """The REPL's first line on a daemon's kernel."""
    h = client.hello
    return (f"AIOS shell: attached to the AIOS daemon (pid {h.get('daemon_pid')}) at {sock_path} (kernel "
            f"pid {client.pid}, model {llm_name}, scheduler {h.get('scheduler')}; logs in "
            f"{h.get('log_dir')}/).\nType help for commands, Tab to complete; exit or Ctrl-D detaches "
            "(agents go on), shutdown stops the daemon.")


def run_connected(args, sock_path: str, batch: bool, name: str, lines, *, prog: str = "simulator.py",
                  standalone: Callable[[], int] | None = None) -> int:
    from aios_shell.daemon.remote import NoDaemon, RemoteKernelClient

    one = args.command is not None
    ctx = ShellContext(interactive=not batch, out=sys.stderr if args.json else None,
                       show_output=not one, notify_exit=not batch)
    ctx.remote = True  # exit detaches (no question), shutdown stops the daemon
    ctx.top_interval = args.top_interval
    if not batch:  # before connecting: questions pending in the daemon arrive right after hello
        ctx.confirm = ConfirmBroker(send=lambda cid, allow: ctx.client.request("confirm", timeout=10, cid=cid,
                                                                                allow=allow),
                                    wake=ctx.wake, echo=ctx.echo)
    try:
        client = RemoteKernelClient(sock_path, on_event=ctx.on_event, interactive=not batch)
    except NoDaemon as e:
        if standalone is not None:
            return standalone()
        print(f"{prog}: error: {e.message}", file=sys.stderr)
        return 1
    except KernelError as e:
        print(f"{prog}: error: {e.message}", file=sys.stderr)
        return 1
    leave_on_signals(ctx)
    s = Session(batch=batch, name=name, lines=lines, json_mode=args.json, history=args.history,
                timeline=getattr(args, "timeline", None))

    def start() -> int:
        ctx.llm_name = client.hello.get("model") or ""
        ctx.attach(client)
        if one:
            return run_command(ctx, args.command)
        if batch and standalone is not None and (args.verbosity or 0) >= 0:  # aios: say where the commands go
            print(f"attached to the AIOS daemon (pid {client.hello.get('daemon_pid')})", file=sys.stderr)
        return batch_or_repl(ctx, s, banner(client, sock_path, ctx.llm_name))

    return run_then_stop(ctx, start, client.stop)
