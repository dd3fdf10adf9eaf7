"""McpAddAgent: ToolAgent's script runner (tests/agents/tool_agent) under another app name,
whose profile lists only the notes server's add tool."""

import runpy
from pathlib import Path

_impl = runpy.run_path(str(Path(__file__).resolve().parent.parent / "tool_agent" / "agent.py"))


class McpAddAgent(_impl["ToolAgent"]):
    pass
