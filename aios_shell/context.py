"""ShellContext: what the commands share: the kernel client, output, and what the shell saw.

Threads and locks:
  main thread     runs commands (the dispatcher), the prompt and top.
  kernel-events   (KernelClient's reader) calls ``on_event``: prints agent
                  output/kernel logs/exit notices, updates the pid sets,
                  feeds ``logs -f`` followers and the confirm broker. It
                  must never call the kernel (it reads the replies).
  stats monitor   (REPL only) calls ``refresh_stats`` every second.
``_lock`` guards live/seen/ended/spawned/killed/followers/stats/tok_s;
``_print_lock`` serialises writes so lines from threads do not interleave.

Output streams: ``out`` for command output and results, ``err`` for errors,
agent output and kernel logs in batch mode (so ``--json`` stdout stays
parseable). ``None`` means sys.stdout/sys.stderr looked up at each write,
which under prompt_toolkit's patch_stdout prints above the prompt.

What is shown (one line per event, ``verbosity`` from -q/-v):
  -q (-1)   results, command output, errors and warnings
  default   also each agent line as ``[Agent pid] text``, the model's progress and readiness
  -v (1)    also the kernel's INFO records; -vv (2) DEBUG
Errors are red and warnings yellow when the stream is a terminal (NO_COLOR turns it off).
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from typing import Any, Callable

from aios_shell import views
from aios_shell.views import printable

RED, YELLOW, DIM, RESET = "\x1b[1;31m", "\x1b[33m", "\x1b[2m", "\x1b[0m"
LOG_RANK = {"DEBUG": 2, "INFO": 1}  # verbosity a kernel record needs; WARNING and above always show


class ShellContext:
    def __init__(self, *, interactive: bool, llm_name: str = "", out=None, err=None,
                 show_output: bool = True, notify_exit: bool | None = None, verbosity: int = 0):
        self.client = None  # KernelClient, set by attach()
        self.interactive = interactive
        self.llm_name = llm_name
        self._out, self._err = out, err
        self.show_output = show_output  # agent output / kernel log events go to the terminal
        self.verbosity = verbosity  # -1 quiet (-q), 0 default, 1 kernel INFO (-v), 2 DEBUG (-vv)
        self.progress: dict | None = None  # the model's last progress event (toolbar), None once ready
        self.notify_exit = interactive if notify_exit is None else notify_exit
        self.error_prefix = ""  # batch: "script:LINE: "
        self.leaving = False  # set by the front once it is stopping the kernel
        self.top_interval = 1.5  # seconds between top refreshes
        self.confirm = None  # ConfirmBroker in the REPL
        self.ask: Callable[..., bool | None] | None = None  # ask(question, timeout, cancel) -> y/N (REPL)
        self.waker: Callable[[], None] | None = None  # wakes whatever holds the foreground
        self.leave_status: int | None = None  # 128+N once SIGTERM/SIGHUP asked the shell to leave
        self._foreground: tuple | None = None  # (application, exit result) reading the terminal now
        self._lock = threading.Lock()
        self._print_lock = threading.Lock()
        self._held: list | None = None  # lines kept while a full-screen view runs
        self.live: dict[int, str] = {}  # pid -> agent, processes not yet ended
        self.seen: dict[int, str] = {}  # pid -> agent, every process this shell has heard of
        self.ended: dict[int, dict] = {}  # pid -> final snapshot (from exit events)
        self.spawned: list[int] = []  # pids started by this shell's `run`, in order
        self.killed: set[int] = set()  # pids the user asked to kill
        self.followers: dict[int, queue.Queue] = {}  # pid -> queue of output lines (None: ended)
        self.span_followers: dict[int, queue.Queue] = {}  # pid -> queue of span dicts for `trace` (None: ended)
        self.waited: set[int] = set()  # pids a foreground `wait` reports itself (no exit notice)
        self.stats: dict = {}
        self.tok_s: float | None = None  # measured from tokens_out between refreshes
        self._rate_sample: tuple[float, int] | None = None  # (monotonic s, tokens_out)

    def attach(self, client) -> None:
        self.client = client

    # -- leaving on a signal ----------------------------------------------------------
    @contextlib.contextmanager
    def foreground(self, app, result=None):
        """Main thread: ``app`` (a prompt_toolkit Application) reads the terminal; a leave
        signal ends it with ``result``."""
        prev, self._foreground = self._foreground, (app, result)
        try:
            yield
        finally:
            self._foreground = prev

    def leave(self, status: int) -> bool:
        """Signal handler (main thread): the shell is to leave with ``status``.

        True when a running foreground application was told to end through its event
        loop: raising there would land in whichever asyncio task runs, leave that task's
        exception unretrieved and print a traceback. False when nothing is running one:
        the caller raises to unwind the command instead."""
        if self.leave_status is None:
            self.leave_status = status
        if self._foreground is None:
            return False
        app, result = self._foreground
        loop = app.loop
        if loop is None or not app.is_running:
            return False
        loop.call_soon_threadsafe(_end_app, app, result)
        return True

    # -- output ------------------------------------------------------------------
    def _write(self, stream, default, text: str, color: str = "") -> None:
        with self._print_lock:
            if self._held is not None:  # a full-screen view owns the terminal: print after it
                self._held.append((stream, default, text, color))
                return
            s = stream or default()
            try:
                if color and _colors(s):
                    text = f"{color}{text}{RESET}"
                s.write(text + "\n")
                s.flush()
            except (OSError, ValueError):
                pass  # the terminal is gone (SIGHUP); nothing to tell

    def hold_output(self) -> None:
        """Keep lines from other threads until release_output() (while top is on screen, or
        until the shell's banner is out: a kernel warning at boot comes after it)."""
        with self._print_lock:
            if self._held is None:
                self._held = []

    def release_output(self, first: str | None = None) -> None:
        """Print the lines kept since hold_output(), after ``first`` (the banner) if given."""
        with self._print_lock:
            held, self._held = self._held or [], None
        if first is not None:
            self.echo(first)
        for stream, default, text, color in held:
            self._write(stream, default, text, color)

    def clear(self) -> None:
        """`clear`: the terminal's screen and scrollback wiped, the cursor home (nothing off a terminal)."""
        stream = self._out or sys.stdout
        try:
            if stream.isatty():
                with self._print_lock:
                    stream.write("\x1b[H\x1b[2J\x1b[3J")
                    stream.flush()
        except (AttributeError, ValueError, OSError):
            pass

    def width(self) -> int | None:
        """Cells a line may take: the terminal's; None (never cut) when output goes to a pipe or a file."""
        stream = self._out or sys.stdout
        try:
            tty = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            tty = False
        return views.term_width() if tty else None

    def echo(self, text: str) -> None:
        self._write(self._out, lambda: sys.stdout, text)

    def note(self, text: str, color: str = "") -> None:
        """Side information: stderr in batch mode, the terminal in the REPL."""
        if self.interactive:
            self._write(self._out, lambda: sys.stdout, text, color)
        else:
            self._write(self._err, lambda: sys.stderr, text, color)

    def error(self, text: str) -> None:
        self.note(f"{self.error_prefix}error: {text}", RED)

    def warning(self, text: str) -> None:
        self.note(f"warning: {text}", YELLOW)

    # -- pids --------------------------------------------------------------------
    def note_spawn(self, pid: int, agent: str) -> None:
        with self._lock:
            self.seen[pid] = agent
            self.spawned.append(pid)
            if pid not in self.ended:  # its exit event may have beaten the spawn reply here
                self.live[pid] = agent

    def live_pids(self) -> list[int]:
        with self._lock:
            return sorted(self.live)

    def known_pids(self) -> list[int]:
        with self._lock:
            return sorted(self.seen)

    def _follow(self, followers: dict[int, queue.Queue], pid: int) -> queue.Queue:
        """A new queue for pid in ``followers``, None already on it if pid has ended."""
        q: queue.Queue = queue.Queue()
        with self._lock:
            followers[pid] = q
            if pid in self.ended:
                q.put(None)
        return q

    def follow(self, pid: int) -> queue.Queue:
        return self._follow(self.followers, pid)

    def unfollow(self, pid: int) -> None:
        with self._lock:
            self.followers.pop(pid, None)

    def follow_spans(self, pid: int) -> queue.Queue:
        """``trace``: a queue of pid's finished spans (kernel ``span`` events), None once it has ended."""
        return self._follow(self.span_followers, pid)

    def unfollow_spans(self, pid: int) -> None:
        with self._lock:
            self.span_followers.pop(pid, None)

    # -- events (reader thread) ----------------------------------------------------
    def on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "output":
            pid = ev.get("pid")
            with self._lock:
                q = self.followers.get(pid)
            if q is not None:
                q.put(views.printable(ev.get("text", "")))
            elif self.show_output and self.verbosity >= 0:
                self.note(f"{views.agent_prefix(ev.get('agent'), pid)} {views.printable(ev.get('text', ''))}",
                          RED if ev.get("level") == "ERROR" else "")
        elif kind == "log":
            level = str(ev.get("level", ""))
            if self.show_output and self.verbosity >= LOG_RANK.get(level, -1):
                if level in LOG_RANK:
                    self.note(f"kernel: {ev.get('text', '')}", DIM)
                else:
                    self.note(f"kernel {level.lower()}: {ev.get('text', '')}", YELLOW if level == "WARNING" else RED)
        elif kind == "span":
            from aios_shell.trace_view import deliver

            with self._lock:
                deliver(self.span_followers, ev)
        elif kind == "progress":
            with self._lock:
                self.progress = ev
        elif kind == "exit":
            snap = ev.get("snapshot") or {}
            pid = ev.get("pid")
            with self._lock:
                self.live.pop(pid, None)
                self.seen[pid] = snap.get("agent", self.seen.get(pid, "?"))
                self.ended[pid] = snap
                q = self.followers.get(pid)
                spans = self.span_followers.get(pid)
            if q is not None:
                q.put(None)
            if spans is not None:
                spans.put(None)
            if self.notify_exit and pid not in self.waited:
                self._write(self._out, lambda: sys.stdout, views.exit_line(snap, self.width()),
                            RED if snap.get("state") == "failed" else "")
        elif kind == "ready":
            stats = ev.get("stats") or {}
            with self._lock:
                self.stats.update(stats)
                self.progress = None
            if stats.get("load_error"):
                self.error(stats['load_error'])  # one line that already names the model
            elif self.interactive and not self.leaving and self.verbosity >= 0:
                self.echo(f"model {stats.get('model', self.llm_name)} ready"
                          + (f" (loaded in {stats['load_time_s']:.1f}s)" if stats.get("load_time_s") else ""))
        elif kind in ("confirm", "confirm_done"):
            if self.confirm is not None:
                self.confirm.on_event(ev)
            elif kind == "confirm":  # no one to ask: deny (off this thread: answering waits for the kernel's reply)
                from aios_shell.confirm import parse_event

                req = parse_event(ev, 0)
                what = req.question() if req else f"pid {ev.get('pid')} ({ev.get('agent')}) wants to {ev.get('action')}"
                self.note(f"denied: {printable(what)} (no interactive shell to ask)")
                threading.Thread(target=self._deny, args=(ev.get("cid"),), daemon=True).start()

    def _deny(self, cid) -> None:
        try:
            self.client.request("confirm", timeout=10, cid=cid, allow=False)
        except Exception:
            pass  # the kernel's own timeout denies it anyway

    def wake(self) -> None:
        w = self.waker
        if w is not None:
            w()

    # -- stats (toolbar, top) --------------------------------------------------------
    def refresh_stats(self) -> dict:
        stats = self.client.stats()
        now = time.monotonic()
        with self._lock:
            self.stats = stats
            own = views.tokens_per_s(stats)
            toks = stats.get("tokens_out")
            if own is not None:
                self.tok_s = own
            elif isinstance(toks, int):
                if self._rate_sample is not None and now > self._rate_sample[0]:
                    self.tok_s = max(0.0, (toks - self._rate_sample[1]) / (now - self._rate_sample[0]))
                self._rate_sample = (now, toks)
        return stats

    def toolbar(self) -> str:
        with self._lock:
            s, tok_s = dict(self.stats), self.tok_s
        model = s.get("model") or self.llm_name
        if s.get("load_error"):
            state = "LOAD FAILED"
        elif not s.get("loaded"):
            state = progress_text(self.progress) if self.progress else "loading…"
        else:
            state = f"{tok_s:.1f} tok/s" if tok_s is not None else "- tok/s"
        return (f" {model} | policy {s.get('scheduler') or s.get('policy') or '-'} | "
                f"agents {s.get('agents_live', len(self.live))}/{s.get('agents_total', len(self.seen))} | {state}")

    # -- blocking commands ---------------------------------------------------------
    def drain(self, q: queue.Queue, show: Callable[[Any], None]) -> None:
        """show() each item of ``q`` until None comes, waiting as run_blocking does (Ctrl-C stops it)."""
        def loop():
            while True:
                item = q.get()
                if item is None:
                    return
                show(item)
        self.run_blocking(loop)

    def run_blocking(self, fn: Callable[..., Any], *args) -> Any:
        """Run ``fn(*args)`` (a blocking kernel call) off the main thread and wait for it here.

        While waiting, confirm questions are asked on this (main) thread, and
        Ctrl-C raises KeyboardInterrupt here: the command stops, the shell
        goes on (the abandoned call ends when the kernel answers it).
        """
        box: queue.Queue = queue.Queue()

        def work():
            try:
                box.put(("done", fn(*args), None))
            except BaseException as e:  # handed to the main thread
                box.put(("done", None, e))

        threading.Thread(target=work, name="shell-blocking", daemon=True).start()
        prev, self.waker = self.waker, lambda: box.put(("confirm", None, None))
        try:
            self.ask_pending_confirms()
            while True:
                kind, value, exc = box.get()
                if kind == "confirm":
                    self.ask_pending_confirms()
                    continue
                if exc is not None:
                    raise exc
                return value
        finally:
            self.waker = prev

    def ask_pending_confirms(self) -> None:
        """Main thread: ask every pending confirm question in one line, one key (y/N, default No)."""
        if self.confirm is None or self.ask is None:
            return
        for req in self.confirm.pending():
            left = req.left_s()
            answer = self.ask(f"{printable(req.question())} — allow? [y/N] ({left:.0f}s) ", left, req.settled)
            if answer is not None:  # None: settled elsewhere or expired (the kernel denies it)
                self.confirm.answer(req.cid, answer, "user")


def _colors(stream) -> bool:
    """Colour only a terminal, and never with NO_COLOR set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def progress_text(ev: dict) -> str:
    """``converting model 45%`` / ``loading model…`` from a kernel progress event."""
    what = str(ev.get("text") or ev.get("stage") or "loading")
    done, total = ev.get("done"), ev.get("total")
    if isinstance(done, int) and isinstance(total, int) and total > 0:
        return f"{what} {100 * done // total}%"
    return f"{what}…"


def _end_app(app, result) -> None:
    if app.is_running and not app.is_done:
        try:
            app.exit(result=result)
        except Exception:
            pass  # already exiting (a key was pressed at the same moment)
