"""McpTimeAgent: ToolAgent's script runner (tests/agents/tool_agent) under another app name,
whose profile lists every tool of the time server (mcp__time__*)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("aios_test_tool_agent_impl",
                                               Path(__file__).resolve().parent.parent / "tool_agent" / "agent.py")
_impl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_impl)


class McpTimeAgent(_impl.ToolAgent):
    pass
