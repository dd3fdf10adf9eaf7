"""The --mcp_config file, and every limit the MCP client applies (one list, like xv6's param.h).

Format (Claude Desktop's)::

    {"mcpServers": {"time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"],
                             "env": {"TZ": "UTC"}}}}

Per server, besides ``command`` (required), ``args`` and ``env``, AIOS reads ``cwd``,
``timeout_s`` (default deadline of one call, at most --tool_timeout_s), ``parallel`` (calls at
once, more are queued), ``start_timeout_s`` (spawn, handshake and listing; default
START_TIMEOUT) and ``disabled``. Entries for remote servers (``url``, or a ``type`` other
than stdio) are skipped with a warning: only stdio servers are hosted. A relative ``command``
that contains a slash, and a relative ``cwd``, are taken from the config file's folder; a bare
command name is looked up on PATH.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field

from kernel.param import (
    MCP_CONFIG_MAX_BYTES as CONFIG_MAX_BYTES,
    MCP_DEFAULT_CALL_TIMEOUT as DEFAULT_CALL_TIMEOUT,
    MCP_MAX_SERVERS as MAX_SERVERS,
    MCP_START_TIMEOUT as START_TIMEOUT,
)

log = logging.getLogger("aios.tools.mcp")

SERVER_NAME = re.compile(r"^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$")  # no "__": it separates mcp__<server>__<tool>
SERVER_NAME_MAX = 32
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # remote tool names; others are not exposed


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout_s: float = DEFAULT_CALL_TIMEOUT
    parallel: int = 4
    start_timeout_s: float = START_TIMEOUT


def load(path: str) -> list[ServerSpec]:
    """Parse and check the config file; raises ValueError with a message naming the fault."""
    try:
        with open(path, "rb") as f:
            raw = f.read(CONFIG_MAX_BYTES + 1)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) > CONFIG_MAX_BYTES:
        raise ValueError(f"{path} is larger than {CONFIG_MAX_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise ValueError(f'{path} must be a JSON object with an "mcpServers" object')
    servers = data["mcpServers"]
    if len(servers) > MAX_SERVERS:
        raise ValueError(f"{path} lists {len(servers)} servers; at most {MAX_SERVERS}")
    base = os.path.dirname(os.path.abspath(path))
    specs = []
    for name, entry in servers.items():
        spec = _server(name, entry, base)
        if spec is not None:
            specs.append(spec)
    return specs


def _server(name: str, entry, base: str) -> ServerSpec | None:
    where = f"mcpServers.{name}"
    if not (SERVER_NAME.match(name) and len(name) <= SERVER_NAME_MAX):
        raise ValueError(f"{where}: a server name is letters, digits, '-' and single '_' "
                         f"(no '__'), at most {SERVER_NAME_MAX} characters")
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object")
    if entry.get("disabled") is True:
        return None
    if "url" in entry or entry.get("type", "stdio") != "stdio":
        log.warning("mcp: %s is not a stdio server (url/type): skipped; only stdio servers are hosted", where)
        return None
    command = entry.get("command")
    if not isinstance(command, str) or not command or "\0" in command:
        raise ValueError(f'{where}: "command" must be a non-empty string')
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) and "\0" not in a for a in args):
        raise ValueError(f'{where}: "args" must be a list of strings')
    env = entry.get("env", {}) or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and "=" not in k
                                            and "\0" not in k + v for k, v in env.items()):
        raise ValueError(f'{where}: "env" must map variable names to strings')
    cwd = entry.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ValueError(f'{where}: "cwd" must be a string')
    timeout_s = entry.get("timeout_s", DEFAULT_CALL_TIMEOUT)
    parallel = entry.get("parallel", 4)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 3600:
        raise ValueError(f'{where}: "timeout_s" must be a number of seconds in (0, 3600]')
    start_timeout_s = entry.get("start_timeout_s", START_TIMEOUT)
    if isinstance(start_timeout_s, bool) or not isinstance(start_timeout_s, (int, float)) or not 0 < start_timeout_s <= 600:
        raise ValueError(f'{where}: "start_timeout_s" must be a number of seconds in (0, 600]')
    if isinstance(parallel, bool) or not isinstance(parallel, int) or not 1 <= parallel <= 64:
        raise ValueError(f'{where}: "parallel" must be an integer from 1 to 64')
    if "/" in command and not os.path.isabs(command):
        command = os.path.normpath(os.path.join(base, command))
    if cwd is not None and not os.path.isabs(cwd):
        cwd = os.path.normpath(os.path.join(base, cwd))
    return ServerSpec(name=name, command=command, args=list(args), env=dict(env), cwd=cwd,
                      timeout_s=float(timeout_s), parallel=parallel, start_timeout_s=float(start_timeout_s))
