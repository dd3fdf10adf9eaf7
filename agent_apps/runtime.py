"""Entry point of every agent process: ``python -m agent_apps.runtime RX_FD TX_FD``.

Exec'd by the kernel (kernel/confine/sandbox.py), usually inside bubblewrap;
imports only light modules (never torch). It

1. reads the boot record, the first frame the kernel wrote on RX;
2. confines itself before any agent code is imported (kernel/confine/inside.py:
   rlimits, PR_SET_NO_NEW_PRIVS, Landlock, as the kernel planned);
3. outside bwrap, asks Linux to SIGKILL it if the kernel dies
   (PR_SET_PDEATHSIG; under bwrap, --die-with-parent does this);
4. sends its output to its log file (file mode: stdout is that file, opened
   by the kernel) or to the kernel, which shows it above the shell prompt;
5. connects the SDK, runs ``AgentClass(app).run(task)`` and reports the
   result with ``proc.exit``; a crash is reported with its traceback.

Agents from other frameworks (issue 15): before confinement it binds the
agent's OpenAI-compatible endpoint (agent_apps/endpoint.py) and lets
Landlock allow a connect to that one port; the endpoint's variables are in
the environment of the agent's code. A profile with ``"command"`` runs that
program instead of a class (agent_apps/command.py).
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import signal
import sys
import traceback

PR_SET_PDEATHSIG = 1


def _die_with_parent(kernel_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the kernel's shutdown still kills us; EOF on our channel does too
    if os.getppid() != kernel_pid:  # the kernel died before prctl took effect
        os._exit(1)


class _KernelWriter(io.TextIOBase):
    """stdout/stderr of a console-mode agent: each line goes to the kernel as a log frame."""

    def __init__(self, level: str):
        self.level = level
        self._buf = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        from agent_apps import sdk

        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if sdk._conn is not None:
                sdk._conn.send_log(self.level, line)
        return len(s)

    def flush(self) -> None:
        if self._buf:
            self.write("\n")


def _redirect_output(log_path: str | None) -> None:
    if log_path:
        os.dup2(1, 2)  # the kernel opened the log file as our stdout: C-level writes and tracebacks too
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
    else:
        sys.stdout = _KernelWriter("INFO")
        sys.stderr = _KernelWriter("ERROR")


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # a polite kill: unwinds finally blocks, flushes logs


def _bind_endpoint(boot: dict, plan: dict):
    """The agent's OpenAI endpoint, bound (not yet serving); None if its profile says ``"endpoint": false``."""
    if boot["app"]["config"].get("endpoint") is False:
        return None
    from agent_apps.endpoint import Endpoint

    endpoint = Endpoint(boot.get("model") or "aios")
    port = endpoint.bind()
    if plan.get("landlock"):
        plan["landlock"]["connect_ports"] = [port]  # TCP stays blocked but for this port
    return endpoint


def agent_main(rx_fd: int, tx_fd: int) -> None:
    """boot: {pid, name, task, app: {module, path, description, steps, tools, config},
    kernel_pid, log_path, confine: plan} (built by the kernel, kernel/kernel.py spawn)."""
    from kernel.channel import read_frame
    from kernel.confine import inside

    boot = json.loads(read_frame(rx_fd))
    plan = boot["confine"]
    if plan["sandbox"] != "bwrap":
        _die_with_parent(boot["kernel_pid"])  # under bwrap: --die-with-parent, and we are pid 1 (ppid 0)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the shell, not to agents
    from agent_apps import registry, sdk

    sdk.connect(boot["pid"], rx_fd, tx_fd)
    endpoint = _bind_endpoint(boot, plan)  # binds before Landlock denies bind()
    if plan["sandbox"] != "none":
        try:
            inside.apply(plan)  # no agent code has run yet, and none runs if a layer fails
        except OSError as e:
            sdk.proc.exit(result=f"confinement failed, agent not started: {e}", status="error")
            os._exit(1)
    if endpoint is not None:
        endpoint.start()
        os.environ.update(endpoint.env())
    _redirect_output(boot.get("log_path"))
    print(f"[{boot['name']} pid {boot['pid']}] task: {boot['task']}", flush=True)
    status, result, exit_status = "ok", None, 0
    try:
        app = registry.AgentApp(name=boot["name"], **boot["app"])
        if app.config.get("command") is not None:
            from agent_apps import command

            status, result, exit_status = command.run(app, boot["task"], endpoint.env() if endpoint else {})
        else:
            cls = registry.load_class(app)
            result = cls(app).run(boot["task"])
    except sdk.KernelGone:
        os._exit(1)
    except SystemExit as e:
        status, result = "error", f"terminated (exit {e.code})"
    except BaseException:
        status, result = "error", traceback.format_exc()
        print(result, file=sys.stderr, flush=True)
    try:
        json.dumps(result)
    except (TypeError, ValueError):
        result = repr(result)  # results cross to the kernel as JSON
    try:
        sdk.proc.exit(result=result, status=status)
    except sdk.SyscallError as e:
        print(f"proc.exit failed: {e}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    if exit_status:
        os._exit(exit_status)  # a command agent exits as its command did


if __name__ == "__main__":
    agent_main(int(sys.argv[1]), int(sys.argv[2]))
