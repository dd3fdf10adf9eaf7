"""The REPL, completer, confirm prompt and top, driven through prompt_toolkit's
create_pipe_input() + DummyOutput() against the shared real kernel.

Proves: typed lines reach the dispatcher; Tab completes commands, agent
names, pids and flags; Ctrl-C clears the line; Ctrl-D asks before leaving
while agents run; history is written to its file; a confirm question
interrupts the prompt, keeps what was typed, sends the answer and is taken
down when the kernel settles it first; top refreshes, sorts, selects and kills.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from aios_shell import views
from aios_shell.completer import ShellCompleter
from aios_shell.context import ShellContext
from aios_shell.handlers import TABLE
from aios_shell.repl import Repl
from aios_shell.top import TopView
from shell_helpers import attached, kill_live

TIMEOUT = 60


class Watch:
    """A text stream that tests can block on: wait_for(regex) returns the match."""

    def __init__(self):
        self.text = ""
        self.cv = threading.Condition()

    def write(self, s: str) -> int:
        with self.cv:
            self.text += s
            self.cv.notify_all()
        return len(s)

    def flush(self) -> None:
        pass

    def wait_for(self, pattern: str, start: int = 0, timeout: float = TIMEOUT) -> re.Match:
        rx = re.compile(pattern, re.M)
        with self.cv:
            ok = self.cv.wait_for(lambda: rx.search(self.text, start), timeout)
            assert ok, f"{pattern!r} not seen in output:\n{self.text[start:]}"
            return rx.search(self.text, start)


@pytest.fixture
def repl_env(kernel, tmp_path):
    """A REPL on the shared kernel, running on a thread, fed through a pipe."""
    out = Watch()
    ctx = ShellContext(interactive=True, llm_name="testllm", out=out, err=out)
    with attached(kernel, ctx), create_pipe_input() as inp:
        repl = Repl(ctx, input=inp, output=DummyOutput(), history_path=tmp_path / "state" / "history", patch=False)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("rc", repl.run()), daemon=True)
        t.start()
        yield ctx, repl, inp, out, t, result
        if t.is_alive():
            inp.send_text("\x04")  # Ctrl-D; answer yes if asked
            inp.send_text("y\r")
            t.join(TIMEOUT)
    kill_live(kernel, ctx)


def test_repl_runs_commands_and_exit_leaves(repl_env, tmp_path):
    ctx, repl, inp, out, t, result = repl_env
    assert repl.message == "[testllm]> "
    inp.send_text("run EchoAgent: from the repl\r")
    pid = out.wait_for(r"started EchoAgent as pid (\d+)").group(1)
    inp.send_text(f"wait {pid}\r")
    out.wait_for(rf"\[{pid}\] EchoAgent done in .*\n    from the repl")
    inp.send_text("ps -a\r")
    out.wait_for(rf"^\s*{pid} EchoAgent\s+done")
    inp.send_text("bogus command\r")
    out.wait_for(r"error: unknown command 'bogus'")
    inp.send_text("exit\r")
    t.join(TIMEOUT)
    assert not t.is_alive() and result["rc"] == 0
    history = (tmp_path / "state" / "history").read_text()
    assert "run EchoAgent: from the repl" in history and f"wait {pid}" in history
    assert ctx.toolbar().startswith(" ") and "agents" in ctx.toolbar() and "policy" in ctx.toolbar()


def test_ctrl_c_clears_the_line_and_tab_completes(repl_env):
    ctx, repl, inp, out, t, result = repl_env
    inp.send_text("this line is dropped")
    inp.send_text("\x03")  # Ctrl-C
    buf = repl.session.default_buffer
    completed = threading.Event()
    buf.on_text_changed += lambda b: b.text.endswith("Agent: ") and completed.set()
    inp.send_text("run Ech\t")  # Tab: the only agent matching -> "run EchoAgent: " (completes asynchronously)
    assert completed.wait(TIMEOUT) and buf.text == "run EchoAgent: "
    inp.send_text("tabbed\r")
    out.wait_for(r"started EchoAgent as pid (\d+)")
    assert "dropped" not in out.text and "error" not in out.text
    assert t.is_alive()


def test_ctrl_d_asks_while_agents_run(repl_env, kernel):
    ctx, repl, inp, out, t, result = repl_env
    asked = []
    real_ask = ctx.ask
    ctx.ask = lambda q, *a: (asked.append(q), real_ask(q, *a))[1]
    inp.send_text("run SleepyAgent: 600\r")
    pid = int(out.wait_for(r"started SleepyAgent as pid (\d+)").group(1))
    inp.send_text("\x04")  # Ctrl-D: asks, we say no
    inp.send_text("n\r")
    inp.send_text(f"kill {pid}\r")
    out.wait_for(rf"\[{pid}\] SleepyAgent killed")
    assert len(asked) == 1 and "1 agent(s) still running" in asked[0] and f"SleepyAgent {pid}" in asked[0]
    assert t.is_alive()
    inp.send_text("\x04")  # nothing runs now: leaves without asking
    t.join(TIMEOUT)
    assert not t.is_alive() and len(asked) == 1


def test_confirm_question_interrupts_the_prompt_and_keeps_the_typed_text(repl_env):
    ctx, repl, inp, out, t, result = repl_env
    sent = []
    ctx.confirm.send = lambda cid, allow: sent.append((cid, allow))  # stand-in for the kernel's confirm op
    asking = threading.Semaphore(0)
    real_ask = ctx.ask
    asked_q = []
    ctx.ask = lambda *a: (asked_q.append(a[0]), asking.release(), real_ask(*a))[2]
    typed = threading.Event()
    repl.session.default_buffer.on_text_changed += lambda b: b.text == "ps -" and typed.set()
    inp.send_text("ps -")  # typed, not entered
    assert typed.wait(TIMEOUT)
    ev = {"event": "confirm", "cid": 41, "pid": 5, "agent": "ToolAgent", "action": "tool shell",
          "detail": "rm -rf scratch", "timeout_s": 30}
    ctx.on_event(ev)  # as the kernel-events thread would
    assert asking.acquire(timeout=TIMEOUT)  # the prompt gave way to the question
    # one line that names the agent and the exact command, answered with one key (no Enter)
    assert "ToolAgent (pid 5) wants to run: rm -rf scratch — allow? [y/N]" in asked_q[-1]
    inp.send_text("y")
    out.wait_for(r"allowed: ToolAgent \(pid 5\) wants to run: rm -rf scratch \(user\)")
    assert sent == [(41, True)]
    inp.send_text("a\r")  # completes the restored "ps -" line
    out.wait_for(r"PID AGENT|no agent processes")
    assert "error" not in out.text
    # default is No: Enter alone denies
    ctx.on_event(dict(ev, cid=42))
    assert asking.acquire(timeout=TIMEOUT)
    inp.send_text("\r")
    out.wait_for(r"denied: ToolAgent \(pid 5\) .*\(user\)")
    assert sent == [(41, True), (42, False)]


def test_confirm_settled_by_the_kernel_takes_the_question_down(repl_env):
    ctx, repl, inp, out, t, result = repl_env
    sent = []
    ctx.confirm.send = lambda cid, allow: sent.append((cid, allow))
    ctx.on_event({"event": "confirm", "cid": 7, "pid": 3, "agent": "MemFsAgent", "action": "fs.delete notes",
                  "detail": "", "timeout_s": 120})
    ctx.on_event({"event": "confirm_done", "cid": 7, "pid": 3, "allow": False, "by": "timeout"})
    out.wait_for(r"denied: MemFsAgent \(pid 3\) wants to fs.delete notes \(no answer in time\)")
    inp.send_text("help\r")  # the prompt is back, and the next line is a command, not an answer
    out.wait_for(r"help <command> for details")
    assert sent == [] and ctx.confirm.pending() == []
    # an event without timeout_s: the shell denies it itself after its own default
    ctx.confirm.default_timeout_s = 0.3
    ctx.on_event({"event": "confirm", "cid": 8, "pid": 3, "agent": "MemFsAgent", "action": "fs.delete x"})
    out.wait_for(r"denied: MemFsAgent \(pid 3\) .*fs.delete x \(no answer in time\)")
    assert sent == [(8, False)]


def test_completer_from_the_table():
    ctx = ShellContext(interactive=True)
    ctx.note_spawn(12, "SleepyAgent")
    ctx.note_spawn(13, "EchoAgent")
    ctx.on_event({"event": "exit", "pid": 13, "snapshot": {"pid": 13, "agent": "EchoAgent", "state": "done"}})
    ctx.notify_exit = False
    comp = ShellCompleter(TABLE, ctx, agents=lambda: ["EchoAgent", "MathAgent", "SleepyAgent"])

    def texts(line):
        return [c.text for c in comp.get_completions(Document(line), None)]

    # a command word is completed with a space after it, ready for its arguments
    assert set(texts("")) >= {"run ", "ps ", "print agent ", "kill ", "wait ", "top ", "exit ", "help ", "clear "}
    assert texts("ki") == ["kill "] and texts("ru") == ["run "] and "print agent " in texts("pr")
    assert texts("print a") == ["agent "]
    assert texts("run Ma") == ["MathAgent: "] and texts("run ") == ["EchoAgent: ", "MathAgent: ", "SleepyAgent: "]
    assert texts("run --priority 2 Sl") == ["SleepyAgent: "] and texts("run --pr") == ["--priority "]
    assert texts("run MathAgent: wh") == [] and texts("run --priority ") == []
    assert texts("kill ") == ["12"] and texts("wait ") == ["12", "all"]  # live pids only
    assert texts("result ") == ["12", "13", "-o"] and texts("result 12 ") == ["-o"]  # every pid seen, one of them
    assert texts("logs 1") == ["12", "13"] and texts("logs 12 ") == ["-f", "--tail"]
    assert texts("ps ") == ["-a", "-o"] and texts("help ki") == ["kill"]
    assert texts("nonsense ") == []


def wait_for(cond, timeout: float = 30.0) -> None:
    """Keys sent to a pipe input are handled on the UI thread: wait (on a short clock) until they were."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_top_refreshes_sorts_and_asks_before_killing_the_selected_agent(kernel):
    ctx = ShellContext(interactive=True, out=Watch())
    ctx.attach(kernel)
    pid = kernel.spawn("SleepyAgent", "600")
    with create_pipe_input() as inp:
        top = TopView(ctx, interval=0.2, input=inp, output=DummyOutput())

        def drive():
            while top.refreshed.wait(TIMEOUT):
                top.refreshed.clear()
                if pid in [s["pid"] for s in top.rows]:
                    break
            inp.send_text("N")  # sort by pid, ascending: the newest (ours) is last
            inp.send_text("\x1b[F")  # End
            # the keys are handled on the UI thread, whenever it gets to them: wait for their effect
            wait_for(lambda: top.sort == "N" and top.selected_pid == pid)
            summary = "".join(t for _, t in top._summary())
            assert "policy" in summary and "tok/s" in summary and "kernel pid" in summary
            inp.send_text("T")  # CPU time, most first

            def by_time() -> bool:  # the sort key is set a moment before the rows are sorted by it
                times = [s.get("cpu_time_s") or 0 for s in top.rows]
                return top.sort == "T" and times == sorted(times, reverse=True)
            wait_for(by_time)
            assert "prefix hits" in summary and "prefill" in summary and "cache" in summary  # engine stats (issue 11)
            inp.send_text("M")
            inp.send_text("k")  # asks first, like top and htop
            wait_for(lambda: top.asking_kill is not None)
            footer = "".join(t for _, t in top._footer())
            assert f"kill pid {pid} (SleepyAgent)? [y/N]" in footer
            inp.send_text("n")  # anything but y cancels
            wait_for(lambda: top.asking_kill is None)
            assert top.message == f"kill pid {pid} cancelled" and kernel.info(pid)["state"] not in views.ENDED
            inp.send_text("k")
            wait_for(lambda: top.asking_kill is not None)
            inp.send_text("y")
            snap = kernel.wait(pid, timeout=TIMEOUT)
            assert snap["state"] == "killed"
            inp.send_text("q")

        failed: list[BaseException] = []

        def guarded():  # a failed check quits top at once and fails the test with its own message
            try:
                drive()
            except BaseException as e:
                failed.append(e)
                inp.send_text("q")

        th = threading.Thread(target=guarded, daemon=True)
        th.start()
        top.run()
        th.join(TIMEOUT)
        if failed:
            raise failed[0]
    assert top.sort == "M" and top.message == f"killing pid {pid}" and pid in ctx.killed
    assert kernel.info(pid)["state"] == "killed"


def test_a_huge_unbracketed_paste_is_capped_with_one_error(kernel, tmp_path):
    """A long line typed as keys (no bracketed paste) once grew the shell from 33 MB to 4 GB: prompt_toolkit
    saved the whole text as an undo state before every key. Here the cap is lowered so the test is quick."""
    import psutil

    from aios_shell.inputcap import UNDO_MAX

    limit, sent = 12_000, 30_000
    out = Watch()
    ctx = ShellContext(interactive=True, llm_name="testllm", out=out, err=out)
    ctx.attach(kernel)
    with create_pipe_input() as inp:
        repl = Repl(ctx, input=inp, output=DummyOutput(), patch=False, max_line=limit)
        t = threading.Thread(target=repl.run, daemon=True)
        t.start()
        buf = repl.session.default_buffer
        rss0 = psutil.Process().memory_info().rss
        inp.send_text("agents " + "x" * sent)
        out.wait_for(rf"error: input dropped: the input line is limited to {limit} characters")
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and len(buf.text) < limit:
            time.sleep(0.05)
        assert len(buf.text) == limit
        undo_chars = sum(len(text) for text, _ in buf._undo_stack)
        assert undo_chars <= UNDO_MAX * UNDO_MAX, undo_chars  # before the fix: ~limit**2 / 2
        assert psutil.Process().memory_info().rss - rss0 < 64 * 2**20
        inp.send_text("\x03")  # Ctrl-C clears the line; the shell goes on
        inp.send_text("agents\r")
        out.wait_for(r"EchoAgent")
        assert out.text.count("input dropped") == 1
        assert t.is_alive()
        inp.send_text("exit\r")
        t.join(TIMEOUT)


@pytest.mark.parametrize("where", ["prompt", "question", "top"])
def test_a_leave_signal_ends_the_screen_through_its_event_loop(kernel, tmp_path, caplog, where):
    """SIGTERM while a prompt, a y/N question or top is on screen: the shell leaves with 143 and no
    traceback. The handler used to raise inside whichever asyncio task ran, which printed
    "Task exception was never retrieved" in deployment mode now and then."""
    import gc
    import os
    import signal

    from aios_shell.repl import leave_on_signals

    out = Watch()
    ctx = ShellContext(interactive=True, llm_name="testllm", out=out, err=out)
    ctx.attach(kernel)
    refreshes: list[float] = []
    refresh = ctx.refresh_stats
    ctx.refresh_stats = lambda *a, **kw: refreshes.append(time.time()) or refresh(*a, **kw)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    with create_pipe_input() as inp:
        repl = Repl(ctx, input=inp, output=DummyOutput(), patch=False, history_path=tmp_path / "history",
                    stats_interval=0.05)
        ctx.top_interval = 0.05
        if where == "question":
            inp.send_text("run SleepyAgent: 600\r")  # read once the prompt below runs

        def signal_when_shown():
            if where == "question":
                out.wait_for(r"started SleepyAgent")
                inp.send_text("\x04")  # Ctrl-D asks "leave anyway?"
            elif where == "top":
                inp.send_text("top\r")
            deadline = time.time() + TIMEOUT
            while time.time() < deadline:
                fg = ctx._foreground
                if fg is not None and (where == "prompt" or fg[0] is not repl.session.app) and fg[0].is_running:
                    break
                time.sleep(0.02)
            seen = len(refreshes)  # let the refresh tasks run with the screen up: two more stats refreshes
            while len(refreshes) < seen + 2 and time.time() < deadline:
                time.sleep(0.02)
            os.kill(os.getpid(), signal.SIGTERM)

        leave_on_signals(ctx)
        try:
            th = threading.Thread(target=signal_when_shown, daemon=True)
            th.start()
            rc = repl.run()  # main thread: the only one Python delivers signals to
        finally:
            for s, h in saved.items():
                signal.signal(s, h)
        th.join(TIMEOUT)
    gc.collect()  # an unretrieved task exception is reported when the task is collected
    assert rc == 128 + signal.SIGTERM
    assert ctx.leave_status == 128 + signal.SIGTERM
    assert "never retrieved" not in caplog.text and "Traceback" not in out.text
    for pid in ctx.live_pids():
        kernel.kill(pid)
        kernel.wait(pid, timeout=TIMEOUT)
