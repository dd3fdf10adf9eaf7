"""Tool implementations, run by the kernel's tool manager (kernel/tools/).

Each module here defines ``TOOLS = [...]``; see tools/base.py for what a tool
declares and tools/registry.py for how they are found.
"""

from tools.base import IRREVERSIBLE, READ_ONLY, WRITES, Tool, ToolContext, ToolError

__all__ = ["Tool", "ToolContext", "ToolError", "READ_ONLY", "WRITES", "IRREVERSIBLE"]
