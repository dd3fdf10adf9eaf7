"""McpHub: the MCP servers of one kernel, driven by the official SDK on a thread of their own.

Threads: the "mcp" thread runs one asyncio loop (anyio) with a task per server (``supervise``)
and a task per call (``_call``). The kernel's loop thread calls only ``start``, ``submit``,
``cancel``, ``status`` and ``stop``; they hand work over with ``call_soon_threadsafe`` and
never wait on a server (``stop`` joins the thread, bounded, once the kernel is stopping).
Everything the hub reports goes back through ``post`` (the kernel's ``post``): tool listings
(``on_tools(server, tools | None)``, None withdraws them) and each call's answer (``done``).

A server's states: starting -> up -> restarting -> up ... -> failed (restart intensity spent:
its tools are withdrawn) or stopped. A call waits for ``up`` within its own deadline; a call in
flight when its server's connection ends gets EIO at once, and the server is restarted after a
backoff (config.RESTART_*). After a call times out, the server must answer a ping within
PING_TIMEOUT or it is treated as hung and restarted.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import threading
import time
from typing import Callable

import anyio
import mcp_types
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from kernel import messages
from kernel.syscall import SyscallFailure
from kernel.tools.mcp import config as C
from kernel.tools.mcp.tool import McpTool, clean_text
from kernel.tools.mcp.transport import StdioTransport, _killpg
from tools.base import ToolError

log = logging.getLogger("aios.tools.mcp")
CLIENT_INFO = mcp_types.Implementation(name="aios", version="1.0")


class _Down(Exception):
    pass


class _Conn:
    """One live connection: its transport, the SDK session, the calls in flight on it."""

    def __init__(self, transport: StdioTransport):
        self.transport = transport
        self.session = None
        self.inflight: set[anyio.CancelScope] = set()
        self.pinging = False


class _Server:
    def __init__(self, hub: "McpHub", spec: C.ServerSpec):
        self.hub, self.spec, self.name = hub, spec, spec.name
        self.state = "starting"
        self.conn: _Conn | None = None
        self.pid: int | None = None
        self.tools = 0
        self.restarts = 0
        self.last_error = ""
        self.crashes: collections.deque[float] = collections.deque()
        self._changed = None  # anyio.Event, replaced on every state change (mcp thread)
        self._announced = False  # the kernel was told that the first start is over

    def _announce(self) -> None:
        if not self._announced:
            self._announced = True
            self.hub.started(self.name)

    def _set_state(self, state: str) -> None:
        self.state = state
        ev, self._changed = self._changed, anyio.Event()
        ev.set()

    async def ready(self) -> _Conn:
        if self._changed is None:
            self._changed = anyio.Event()
        while True:
            if self.state == "up" and self.conn is not None and not self.conn.transport.ended.is_set():
                return self.conn  # (an ended connection is still "up" until supervise notices: wait)
            if self.state in ("failed", "stopped"):
                raise _Down(f"MCP server {self.name} is {self.state}" + (f": {self.last_error}" if self.last_error else ""))
            await self._changed.wait()

    async def supervise(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        while not self.hub.stopping:
            reason = await self._connect_once()
            if self.hub.stopping:
                break
            self._announce()
            self.last_error = reason
            now = time.monotonic()
            self.crashes.append(now)
            while self.crashes and self.crashes[0] < now - C.RESTART_PERIOD_S:
                self.crashes.popleft()
            if len(self.crashes) > C.RESTART_MAX:
                log.error("mcp: server %s stays down: its connection ended %d times in %gs (last: %s)",
                          self.name, len(self.crashes), C.RESTART_PERIOD_S, reason)
                self.hub.publish(self.name, None)
                self.tools = 0
                self._set_state("failed")
                return
            delay = C.RESTART_BACKOFF_S[min(len(self.crashes), len(C.RESTART_BACKOFF_S)) - 1]
            log.warning("mcp: server %s: %s; restarting in %gs", self.name, reason, delay)
            self._set_state("restarting")
            await anyio.sleep(delay)
            self.restarts += 1
        self._set_state("stopped")

    async def _connect_once(self) -> str:
        """Run one connection until it ends; returns why it ended."""
        transport = StdioTransport(self.spec, self.hub.stderr_path(self.name))
        conn = _Conn(transport)
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + self.spec.start_timeout_s) as starting:
                async with Client(transport, mode="auto", cache=None, client_info=CLIENT_INFO) as client:
                    self.pid = transport.pid
                    tools = self._tools(await self._list(client.session))
                    starting.deadline = math.inf  # started: the connection lives until it ends
                    conn.session = client.session
                    self.conn, self.tools = conn, len(tools)
                    self.hub.publish(self.name, tools)
                    self._announce()
                    log.info("mcp: server %s up (pid %s): %d tools", self.name, transport.pid, len(tools))
                    self._set_state("up")
                    await transport.ended.wait()
                    return transport.reason
            return transport.reason if transport.ended.is_set() and transport.reason != "closed by the kernel" \
                else f"did not start (handshake and tool listing) within {self.spec.start_timeout_s:g}s"
        except Exception as e:  # spawn failure, handshake refused, a malformed listing, a broken pipe...
            with anyio.move_on_after(1.0):
                await transport.ended.wait()
            if transport.ended.is_set() and transport.reason != "closed by the kernel":
                return transport.reason
            while isinstance(e, BaseExceptionGroup) and e.exceptions:
                e = e.exceptions[0]
            return f"{type(e).__name__}: {clean_text(str(e), 300)}"
        finally:
            if self.conn is conn:
                self.conn = None
            for scope in list(conn.inflight):
                scope.cancel()

    async def _list(self, session) -> list:
        out, cursor = [], None
        for _ in range(C.MAX_LIST_PAGES):
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            out.extend(page.tools)
            cursor = page.next_cursor
            if not cursor or len(out) >= C.MAX_TOOLS:
                break
        return out

    def _tools(self, listing: list) -> list[McpTool]:
        tools: dict[str, McpTool] = {}
        for remote in listing:
            if len(tools) >= C.MAX_TOOLS:
                log.warning("mcp: server %s lists more than %d tools; the rest are ignored", self.name, C.MAX_TOOLS)
                break
            try:
                tool = McpTool(self.spec, remote, self.hub.max_timeout)
            except ValueError as e:
                log.warning("mcp: server %s: tool %.80r not exposed: %s", self.name, getattr(remote, "name", "?"), e)
                continue
            if tool.name in tools:
                log.warning("mcp: server %s lists %s twice; the first is kept", self.name, tool.remote_name)
                continue
            tools[tool.name] = tool
        return list(tools.values())

    async def check_alive(self, conn: _Conn) -> None:
        if conn.pinging or conn.session is None:
            return
        conn.pinging = True
        with anyio.move_on_after(C.PING_TIMEOUT):
            try:
                await conn.session.send_ping()
                conn.pinging = False
                return
            except MCPError as e:  # any answer, even "method not found", shows that it is alive
                if getattr(getattr(e, "error", None), "code", None) != mcp_types.CONNECTION_CLOSED:
                    conn.pinging = False
                    return
            except Exception:
                pass
        conn.transport.end(f"did not answer a ping within {C.PING_TIMEOUT:g}s after a call timed out")


class McpHub:
    def __init__(self, specs: list[C.ServerSpec], log_dir: str, max_timeout: float):
        from kernel.logs import _stamp

        self.servers = {s.name: _Server(self, s) for s in specs}
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
            self._thread.join(C.STOP_GRACE + 6)
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
                    raise _Down(f"MCP server {server.name} ended during the call ({conn.transport.reason}); "
                                "it is being restarted")
                result = tool.convert(raw)
            if scope.cancelled_caught:
                if job.seq in self._cancelled:
                    error = SyscallFailure(messages.ECANCELED, "cancelled")
                else:
                    error = SyscallFailure(messages.ETIMEDOUT, f"tool {tool.name} timed out after {job.timeout:g}s")
                    if conn is not None and conn.session is not None:
                        self._tg.start_soon(server.check_alive, conn)
        except _Down as e:
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
