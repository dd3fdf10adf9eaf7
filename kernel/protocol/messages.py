"""Syscall message records shared by the kernel and the agent SDK.

Both sides import this module, so it must stay light (no torch, no
transformers). Agent -> kernel messages are JSON objects, framed by
kernel.protocol.channel; the kernel never unpickles anything an agent wrote.

Agent -> kernel::

    {"kind": "syscall", "id": 7, "pid": 3, "name": "llm.chat", "args": {...}}
    {"kind": "log", "pid": 3, "level": "INFO", "text": "step 1 done"}

Kernel -> agent::

    {"kind": "reply", "id": 7, "ok": true, "result": {...}}
    {"kind": "reply", "id": 7, "ok": false, "error": {"code": "EINVAL", "message": "..."}}

A message the kernel cannot even attribute to a request (bad JSON, oversize
frame) is answered with ``"id": null``; the SDK hands that error to the call
it has outstanding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SYSCALL = "syscall"
LOG = "log"
REPLY = "reply"
KINDS = (SYSCALL, LOG)

# Error codes, named after their POSIX cousins so they read like an OS.
EINVAL = "EINVAL"  # malformed message or bad arguments
ENOSYS = "ENOSYS"  # unknown syscall
EPERM = "EPERM"  # forged pid, or access denied
ESRCH = "ESRCH"  # no such process
E2BIG = "E2BIG"  # message larger than the kernel accepts
EAGAIN = "EAGAIN"  # quota or queue full: try later
ECANCELED = "ECANCELED"  # the call was cancelled (agent killed, kernel stopping)
EIO = "EIO"  # the backend failed
ETIMEDOUT = "ETIMEDOUT"
ENOENT = "ENOENT"  # no such record, version or memory block
ENOSPC = "ENOSPC"  # a size cap or memory limit reached
EDQUOT = "EDQUOT"  # an agent's storage or token quota is used up
EACCES = "EACCES"  # the file system refused (permissions, confinement)
EEXIST = "EEXIST"  # it exists already
ENOTDIR = "ENOTDIR"  # a path component is not a directory
ENOTEMPTY = "ENOTEMPTY"  # a directory is not empty
EPROTO = "EPROTO"  # the other side broke the protocol
ECONNRESET = "ECONNRESET"  # the kernel (or a server) went away
ECONNREFUSED = "ECONNREFUSED"  # nothing listens where we tried to connect

MAX_ID = 2**53  # request ids must survive a round trip through JSON numbers


class CodedError(Exception):
    """A failure with one of the codes above and a one-line message: the base of every error that
    crosses a boundary (syscalls, kernel control, tools, backends). ``str(e)`` is the message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self):  # pickles with every attribute, whatever the subclass's __init__ takes
        return _rebuild, (type(self), dict(self.__dict__))


def _rebuild(cls, state: dict) -> CodedError:
    e = cls.__new__(cls)
    Exception.__init__(e, state.get("message", ""))
    e.__dict__.update(state)
    return e


class ProtocolError(CodedError):
    """A message that does not follow this module's format."""

    def __init__(self, code: str, message: str, req_id: int | None = None):
        super().__init__(code, message)
        self.req_id = req_id


@dataclass(frozen=True)
class Syscall:
    """A validated agent -> kernel request."""

    id: int
    pid: int
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogRecord:
    pid: int
    level: str
    text: str


def encode(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def syscall(req_id: int, pid: int, name: str, args: dict) -> bytes:
    return encode({"kind": SYSCALL, "id": req_id, "pid": pid, "name": name, "args": args})


def log(pid: int, level: str, text: str) -> bytes:
    return encode({"kind": LOG, "pid": pid, "level": level, "text": text})


def ok(req_id: int | None, result: Any) -> bytes:
    return encode({"kind": REPLY, "id": req_id, "ok": True, "result": result})


def error(req_id: int | None, code: str, message: str) -> bytes:
    return encode({"kind": REPLY, "id": req_id, "ok": False,
                   "error": {"code": code, "message": message}})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def decode_request(data: bytes) -> Syscall | LogRecord:
    """Parse and validate the envelope of one agent frame.

    Raises ProtocolError with the request id when one could be read, so the
    error reply reaches the right caller. Arguments are validated later, by
    the syscall's own schema.
    """
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(EINVAL, f"message is not valid JSON: {e}") from None
    except RecursionError:  # [[[[... deeper than the decoder's stack: it must not end the event loop
        raise ProtocolError(EINVAL, "message is nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError(EINVAL, f"message must be a JSON object, got {type(obj).__name__}")
    req_id = obj.get("id")
    if not (_is_int(req_id) and 0 <= req_id < MAX_ID):
        req_id = None
    kind = obj.get("kind")
    if kind not in KINDS:
        raise ProtocolError(EINVAL, f"unknown message kind {kind!r} (expected one of {', '.join(KINDS)})", req_id)
    pid = obj.get("pid")
    if not _is_int(pid):
        raise ProtocolError(EINVAL, "message field 'pid' must be an integer", req_id)
    if kind == LOG:
        level, text = obj.get("level", "INFO"), obj.get("text")
        if not isinstance(level, str) or not isinstance(text, str):
            raise ProtocolError(EINVAL, "log message needs string 'level' and 'text'")
        return LogRecord(pid, level[:16], text)
    if req_id is None:
        raise ProtocolError(EINVAL, "syscall field 'id' must be a non-negative integer")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(EINVAL, "syscall field 'name' must be a non-empty string", req_id)
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError(EINVAL, "syscall field 'args' must be a JSON object", req_id)
    return Syscall(req_id, pid, name[:64], args)


def decode_reply(data: bytes) -> dict:
    obj = json.loads(data)
    if not isinstance(obj, dict) or obj.get("kind") != REPLY:
        raise ProtocolError(EINVAL, f"not a reply: {data[:80]!r}")
    return obj
