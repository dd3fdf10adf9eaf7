"""The agent SDK: the client side of AIOS system calls.

An agent process reaches the LLM and every shared resource only through
these calls; each one is a JSON frame to the kernel and a blocking wait for
its reply. Usage inside an agent::

    from agent_apps.sdk import fs, llm, log, mem, proc
    answer = llm.chat([{"role": "user", "content": "2+2?"}], max_new_tokens=32)
    log("got", answer)
    proc.info()          # this process's table entry
    mem.chat("And 3+3?")  # a conversational step kept in working memory
    fs.write("notes", answer)  # a persistent, versioned record of this agent app

The runtime connects the SDK before ``run(task)`` is called; outside an
agent process every call raises NotConnected.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from kernel.protocol import messages
from kernel.protocol.channel import ChannelClosed, read_frame, write_frame
from kernel.protocol.messages import ECONNRESET, EIO, CodedError


class SyscallError(CodedError):
    """The kernel answered a syscall with an error; ``str(e)`` is ``CODE: message``."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class KernelGone(SyscallError):
    def __init__(self):
        super().__init__(ECONNRESET, "the kernel is gone")


class NotConnected(RuntimeError):
    pass


class Failed(Exception):
    """Raise from ``run(task)`` when the agent has no answer: it ends ``failed`` with ``str(e)`` as the
    reason (one line, no traceback), e.g. ``raise Failed("the calculator failed: EINVAL ...")``."""


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
        raise SyscallError(err.get("code", EIO), err.get("message", "unknown error"))

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


def syscall(name: str, /, **args: Any) -> Any:
    """Raw syscall: ``syscall("proc.info")``. Prefer the typed helpers below."""
    if _conn is None:
        raise NotConnected("not running inside an AIOS agent process")
    return _conn.call(name, args)


def getpid() -> int:
    if _conn is None:
        raise NotConnected("not running inside an AIOS agent process")
    return _conn.pid


def function_tools(specs: list[dict]) -> list[dict]:
    """``tools.list()`` entries -> llm.chat ``tools`` (OpenAI function definitions)."""
    return [{"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                              "parameters": t.get("schema", {"type": "object"})}}
            for t in specs]


class _LLM:
    def chat(self, messages_: list[dict], max_new_tokens: int | None = None, temperature: float = 0.0,
             top_p: float = 1.0, stop: list[str] | None = None, seed: int | None = None,
             response_format: dict | None = None) -> str:
        """Ask the kernel's LLM; returns the reply text (greedy unless temperature > 0).

        ``response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {...}}}``
        makes the reply JSON that follows the schema (``{"type": "json_object"}``: any object).
        """
        return self.chat_full(messages_, max_new_tokens, temperature, top_p, stop, seed,
                              response_format=response_format)["text"]

    def chat_full(self, messages_: list[dict], max_new_tokens: int | None = None, temperature: float = 0.0,
                  top_p: float = 1.0, stop: list[str] | None = None, seed: int | None = None,
                  response_format: dict | None = None, tools: list[dict] | None = None,
                  tool_choice: str | dict | None = None) -> dict:
        """Like chat, but returns the whole record: text, tokens_in/out, finish_reason, timing,
        and ``tool_calls`` ([{"name", "arguments"}]) when ``tools`` were given."""
        args: dict[str, Any] = {"messages": messages_, "temperature": temperature, "top_p": top_p}
        if max_new_tokens is not None:
            args["max_new_tokens"] = max_new_tokens
        if stop:
            args["stop"] = list(stop)
        if seed is not None:
            args["seed"] = seed
        if response_format is not None:
            args["response_format"] = response_format
        if tools:
            args["tools"] = tools
        if tool_choice is not None:
            args["tool_choice"] = tool_choice
        return syscall("llm.chat", **args)

    def json(self, messages_: list[dict], schema: dict, max_new_tokens: int | None = None, **kw: Any) -> Any:
        """A reply constrained to ``schema``, parsed (json.loads); raises ValueError if cut short."""
        import json

        fmt = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
        return json.loads(self.chat(messages_, max_new_tokens, response_format=fmt, **kw))

    def call_tool(self, messages_: list[dict], tools: list[dict], tool_choice: str | dict = "required",
                  max_new_tokens: int | None = None, **kw: Any) -> dict:
        """Ask for a tool call: returns the llm.chat record; ``record["tool_calls"]`` holds the calls.

        ``tools`` are OpenAI function definitions (``function_tools(tools.list())`` builds them);
        with ``tool_choice="required"`` the kernel makes the reply name one of them, with
        arguments that follow its schema.
        """
        return self.chat_full(messages_, max_new_tokens, tools=tools, tool_choice=tool_choice, **kw)


class _Proc:
    def info(self, pid: int | None = None) -> dict:
        return syscall("proc.info", **({} if pid is None else {"pid": pid}))

    def spawn(self, agent: str, task: str, priority: int = 0) -> int:
        return syscall("proc.spawn", agent=agent, task=task, priority=priority)["pid"]

    def wait(self, pid: int, timeout: float | None = None) -> dict:
        return syscall("proc.wait", pid=pid, **({} if timeout is None else {"timeout": timeout}))

    def exit(self, result: Any = None, status: str = "ok") -> None:
        syscall("proc.exit", result=result, status=status)


class _Mem:
    """Working memory of this process (kernel memory manager; evicted blocks come back on access)."""

    def add(self, content: str, role: str | None = None, kind: str | None = None) -> int:
        """Add a chat turn (with ``role``) or a note; returns the block id."""
        args: dict[str, Any] = {"content": content}
        if role is not None:
            args["role"] = role
        if kind is not None:
            args["kind"] = kind
        return syscall("mem.add", **args)["id"]

    def note(self, text: str) -> int:
        return self.add(text, kind="note")

    def get(self, ids: list[int] | None = None, last: int | None = None, kind: str | None = None,
            role: str | None = None, pid: int | None = None) -> list[dict]:
        """Blocks ({id, kind, role, content, size, created, swapped_in}), oldest first."""
        args = {k: v for k, v in (("ids", ids), ("last", last), ("kind", kind), ("role", role), ("pid", pid))
                if v is not None}
        return syscall("mem.get", **args)

    def history(self, last: int | None = None) -> list[dict]:
        """The conversation so far as llm.chat messages: [{"role", "content"}, ...]."""
        return [{"role": b["role"], "content": b["content"]} for b in self.get(last=last, kind="turn")]

    def search(self, query: str, k: int = 5, kind: str | None = None, pid: int | None = None,
               mode: str = "auto") -> list[dict]:
        """Best matches first, each a block plus score, bm25 and cosine (mode auto|bm25|semantic|hybrid)."""
        args = {k_: v for k_, v in (("kind", kind), ("pid", pid)) if v is not None}
        return syscall("mem.search", query=query, k=k, mode=mode, **args)["results"]

    def clear(self, kind: str | None = None) -> int:
        return syscall("mem.clear", **({} if kind is None else {"kind": kind}))["cleared"]

    def stats(self) -> dict:
        return syscall("mem.stats")

    def chat(self, content: str, max_new_tokens: int | None = None, system: str | None = None, **kw: Any) -> str:
        """One conversational step kept in memory: add the user turn, ask the LLM with the
        whole history, add and return the reply. ``system`` is added once, before the first turn."""
        if system is not None and not self.get(last=1, kind="turn"):
            self.add(system, role="system")
        self.add(content, role="user")
        reply = llm.chat(self.history(), max_new_tokens=max_new_tokens, **kw)
        self.add(reply, role="assistant")
        return reply


class _Fs:
    """Persistent records of this agent app (kernel storage manager; versioned, survive restarts)."""

    def write(self, name: str, data: str | bytes) -> dict:
        """Store the next version; bytes travel as base64. Returns {name, version, size, sha256, ...}."""
        if isinstance(data, (bytes, bytearray)):
            import base64
            return syscall("fs.write", name=name, data=base64.b64encode(data).decode("ascii"), encoding="base64")
        return syscall("fs.write", name=name, data=data)

    def read_record(self, name: str, version: int | None = None, owner: str | None = None,
                    binary: bool = False) -> dict:
        args = {k: v for k, v in (("version", version), ("owner", owner)) if v is not None}
        rec = syscall("fs.read", name=name, encoding="base64" if binary else "utf-8", **args)
        if binary:
            import base64
            rec["data"] = base64.b64decode(rec["data"])
        return rec

    def read(self, name: str, version: int | None = None, owner: str | None = None,
             binary: bool = False) -> str | bytes:
        """The latest version's data (or ``version``'s); ``owner``: another app's, within a shared group."""
        return self.read_record(name, version, owner, binary)["data"]

    def list(self, prefix: str = "", owner: str | None = None) -> list[dict]:
        return syscall("fs.list", prefix=prefix, **({} if owner is None else {"owner": owner}))

    def versions(self, name: str, owner: str | None = None) -> list[dict]:
        return syscall("fs.versions", name=name, **({} if owner is None else {"owner": owner}))

    def rollback(self, name: str, version: int) -> dict:
        return syscall("fs.rollback", name=name, version=version)

    def delete(self, name: str) -> dict:
        return syscall("fs.delete", name=name)


class _Tools:
    """The kernel's tools (tools/): ``tools.call("calculator", expression="2+2")["value"]``."""

    def list(self) -> list[dict]:
        """Every installed tool: name, description, side_effect, parallel, timeout_s, schema, allowed."""
        return syscall("tool.list")

    def call(self, name: str, timeout: float | None = None, **args: Any) -> Any:
        """Run a tool; raises SyscallError (EINVAL bad args, EPERM not allowed/confirmed, ETIMEDOUT...)."""
        return syscall("tool.call", name=name, args=args, **({} if timeout is None else {"timeout": timeout}))


class _Access:
    def info(self) -> dict:
        """This process's group, its members, quotas, usage, allowed tools and workspace path."""
        return syscall("access.info")

    def setgroup(self, group: str) -> dict:
        """Move this agent app into ``group`` (asks the user / the policy: changing privileges)."""
        return syscall("access.setgroup", group=group)


llm = _LLM()
proc = _Proc()
tools = _Tools()
access = _Access()
mem = _Mem()
fs = _Fs()


def log(*parts: Any, level: str = "INFO") -> None:
    """Log a line from the agent: to its log file, or above the shell prompt."""
    print(*parts, flush=True)
