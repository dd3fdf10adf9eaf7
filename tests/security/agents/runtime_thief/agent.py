"""RuntimeThiefAgent: a command agent that tries to speak to the kernel as its runtime (tests/security).

The endpoint must be a command's only way to the kernel. Its runtime (the parent) holds the channel's
two pipe ends; this script tries every route to them, and prints what it tried as JSON (its result)."""

import ctypes
import json
import os
import struct

MARK = "HOSTILE-FORGED-7f3a"
tried = []


def attempt(what, fn):
    try:
        got = fn()
    except Exception as e:
        tried.append({"what": what, "ok": False, "error": f"{type(e).__name__}: {e}"})
    else:
        tried.append({"what": what, "ok": True, "got": repr(got)[:300]})


def errno_of(r):
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


libc = ctypes.CDLL(None, use_errno=True)
runtime = os.getppid()
opened = []


def reopen():
    errors = []
    for n in range(3, 64):
        try:
            opened.append(os.open(f"/proc/{runtime}/fd/{n}", os.O_RDWR | os.O_NONBLOCK))
        except OSError as e:
            errors.append(e)
    if not opened:
        raise errors[0] if errors and errors[0].errno != 2 else PermissionError("no fd of the runtime could be opened")
    return len(opened)


def forge():
    frame = json.dumps({"kind": "syscall", "id": 99, "pid": 1, "name": "fs.write",
                        "args": {"name": "forged", "data": MARK}}).encode()
    for fd in opened:
        try:
            os.write(fd, struct.pack("!I", len(frame)) + frame)
        except OSError:
            pass
    return "written"


attempt("list the runtime's fds", lambda: os.listdir(f"/proc/{runtime}/fd"))
attempt("reopen the runtime's fds", reopen)
if opened:
    attempt("write a raw fs.write frame as the runtime", forge)
attempt("read the runtime's memory", lambda: open(f"/proc/{runtime}/mem", "rb").read(1))
attempt("ptrace the runtime", lambda: errno_of(libc.ptrace(16, runtime, None, None)))
pidfd = -1
try:
    pidfd = os.pidfd_open(runtime)
except OSError:
    pass
attempt("pidfd_getfd the runtime's fd 3..9", lambda: [errno_of(libc.syscall(438, pidfd, n, 0)) for n in range(3, 10)])
print(json.dumps(tried))
