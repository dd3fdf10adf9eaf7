"""One MCP server as the hub runs it: its connection, its state, its restarts (mcp thread only).

States: starting -> up -> restarting -> up ... -> failed (restart intensity spent: its tools are
withdrawn) or stopped. ``supervise`` runs one connection at a time (``_connect_once``: spawn
through StdioTransport, the SDK's Client handshake and listing within ``start_timeout_s``, then
serve until the transport ends) and restarts it after a backoff (config.RESTART_*). ``ready``
is what a call waits on, within its own deadline. ``check_alive`` pings a server after a call
timed out: no answer within PING_TIMEOUT ends the connection (a hang), which restarts it.
"""

from __future__ import annotations

import collections
import logging
import math
import time

import anyio
import mcp_types
from mcp import Client
from mcp.shared.exceptions import MCPError

from kernel import param
from kernel.tools.mcp import config as C
from kernel.tools.mcp.tool import McpTool, clean_text
from kernel.tools.mcp.transport import StdioTransport

log = logging.getLogger("aios.tools.mcp")
CLIENT_INFO = mcp_types.Implementation(name="aios", version="1.0")


class Down(Exception):
    pass


class Conn:
    """One live connection: its transport, the SDK session, the calls in flight on it."""

    def __init__(self, transport: StdioTransport):
        self.transport = transport
        self.session = None
        self.inflight: set[anyio.CancelScope] = set()
        self.pinging = False


class Server:
    def __init__(self, hub, spec: C.ServerSpec):
        self.hub, self.spec, self.name = hub, spec, spec.name
        self.state = "starting"
        self.conn: Conn | None = None
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

    async def ready(self) -> Conn:
        if self._changed is None:
            self._changed = anyio.Event()
        while True:
            if self.state == "up" and self.conn is not None and not self.conn.transport.ended.is_set():
                return self.conn  # (an ended connection is still "up" until supervise notices: wait)
            if self.state in ("failed", "stopped"):
                raise Down(f"MCP server {self.name} is {self.state}" + (f": {self.last_error}" if self.last_error else ""))
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
            while self.crashes and self.crashes[0] < now - param.MCP_RESTART_PERIOD_S:
                self.crashes.popleft()
            if len(self.crashes) > param.MCP_RESTART_MAX:
                log.error("mcp: server %s stays down: its connection ended %d times in %gs (last: %s)",
                          self.name, len(self.crashes), param.MCP_RESTART_PERIOD_S, reason)
                self.hub.publish(self.name, None)
                self.tools = 0
                self._set_state("failed")
                return
            delay = param.MCP_RESTART_BACKOFF_S[min(len(self.crashes), len(param.MCP_RESTART_BACKOFF_S)) - 1]
            log.warning("mcp: server %s: %s; restarting in %gs", self.name, reason, delay)
            self._set_state("restarting")
            await anyio.sleep(delay)
            self.restarts += 1
        self._set_state("stopped")

    async def _connect_once(self) -> str:
        """Run one connection until it ends; returns why it ended."""
        transport = StdioTransport(self.spec, self.hub.stderr_path(self.name))
        conn = Conn(transport)
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
        for _ in range(param.MCP_MAX_LIST_PAGES):
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            out.extend(page.tools)
            cursor = page.next_cursor
            if not cursor or len(out) >= param.MCP_MAX_TOOLS:
                break
        return out

    def _tools(self, listing: list) -> list[McpTool]:
        tools: dict[str, McpTool] = {}
        for remote in listing:
            if len(tools) >= param.MCP_MAX_TOOLS:
                log.warning("mcp: server %s lists more than %d tools; the rest are ignored", self.name, param.MCP_MAX_TOOLS)
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

    async def check_alive(self, conn: Conn) -> None:
        if conn.pinging or conn.session is None:
            return
        conn.pinging = True
        with anyio.move_on_after(param.MCP_PING_TIMEOUT):
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
        conn.transport.end(f"did not answer a ping within {param.MCP_PING_TIMEOUT:g}s after a call timed out")
