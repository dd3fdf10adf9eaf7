"""``aios run AGENT TASK...``: run one agent and print its answer, as ``ollama run`` does.

    $ aios run EchoAgent hello world
    attached to the AIOS daemon (pid 4242)          (stderr)
    [EchoAgent 7] echo: hello world                  (stderr: the agent's lines)
    hello world                                      (stdout: the answer, nothing else)

stdout carries only the answer (``--json``: the result record, one line);
progress, the agent's own lines and errors go to stderr. On the daemon when
one serves; otherwise on a kernel of its own (one line says so), which
stops when the agent ends. ``-d`` (daemon only) prints the pid and returns.

Exit status: 0 when the agent finished (done) with an answer; 1 when it
failed, was killed, ended without an answer, or the kernel could not run it
(the reason on stderr); 2 bad arguments; 130 Ctrl-C (the agent is killed:
it was this command's).
"""

from __future__ import annotations

import json
import sys
import threading

from aios_shell.cli import (Failed, Usage, arg, attach, config_from, no_daemon, print_json, quiet,
                            refuse_kernel_flags, say_attached, verb)


class OneAgent:
    """The event filter of ``aios run``: only our agent's lines and exit reach the view (``ctx``).

    Events arrive on the client's reader thread, possibly before ``spawn`` has returned our pid
    (an agent may print at once): until then its output and exit events are held, then replayed.
    ``_lock`` guards ``pid`` and ``held``, and is held while an event is delivered, so the
    replay and later events keep their order."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.pid: int | None = None
        self.held: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, ev: dict) -> None:
        with self._lock:
            if ev.get("event") in ("output", "exit"):
                if self.pid is None:
                    self.held.append(ev)
                    return
                if ev.get("pid") != self.pid:
                    return  # another client's agent, or one ours spawned
            self.ctx.on_event(ev)

    def mine(self, pid: int) -> None:
        with self._lock:
            self.pid, held, self.held = pid, self.held, []
            for ev in held:
                if ev.get("pid") == pid:
                    self.ctx.on_event(ev)


def answer_of(snap: dict) -> str | None:
    """The plain answer of a finished agent: its record's ``answer``, else a string result, else the
    ``answer`` field of an object result; None when there is none."""
    for value in (snap.get("answer"), snap.get("result")):
        if isinstance(value, str):
            return value
    r = snap.get("result")
    if isinstance(r, dict) and isinstance(r.get("answer"), str):
        return r["answer"]
    return None if r is None else json.dumps(r, ensure_ascii=False)


def split_task(agent: str, words: list[str]) -> tuple[str, str]:
    """``MathAgent what is 2+2`` or the shell's ``"MathAgent: what is 2+2"`` -> (agent, task)."""
    head, colon, rest = agent.partition(":")
    task = " ".join([rest.strip()] + words if colon and rest.strip() else words).strip()
    if not head.strip():
        raise Usage("which agent? aios agents lists them")
    if not task:
        raise Usage(f"no task for {head.strip()}: aios run {head.strip()} TASK...")
    return head.strip(), task


@verb("run", "[-d] [--json] AGENT TASK...", "run an agent on a task and print its answer",
      arg("agent", metavar="AGENT", help="an agent app (aios agents lists them; the case does not matter)"),
      arg("task", nargs="*", metavar="TASK", help="the task, in one or several words"),
      arg("-d", "--detach", action="store_true", help="on the daemon: print the pid and return at once "
          "(aios logs/wait/result PID later)"),
      arg("--json", action="store_true", help="print the result record (one JSON object) instead of the answer"),
      arg("-p", "--priority", type=int, default=0,
          help="scheduling priority, -20 to 20 (higher first under --scheduler priority)"),
      where="kernel")
def run(args) -> int:
    from aios_shell.context import ShellContext

    agent, task = split_task(args.agent, args.task)
    config = config_from(args)
    ctx = ShellContext(interactive=False, out=sys.stderr, err=sys.stderr, notify_exit=False,
                       verbosity=args.verbosity or 0)
    view = OneAgent(ctx)
    client = None if args.standalone else attach(args, view)
    if client is not None:
        try:
            refuse_kernel_flags(args)
        except Usage:
            client.stop()
            raise
        say_attached(args, client)
        return on_kernel(client, view, agent, task, args, own=False)
    if args.socket and not args.standalone:
        raise Failed(no_daemon(args))
    if args.detach:
        raise Failed("--detach needs the AIOS daemon, which keeps the agent running after this command: "
                     "start one with aios serve")
    return own_kernel(config, view, agent, task, args)


def own_kernel(config, view: OneAgent, agent: str, task: str, args) -> int:
    from kernel import apps as registry  # the kernel's catalog, read before a kernel runs
    from aios_shell.client import KernelClient, KernelError

    if registry.find(agent) is None:  # before booting a kernel for nothing
        from aios_shell.suggest import hint

        raise Usage(f"no agent app {agent!r}{hint(agent, registry.discover())} (aios agents lists them)")
    if not quiet(args):
        why = "--standalone" if args.standalone else "no AIOS daemon is running"
        print(f"{why}: starting a kernel for this run (model {config.llm.name}; it stops when the agent ends"
              f"{'' if args.standalone else '; aios serve keeps one running'})", file=sys.stderr)
    try:
        client = KernelClient(config, on_event=view)
    except KernelError as e:
        raise Failed(e.message) from None
    return on_kernel(client, view, agent, task, args, own=True)


def on_kernel(client, view: OneAgent, agent: str, task: str, args, own: bool) -> int:
    """Spawn, follow, print; always leaves the client stopped (own kernel) or detached."""
    from aios_shell.client import KernelError

    ctx, pid = view.ctx, None
    ctx.attach(client)
    try:
        pid = client.spawn(agent, task, args.priority)
        view.mine(pid)
        if args.detach:
            print(pid)
            return 0
        return report(client.wait(pid), args)
    except KernelError as e:
        raise Failed(e.message) from None
    except KeyboardInterrupt:
        if pid is not None and not own:
            try:
                client.kill(pid)  # ours: it does not outlive the command that started it
                ctx.note(f"interrupted: killed pid {pid}")
            except KernelError:
                pass
        return 130
    finally:
        client.stop()


def report(snap: dict, args) -> int:
    from aios_shell import views
    from aios_shell.batch import report as record

    answer = answer_of(snap) if snap.get("state") == "done" else None
    if args.json:
        print_json(record(snap))
    elif answer:
        print(answer)
    if snap.get("state") != "done":
        why = views.result_text(snap).strip()
        if "Traceback (most recent call last)" in why:  # the agent's lines showed it; its last line says why
            why = why.splitlines()[-1]
        print(f"{PROG_ERR}{views.ended_head(snap)}: {why}", file=sys.stderr)
        return 1
    if not answer or not answer.strip():
        print(f"{PROG_ERR}{views.ended_head(snap)} without an answer", file=sys.stderr)
        return 1
    return 0


PROG_ERR = "aios run: error: "
