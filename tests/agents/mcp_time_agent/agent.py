"""McpTimeAgent: ToolAgent's script runner (tests/agents/tool_agent) under another app name,
whose profile lists every tool of the time server (mcp__time__*)."""

import runpy
from pathlib import Path

_impl = runpy.run_path(str(Path(__file__).resolve().parent.parent / "tool_agent" / "agent.py"))


class McpTimeAgent(_impl["ToolAgent"]):
    pass
