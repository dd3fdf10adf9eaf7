"""The agent SDK: the client side of AIOS system calls.

An agent process reaches the LLM and every shared resource only through
these calls; each one is a JSON frame to the kernel and a blocking wait for
its reply. Usage inside an agent::

    from agent_apps.sdk import llm, log, proc
    answer = llm.chat([{"role": "user", "content": "2+2?"}], max_new_tokens=32)
    log("got", answer)
    proc.info()          # this process's table entry

The runtime connects the SDK before ``run(task)`` is called; outside an
agent process every call raises NotConnected.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from kernel import messages
from kernel.channel import ChannelClosed, read_frame, write_frame


class SyscallError(Exception):
    """The kernel answered a syscall with an error."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class KernelGone(SyscallError):
    def __init__(self):
        super().__init__("ECONNRESET", "the kernel is gone")


class NotConnected(RuntimeError):
    pass


class _Connection:
    """One agent's channel pair. Calls are serialised: one outstanding syscall."""

    def __init__(self, pid: int, rx_fd: int, tx_fd: int):
        self.pid = pid
        self.rx_fd = rx_fd  # kernel -> agent
        self.tx_fd = tx_fd  # agent -> kernel
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def call(self, name: str, args: dict) -> Any:
        with self._lock:
            req_id = next(self._ids)
            try:
                write_frame(self.tx_fd, messages.syscall(req_id, self.pid, name, args))
                while True:
                    reply = messages.decode_reply(read_frame(self.rx_fd))
                    if reply.get("id") in (req_id, None):
                        break  # None: an envelope error, which can only be ours
            except (ChannelClosed, OSError):
                raise KernelGone() from None
        if reply.get("ok"):
            return reply.get("result")
        err = reply.get("error") or {}
        raise SyscallError(err.get("code", "EIO"), err.get("message", "unknown error"))

    def send_log(self, level: str, text: str) -> None:
        with self._lock:
            try:
                write_frame(self.tx_fd, messages.log(self.pid, level, text))
            except (ChannelClosed, OSError):
                pass  # nowhere to log to; the kernel is gone


_conn: _Connection | None = None


def connect(pid: int, rx_fd: int, tx_fd: int) -> None:
    global _conn
    _conn = _Connection(pid, rx_fd, tx_fd)


def syscall(name: str, **args: Any) -> Any:
    """Raw syscall: ``syscall("proc.info")``. Prefer the typed helpers below."""
    if _conn is None:
        raise NotConnected("not running inside an AIOS agent process")
    return _conn.call(name, args)


def getpid() -> int:
    if _conn is None:
        raise NotConnected("not running inside an AIOS agent process")
    return _conn.pid


class _LLM:
    def chat(self, messages_: list[dict], max_new_tokens: int | None = None, temperature: float = 0.0,
             top_p: float = 1.0, stop: list[str] | None = None, seed: int | None = None) -> str:
        """Ask the kernel's LLM; returns the reply text (greedy unless temperature > 0)."""
        return self.chat_full(messages_, max_new_tokens, temperature, top_p, stop, seed)["text"]

    def chat_full(self, messages_: list[dict], max_new_tokens: int | None = None, temperature: float = 0.0,
                  top_p: float = 1.0, stop: list[str] | None = None, seed: int | None = None) -> dict:
        """Like chat, but returns the whole record: text, tokens_in/out, finish_reason, timing."""
        args: dict[str, Any] = {"messages": messages_, "temperature": temperature, "top_p": top_p}
        if max_new_tokens is not None:
            args["max_new_tokens"] = max_new_tokens
        if stop:
            args["stop"] = list(stop)
        if seed is not None:
            args["seed"] = seed
        return syscall("llm.chat", **args)


class _Proc:
    def info(self, pid: int | None = None) -> dict:
        return syscall("proc.info", **({} if pid is None else {"pid": pid}))

    def spawn(self, agent: str, task: str, priority: int = 0) -> int:
        return syscall("proc.spawn", agent=agent, task=task, priority=priority)["pid"]

    def wait(self, pid: int, timeout: float | None = None) -> dict:
        return syscall("proc.wait", pid=pid, **({} if timeout is None else {"timeout": timeout}))

    def exit(self, result: Any = None, status: str = "ok") -> None:
        syscall("proc.exit", result=result, status=status)


llm = _LLM()
proc = _Proc()


def log(*parts: Any, level: str = "INFO") -> None:
    """Log a line from the agent: to its log file, or above the shell prompt."""
    print(*parts, flush=True)
