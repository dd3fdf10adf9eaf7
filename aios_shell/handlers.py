"""The shell's commands: one table (``TABLE``) shared by the REPL and the batch runner.

Each handler is ``fn(ctx, arg)``; ``arg`` is the rest of the line. Errors a
user can fix raise CommandError (one line); kernel refusals arrive as
KernelError and are printed the same way by the dispatcher.
"""

from __future__ import annotations

import queue

from aios_shell import views
from aios_shell.commands import CommandError, CommandTable, ExitShell

TABLE = CommandTable()
FOLLOW_POLL_S = 0.5  # logs -f on a log file: how often the file is re-read (like tail -f)


def parse_pid(word: str) -> int:
    try:
        pid = int(word)
    except ValueError:
        raise CommandError(f"bad pid {views.cut(word, 20)!r}: a pid is a positive integer (see ps)") from None
    if pid <= 0:
        raise CommandError(f"bad pid {pid}: a pid is a positive integer (see ps)")
    return pid


def parse_run(arg: str) -> tuple[str, str, int]:
    """``[--priority N] <Agent>: <task>`` -> (agent, task, priority)."""
    usage = "usage: run [--priority N] <Agent>: <task>"
    head, colon, task = arg.partition(":")
    words = head.split()
    priority = 0
    agent = None
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("--priority", "-p") or w.startswith("--priority="):
            if "=" in w:
                value = w.split("=", 1)[1]
            elif i + 1 < len(words):
                i += 1
                value = words[i]
            else:
                raise CommandError(f"--priority needs a number; {usage}")
            try:
                priority = int(value)
            except ValueError:
                raise CommandError(f"--priority must be an integer, not {views.cut(value, 20)!r}") from None
        elif w.startswith("-"):
            raise CommandError(f"unknown option {views.cut(w, 20)!r}; {usage}")
        elif agent is None:
            agent = w
        else:
            raise CommandError(f"one agent name before the colon, got {views.cut(head.strip(), 40)!r}; {usage}")
        i += 1
    if agent is None:
        raise CommandError(f"which agent? {usage} (agents lists them)")
    if not colon:
        raise CommandError(f"missing ':' and task after {views.cut(agent, 30)!r}; {usage}")
    task = task.strip()
    if not task:
        raise CommandError(f"missing task after '{views.cut(agent, 30)}:'; {usage}")
    return agent, task, priority


@TABLE.command("run", "run [--priority N] <Agent>: <task>",
               "start an agent process on a task; prints its pid\n"
               "The agent name is matched case-insensitively (see agents). A higher --priority\n"
               "is served first by the priority scheduler. If the model is still loading the\n"
               "agent starts now and its LLM calls wait until the model is ready.",
               args=("agent",), flags=("--priority",))
def cmd_run(ctx, arg):
    agent, task, priority = parse_run(arg)
    pid = ctx.client.spawn(agent, task, priority)
    name = agent
    try:
        from agent_apps import registry
        app = registry.find(agent)
        name = app.name if app else agent
    except Exception:
        pass
    ctx.note_spawn(pid, name)
    loading = "" if ctx.client.ready.is_set() else " (model still loading: its LLM calls wait until it is ready)"
    ctx.echo(f"started {name} as pid {pid}{loading}")


@TABLE.command("ps", "ps [-a]",
               "list agent processes (-a: finished ones too)\n"
               "Columns: PID, AGENT, STATE, PRI(ority), %CPU and RSS of the agent's OS process,\n"
               "LLM tokens in/out, SYSCALLS, average WAIT (queued before decoding) and\n"
               "TURNAROUND (submit to reply) of its LLM calls, TIME since start, TASK.",
               aliases=("print agent",), flags=("-a",))
def cmd_ps(ctx, arg):
    words = arg.split()
    bad = [w for w in words if w not in ("-a", "--all")]
    if bad:
        raise CommandError(f"unknown argument {views.cut(bad[0], 20)!r}; usage: ps [-a]")
    ctx.echo(views.ps_table(ctx.client.ps(all=bool(words))))


@TABLE.command("kill", "kill <pid>...", "stop agent processes (SIGTERM, then SIGKILL after a grace period)",
               args=("live_pid",))
def cmd_kill(ctx, arg):
    words = arg.split()
    if not words:
        raise CommandError("usage: kill <pid>... (ps lists pids)")
    for pid in [parse_pid(w) for w in words]:
        ctx.client.kill(pid)
        with ctx._lock:
            ctx.killed.add(pid)
        ctx.echo(f"killing pid {pid}")


@TABLE.command("wait", "wait <pid>...|all",
               "wait until processes end and print their results (Ctrl-C stops waiting)",
               args=("live_pid",), flags=("all",))
def cmd_wait(ctx, arg):
    words = arg.split()
    if not words:
        raise CommandError("usage: wait <pid>...|all")
    if words == ["all"]:
        pids = [s["pid"] for s in ctx.client.ps(all=False)]
        if not pids:
            ctx.echo("no running agents")
            return
    else:
        pids = [parse_pid(w) for w in words]
    ctx.waited.update(pids)  # their results are printed here: no exit notices meanwhile
    try:
        for pid in pids:
            if ctx.interactive and pid in ctx.live_pids():
                ctx.echo(f"waiting for pid {pid} ({ctx.seen.get(pid, '?')}); Ctrl-C stops waiting")
            ctx.echo(views.result_block(ctx.run_blocking(ctx.client.wait, pid)))
    finally:
        ctx.waited.difference_update(pids)


@TABLE.command("result", "result <pid>", "print the result of a process (or its state if still running)",
               args=("pid",))
def cmd_result(ctx, arg):
    words = arg.split()
    if len(words) != 1:
        raise CommandError("usage: result <pid>")
    snap = ctx.client.info(parse_pid(words[0]))
    if snap.get("state") in views.ENDED:
        ctx.echo(views.result_block(snap))
    else:
        ctx.echo(f"pid {snap['pid']} ({snap.get('agent')}) is still {snap.get('state')}; wait {snap['pid']} waits for it")


@TABLE.command("info", "info <pid>", "every accounting field of one process", args=("pid",))
def cmd_info(ctx, arg):
    words = arg.split()
    if len(words) != 1:
        raise CommandError("usage: info <pid>")
    ctx.echo(views.info_lines(ctx.client.info(parse_pid(words[0]))))


@TABLE.command("logs", "logs <pid> [-f]",
               "show a process's output (-f: follow until it ends; Ctrl-C stops)\n"
               "In console mode the kernel keeps each agent's last lines; with\n"
               "--agent_log_mode file this reads logs/agents/<Agent>/<stamp>-pid<N>.log.",
               args=("pid",), flags=("-f",))
def cmd_logs(ctx, arg):
    words = arg.split()
    follow = "-f" in words
    rest = [w for w in words if w != "-f"]
    if len(rest) != 1:
        raise CommandError("usage: logs <pid> [-f]")
    pid = parse_pid(rest[0])
    q = ctx.follow(pid) if follow else None  # subscribe before reading, so no line falls in between
    try:
        info = ctx.client.logs(pid)
        path = info.get("log_path")
        if path:
            pos = _print_file(ctx, path, 0)
            if follow and not info.get("ended"):
                _follow_file(ctx, pid, path, pos, q)
            return
        for line in info.get("lines", []):
            ctx.echo(views.printable(line))
        if follow and not info.get("ended"):
            _follow_events(ctx, q)
    finally:
        if follow:
            ctx.unfollow(pid)


def _print_file(ctx, path: str, pos: int) -> int:
    """Print ``path`` from byte ``pos`` up to its last complete line; returns the new position."""
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        if pos == 0:
            ctx.echo(f"(no log file yet: {path})")
        return pos
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode("utf-8", "replace").splitlines():
        ctx.echo(views.printable(line))
    return pos + end


def _follow_events(ctx, q: queue.Queue) -> None:
    def drain():
        while True:
            line = q.get()
            if line is None:
                return
            ctx.echo(line)
    ctx.run_blocking(drain)


def _follow_file(ctx, pid: int, path: str, pos: int, q: queue.Queue) -> None:
    """tail -f: re-read the file every FOLLOW_POLL_S until the process's exit arrives on ``q``."""
    def tail():
        p = pos
        while True:
            try:
                ended = q.get(timeout=FOLLOW_POLL_S) is None
            except queue.Empty:
                ended = False
            p = _print_file(ctx, path, p)
            if ended:
                return
    ctx.run_blocking(tail)


@TABLE.command("top", "top", "live full-screen view of the kernel and its processes (q quits)\n"
               "Keys: q quit, arrows select, k kill the selected agent (asks y/N), P/M/T sort by\n"
               "%CPU/memory/CPU time, N by pid, a show finished processes too.",
               interactive_only=True)
def cmd_top(ctx, arg):
    from aios_shell.top import TopView

    TopView(ctx, interval=ctx.top_interval).run()


@TABLE.command("agents", "agents", "installed agent apps and what they do")
def cmd_agents(ctx, arg):
    from agent_apps import registry

    ctx.echo(views.agents_text(registry.discover()))


@TABLE.command("tools", "tools", "tools the kernel offers agents (side effect, parallel limit)")
def cmd_tools(ctx, arg):
    ctx.echo(views.tools_text(ctx.client.request("tools", timeout=10)))


@TABLE.command("sched", "sched", "the LLM scheduler: policy, queue, engine stats, live processes' LLM use")
def cmd_sched(ctx, arg):
    stats = ctx.refresh_stats()
    ctx.echo(views.sched_text(stats, ctx.client.ps(all=False), ctx.tok_s))


@TABLE.command("help", "help [command]", "list commands, or show one command's help", args=("command",),
               aliases=("?",))
def cmd_help(ctx, arg):
    word = arg.strip()
    if word:
        cmd = TABLE.get(word)
        if cmd is None:
            raise CommandError(f"no command {views.cut(word, 30)!r} (help lists them)")
        alias = f"  (alias: {', '.join(cmd.aliases)})" if cmd.aliases else ""
        ctx.echo(f"{cmd.syntax}{alias}\n  " + "\n  ".join(cmd.help.splitlines()))
        return
    w = max(len(c.syntax) for c in TABLE.commands.values()) + 2
    lines = [f"{c.syntax:<{w}}{c.summary}" for c in TABLE.commands.values()]
    ctx.echo("\n".join(lines) + "\nhelp <command> for details; Tab completes; Ctrl-D or exit leaves.")


@TABLE.command("exit", "exit", "leave: stops every agent and the kernel (asks first if agents run);\n"
               "attached to a daemon (--connect), only detaches: the agents go on",
               aliases=("quit",))
def cmd_exit(ctx, arg):
    if ctx.interactive and not confirm_leave(ctx):
        return
    raise ExitShell()


@TABLE.command("shutdown", "shutdown", "stop every agent and the kernel; attached to a daemon (--connect),\n"
               "the daemon too (asks first if agents run)")
def cmd_shutdown(ctx, arg):
    if arg.strip():
        raise CommandError("usage: shutdown")
    if ctx.interactive and not confirm_leave(ctx, stopping=True):
        return
    if getattr(ctx, "remote", False):
        ctx.client.shutdown()
        ctx.note("the daemon is stopping its agents and kernel")
    raise ExitShell()


def confirm_leave(ctx, stopping: bool = False) -> bool:
    """REPL: True if no agent runs or the user agrees to stop them (detaching from a daemon stops none)."""
    if getattr(ctx, "remote", False) and not stopping:
        return True
    try:
        live = ctx.client.ps(all=False)
    except Exception:
        return True  # the kernel is gone: nothing left to stop
    if not live or ctx.ask is None:
        return True
    names = ", ".join(f"{s['agent']} {s['pid']}" for s in live[:5]) + (" …" if len(live) > 5 else "")
    return bool(ctx.ask(f"{len(live)} agent(s) still running ({names}). Stop them and leave? [y/N] ", None))
