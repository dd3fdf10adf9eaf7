"""ReActFreeAgent: ReActAgent without constrained decoding (free text parsed by agent_apps.toolcall).

The baseline bench/agent_tasks.py runs beside ReActAgent: same tools, same examples,
the original protocol ({"tool": ..., "args": ...} / {"answer": ...} written freely).
"""

from agent_apps.react_agent.agent import ReActAgent


class ReActFreeAgent(ReActAgent):
    pass
