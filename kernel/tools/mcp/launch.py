"""Launcher of one MCP server: ``python -I -S launch.py <kernel_pid> <command> [args...]``.

Started by the kernel in a new session (so the server and everything it starts share one
process group), it asks Linux for SIGTERM when the kernel dies (PR_SET_PDEATHSIG), then forks
and execs the server and waits for it. On SIGTERM (the kernel died, or is stopping the server)
it SIGKILLs its whole group: no server process outlives the kernel, even a grandchild (npx ->
node) or a server that ignores signals. Its exit status is the server's (127: command not
found). Standard library only, run without site-packages, so it starts in milliseconds.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    kernel_pid, argv = int(sys.argv[1]), sys.argv[2:]
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != kernel_pid:  # the kernel died before prctl took effect
        os._exit(1)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            os.write(2, f"cannot start {argv[0]!r}: {e.strerror or e}\n".encode(errors="replace"))
            os._exit(127)
    # The server alone holds stdin/stdout: the kernel sees EOF exactly when the server closes them.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
