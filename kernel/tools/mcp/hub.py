"""McpHub: the MCP servers of one kernel, driven by the official SDK on a thread of their own.

Threads: the "mcp" thread runs one asyncio loop (anyio) with a task per server (``supervise``)
and a task per call (``_call``). The kernel's loop thread calls only ``start``, ``submit``,
``cancel``, ``status`` and ``stop``; they hand work over with ``call_soon_threadsafe`` and
never wait on a server (``stop`` joins the thread, bounded, once the kernel is stopping).
Everything the hub reports goes back through ``post`` (the kernel's ``post``): tool listings
(``on_tools(server, tools | None)``, None withdraws them) and each call's answer (``done``).

Each server's connection, states and restarts are in server.py. A call waits for its server to
be up within its own deadline; a call in flight when the connection ends gets EIO at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Callable

import anyio
import mcp_types
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from kernel import param
from kernel.protocol import messages
from kernel.syscall import SyscallFailure
from kernel.tools.mcp import config as C
from kernel.tools.mcp.server import Down, Server
from kernel.tools.mcp.tool import clean_text
from kernel.tools.mcp.transport import _killpg
from tools.base import ToolError

log = logging.getLogger("aios.tools.mcp")


class McpHub:
    def __init__(self, specs: list[C.ServerSpec], log_dir: str, max_timeout: float):
        from kernel.logs import _stamp

        self.servers = {s.name: Server(self, s) for s in specs}
        self.log_dir, self.stamp, self.max_timeout = log_dir, _stamp(), max_timeout
        self.stopping = False
        self.post: Callable[[Callable[[], None]], None] | None = None
        self.on_tools: Callable[[str, list | None], None] | None = None
        self.on_started: Callable[[str], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tg = None
        self._stop_ev = None
        self._thread: threading.Thread | None = None
        self._scopes: dict[int, anyio.CancelScope] = {}  # job seq -> its scope (mcp thread)
        self._cancelled: set[int] = set()

    # -- kernel loop thread -------------------------------------------------------------
    def start(self, post, on_tools, on_started) -> None:
        self.post, self.on_tools, self.on_started = post, on_tools, on_started
        os.makedirs(self.log_dir, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="mcp", daemon=True)
        self._thread.start()

    def submit(self, job, done: Callable[[object, SyscallFailure | None], None]) -> None:
        """Run ``job`` (an McpTool call); ``done(result, error)`` is called once, on the mcp thread."""
        try:
            self._loop.call_soon_threadsafe(self._spawn_call, job, done)
        except (AttributeError, RuntimeError):  # no loop, or it has ended
            done(None, SyscallFailure(messages.EIO, "the MCP client is not running"))

    def cancel(self, seq: int) -> None:
        try:
            self._loop.call_soon_threadsafe(self._cancel, seq)
        except (AttributeError, RuntimeError):
            pass

    def status(self) -> list[dict]:
        return [{"server": s.name, "state": s.state, "pid": s.pid, "tools": s.tools, "restarts": s.restarts,
                 "last_error": s.last_error} for s in self.servers.values()]

    def stop(self) -> None:
        """Stop every server (stdin closed, then its group killed) and the thread; bounded."""
        self.stopping = True
        try:
            self._loop.call_soon_threadsafe(lambda: self._stop_ev and self._stop_ev.set())
        except (AttributeError, RuntimeError):
            pass
        if self._thread is not None:
            self._thread.join(param.MCP_STOP_GRACE + 6)
        for s in self.servers.values():  # a fallback that cannot hurt: each group is ours alone
            if s.pid:
                _killpg(s.pid)

    # -- mcp thread ---------------------------------------------------------------------
    def stderr_path(self, server: str) -> str:
        return os.path.join(self.log_dir, f"mcp-{server}-{self.stamp}.log")

    def publish(self, server: str, tools: list | None) -> None:
        self.post(lambda: self.on_tools(server, tools))

    def started(self, server: str) -> None:
        self.post(lambda: self.on_started(server))

    def _run(self) -> None:
        try:
            anyio.run(self._main)
        except BaseException:
            log.exception("mcp: the MCP client thread failed")
        for s in self.servers.values():
            if s.state not in ("failed", "stopped"):
                s.state = "stopped"
                self.started(s.name)

    async def _main(self) -> None:
        self._stop_ev = anyio.Event()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._inbox: asyncio.Queue = asyncio.Queue()  # (job, done) from the kernel's loop thread
            tg.start_soon(self._dispatch)
            self._loop = asyncio.get_running_loop()
            for s in self.servers.values():
                tg.start_soon(s.supervise)
            await self._stop_ev.wait()
            tg.cancel_scope.cancel()
        self._tg = None

    def _spawn_call(self, job, done) -> None:
        """A loop callback (not a task): hand the call to ``_dispatch``, which starts its task."""
        if self._tg is None or self.stopping:
            done(None, SyscallFailure(messages.EIO, "the MCP client is stopping"))
        else:
            self._inbox.put_nowait((job, done))

    async def _dispatch(self) -> None:
        while True:
            job, done = await self._inbox.get()
            try:
                self._tg.start_soon(self._call, job, done)
            except Exception as e:
                done(None, SyscallFailure(messages.EIO, f"the MCP client could not start the call: {e}"))

    def _cancel(self, seq: int) -> None:
        scope = self._scopes.get(seq)
        if scope is not None:
            self._cancelled.add(seq)
            scope.cancel()

    async def _call(self, job, done) -> None:
        tool, server = job.tool, self.servers[job.tool.server]
        result, error, conn = None, None, None
        scope = anyio.CancelScope(deadline=anyio.current_time() + max(0.0, job.ctx.remaining()))
        self._scopes[job.seq] = scope
        try:
            with scope:
                conn = await server.ready()
                with anyio.CancelScope() as inflight:
                    conn.inflight.add(inflight)
                    try:
                        raw = await conn.session.call_tool(tool.remote_name, job.args)
                    finally:
                        conn.inflight.discard(inflight)
                if inflight.cancelled_caught:
                    raise Down(f"MCP server {server.name} ended during the call ({conn.transport.reason}); "
                                "it is being restarted")
                result = tool.convert(raw)
            if scope.cancelled_caught:
                if job.seq in self._cancelled:
                    error = SyscallFailure(messages.ECANCELED, "cancelled")
                else:
                    error = SyscallFailure(messages.ETIMEDOUT, f"tool {tool.name} timed out after {job.timeout:g}s")
                    if conn is not None and conn.session is not None:
                        self._tg.start_soon(server.check_alive, conn)
        except Down as e:
            error = SyscallFailure(messages.EIO, str(e))
        except ToolError as e:
            error = SyscallFailure(e.code, e.message)
        except MCPError as e:
            if conn is not None and getattr(getattr(e, "error", None), "code", None) == mcp_types.CONNECTION_CLOSED:
                with anyio.move_on_after(2.0):  # the transport learns the exit status a little later
                    await conn.transport.ended.wait()
            error = _mcp_error(tool.name, server.name, e, conn)
        except ValidationError as e:
            error = SyscallFailure(messages.EIO, f"{tool.name}: malformed result from the server: "
                                                 f"{clean_text(str(e), 300)}")
        except Exception as e:  # output-schema mismatch (RuntimeError), anything else the SDK raises
            error = SyscallFailure(messages.EIO, f"{tool.name}: {type(e).__name__}: {clean_text(str(e), 300)}")
        finally:
            self._scopes.pop(job.seq, None)
            self._cancelled.discard(job.seq)
        done(result, error)


def _mcp_error(tool: str, server: str, e: MCPError, conn) -> SyscallFailure:
    code = getattr(getattr(e, "error", None), "code", None)
    text = clean_text(str(e), 500)
    if code == mcp_types.CONNECTION_CLOSED:
        why = conn.transport.reason if conn is not None and conn.transport.reason else text
        return SyscallFailure(messages.EIO, f"MCP server {server} ended during the call ({why}); it is being restarted")
    if code == mcp_types.INVALID_PARAMS:
        return SyscallFailure(messages.EINVAL, f"{tool}: the server refused the arguments: {text}")
    if code == mcp_types.METHOD_NOT_FOUND:
        return SyscallFailure(messages.ENOSYS, f"{tool}: {text}")
    return SyscallFailure(messages.EIO, f"{tool}: {text}")
