"""McpAddAgent: ToolAgent's script runner (tests/agents/tool_agent) under another app name,
whose profile lists only the notes server's add tool."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("aios_test_tool_agent_impl",
                                               Path(__file__).resolve().parent.parent / "tool_agent" / "agent.py")
_impl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_impl)


class McpAddAgent(_impl.ToolAgent):
    pass
