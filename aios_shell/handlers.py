"""The shell's commands: one table (``TABLE``) shared by the REPL and the batch runner.

Each handler is ``fn(ctx, arg)``; ``arg`` is the rest of the line. Errors a
user can fix raise CommandError (one line); kernel refusals arrive as
KernelError and are printed the same way by the dispatcher.
"""

from __future__ import annotations

import queue

from aios_shell import details, views
from aios_shell.client import KernelError
from aios_shell.commands import CommandError, CommandTable, ExitShell
from aios_shell.suggest import hint

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
    try:
        name = ctx.client.info(pid).get("agent") or agent  # as the kernel's catalog spells it: MathAgent
    except KernelError:
        name = agent
    ctx.note_spawn(pid, name)
    loading = "" if ctx.client.ready.is_set() else " (model still loading: its LLM calls wait until it is ready)"
    ctx.echo(f"started {name} as pid {pid}{loading}")


@TABLE.command("ps", "ps [-a] [-o table|wide|json]",
               "list agent processes (-a: finished ones too; -o wide: every column, nothing cut; -o json)\n"
               "Columns: PID, AGENT, STATE, PRI(ority), %CPU and RSS of the agent's OS process,\n"
               "LLM tokens in/out, SYSCALLS, average WAIT (queued before decoding) and\n"
               "TURNAROUND (submit to reply) of its LLM calls, TIME since start, CONFINE(ment), TASK.\n"
               "On a terminal the table fits its width; to a pipe or a file nothing is cut.",
               aliases=("print agent",), flags=("-a", "-o"))
def cmd_ps(ctx, arg):
    usage = "ps [-a] [-o table|wide|json]"
    fmt, words = _output(arg.split(), usage, ("table", "wide", "json"))
    bad = [w for w in words if w not in ("-a", "--all")]
    if bad:
        raise CommandError(f"unknown argument {views.cut(bad[0], 20)!r}{hint(bad[0], ['-a', '-o'])}; usage: {usage}")
    snaps = ctx.client.ps(all=bool(words))
    if fmt == "json":
        ctx.echo(views.json_text(snaps))
    else:
        ctx.echo(views.ps_table(snaps, None if fmt == "wide" else ctx.width()))


def _output(words: list[str], usage: str, choices=("table", "json")) -> tuple[str, list[str]]:
    """``-o FORMAT`` out of ``words`` (views.output_format), a bad one as a CommandError."""
    try:
        return views.output_format(words, usage, choices)
    except ValueError as e:
        raise CommandError(str(e)) from None


def _output_args(arg: str, usage: str, count: int) -> tuple[str, list[str]]:
    """``-o json`` and exactly ``count`` other words out of ``arg``, else the usage line as a CommandError."""
    fmt, words = _output(arg.split(), usage)
    if len(words) != count:
        raise CommandError(f"usage: {usage}")
    return fmt, words


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


@TABLE.command("result", "result <pid> [-o json]",
               "print the whole answer of a process (or its state if still running)\n"
               "-o json: the result record, {\"answer\": ..., and the agent's other fields}.",
               args=("pid",), flags=("-o",))
def cmd_result(ctx, arg):
    fmt, words = _output_args(arg, "result <pid> [-o json]", 1)
    snap = ctx.client.info(parse_pid(words[0]))
    if fmt == "json":
        ctx.echo(views.json_text({"pid": snap.get("pid"), "agent": snap.get("agent"), "state": snap.get("state"),
                                  "answer": views.answer(snap), "result": views.result_record(snap),
                                  "error": snap.get("error")}))
    elif snap.get("state") in views.ENDED:
        ctx.echo(views.result_block(snap))
    else:
        ctx.echo(f"pid {snap['pid']} ({snap.get('agent')}) is still {snap.get('state')}; wait {snap['pid']} waits for it")


@TABLE.command("info", "info <pid> [-o json]", "every accounting field of one process, in sections (-o json: as JSON)",
               args=("pid",), flags=("-o",))
def cmd_info(ctx, arg):
    fmt, words = _output_args(arg, "info <pid> [-o json]", 1)
    snap = ctx.client.info(parse_pid(words[0]))
    ctx.echo(views.json_text(snap) if fmt == "json" else details.info_text(snap))


@TABLE.command("logs", "logs <pid> [-f] [--tail N]",
               "show a process's output (-f: follow until it ends; Ctrl-C stops; --tail N: its last N lines)\n"
               "In console mode the kernel keeps each agent's last lines; with\n"
               "--agent_log_mode file this reads <log-dir>/agents/<Agent>/<stamp>-pid<N>.log.",
               args=("pid",), flags=("-f", "--tail"))
def cmd_logs(ctx, arg):
    words = arg.split()
    usage = "usage: logs <pid> [-f] [--tail N]"
    tail = None
    if "--tail" in words:
        i = words.index("--tail")
        try:
            tail = int(words[i + 1])
        except (IndexError, ValueError):
            raise CommandError(f"--tail needs a number of lines; {usage}") from None
        if tail < 0:
            raise CommandError(f"--tail must be >= 0; {usage}")
        del words[i:i + 2]
    follow = "-f" in words
    rest = [w for w in words if w != "-f"]
    if len(rest) != 1:
        raise CommandError(usage)
    pid = parse_pid(rest[0])
    q = ctx.follow(pid) if follow else None  # subscribe before reading, so no line falls in between
    try:
        info = ctx.client.logs(pid)
        path = info.get("log_path")
        if path:
            pos = _print_file(ctx, path, 0, tail)
            if follow and not info.get("ended"):
                _follow_file(ctx, pid, path, pos, q)
            return
        lines = info.get("lines", [])
        for line in lines[max(0, len(lines) - tail):] if tail is not None else lines:
            ctx.echo(views.printable(line))
        if follow and not info.get("ended"):
            ctx.drain(q, ctx.echo)
    finally:
        if follow:
            ctx.unfollow(pid)


@TABLE.command("trace", "trace [-a] [-o json] <pid> | trace --timeline FILE",
               "strace for agents: each call of a process as it completes (Ctrl-C stops)\n"
               "One line per system call: its arguments in brief (content as <size #hash> unless\n"
               "the kernel runs with --trace-content), result size or error, duration; LLM calls\n"
               "with tokens in/out, prefix-cache hit, [wait prefill decode] and preemptions; tool\n"
               "calls with the confirmation asked and its answer. -a first replays the calls the\n"
               "kernel kept (the default for an ended process); -o json prints the spans as JSON.\n"
               "--timeline FILE writes every kept process as an HTML timeline (open it in a browser).",
               args=("pid",), flags=("-a", "-o", "--timeline"))
def cmd_trace(ctx, arg):
    from aios_shell.trace_view import run

    run(ctx, arg)


def _print_file(ctx, path: str, pos: int, tail: int | None = None) -> int:
    """Print ``path`` from byte ``pos`` up to its last complete line (only the last ``tail`` lines, if
    given); returns the new position."""
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        if pos == 0:
            ctx.echo(f"(no log file yet: {path})")
        return pos
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", "replace").splitlines()
    for line in lines[max(0, len(lines) - tail):] if tail is not None else lines:
        ctx.echo(views.printable(line))
    return pos + end


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


@TABLE.command("agents", "agents", "installed agent apps and what they do; broken ones with the file and the error")
def cmd_agents(ctx, arg):
    ctx.echo(views.agents_text(**_catalog(ctx), width=ctx.width()))


def _catalog(ctx) -> dict:
    """The kernel's agent apps ({"apps", "broken"}); with no kernel (``aios agents``), read from the same
    catalog the kernel reads (kernel/apps.py)."""
    if ctx.client is not None:
        return ctx.client.apps()
    from kernel import apps

    return apps.catalog()


@TABLE.command("tools", "tools", "tools the kernel offers agents (side effect, parallel limit)")
def cmd_tools(ctx, arg):
    ctx.echo(views.tools_text(ctx.client.request("tools", timeout=10), ctx.width()))


@TABLE.command("sched", "sched [-o json]", "the LLM scheduler: model, policy, queue, throughput, cache, and the\n"
               "live processes' LLM use (-o json: as JSON)", flags=("-o",))
def cmd_sched(ctx, arg):
    fmt, _ = _output_args(arg, "sched [-o json]", 0)
    stats = ctx.refresh_stats()
    snaps = ctx.client.ps(all=False)
    ctx.echo(views.json_text(details.sched_record(stats, snaps)) if fmt == "json"
             else details.sched_text(stats, snaps, ctx.tok_s))


@TABLE.command("status", "status [-o json]", "the kernel: model, policy, pid, uptime, agents, where it runs\n"
               "(-o json: as JSON)", flags=("-o",))
def cmd_status(ctx, arg):
    fmt, _ = _output_args(arg, "status [-o json]", 0)
    stats = ctx.refresh_stats()
    remote = getattr(ctx, "remote", False)
    where = getattr(ctx.client, "sock_path", None) or getattr(ctx.client, "path", None)
    connection = f"attached to the AIOS daemon{f' at {where}' if where else ''}" if remote else "own kernel"
    config = getattr(ctx.client, "config", None)
    hello = getattr(ctx.client, "hello", None) or {}
    rec = details.status_record(stats, connection, config.logs.dir if config is not None else hello.get("log_dir"))
    ctx.echo(views.json_text(rec) if fmt == "json" else details.status_text(rec))


@TABLE.command("clear", "clear", "clear the screen (Ctrl-L too)")
def cmd_clear(ctx, arg):
    if arg.strip():
        raise CommandError("usage: clear")
    ctx.clear()


@TABLE.command("help", "help [command]", "list commands, or show one command's help", args=("command",),
               aliases=("?",))
def cmd_help(ctx, arg):
    word = arg.strip()
    if word:
        cmd = TABLE.get(word)
        if cmd is None:
            raise CommandError(f"no command {views.cut(word, 30)!r}{hint(word, TABLE.words())} (help lists them)")
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
        ctx.note("the daemon has stopped: its agents and kernel are gone")
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
