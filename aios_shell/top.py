"""`top`: a live full-screen view of the kernel and its agent processes (htop-like).

Kernel summary (model, policy, tokens/s, batch occupancy, queue, kernel
CPU/RSS) over the process table, refreshed every ``interval`` seconds.
Keys: q/Esc/Ctrl-C quit, Up/Down/PgUp/PgDn/Home/End select, k kill the
selected agent (after asking ``kill pid N (Agent)? [y/N]`` in the footer:
y kills, any other key cancels), P/M/T/N sort by %CPU/memory/CPU time/pid,
a toggle finished processes, y/n answer a pending confirm question.

Data: ``ps`` and ``stats`` control ops, fetched off the UI loop (executor);
the kernel keeps one psutil.Process per agent, so %CPU is the share since
the previous refresh. The selection follows a pid, not a row number.
"""

from __future__ import annotations

import asyncio
import threading

from prompt_toolkit.application import Application
from prompt_toolkit.data_structures import Point
from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import ConditionalKeyBindings, KeyBindings, merge_key_bindings
from prompt_toolkit.layout import HSplit, Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl

from aios_shell import views
from aios_shell.client import KernelError

SORTS = {"P": ("cpu_percent", True, "CPU"), "M": ("rss", True, "memory"), "T": ("cpu_time_s", True, "CPU time"),
         "N": ("pid", False, "pid")}


class TopView:
    def __init__(self, ctx, interval: float = 1.5, input=None, output=None):
        self.ctx = ctx
        self.interval = max(0.2, float(interval))
        self.rows: list[dict] = []  # sorted snapshots; UI loop only
        self.stats: dict = {}
        self.sort = "P"
        self.show_all = False
        self.selected_pid: int | None = None
        self.asking_kill: tuple[int, str] | None = None  # (pid, agent) while "kill pid N (Agent)? [y/N]" shows
        self.message = ""
        self.refreshes = 0
        self.refreshed = threading.Event()  # set after each refresh (tests wait on it)
        self._poke: asyncio.Event | None = None  # refresh now (after a kill or a toggle)
        self.app = Application(layout=self._layout(), key_bindings=self._keys(), full_screen=True,
                               input=input, output=output)

    # -- data ------------------------------------------------------------------------
    def _fetch(self) -> tuple[list[dict], dict]:
        stats = self.ctx.refresh_stats()
        return self.ctx.client.ps(all=self.show_all), stats

    def _apply(self, rows: list[dict], stats: dict) -> None:
        key, reverse, _ = SORTS[self.sort]
        self.rows = sorted(rows, key=lambda s: (s.get(key) or 0, -s.get("pid", 0) if reverse else s.get("pid", 0)),
                           reverse=reverse)
        self.stats = stats
        pids = [s["pid"] for s in self.rows]
        if self.selected_pid not in pids:
            self.selected_pid = pids[0] if pids else None

    async def _refresher(self) -> None:
        loop = asyncio.get_running_loop()
        self._poke = asyncio.Event()
        while True:
            try:
                rows, stats = await loop.run_in_executor(None, self._fetch)
                self._apply(rows, stats)
            except KernelError as e:
                self.message = f"error: {e.message}"
            self.refreshes += 1
            self.refreshed.set()
            self.app.invalidate()
            try:
                await asyncio.wait_for(self._poke.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._poke.clear()

    def _refresh_now(self) -> None:
        if self._poke is not None:
            self._poke.set()

    # -- view --------------------------------------------------------------------------
    def _width(self) -> int:
        try:
            return self.app.output.get_size().columns
        except Exception:
            return 100

    def _summary(self):
        s, tok_s = self.stats, self.ctx.tok_s
        loaded = "load failed" if s.get("load_error") else ("loaded" if s.get("loaded") else "loading…")
        line1 = (f"AIOS top - up {views.fmt_secs(s.get('uptime_s'))}  kernel pid {s.get('kernel_pid', '-')}  "
                 f"CPU {views.fmt_pct(s.get('kernel_cpu_percent'))}%  RSS {views.fmt_bytes(s.get('kernel_rss'))}")
        line2 = (f"model {s.get('model', self.ctx.llm_name)} ({loaded})  policy {s.get('scheduler') or s.get('policy', '-')}"
                 f"  tok/s {'-' if tok_s is None else f'{tok_s:.1f}'}  batch {views.batch_text(s)}"
                 f"  queue {s.get('queue', '-')}  agents {s.get('agents_live', '-')}/{s.get('agents_total', '-')}")
        extra = [f"preemptions {s['preemptions']}"] if "preemptions" in s else []
        extra += [f"{k.replace('_bytes', '').replace('_', ' ')} {views.fmt_bytes(s[k])}"
                  for k in ("kv_bytes", "kv_budget_bytes") if isinstance(s.get(k), int)]
        extra += [f"{k} {s[k]}" for k in ("calls", "errors") if k in s]
        if "prefix_hit_tokens" in s:  # agent-aware serving: what the prefix cache saved, and where time went
            extra += [f"prefill {s['prefill_tokens']} tok / {views.fmt_secs(s.get('prefill_s'))}  "
                      f"decode {views.fmt_secs(s.get('decode_s'))}  prefix hits {s['prefix_hit_tokens']} tok  "
                      f"cache {views.fmt_bytes(s.get('cache_bytes'))}"]
        text = f"{line1}\n{line2}\n" + ("  ".join(extra) + "\n" if extra else "")
        return [("bold", text)]

    def _table_header(self):
        header, _ = views.ps_header_and_rows([], self._width())
        return [("reverse", header.ljust(self._width()))]

    def _body(self):
        _, lines = views.ps_header_and_rows(self.rows, self._width())
        if not lines:
            return [("", "  no agent processes" + ("" if self.show_all else " running (a: show finished)"))]
        out = []
        for snap, line in zip(self.rows, lines):
            style = "reverse bold" if snap["pid"] == self.selected_pid else ""
            out.append((style, line.ljust(self._width()) + "\n"))
        return out

    def _cursor(self) -> Point:
        pids = [s["pid"] for s in self.rows]
        return Point(0, pids.index(self.selected_pid) if self.selected_pid in pids else 0)

    def _footer(self):
        if self.asking_kill is not None:
            pid, agent = self.asking_kill
            return [("reverse bold", f" kill pid {pid} ({agent})? [y/N] ")]
        if self.ctx.confirm is not None:
            pending = self.ctx.confirm.pending()
            if pending:
                r = pending[0]
                return [("reverse bold", f" {r.question()}. Allow? y/N ({r.left_s():.0f}s) ")]
        sort = SORTS[self.sort][2]
        keys = f" q quit  ↑↓ select  k kill  P/M/T/N sort ({sort})  a {'live only' if self.show_all else 'all'} "
        return [("reverse", keys), ("", f"  {self.message}" if self.message else "")]

    def _layout(self) -> Layout:
        body = Window(FormattedTextControl(self._body, get_cursor_position=self._cursor, focusable=True),
                      always_hide_cursor=True)
        return Layout(HSplit([
            Window(FormattedTextControl(self._summary), height=3, dont_extend_height=True),
            Window(FormattedTextControl(self._table_header), height=1),
            body,
            Window(FormattedTextControl(self._footer), height=1),
        ]), focused_element=body)

    # -- keys --------------------------------------------------------------------------
    def _move(self, delta: int | None = None, to: int | None = None) -> None:
        pids = [s["pid"] for s in self.rows]
        if not pids:
            return
        i = pids.index(self.selected_pid) if self.selected_pid in pids else 0
        i = to if to is not None else i + delta
        self.selected_pid = pids[max(0, min(len(pids) - 1, i))]

    def _keys(self):
        kb = KeyBindings()

        @kb.add("q")
        @kb.add("escape", eager=True)
        @kb.add("c-c")
        def _quit(event):
            event.app.exit()

        kb.add("up")(lambda e: self._move(-1))
        kb.add("down")(lambda e: self._move(1))
        kb.add("pageup")(lambda e: self._move(-10))
        kb.add("pagedown")(lambda e: self._move(10))
        kb.add("home")(lambda e: self._move(to=0))
        kb.add("end")(lambda e: self._move(to=10 ** 9))

        for key in SORTS:
            def sort(event, key=key):
                self.sort = key
                self._apply(self.rows, self.stats)
            kb.add(key)(sort)

        @kb.add("a")
        def _all(event):
            self.show_all = not self.show_all
            self._refresh_now()

        @kb.add("k")
        def _kill(event):
            pid = self.selected_pid
            if pid is None:
                self.message = "no process selected"
                return
            agent = next((s.get("agent", "?") for s in self.rows if s["pid"] == pid), "?")
            self.asking_kill = (pid, agent)
            self.message = ""

        @kb.add("y")
        def _yes(event):
            self._answer(event, True)

        @kb.add("n")
        def _no(event):
            self._answer(event, False)

        # While the kill question shows, only these are active: y kills, any other key cancels.
        ask = KeyBindings()

        @ask.add("<any>")
        @ask.add("escape", eager=True)
        @ask.add("c-c")
        def _cancel(event):
            pid, _ = self.asking_kill
            self.asking_kill = None
            self.message = f"kill pid {pid} cancelled"

        @ask.add("y")
        @ask.add("Y")
        def _confirm_kill(event):
            pid, _ = self.asking_kill
            self.asking_kill = None
            event.app.create_background_task(self._kill(pid))

        asking = Condition(lambda: self.asking_kill is not None)
        return merge_key_bindings([ConditionalKeyBindings(kb, ~asking), ConditionalKeyBindings(ask, asking)])

    async def _kill(self, pid: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.ctx.client.kill, pid)
            with self.ctx._lock:
                self.ctx.killed.add(pid)
            self.message = f"killing pid {pid}"
        except KernelError as e:
            self.message = f"kill {pid}: {e.message}"
        self._refresh_now()
        self.app.invalidate()

    def _answer(self, event, allow: bool) -> None:
        if self.ctx.confirm is None or not self.ctx.confirm.pending():
            return
        cid = self.ctx.confirm.pending()[0].cid
        loop = asyncio.get_running_loop()
        event.app.create_background_task(loop.run_in_executor(None, self.ctx.confirm.answer, cid, allow, "user"))

    # -- run ----------------------------------------------------------------------------
    def _pre_run(self) -> None:
        if self.ctx.leave_status is not None:  # a leave signal came before the screen was up
            self.app.exit()
            return
        self.app.create_background_task(self._refresher())

    def run(self) -> None:
        """Blocks until the user quits or a leave signal comes (main thread)."""
        prev, self.ctx.waker = self.ctx.waker, self.app.invalidate
        self.ctx.hold_output()
        try:
            with self.ctx.foreground(self.app):
                self.app.run(pre_run=self._pre_run)
        except OSError:
            if self.ctx.leave_status is None:
                raise  # else SIGHUP: the terminal is gone
        finally:
            self.ctx.waker = prev
            self.ctx.release_output()
