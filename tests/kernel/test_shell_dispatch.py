"""The shell's command table and dispatcher, against the shared real kernel.

Proves: help and aliases come from one table; `run` syntax is parsed as in
the original (with --priority); every kind of bad input gets exactly one
error line and the dispatcher goes on; run/ps/wait/result/info/logs/kill/
agents/tools/sched work against a real kernel and real agent processes.
"""

from __future__ import annotations

import io
import re

import pytest

from aios_shell import details, views
from aios_shell.commands import MAX_LINE, CommandError, Dispatcher
from aios_shell.context import ShellContext
from aios_shell.handlers import TABLE, parse_run
from shell_helpers import attached, kill_live


@pytest.fixture
def shell(kernel):
    """A batch-mode context on the shared kernel, its events chained after the fixture's own."""
    out, err = io.StringIO(), io.StringIO()
    ctx = ShellContext(interactive=False, llm_name="test", out=out, err=err, show_output=False)
    with attached(kernel, ctx):
        yield ctx, Dispatcher(TABLE, ctx), out, err
    kill_live(kernel, ctx)


def test_help_lists_every_command_and_aliases_route(shell):
    ctx, d, out, err = shell
    assert d.onecmd("help")
    text = out.getvalue()
    for cmd in TABLE.commands.values():
        assert cmd.syntax in text and cmd.summary in text
    out.truncate(0)
    out.seek(0)
    assert d.onecmd("help kill")
    assert out.getvalue().startswith("kill <pid>...")
    assert TABLE.get("print agent") is TABLE.get("ps") and TABLE.get("PRINT   AGENT") is TABLE.get("ps")
    assert TABLE.get("quit") is TABLE.get("exit")
    assert {"run", "ps", "top", "kill", "wait", "result", "logs", "agents", "tools", "sched", "help",
            "exit"} <= set(TABLE.commands)


def test_parse_run_original_syntax_and_priority():
    assert parse_run("MathAgent: What is 12 * 7?") == ("MathAgent", "What is 12 * 7?", 0)
    assert parse_run("--priority 3 MathAgent: a: b") == ("MathAgent", "a: b", 3)
    assert parse_run("--priority=-2 MathAgent :x") == ("MathAgent", "x", -2)
    assert parse_run("-p 5 Echo: 世界") == ("Echo", "世界", 5)
    for bad, why in [("MathAgent", "missing ':'"), ("MathAgent:", "missing task"), ("MathAgent:   ", "missing task"),
                     (": task", "which agent"), ("Math Agent: t", "one agent name"),
                     ("--priority x M: t", "integer"), ("--priority", "needs a number"), ("--fast M: t", "unknown option")]:
        with pytest.raises(CommandError, match=why):
            parse_run(bad)


@pytest.mark.parametrize("line, message", [
    ("bogus", r"unknown command 'bogus'"),
    ("ünïcödé 世界 command", r"unknown command 'ünïcödé'"),
    ("run NoSuchAgent: do it", r"run: no agent named 'NoSuchAgent'"),
    ("run EchoAgent:", r"run: missing task"),
    ("run EchoAgent", r"run: missing ':'"),
    ("kill abc", r"kill: bad pid 'abc'"),
    ("kill 0", r"kill: bad pid 0"),
    ("kill 99999", r"kill: no process with pid 99999"),
    ("result 99999", r"result: no process with pid 99999"),
    ("logs -f", r"logs: usage"),
    ("wait", r"wait: usage"),
    ("ps --bogus", r"ps: unknown argument '--bogus'"),
    ("help nothing", r"help: no command 'nothing'"),
    ("top", r"top needs an interactive terminal"),
    ("x" * (MAX_LINE + 1), r"line of \d+ characters is longer than"),
    ("zz" * 5000, r"unknown command 'z{39}…'"),
])
def test_bad_input_gets_one_error_line_and_the_shell_goes_on(shell, line, message):
    ctx, d, out, err = shell
    assert d.onecmd(line) is False
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), lines
    assert lines[0].startswith("error: ") and len(lines[0]) < 400
    assert d.onecmd("agents") and "EchoAgent" in out.getvalue()  # still serving


@pytest.mark.parametrize("line", ["", "   ", "# a comment", "\t# indented comment"])
def test_empty_lines_and_comments_do_nothing(shell, line):
    ctx, d, out, err = shell
    assert d.onecmd(line) is True
    assert out.getvalue() == "" and err.getvalue() == ""


def test_run_wait_result_info_logs_ps(shell, kernel):
    ctx, d, out, err = shell
    assert d.onecmd("run echoagent: héllo wörld ✓ 世界")  # case-insensitive name, non-ASCII task
    m = re.search(r"started EchoAgent as pid (\d+)", out.getvalue())
    assert m, out.getvalue()
    pid = int(m.group(1))
    assert d.onecmd(f"wait {pid}")
    assert f"[{pid}] EchoAgent done" in out.getvalue() and "    héllo wörld ✓ 世界" in out.getvalue()
    for line, expect in [(f"result {pid}", "héllo wörld ✓ 世界"), (f"info {pid}", "syscalls"),
                         (f"logs {pid}", "echo: héllo wörld ✓ 世界"), (f"logs {pid} -f", "echo: héllo"),
                         ("ps -a", rf"(?m)^ *{pid} EchoAgent +done "), ("print agent -a", "TOK IN/OUT")]:
        out.truncate(0)
        out.seek(0)
        assert d.onecmd(line), err.getvalue()
        assert re.search(expect, out.getvalue()) if expect.startswith("(?m)") else expect in out.getvalue(), \
            (line, out.getvalue())
    assert err.getvalue() == ""
    assert pid not in ctx.live_pids() and ctx.ended[pid]["state"] == "done"


def test_kill_a_running_agent_and_ps_shows_it_until_then(shell, kernel):
    ctx, d, out, err = shell
    assert d.onecmd("run --priority 2 SleepyAgent: 600")
    pid = int(re.search(r"as pid (\d+)", out.getvalue()).group(1))
    assert pid in ctx.live_pids()
    out.truncate(0)
    out.seek(0)
    assert d.onecmd("ps")
    row = [ln for ln in out.getvalue().splitlines() if ln.split()[0] == str(pid)]
    assert row and "SleepyAgent" in row[0] and row[0].split()[3] == "2"
    assert d.onecmd(f"result {pid}") and "is still" in out.getvalue()
    assert d.onecmd(f"kill {pid}") and f"killing pid {pid}" in out.getvalue()
    assert d.onecmd(f"wait {pid}") and f"[{pid}] SleepyAgent killed" in out.getvalue()
    assert pid not in ctx.live_pids() and pid in ctx.killed
    assert d.onecmd(f"kill {pid}") is False and "already ended" in err.getvalue()


def test_logs_follow_prints_until_the_process_ends(shell):
    ctx, d, out, err = shell
    assert d.onecmd("run SleepyAgent: 1.5")
    pid = int(re.search(r"as pid (\d+)", out.getvalue()).group(1))
    assert d.onecmd(f"logs {pid} -f")  # returns only when the agent has ended
    assert "sleeping 1.5" in out.getvalue()
    assert ctx.ended[pid]["state"] == "done" and ctx.followers == {}


def test_agents_lists_the_kernels_apps_not_the_fronts(shell, kernel, tmp_path, monkeypatch):
    """The catalog is the kernel's (kernel/apps.py, the apps op): an app only the front's environment names
    (here: a folder added to AIOS_AGENT_PATH after the kernel started, as a shell attached to a daemon
    started elsewhere would have) is neither listed, completed nor spawnable; the kernel's apps are."""
    import os

    from aios_shell.completer import ShellCompleter
    from kernel import apps

    app = tmp_path / "front_only"
    app.mkdir()
    (app / "config.json").write_text('{"name": "FrontOnlyAgent", "description": "seen by the front only"}')
    (app / "agent.py").write_text("class FrontOnlyAgent:\n    def __init__(self, app): pass\n")
    monkeypatch.setenv("AIOS_AGENT_PATH", f"{os.environ['AIOS_AGENT_PATH']}{os.pathsep}{app.parent}")
    assert "FrontOnlyAgent" in [a["name"] for a in apps.catalog()["apps"]]  # the front's own view has it
    listed = [a["name"] for a in kernel.apps()["apps"]]
    assert "FrontOnlyAgent" not in listed and {"EchoAgent", "MathAgent"} <= set(listed) and listed == sorted(listed)
    ctx, d, out, err = shell
    assert d.onecmd("agents") and "FrontOnlyAgent" not in out.getvalue() and "EchoAgent" in out.getvalue()
    names = ShellCompleter(TABLE, ctx).agent_names()
    assert "FrontOnlyAgent" not in names and "MathAgent" in names
    assert not d.onecmd("run FrontOnlyAgent: hi") and "no agent named 'FrontOnlyAgent'" in err.getvalue()


def test_agents_tools_sched(shell, kernel):
    ctx, d, out, err = shell
    assert d.onecmd("agents")
    assert re.search(r"EchoAgent\s+Test agent: returns its task", out.getvalue())
    assert re.search(r"MathAgent\s+You are an expert in solving math", out.getvalue())
    tools = kernel.request("tools", timeout=10)
    out.truncate(0)
    out.seek(0)
    assert d.onecmd("tools")
    for t in tools:
        assert re.search(rf"^{re.escape(t['name'])}\s", out.getvalue(), re.M)
    if not tools:
        assert "no tools installed" in out.getvalue()
    out.truncate(0)
    out.seek(0)
    assert d.onecmd("sched")
    text = out.getvalue()
    assert re.search(r"^\s+model +\S+", text, re.M) and re.search(r"^\s+queued +\d+", text, re.M)
    assert re.search(r"^\s+policy +(serial|fifo|rr|priority)$", text, re.M)
    assert "None" not in text and "True" not in text and "False" not in text


def test_ps_table_fits_the_width_and_formats_units():
    snaps = [{"pid": 7, "agent": "A" * 40, "task": "t " * 200, "state": "llm-running", "priority": 1,
              "cpu_percent": 12.34, "rss": 23 * 1024 * 1024, "tokens_in": 123, "tokens_out": 45,
              "syscalls_total": 9, "waiting_s": 0.5, "turnaround_s": 75.0, "elapsed_s": 4000.0}]
    for width in (60, 80, 120, 200):
        text = views.ps_table(snaps, width)
        assert all(len(line) <= width for line in text.splitlines()), text
        assert "…" in text and text.startswith("  PID AGENT") and " TASK" in text
    assert "SYSCALLS" not in views.ps_table(snaps, 80) and "%CPU" in views.ps_table(snaps, 80)
    row = views.ps_table(snaps, 160).splitlines()[1]
    assert " 12.3 " in row and " 23.0M " in row and " 123/45 " in row and " 0.50s " in row and " 1m15s " in row
    assert " 1h06m " in row
    assert views.fmt_bytes(None) == "-" and views.fmt_bytes(512) == "512B" and views.fmt_secs(None) == "-"
    stats = {"model": "m", "queue": 0, "busy_s": 75.0, "tokens_per_s": 8.5, "kv_bytes": 2048, "running": 2,
             "max_batch": 16, "batch_occupancy": 1.7, "batch_occupancy_pct": 10.6, "future_key": "shown"}
    text = details.sched_text(stats, [])
    assert re.search(r"tokens/s +8.50$", text, re.M) and re.search(r"busy +1m15s$", text, re.M)
    assert re.search(r"kv now +2.0K$", text, re.M) and re.search(r"future_key +shown$", text, re.M)
    assert re.search(r"decoding now +2/16 \(avg 1.7, 11%\)$", text, re.M)
    assert views.batch_text(stats) == "2/16 (avg 1.7, 11%)" and views.batch_text({}) == "-"
    assert "no agent processes" in views.ps_table([])
