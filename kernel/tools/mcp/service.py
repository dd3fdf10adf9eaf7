"""McpService: the kernel-loop side of MCP tools, owned by the ToolManager.

Keeps the manager's registry in step with each server's listing (``mcp__<server>__<tool>``,
registered when the server is up, replaced after a restart, withdrawn when it stays down), and
holds ``tool.list`` and calls of MCP tools made while a server's first start is still under way
(servers start with the kernel, in the background: the kernel serves at once, and an agent that
asks early waits for the listing instead of missing it; the wait is bounded by START_TIMEOUT).

Threads: every method runs on the kernel's loop thread; the hub reports through ``kernel.post``.
"""

from __future__ import annotations

import logging
from typing import Callable

from kernel import param
from kernel.protocol import messages
from kernel.syscall import SyscallFailure
from kernel.tools.mcp import config as C
from kernel.tools.mcp.tool import server_of

log = logging.getLogger("aios.tools.mcp")


class McpService:
    def __init__(self, config, manager):
        from kernel.tools.mcp.hub import McpHub  # the SDK: imported only when a config is given

        specs = C.load(config.tools.mcp_config)
        self.hub = McpHub(specs, config.logs.dir, float(config.tools.timeout_s))
        self.manager = manager
        self.kernel = None
        self.unstarted = {s.name for s in specs}
        self.waiting: list[Callable[[], None]] = []
        self.names: dict[str, list[str]] = {}  # server -> its tools' names in the registry

    def start(self, kernel) -> None:
        self.kernel = kernel
        self.hub.start(kernel.post, self._on_tools, self._on_started)
        kernel.call_later(max([param.MCP_START_TIMEOUT] + [s.spec.start_timeout_s for s in self.hub.servers.values()]) + 5,
                          self._release)  # a bound even if a report were lost
        log.info("mcp: starting %d servers (%s)", len(self.hub.servers), ", ".join(self.hub.servers) or "none")

    def stop(self) -> None:
        self.hub.stop()
        self._release()

    def when_started(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` now, or once every server's first start is over (up or not)."""
        if self.unstarted:
            self.waiting.append(fn)
        else:
            fn()

    def down_error(self, name: str) -> SyscallFailure | None:
        """For a tool name of a configured server that is not registered: why (EIO), else None."""
        server = server_of(name)
        s = self.hub.servers.get(server) if server else None
        if s is None:
            return None
        if s.state == "up":
            return SyscallFailure(messages.ENOENT, f"MCP server {server} has no tool {name[len(server) + 7:]!r}")
        why = f": {s.last_error}" if s.last_error else ""
        return SyscallFailure(messages.EIO, f"MCP server {server} is {s.state}{why}")

    def submit(self, job, finished) -> None:
        def done(result, error):
            timed_out = error is not None and error.code == messages.ETIMEDOUT
            self.kernel.post(lambda: finished(job, result, error, timed_out and not job.answered))
        self.hub.submit(job, done)

    def cancel(self, job) -> None:
        self.hub.cancel(job.seq)

    def status(self) -> list[dict]:
        return self.hub.status()

    # -- reports from the hub (posted onto the loop) ----------------------------------------
    def _on_tools(self, server: str, tools: list | None) -> None:
        for name in self.names.pop(server, []):
            self.manager.unregister(name)
        for tool in tools or []:
            self.manager.register(tool, f"mcp:{server}", tool.validator())
        self.names[server] = [t.name for t in tools or []]

    def _on_started(self, server: str) -> None:
        self.unstarted.discard(server)
        if not self.unstarted:
            self._release()

    def _release(self) -> None:
        self.unstarted.clear()
        waiting, self.waiting = self.waiting, []
        for fn in waiting:
            try:
                fn()
            except Exception:
                log.exception("mcp: a call held for the servers' start failed")
