"""A well-behaved MCP server written with the official SDK (MCPServer), for the kernel's tests.

Tools: add, whoami (read-only); sleep (read-only, cancellable); block (read-only, blocks the
server's loop: a hang); crash (read-only, exits mid-call); write_note (no annotations: the
kernel treats it as irreversible); delete_note (destructiveHint). Notes live in $NOTES_DIR.
$CRASH_ON_START=1 makes it exit at once (a crash loop).
"""

import os
import sys
import time

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False)
server = MCPServer("notes", version="1.0")
NOTES = os.environ.get("NOTES_DIR", ".")


@server.tool(description="Add two numbers.", annotations=READ_ONLY)
def add(a: float, b: float) -> float:
    return a + b


@server.tool(description="The server's process id.", annotations=READ_ONLY)
def whoami() -> dict:
    return {"pid": os.getpid()}


@server.tool(description="Sleep, then answer.", annotations=READ_ONLY)
async def sleep(seconds: float) -> str:
    await anyio.sleep(seconds)
    return "slept"


@server.tool(description="Block the whole server (a hang).", annotations=READ_ONLY)
async def block(seconds: float) -> str:
    time.sleep(seconds)  # in the server's event loop: it answers nothing, pings included
    return "blocked"


@server.tool(description="Exit in the middle of the call.", annotations=READ_ONLY)
def crash() -> str:
    os._exit(3)


@server.tool(description="Write a note.")
def write_note(note: str, text: str) -> str:
    with open(os.path.join(NOTES, os.path.basename(note)), "w") as f:
        f.write(text)
    return "written"


@server.tool(description="Delete a note.", annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def delete_note(note: str) -> str:
    os.remove(os.path.join(NOTES, os.path.basename(note)))
    return "deleted"


if __name__ == "__main__":
    if os.environ.get("CRASH_ON_START") == "1":
        print("crashing on purpose", file=sys.stderr)
        sys.exit(2)
    server.run("stdio")
