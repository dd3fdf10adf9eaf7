"""Agents as commands: a profile names a program instead of a class (agent side, stdlib only).

    {"name": "OpenAIAgent", "command": ["python", "agent.py"], "description": "..."}

The runtime (agent_apps/runtime.py) runs the command as its child, already
confined (the child inherits the sandbox, rlimits and Landlock domain), in
the app's folder, with the task as the last argument and in ``AIOS_TASK``,
and ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` pointing at the agent's endpoint.
Its standard output is the agent's result; its exit status is the agent's
(0: done; anything else: failed, with the status and the tail of its output
in the error). Standard error goes to the agent's log.

Invariants:
- The command never holds the channel to the kernel (its fds are not
  inherited): the endpoint is its only way to the kernel.
- ``python``/``python3`` as the program mean this interpreter (the one whose
  packages the sandbox shows), whatever PATH finds.
- The command stays in the runtime's process group and, under bubblewrap,
  its pid namespace: a kill of the agent takes the command and all its
  descendants. A SIGTERM to the runtime is passed on to the command's
  process group, then SIGKILL after ``grace_s``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from kernel.protocol.profile import validate_command

MAX_RESULT = 256 << 10  # bytes of standard output kept as the result (the rest is counted, not kept)
GRACE_S = 2.0  # seconds a terminated command has to exit before SIGKILL


def argv_for(command: list[str], task: str) -> list[str]:
    argv = validate_command(command)
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return [*argv, task]


class _Capture(threading.Thread):
    """Reads the command's stdout to EOF, keeping the first MAX_RESULT bytes."""

    def __init__(self, stream):
        super().__init__(name="aios-command-stdout", daemon=True)
        self.stream = stream
        self.kept = bytearray()
        self.total = 0

    def run(self) -> None:
        while chunk := self.stream.read(1 << 16):
            self.total += len(chunk)
            room = MAX_RESULT - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]

    def text(self) -> str:
        out = self.kept.decode("utf-8", "replace").strip()
        if self.total > MAX_RESULT:
            out += f"\n[output truncated: {self.total} bytes, first {MAX_RESULT} kept]"
        return out


def run(app, task: str, extra_env: dict[str, str]) -> tuple[str, str, int]:
    """Run the app's command to its end; returns (status "ok"|"error", result text, the runtime's exit
    status: the command's, or 128 + N when signal N killed it)."""
    argv = argv_for(app.config.get("command"), task)
    folder = os.path.dirname(os.path.abspath(app.path))
    env = dict(os.environ, **extra_env, AIOS_TASK=task, PYTHONUNBUFFERED="1")
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "/usr/bin:/bin")])
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        child = subprocess.Popen(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, close_fds=True)
    except OSError as e:
        return "error", f"cannot run {argv[0]}: {e.strerror or e}", 127
    capture = _Capture(child.stdout)
    capture.start()
    errors = threading.Thread(target=_forward, args=(child.stderr,), name="aios-command-stderr", daemon=True)
    errors.start()
    try:
        code = child.wait()
    except BaseException:  # SIGTERM (SystemExit) or the kernel gone: the command goes too
        _stop(child)
        raise
    capture.join(GRACE_S)  # a descendant may still hold the pipe: it dies with the agent
    errors.join(GRACE_S)
    if code == 0:
        return "ok", capture.text(), 0
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    tail = capture.text()[-2000:]
    return "error", f"command {how}" + (f"; output:\n{tail}" if tail else ""), code if code > 0 else 128 - code


def _forward(stream) -> None:
    """The command's stderr, line by line, to the agent's log (a file, or the kernel in console mode)."""
    for line in iter(stream.readline, b""):
        sys.stderr.write(line.decode("utf-8", "replace"))
    sys.stderr.flush()


def _stop(child: subprocess.Popen) -> None:
    """SIGTERM the command, SIGKILL after GRACE_S; descendants that stayed in our group go too."""
    try:
        child.terminate()
        child.wait(GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    except OSError:
        pass
