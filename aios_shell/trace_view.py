"""``trace``: strace for agents, in the shell (the REPL, batch scripts and ``--connect -c``).

Usage::

    trace <pid>                 follow a live process: one line per call as it completes (Ctrl-C stops)
    trace -a <pid>              first replay the calls the kernel kept (the default for an ended process)
    trace -o json <pid>         one JSON object per span instead (the kernel's record, times in epoch seconds)
    trace --timeline FILE       write the timeline of every kept process (self-contained HTML, see timeline.py)

Lines look like::

    12:01:03.120 llm.chat(model=smollm2, 412 tok in, prefix hit 380) = 38 tok  [wait 0.41s prefill 0.05s decode 1.90s]
    12:01:05.031 tool.call(name="calculator", args={expression=<5 B #9f3a1c>}) = 42 B  <0.012s>
    12:01:05.050 fs.delete(name="notes.txt") = -1 EPERM (Operation not permitted)  <4.001s>  [confirm: denied, ...]
    12:01:06.200 +++ exited: done, status 0 +++

Arguments show identifiers (names, pids, numbers) and content as ``<size #hash>`` (a keyed hash: equal
content, equal hash, within one kernel run); a kernel started with ``--trace-content`` keeps previews.
``format_line`` is the one formatter (the timeline's tooltips use it too).
"""

from __future__ import annotations

import errno
import json
import os
import queue
import time

from aios_shell.commands import CommandError
from aios_shell.views import cut, printable

USAGE = "usage: trace [-a] [-o json] <pid>  |  trace --timeline FILE"


def one_line(text) -> str:
    """Kernel text (names and arguments agents chose) safe for a terminal, on one line."""
    return printable(text).replace("\n", " ").replace("\t", " ")


def clock(t: float) -> str:
    """``12:01:03.120`` (local time, milliseconds)."""
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def seconds(s: float | None) -> str:
    return "?" if s is None else f"{s:.2f}s" if s >= 0.01 else f"{s * 1000:.1f}ms"


def size_text(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n} B" if n < 1000 else f"{n / 1000:.1f} KB" if n < 1_000_000 else f"{n / 1_000_000:.1f} MB"


def strerror(code: str) -> str:
    num = getattr(errno, code, None) if code.isupper() and code.startswith("E") else None
    return os.strerror(num) if isinstance(num, int) else ""


def _error(span: dict) -> str:
    code = str(span.get("error"))
    why = span.get("message") or strerror(code)
    return f"-1 {one_line(code)}" + (f" ({cut(why, 160)})" if why else "")


def _confirm(a: dict) -> str:
    if not a.get("confirm"):
        return ""
    if a["confirm"] == "asked":
        return "  [confirm: asked, no answer]"
    by = f", {one_line(a['confirm_by'])}" if a.get("confirm_by") else ""
    return f"  [confirm: {one_line(a['confirm'])}{by}]"


def llm_phases(a: dict) -> str:
    parts = [f"wait {seconds(a.get('wait_s'))}"]
    if a.get("prefill_s") is not None:
        parts += [f"prefill {seconds(a['prefill_s'])}", f"decode {seconds(a.get('decode_s'))}"]
    if a.get("preemptions"):
        parts.append(f"preempted {a['preemptions']}x")
    return "[" + " ".join(parts) + "]"


def format_line(span: dict) -> str:
    """One strace-style line for a span (a root span: its exit, or its spawn while it runs)."""
    a = span.get("attrs") or {}
    if span.get("kind") == "agent":
        if span.get("end") is None:
            return spawn_line(span)
        how = a.get("state", "ended")
        status = (f"signal {a['exit_signal']}" if a.get("exit_signal") is not None
                  else f"status {a['exit_code']}" if a.get("exit_code") is not None else "")
        why = f": {cut(span['message'], 160)}" if span.get("message") else ""
        return f"{clock(span['end'])} +++ exited: {how}{', ' + status if status else ''}{why} +++"
    name = one_line(span.get("name"))
    head = f"{clock(span['start'])} {name}"
    if span.get("end") is None:
        return f"{head}({one_line(span.get('args', ''))}) <unfinished ...>"
    took = f"  <{span['end'] - span['start']:.3f}s>"
    if name == "llm.chat" and "tokens_in" in a:
        hit = f", prefix hit {a['cached']}" if a.get("cached") else ""
        call = f"{head}(model={one_line(a.get('model', '?'))}, {a['tokens_in']} tok in{hit})"
        result = _error(span) if span.get("error") else f"{a.get('tokens_out', 0)} tok"
        return f"{call} = {result}  {llm_phases(a)}"
    result = _error(span) if span.get("error") else size_text(span.get("size"))
    if span.get("result"):
        result += f" {one_line(span['result'])}"
    extra = f"  {llm_phases(a)}" if name == "llm.chat" and "wait_s" in a else ""
    return f"{head}({one_line(span.get('args', ''))}) = {result}{took}{extra}{_confirm(a)}"


def spawn_line(root: dict) -> str:
    a = root.get("attrs") or {}
    parent = f", parent {a['parent']}" if a.get("parent") else ""
    return f"{clock(root['start'])} +++ spawned {one_line(a.get('agent', '?'))} (pid {root['pid']}{parent}) +++"


class _Printer:
    """Prints each span once (a replay and the live events may overlap), as text or JSON lines."""

    def __init__(self, ctx, as_json: bool):
        self.ctx, self.as_json, self.seen = ctx, as_json, set()

    def show(self, span: dict) -> None:
        key = (span.get("span_id"), span.get("end") is not None)
        if key in self.seen:
            return
        self.seen.add(key)
        self.ctx.echo(json.dumps(span, ensure_ascii=False) if self.as_json else format_line(span))

    def spawn(self, root: dict) -> None:
        if not self.as_json:
            self.ctx.echo(spawn_line(root))


def parse(arg: str) -> tuple[int | None, bool, bool, str | None]:
    """(pid, replay, json, timeline file) from the command's words."""
    from aios_shell.handlers import parse_pid

    words = arg.split()
    pid, replay, as_json, timeline = None, False, False, None
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("-a", "--all"):
            replay = True
        elif w == "-o" or w.startswith("-o"):
            fmt = w[2:] if len(w) > 2 else (words[i + 1] if i + 1 < len(words) else "")
            i += 0 if len(w) > 2 else 1
            if fmt not in ("json", "text"):
                raise CommandError(f"-o takes json or text, not {cut(fmt, 20)!r}; {USAGE}")
            as_json = fmt == "json"
        elif w == "--timeline":
            if i + 1 >= len(words):
                raise CommandError(f"--timeline needs a file name; {USAGE}")
            i += 1
            timeline = words[i]
        elif w.startswith("-"):
            raise CommandError(f"unknown option {cut(w, 20)!r}; {USAGE}")
        elif pid is None:
            pid = parse_pid(w)
        else:
            raise CommandError(f"one pid at a time; {USAGE}")
        i += 1
    if timeline is None and pid is None:
        raise CommandError(USAGE)
    if timeline is not None and (pid is not None or replay):
        raise CommandError(f"--timeline draws every kept process; {USAGE}")
    return pid, replay, as_json, timeline


def write_timeline(ctx, path: str) -> tuple[int, int]:
    """Fetch every kept process's spans and write the timeline to ``path``; returns (processes, spans)."""
    from aios_shell.timeline import render

    procs = ctx.client.request("trace", timeout=60)["procs"]
    html = render(procs)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(html)
    except OSError as e:
        raise CommandError(f"cannot write {cut(path, 80)}: {e.strerror or e}") from None
    return len(procs), sum(len(p["spans"]) for p in procs)


def run(ctx, arg: str) -> None:
    pid, replay, as_json, timeline = parse(arg)
    if timeline is not None:
        n, spans = write_timeline(ctx, timeline)
        ctx.echo(f"timeline of {n} process(es), {spans} call(s): {timeline}")
        return
    q = ctx.follow_spans(pid)  # before asking: no span falls between the replay and the events
    following = False
    try:
        snap = ctx.client.request("trace", timeout=10, pid=pid, follow=True)
        following = not snap["ended"]
        out = _Printer(ctx, as_json)
        if replay or snap["ended"]:
            if snap["dropped"]:
                ctx.note(f"({snap['dropped']} earlier call(s) of pid {pid} are no longer kept)")
            out.spawn(snap["root"])
            for span in sorted(snap["spans"], key=lambda s: s["start"]):
                out.show(span)
        elif ctx.interactive:
            ctx.note(f"tracing pid {pid} ({snap['agent']}); Ctrl-C stops")
        if not following:
            out.show(snap["root"])
            return
        ctx.drain(q, out.show)
    finally:
        ctx.unfollow_spans(pid)
        if following:
            try:
                ctx.client.request("untrace", timeout=5, pid=pid)
            except Exception:
                pass  # the kernel stops sending anyway when the process ends


def deliver(queues: dict[int, queue.Queue], ev: dict) -> None:
    """Reader thread (ShellContext.on_event): a ``span`` event to the follower of its pid, if any."""
    q = queues.get(ev.get("pid"))
    if q is not None and isinstance(ev.get("span"), dict):
        q.put(ev["span"])
