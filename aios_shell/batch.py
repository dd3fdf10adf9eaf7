"""Scripted batch runs: shell commands from a file or a pipe, through the REPL's dispatcher.

``run_batch(ctx, lines, name, json_mode)`` runs each line (``#`` comments
and blank lines skipped; errors are printed as ``FILE:LINE: error: ...`` on
stderr and the script goes on), stops reading at ``exit``, then waits for
every agent the script started and reports them in pid order:

  text mode  a header line per agent and its result, indented, on stdout
  --json     one JSON object per agent per line on stdout (keys: REPORT_KEYS; ``answer``
             always a string, ``result`` an object or null: see ``report``);
             the caller sends everything else (command output, agent output,
             errors) to stderr, so stdout parses line by line

Exit status: 0 if every command and every agent succeeded; 1 if a command
failed, an agent failed (or was killed without the script asking), or the
model could not be loaded; 130 after Ctrl-C.
"""

from __future__ import annotations

import json
import sys
from typing import Iterable

from aios_shell import views
from aios_shell.client import KernelError
from aios_shell.commands import Dispatcher, ExitShell
from aios_shell.handlers import TABLE
from kernel.protocol.messages import ESRCH

REPORT_KEYS = ("pid", "agent", "task", "status", "answer", "result", "error", "exit_code", "exit_signal", "priority",
               "waiting_s", "turnaround_s", "elapsed_s", "tokens_in", "tokens_out", "llm_calls", "syscalls_total",
               "preemptions", "log_path")


def report(snap: dict) -> dict:
    """The JSON record of one finished agent, the same types whatever the agent returned.

    ``answer`` is always a string (the plain answer; "" when there is none); ``result`` is the
    agent's result as an object with ``answer`` first and the agent's other fields (a string
    result is ``{"answer": text}``), or null when it reported none; ``status`` is its final state
    (done/failed/killed); ``error`` why it failed (null when it did not); ``exit_code`` (a normal
    exit) or ``exit_signal`` (the signal number that ended it) is its OS exit status."""
    rec = {k: snap.get(k) for k in REPORT_KEYS if k not in ("status", "answer", "result")}
    rec["status"] = snap.get("state")
    rec["answer"] = views.answer(snap) if snap.get("state") == "done" else ""
    rec["result"] = views.result_record(snap)
    return {k: rec[k] for k in REPORT_KEYS}


def _timeline(ctx, path: str) -> bool:
    from aios_shell.commands import CommandError
    from aios_shell.trace_view import write_timeline

    try:
        n, spans = write_timeline(ctx, path)
    except (CommandError, KernelError) as e:
        ctx.error(f"--timeline: {getattr(e, 'message', e)}")
        return False
    ctx.note(f"timeline of {n} process(es), {spans} call(s): {path}")
    return True


def agent_failed(snap: dict, killed_on_purpose: set[int]) -> bool:
    state = snap.get("state")
    return state == "failed" or (state == "killed" and snap.get("pid") not in killed_on_purpose)


def run_batch(ctx, lines: Iterable[str], name: str = "<stdin>", json_mode: bool = False, table=TABLE,
              report_to=None, timeline: str | None = None) -> int:
    """Run ``lines``; returns the exit status. Reports go to ``report_to`` (default sys.stdout).
    ``timeline``: once every agent has ended, write the run's timeline there (``--timeline FILE``)."""
    def emit(text: str) -> None:
        out = report_to or sys.stdout
        out.write(text + "\n")
        out.flush()

    dispatcher = Dispatcher(table, ctx)
    failed_cmds = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        ctx.error_prefix = f"{name}:{lineno}: "
        try:
            if not dispatcher.onecmd(line.rstrip("\n")):
                failed_cmds += 1
        except ExitShell:
            break
    ctx.error_prefix = ""
    snaps, lost = [], 0
    for pid in list(ctx.spawned):
        try:
            snaps.append(ctx.client.wait(pid))
        except KernelError as e:  # the kernel died, or the pid left its bounded history
            if e.code == ESRCH and pid in ctx.ended:
                snaps.append(ctx.ended[pid])  # its exit event's snapshot (a large result's start only)
                continue
            ctx.error(f"wait {pid}: {e.message}")
            lost += 1
    failed_agents = [s for s in snaps if agent_failed(s, ctx.killed)]
    if timeline and not _timeline(ctx, timeline):
        failed_cmds += 1
    ctx.client.ready.wait()  # a batch succeeds only with a usable model (set too if the kernel dies)
    load_error = ctx.client.ready_info.get("load_error")
    if load_error:
        ctx.error(f"the model could not be loaded: {load_error}")
    for s in snaps:
        if json_mode:
            emit(json.dumps(report(s), ensure_ascii=False, default=str))
        else:
            emit(views.result_block(s))
    if failed_cmds or failed_agents or lost or load_error:
        ctx.note(f"{name}: {failed_cmds} command(s) failed, {len(failed_agents) + lost} of {len(ctx.spawned)} "
                 "agent(s) failed")
        return 1
    return 0
