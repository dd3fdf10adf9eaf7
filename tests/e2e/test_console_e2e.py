"""The console as a person sees it: the real simulator.py in a pty (pexpect).

Proves: by default nothing comes before the banner, each agent line has one prefix,
a spawn and an exit are each announced once and kernel INFO records stay hidden;
errors are red on a terminal; top asks ``kill pid N (Agent)? [y/N]`` and only y
kills; -v shows the kernel's INFO records; -q shows results and errors only.
"""

from __future__ import annotations

import re

import pexpect

from test_shell_e2e import PROMPT, run_agent, spawn_shell, start_agent


def leave(child) -> None:
    child.sendline("exit")
    idx = child.expect([r"Stop them and leave\? \[y/N\]", pexpect.EOF])
    if idx == 0:
        child.sendline("y")
        child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_default_console_is_quiet_coloured_and_top_asks_before_kill(tmp_path):
    child, log, kernel_pid = spawn_shell(tmp_path)
    # a quick agent's exit notice may come before the prompt is redrawn: expect it first, then the prompt
    pid = start_agent(child, "run EchoAgent: hello console")
    child.expect(rf"\[{pid}\] EchoAgent done in")
    child.expect(PROMPT)
    child.sendline("bogus")
    child.expect(r"error: unknown command 'bogus'")
    child.expect(PROMPT)
    sleepy = run_agent(child, "run SleepyAgent: 600")
    child.sendline("top")
    child.expect(r"AIOS top - up")
    child.expect(r"SleepyAgent")
    child.send("N")  # by pid: ours is the newest, at the end
    child.send("\x1b[F")  # End
    child.send("k")
    child.expect(rf"kill pid {sleepy} \(SleepyAgent\)\? \[y/N\]")
    child.send("n")
    child.expect(rf"kill pid {sleepy} cancelled")
    child.send("k")
    child.expect(rf"kill pid {sleepy} \(SleepyAgent\)\? \[y/N\]")
    child.send("y")
    child.expect(rf"killing pid {sleepy}")
    child.send("q")
    child.expect(PROMPT)
    child.sendline(f"wait {sleepy}")
    child.expect(rf"\[{sleepy}\] SleepyAgent killed")
    child.expect(PROMPT)
    leave(child)

    text, raw = log.text, "".join(log.raw)
    first = next(line for line in text.splitlines() if line.strip())
    assert first.startswith("AIOS shell: kernel pid"), first  # nothing before the banner
    assert text.count(f"[EchoAgent {pid}] echo: hello console") == 1  # one line, one prefix
    assert "[EchoAgent pid" not in text and "task:" not in text
    assert text.count(f"started EchoAgent as pid {pid}") == 1
    assert len(re.findall(rf"\[{pid}\] EchoAgent done in", text)) == 1  # the exit, once
    assert "kernel:" not in text and "[kernel" not in text and "spawned" not in text and "{'" not in text
    assert "\x1b[1;31merror: unknown command 'bogus'" in raw  # red on a terminal


def test_verbose_shows_kernel_info_and_quiet_only_results(tmp_path):
    for sub in ("v", "q"):
        (tmp_path / sub).mkdir()
    child, log, _ = spawn_shell(tmp_path / "v", "-v")
    pid = start_agent(child, "run EchoAgent: loud")
    child.expect(rf"\[{pid}\] EchoAgent done in")
    leave(child)
    assert f"[EchoAgent {pid}] echo: loud" in log.text
    assert f"kernel: spawned EchoAgent pid {pid}" in log.text and "kernel: kernel up" in log.text

    child, log, _ = spawn_shell(tmp_path / "q", "-q")
    pid = start_agent(child, "run EchoAgent: hushed")
    child.expect(rf"\[{pid}\] EchoAgent done in .*: hushed")  # the result still shows
    child.sendline("bogus")
    child.expect(r"error: unknown command 'bogus'")  # errors always show
    child.expect(PROMPT)
    leave(child)
    assert "echo: hushed" not in log.text, log.text
    assert "kernel:" not in log.text and "instruct ready" not in log.text, log.text
