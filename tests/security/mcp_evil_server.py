"""Hostile MCP servers, one per mode (argv[1]), for tests/security/test_mcp_untrusted.py.

Written with the SDK's low-level Server where it can say the thing, and as a raw JSON-RPC loop
where the SDK would refuse to send it (a malformed listing, bytes that are not JSON-RPC).

  badtools    odd tool names, broken and hostile schemas, control characters; one good tool "ok"
  malformed   badtools plus a tool whose schema is not even an MCP Tool (a raw server)
  manytools   5000 tools
  flood       tool "flood" writes 9 MiB without a newline; "garbage" writes 200 lines that are not
              JSON-RPC; "big" returns 2 MiB of text (under the line cap, over the result cap)
  mute        never answers anything (a hang at start)
  family      tool "spawn" starts a grandchild (sleep) in its group and returns both pids; it
              ignores SIGTERM and the end of stdin, so only SIGKILL of its group ends it
"""

import json
import os
import signal
import subprocess
import sys
import time

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

MODE = sys.argv[1]
OBJ = {"type": "object", "properties": {}}


def tool(name, schema=OBJ, description="a tool", read_only=True):
    return types.Tool(name=name, description=description, input_schema=schema,
                      annotations=types.ToolAnnotations(read_only_hint=read_only))


def badtools():
    deep = {"type": "object"}
    node = deep
    for _ in range(40):
        node["properties"] = {"x": {"type": "object"}}
        node = node["properties"]["x"]
    return [
        tool("ok", {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}},
             description="fine\x1b[31m red \u202eevil\x00"),
        tool("../../etc/passwd"), tool("a b"), tool("semi;colon"), tool("x" * 100), tool("ünï"), tool(""),
        tool("bad_type", {"type": "object", "properties": {"a": {"type": "banana"}}}),
        tool("bad_min", {"type": "object", "properties": {"a": {"type": "string", "minLength": -3}}}),
        tool("deep", deep), tool("huge", {"type": "object", "description": "x" * 100_000}),
        tool("redos", {"type": "object", "patternProperties": {"^(a+)+$": {"type": "string"}}}),
        tool("remote_ref", {"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/x.json"}}}),
        tool("ok"),  # a duplicate
    ]


async def list_tools(ctx, params):
    if MODE == "badtools":
        return types.ListToolsResult(tools=badtools())
    if MODE == "manytools":
        return types.ListToolsResult(tools=[tool(f"t{i}") for i in range(5000)])
    return types.ListToolsResult(tools=[tool(n) for n in ("flood", "garbage", "big", "spawn", "ok")])


async def call_tool(ctx, params):
    name = params.name
    if name == "flood":
        os.write(1, b"x" * (9 << 20))
    elif name == "garbage":
        for _ in range(200):
            os.write(1, b"this is not json-rpc\n")
    elif name == "big":
        return types.CallToolResult(content=[types.TextContent(type="text", text="y" * (2 << 20))])
    elif name == "spawn":
        child = subprocess.Popen(["sleep", "300"])
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"{os.getpid()} {child.pid}")])
    return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])


def raw_badtools() -> None:
    """A raw JSON-RPC server (no SDK: the SDK would refuse to send such a listing)."""
    listed = badtools() if MODE != "flood" else [tool(n) for n in ("flood", "garbage", "big", "ok")]
    tools = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed]
    if MODE == "malformed":  # outside the protocol's types: the SDK rejects the whole listing
        tools.append({"name": "list_schema", "inputSchema": {"type": "object", "properties": []}})
        tools.append({"name": "not_object", "inputSchema": {"type": "string"}})
    for line in sys.stdin:
        msg = json.loads(line)
        if "id" not in msg:
            continue
        method, rid = msg.get("method"), msg["id"]
        if method == "initialize":
            result = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "evil", "version": "1"}}
        elif method == "tools/list":
            result = {"tools": tools}
        elif method == "tools/call":
            name = msg["params"]["name"]
            if name == "flood":
                sys.stdout.write("x" * (9 << 20))
            elif name == "garbage":
                sys.stdout.write("this is not json-rpc\n" * 200)
            text = "y" * (2 << 20) if name == "big" else "ok"
            result = {"content": [{"type": "text", "text": text}]}
        elif method == "ping":
            result = {}
        else:
            reply = {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no"}}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
            continue
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}) + "\n")
        sys.stdout.flush()


async def main():
    server = Server("evil", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (r, w):
        await server.run(r, w, server.create_initialization_options())


if __name__ == "__main__":
    if MODE == "mute":
        time.sleep(3600)
    if MODE in ("badtools", "malformed", "flood"):
        raw_badtools()
        sys.exit(0)
    if MODE == "family":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    anyio.run(main)
    if MODE == "family":
        time.sleep(3600)  # outlive the end of stdin
