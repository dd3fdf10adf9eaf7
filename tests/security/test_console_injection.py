"""A hostile agent against the user's terminal (console mode, the shared kernel and a real agent).

Attacks: ANSI/OSC escape sequences (clear screen, retitle, recolour, a forged red ``error:``)
in printed lines, stderr and the result; a carriage return to overwrite the ``[Agent pid]``
prefix; raw writes to file descriptors 1 and 2 below Python. Asserted: no control character
reaches the shell's output, each agent line keeps its one real prefix, and the raw writes
never reach the terminal the kernel shares with the shell.
"""

from __future__ import annotations

import io

from aios_shell import views
from aios_shell.context import ShellContext
from shell_helpers import attached


def test_agent_cannot_send_terminal_control_sequences(kernel):
    out = io.StringIO()
    ctx = ShellContext(interactive=True, out=out)
    with attached(kernel, ctx):
        pid = kernel.spawn("TermAgent", "go")
        ctx.note_spawn(pid, "TermAgent")
        snap = kernel.wait(pid, timeout=60)
        lines = kernel.logs(pid)["lines"]
    assert snap["state"] == "done"
    text = out.getvalue() + views.result_block(snap) + views.exit_line(snap) + views.ps_table([snap])
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text, repr(text)
    shown = [line for line in out.getvalue().splitlines() if " via " in line or "forged prefix" in line]
    assert len(shown) == 3 and all(line.startswith(f"[TermAgent {pid}] ") for line in shown), shown
    assert f"[TermAgent {pid}] \\x0d[OtherAgent 1] forged prefix" in out.getvalue()
    assert "\\x1b[2J" in out.getvalue()  # shown, visibly, not obeyed
    # fd 1 and 2 of a console-mode agent are /dev/null: the raw writes went nowhere
    assert not any("RAWFD" in line for line in lines) and "RAWFD" not in out.getvalue()
