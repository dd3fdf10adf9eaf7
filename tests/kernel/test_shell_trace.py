"""The shell's ``trace`` command against the shared real kernel: the dispatcher (batch and
interactive contexts), the REPL fed through prompt_toolkit's pipe input, and Ctrl-C.

Proves: ``trace -a PID`` replays a finished process as strace-style lines from spawn to exit;
``trace PID`` follows a live process until it ends; ``-o json`` prints one span per line;
``--timeline FILE`` writes the HTML picture; Ctrl-C (SIGINT) stops following and the kernel stops
sending; the REPL runs it like any command; completion offers its flags.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import threading

import pytest
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from aios_shell.commands import Dispatcher
from aios_shell.completer import ShellCompleter
from aios_shell.context import ShellContext
from aios_shell.handlers import TABLE
from aios_shell.repl import Repl
from test_shell_repl import TIMEOUT, Watch

SCRIPT = [{"tool": "calculator", "args": {"expression": "6*7"}},
          {"sys": "llm.chat", "args": {"messages": [{"role": "user", "content": "Say hi"}], "max_new_tokens": 4}},
          {"sys": "no.such.call"}]


def attach(kernel, ctx):
    prev = kernel.on_event

    def both(ev):
        prev(ev)
        ctx.on_event(ev)
    kernel.on_event = both
    return prev


@pytest.fixture
def shell(kernel):
    out, err = io.StringIO(), io.StringIO()
    ctx = ShellContext(interactive=False, llm_name="test", out=out, err=err, show_output=False)
    ctx.attach(kernel)
    prev = attach(kernel, ctx)
    yield ctx, Dispatcher(TABLE, ctx), out, err
    kernel.on_event = prev


def started(out) -> int:
    return int(re.findall(r"as pid (\d+)", out.getvalue())[-1])


def test_replay_json_and_timeline_of_a_finished_process(shell, tmp_path):
    ctx, d, out, err = shell
    assert d.onecmd(f"run ToolAgent: {json.dumps(SCRIPT)}")
    pid = started(out)
    assert d.onecmd(f"wait {pid}")
    out.seek(0)
    out.truncate()
    assert d.onecmd(f"trace -a {pid}")
    lines = out.getvalue().splitlines()
    stamp = r"\d\d:\d\d:\d\d\.\d{3}"
    assert re.fullmatch(rf"{stamp} \+\+\+ spawned ToolAgent \(pid {pid}\) \+\+\+", lines[0])
    assert re.fullmatch(rf'{stamp} tool\.call\(name="calculator", args=\{{expression=<3 B #[0-9a-f]{{6}}>\}}\) = '
                        rf'\d+ B  <\d+\.\d{{3}}s>', lines[1]), lines[1]
    assert re.fullmatch(rf"{stamp} llm\.chat\(model=[\w.-]+, \d+ tok in(, prefix hit \d+)?\) = [1-4] tok  "
                        r"\[wait \S+ prefill \S+ decode \S+\]", lines[2]), lines[2]
    assert lines[3].endswith("no.such.call() = -1 ENOSYS (Function not implemented)  <0.000s>")
    assert " proc.exit(result=<" in lines[4] and re.search(r"\+\+\+ exited: done, status 0 \+\+\+$", lines[5])
    assert len(lines) == 6 and not err.getvalue()
    out.seek(0)
    out.truncate()
    assert d.onecmd(f"trace -o json {pid}")  # an ended process replays without -a
    spans = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [s["name"] for s in spans] == ["tool.call", "llm.chat", "no.such.call", "proc.exit", "agent"]
    page = tmp_path / "run.html"
    assert d.onecmd(f"trace --timeline {page}")
    assert "<svg" in page.read_text() and f"ToolAgent  pid {pid}" in page.read_text()
    assert re.search(r"timeline of \d+ process\(es\), \d+ call\(s\): ", out.getvalue())


def test_trace_follows_a_live_process_until_it_ends(shell):
    ctx, d, out, err = shell
    assert d.onecmd("run SleepyAgent: 1")
    pid = started(out)
    assert d.onecmd(f"trace {pid}")  # returns when the process has ended
    text = out.getvalue()
    assert re.search(r"proc\.exit\(result=<\d+ B #[0-9a-f]{6}>, status=\"ok\"\) = \d+ B", text)
    assert text.rstrip().endswith("+++ exited: done, status 0 +++") and ctx.span_followers == {}
    assert not d.onecmd("trace 999999") and "error: trace: no trace of pid 999999" in err.getvalue()


def test_ctrl_c_stops_following_and_the_kernel_stops_sending(kernel):
    class Interrupting(Watch):
        """Presses Ctrl-C (SIGINT to the main thread, from another) once the shell says it follows."""

        def write(self, s):
            if "Ctrl-C stops" in s:
                threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            return super().write(s)

    out = Interrupting()
    ctx = ShellContext(interactive=True, llm_name="test", out=out, err=out, show_output=False)
    ctx.attach(kernel)
    prev = attach(kernel, ctx)
    pid = kernel.spawn("SleepyAgent", "forever")
    try:
        with pytest.raises(KeyboardInterrupt):
            Dispatcher(TABLE, ctx).onecmd(f"trace {pid}")
        assert f"tracing pid {pid} (SleepyAgent); Ctrl-C stops" in out.text
        assert ctx.span_followers == {}
        assert pid not in kernel.request("trace", timeout=10)["stats"]["following"]
    finally:
        kernel.on_event = prev
        kernel.kill(pid)
        kernel.wait(pid, timeout=30)


def test_the_repl_runs_trace_and_completes_its_flags(kernel, tmp_path):
    out = Watch()
    ctx = ShellContext(interactive=True, llm_name="testllm", out=out, err=out)
    ctx.attach(kernel)
    prev = attach(kernel, ctx)
    try:
        with create_pipe_input() as inp:
            repl = Repl(ctx, input=inp, output=DummyOutput(), history_path=tmp_path / "history", patch=False)
            t = threading.Thread(target=repl.run, daemon=True)
            t.start()
            inp.send_text("run EchoAgent: traced from the repl\r")
            pid = out.wait_for(r"started EchoAgent as pid (\d+)").group(1)
            inp.send_text(f"wait {pid}\r")
            at = out.wait_for(r"EchoAgent done").end()
            inp.send_text(f"trace -a {pid}\r")
            out.wait_for(rf"\+\+\+ spawned EchoAgent \(pid {pid}\) \+\+\+", at)
            out.wait_for(r"proc\.exit\(result=<\d+ B #[0-9a-f]{6}>, status=\"ok\"\)", at)
            out.wait_for(r"\+\+\+ exited: done, status 0 \+\+\+", at)
            inp.send_text("exit\r")
            t.join(TIMEOUT)
            assert not t.is_alive()
    finally:
        kernel.on_event = prev
    comp = ShellCompleter(TABLE, ctx)
    words = {c.text for c in comp.get_completions(Document("trace -"), None)}
    assert {"-a", "-o", "--timeline"} <= words
