"""The interactive shell (REPL) on prompt_toolkit.

Prompt ``[<llm_name>]> ``; history in a file (suggestions from it, Up/Down,
Ctrl-R); Tab completes commands, agent names and pids; a bottom toolbar
shows model, policy, agents running/total and tokens/s (refreshed each
second by a monitor thread, so drawing never waits on the kernel). Lines
printed by other threads (agent output, exit notices) appear above the
prompt without disturbing what is being typed (patch_stdout).

Ctrl-C clears the line, or stops a running ``wait``/``logs -f``/``top``;
Ctrl-D or ``exit`` leaves, asking first when agents still run. Leaving does
not stop the kernel: the owner of the KernelClient does (simulator.py). If
the kernel process dies, the shell says so in one line and leaves (status 1).

A confirm question from the kernel interrupts the prompt (the typed text is
kept and restored), is asked in one line that names the agent and what it
wants, ``DangerAgent (pid 1) wants to run: echo hi; id — allow? [y/N] (119s)``,
and takes one key (y allows; n, Enter or Esc deny) until the kernel's timeout
(a timeout or the agent's end takes it down); then the prompt comes back.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time

from prompt_toolkit import PromptSession
from prompt_toolkit.application import create_app_session
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.patch_stdout import patch_stdout

from aios_shell.commands import MAX_LINE, Dispatcher, ExitShell
from aios_shell.completer import ShellCompleter
from aios_shell.confirm import ConfirmBroker
from aios_shell.handlers import TABLE, confirm_leave
from aios_shell.inputcap import line_cap_bindings

CONFIRM = object()  # what prompt() returns when a confirm question interrupted it


def _one_key_bindings() -> KeyBindings:
    """A y/N question takes one key (Repl.ask): the key's answer ends the prompt at once."""
    kb = KeyBindings()

    def answer(text: str):
        def handler(event) -> None:
            event.app.current_buffer.text = text  # shown after the question, like a typed answer
            event.app.exit(result=text)
        return handler

    for key in ("y", "Y"):
        kb.add(key)(answer("y"))
    for key in ("n", "N", "enter", "c-j", "escape", "c-d"):
        kb.add(key, eager=True)(answer("n"))

    @kb.add("<any>")
    def _ignore(event) -> None:  # any other key: still waiting for y or n
        pass
    return kb


ONE_KEY = _one_key_bindings()


class Terminated(SystemExit):
    """SIGTERM/SIGHUP arrived while a command ran: unwind it, leave with 128+N."""


def leave_on_signals(ctx) -> None:
    """SIGTERM and SIGHUP make the shell leave with status 128+N (main thread).

    A prompt, question or top on screen is ended through its event loop
    (ctx.leave); a command that is running is unwound by Terminated."""
    def handler(signum, frame):
        if not ctx.leave(128 + signum):
            raise Terminated(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    atexit.unregister(drop_dead_terminal)  # once, however often a shell is set up in this process
    atexit.register(drop_dead_terminal)


def drop_dead_terminal() -> None:
    """At exit: a stream whose terminal hung up (or whose pipe closed) is pointed at /dev/null.

    Python's own last flush of stdout/stderr comes after atexit; on a hung-up terminal it fails
    (EIO), prints "Exception ignored" and turns the exit status into 120, so a closed terminal
    would not read as 128+SIGHUP. Unseen under PYTHONUNBUFFERED=1 (nothing left to flush), which
    CI's environment sets and a user's does not. The recipe is the one the Python docs give for
    SIGPIPE."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except ValueError:
            pass  # closed: Python will not flush it either
        except OSError:
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            except (OSError, ValueError):
                pass


class Repl:
    def __init__(self, ctx, table=TABLE, *, input=None, output=None, history_path=None,
                 stats_interval: float = 1.0, patch: bool = True, max_line: int = MAX_LINE):
        self.ctx = ctx
        self.dispatcher = Dispatcher(table, ctx)
        self.input, self.output = input, output
        self.patch = patch  # patch_stdout: off in tests that capture output themselves
        self.stats_interval = stats_interval
        history = InMemoryHistory()
        if history_path:
            try:
                history_path.parent.mkdir(parents=True, exist_ok=True)
                history = FileHistory(str(history_path))
            except OSError:
                pass  # read-only home: history for this session only
        self.session = PromptSession(
            history=history, auto_suggest=AutoSuggestFromHistory(), completer=ShellCompleter(table, ctx),
            complete_while_typing=False, bottom_toolbar=ctx.toolbar, refresh_interval=1.0,
            key_bindings=line_cap_bindings(max_line, ctx.error), input=input, output=output)
        self._saved = ""  # text typed before a confirm question interrupted the prompt
        self._stop = threading.Event()
        self.kernel_gone = False  # the kernel process died under us: leave with status 1
        ctx.ask = self.ask
        if ctx.confirm is None:
            ctx.confirm = ConfirmBroker(send=self._send_confirm, wake=ctx.wake, echo=ctx.echo)

    @property
    def message(self) -> str:
        return f"[{self.ctx.llm_name}]> "

    def _send_confirm(self, cid: int, allow: bool) -> None:
        self.ctx.client.request("confirm", timeout=10, cid=cid, allow=allow)

    # -- the loop ------------------------------------------------------------------
    def run(self) -> int:
        """Read and run commands until exit/Ctrl-D (0), or until the kernel dies (1)."""
        monitor = threading.Thread(target=self._monitor, name="shell-stats", daemon=True)
        monitor.start()
        try:
            # Given an input or output (a pipe, another terminal), every screen a command opens (top,
            # dialogs) reads and draws there too, as the prompt does; else all use the terminal.
            given = self.input is not None or self.output is not None
            with create_app_session(input=self.input, output=self.output) if given else contextlib.nullcontext(), \
                    (patch_stdout(raw=True) if self.patch else contextlib.nullcontext()):
                self._loop()
        finally:
            self._stop.set()
            if not self.kernel_gone and not getattr(self.ctx, "remote", False):  # attached: others may answer
                self.ctx.confirm.deny_all("the shell is leaving")
        if self.ctx.leave_status is not None:
            return self.ctx.leave_status
        return 1 if self.kernel_gone else 0

    def _leaving(self) -> bool:
        return self.kernel_gone or self.ctx.leave_status is not None

    def _loop(self) -> None:
        while not self._leaving():
            self.ctx.ask_pending_confirms()
            if self._leaving():
                return
            self.ctx.waker = self._interrupt_prompt
            try:
                with self.ctx.foreground(self.session.app, CONFIRM):
                    text = self.session.prompt(self.message, default=self._saved, pre_run=self._pre_run)
            except KeyboardInterrupt:
                self._saved = ""
                continue
            except OSError:
                if self._leaving():
                    return  # SIGHUP: the terminal is gone, the prompt could not redraw on it
                raise
            except EOFError:
                self._saved = ""
                if confirm_leave(self.ctx):
                    return
                continue
            finally:
                self.ctx.waker = None
            if text is CONFIRM or self._leaving():
                continue
            self._saved = ""
            try:
                self.dispatcher.onecmd(text)
            except ExitShell:
                return
            except KeyboardInterrupt:
                self.ctx.echo("^C")

    def _pre_run(self) -> None:
        if self.ctx.confirm.pending() or self._leaving():  # arrived before the prompt was running
            self._exit_prompt()

    def _exit_prompt(self) -> None:
        app = self.session.app
        if app.is_running and not app.is_done:
            self._saved = app.current_buffer.text
            try:
                app.exit(result=CONFIRM)
            except Exception:
                pass  # already exiting (the user pressed Enter at the same moment)

    def _interrupt_prompt(self) -> None:
        """Any thread: make the running prompt return CONFIRM so the question is asked."""
        app = self.session.app
        loop = app.loop
        if app.is_running and loop is not None:
            loop.call_soon_threadsafe(self._exit_prompt)

    def ask(self, question: str, timeout: float | None = None, cancel: threading.Event | None = None) -> bool | None:
        """Main thread: a y/N question answered with one key, as in top: y allows; n, Enter, Esc,
        Ctrl-C or Ctrl-D deny (the default is No); other keys do nothing. None when ``timeout``
        seconds pass or ``cancel`` is set first."""
        if timeout is not None and timeout <= 0:
            return None
        session = PromptSession(input=self.input, output=self.output)
        done = cancel if cancel is not None else threading.Event()
        finished = threading.Event()  # our prompt has returned: the watcher must not touch it
        deadline = None if timeout is None else time.monotonic() + timeout

        def take_down():
            app = session.app
            if app.is_running and not app.is_done:
                app.exit(result=None)

        def watch():  # blocks on the event (or the deadline), never polls
            done.wait(timeout)
            loop = session.app.loop
            if not finished.is_set() and loop is not None:
                loop.call_soon_threadsafe(take_down)

        def too_late():  # settled or expired before the prompt was running
            if done.is_set() or self.ctx.leave_status is not None or (deadline is not None and time.monotonic() >= deadline):
                take_down()

        if timeout is not None or cancel is not None:
            threading.Thread(target=watch, name="shell-ask", daemon=True).start()
        try:
            with self.ctx.foreground(session.app, None):
                answer = session.prompt(question, pre_run=too_late, key_bindings=ONE_KEY)
        except (KeyboardInterrupt, EOFError):
            return False
        except OSError:
            if self.ctx.leave_status is None:
                raise
            return None  # SIGHUP: the terminal is gone
        finally:
            finished.set()
            if cancel is None:
                done.set()  # release the watcher
        if answer is None:
            return None
        return answer.strip().lower() in ("y", "yes")

    def _monitor(self) -> None:
        """Refresh the toolbar's stats every ``stats_interval`` seconds until the REPL ends."""
        client = self.ctx.client
        while not self._stop.is_set():
            if client.dead.is_set() and not getattr(client, "closing", False):  # closing: we asked (shutdown)
                self.kernel_gone = True
                self.ctx.error(f"{client.lost_reason}; leaving the shell")
                self.ctx.wake()
                return
            try:
                self.ctx.refresh_stats()
            except Exception:
                pass  # the kernel is going: the next turn sees it
            self._stop.wait(self.stats_interval)
