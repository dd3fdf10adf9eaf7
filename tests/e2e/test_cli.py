"""Command-line conventions and console views (unit tier: no kernel).

Proves: every kernel flag takes both spellings into one dest; --help is grouped (one group per
config record: model, scheduler, ... tracing; then shell) and shows each flag's default as its field
has it; --version; -q/-v; the ps/tools/agents tables stay aligned with wide characters
(CJK, emoji) and show agent strings as they are (no markup).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from rich.cells import cell_len

import main
import simulator
from aios_shell import views
from aios_shell.context import ShellContext, progress_text
from kernel import __version__
from kernel.config import FLAGS, GROUPS, KernelConfig, field_default

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str):
    return simulator.build_parser().parse_args(list(argv))


def test_both_spellings_reach_the_same_field():
    for name, *_ in FLAGS:
        kebab, snake = "--" + name.replace("_", "-"), "--" + name
        default = field_default(name)
        if isinstance(default, bool):
            a, b = parse(kebab), parse(snake)
            assert getattr(a, name) is True and getattr(b, name) is True, name
            continue
        value = {"scheduler": "rr", "storage_sync": "normal", "mem_search": "bm25", "confirm_policy": "allow",
                 "tool_scheduling": "global_lock", "scheduler_log_mode": "file", "agent_log_mode": "file",
                 "log_level": "WARNING", "max_gpu_memory": '{"0": "1GiB"}', "prefix_cache": "off",
                 "program_aware": "on", "confine": "strict", "trace": "off", "weights": "fp32",
                 "tool_decision": "model"}.get(name)
        if value is None:
            value = "7" if isinstance(default, (int, float)) else "x"
        assert getattr(parse(kebab, value), name) == getattr(parse(snake, value), name) != default, name
    cfg = KernelConfig.from_args(parse("--llm_name", "gpt-4", "--max-batch", "3", "--log-level", "debug",
                                       "--log-max-bytes", "4096", "--log_backups", "2", "--log-keep-runs", "9"))
    assert (cfg.llm.name, cfg.sched.max_batch, cfg.logs.level, cfg.logs.max_bytes, cfg.logs.backups,
            cfg.logs.keep_runs) == ("gpt-4", 3, "DEBUG", 4096, 2, 9)
    assert KernelConfig.from_args(parse()) == KernelConfig()  # nothing given: the dataclass's defaults


def test_shell_flags_and_verbosity():
    a = parse("--top-interval", "0.5", "--top_interval", "0.7", "-q")
    assert a.top_interval == 0.7 and a.verbosity == -1
    assert parse("-vv").verbosity == 2 and parse().verbosity is None
    with pytest.raises(SystemExit):
        parse("--log-level", "LOUD")
    with pytest.raises(ValueError, match="log-max-bytes"):
        KernelConfig.from_flags(log_max_bytes=10)


def test_help_is_grouped_with_defaults_from_the_config(capsys):
    with pytest.raises(SystemExit):
        simulator.build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    heads = [m.group(1) for m in re.finditer(r"^(\w+):$", text, re.M)]
    assert heads == ["options", *GROUPS, "shell"], heads
    for name, group, *_ in FLAGS:
        kebab = "--" + name.replace("_", "-")
        section = "\n" + text.split(f"\n{group}:\n", 1)[1].split("\n\n", 1)[0]
        assert kebab in section, (name, group)
        assert f"--{name} " not in text or "_" not in name  # one spelling shown
        d = field_default(name)
        shown = "off" if d is False else ("none" if d in (None, "") else d)
        entry = " ".join(re.split(rf"\n  {kebab}[ \n]", section, maxsplit=1)[1].split("\n  -", 1)[0].split())
        assert f"(default: {shown})" in entry, (name, entry)
    for f in fields(KernelConfig):  # a changed default shows up in --help with no other edit
        if any(f.name == n for n, *_ in FLAGS) and isinstance(field_default(f.name), int) \
                and not isinstance(field_default(f.name), bool):
            assert f"(default: {field_default(f.name)})" in flat


def test_version_and_main_help():
    out = subprocess.run([sys.executable, str(ROOT / "simulator.py"), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"AIOS {__version__}"
    with pytest.raises(SystemExit):
        main.main(["--help"])


def test_ps_aligns_wide_characters_and_ignores_markup():
    snaps = [{"pid": 1, "agent": "MathAgent", "state": "running", "task": "What is 12*7?"},
             {"pid": 22, "agent": "数学エージェント😀長い名前", "state": "llm-running", "task": "计算 12*7 😀 然后解释 " * 6},
             {"pid": 333, "agent": "😀😀", "state": "done", "task": "[bold red]not markup[/] ✓"}]
    for width in (70, 100, 160):
        header, rows = views.ps_header_and_rows(snaps, width)
        task_col = cell_len(header[:header.index("TASK")])
        state_col = cell_len(header[:header.index("STATE")])
        for snap, row in zip(snaps, rows):
            assert cell_len(row) <= width, (width, row)
            assert cell_len(row[:row.index(snap["state"])]) == state_col, (width, row)
            head = snap["task"][:2]
            assert cell_len(row[:row.index(head)]) == task_col, (width, row)
    assert "[bold red]not markup[/] ✓" in views.ps_table(snaps, 160)
    tools = views.tools_text([{"name": "計算機", "side_effect": "read_only", "parallel": 4, "description": "算数 😀"},
                              {"name": "calc", "side_effect": "writes", "parallel": 1, "description": "x"}], 80)
    lines = tools.splitlines()
    cols = {cell_len(line[:line.index(w)]) for line, w in zip(lines, ("SIDE", "read_only", "writes"))}
    assert len(cols) == 1, tools


def test_console_levels_and_colour():
    class Tty:
        def __init__(self):
            self.parts = []

        def __iter__(self):
            return iter(self.parts)

        def write(self, s):
            self.parts.append(s)

        def flush(self):
            pass

        def isatty(self):
            return True

    def shown(verbosity: int, ev: dict, tty: bool = True) -> str:
        out = Tty() if tty else __import__("io").StringIO()
        ctx = ShellContext(interactive=True, out=out, verbosity=verbosity)
        ctx.on_event(ev)
        return "".join(out) if tty else out.getvalue()

    info = {"event": "log", "level": "INFO", "text": "spawned X"}
    warn = {"event": "log", "level": "WARNING", "text": "careful"}
    line = {"event": "output", "pid": 3, "agent": "MathAgent", "text": "step 1"}
    assert shown(0, info) == "" and "spawned X" in shown(1, info) and shown(1, {**info, "level": "DEBUG"}) == ""
    assert "careful" in shown(-1, warn) and "\x1b[33m" in shown(0, warn)
    assert shown(0, line) == "[MathAgent 3] step 1\n" and shown(-1, line) == ""
    ctx = ShellContext(interactive=True, out=Tty())
    ctx.error("boom")
    assert "".join(ctx._out) == "\x1b[1;31merror: boom\x1b[0m\n"
    assert shown(0, warn, tty=False) == "kernel warning: careful\n"  # no colour off a terminal
    assert progress_text({"text": "converting", "done": 68, "total": 272}) == "converting 25%"
    ctx = ShellContext(interactive=True, out=Tty())
    ctx.on_event({"event": "progress", "stage": "load", "text": "loading m"})
    assert "loading m…" in ctx.toolbar()
