"""Child process that runs one call of a process-isolated tool.

Usage (by the tool manager only)::

    echo '{"origin": "tools.shell", "tool": "shell", "args": {...}, "ctx": {...}}' \
        | python -m kernel.tools.child

prints one JSON line: {"ok": true, "result": ...} or {"ok": false, "code": ..., "message": ...}.
Imports only tools.* (never torch). The manager starts it in its own session
and SIGKILLs the whole process group at the call's deadline.
"""

from __future__ import annotations

import json
import sys

from kernel.protocol.messages import EIO


def main() -> int:
    try:
        req = json.loads(sys.stdin.buffer.read())
        from tools import registry
        from tools.base import ToolContext, ToolError

        tool = registry.find(req["origin"], req["tool"])
        ctx = ToolContext.from_json(req["ctx"])
        try:
            out = {"ok": True, "result": tool.run(req["args"], ctx)}
        except ToolError as e:
            out = {"ok": False, "code": e.code, "message": e.message}
        text = json.dumps(out)
    except Exception as e:  # report, never hang: the manager is waiting for one line
        text = json.dumps({"ok": False, "code": EIO, "message": f"{type(e).__name__}: {e}"})
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
