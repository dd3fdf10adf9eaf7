"""ReActAllToolsAgent: ReActAgent shown every tool of its profile at every call ("shortlist": 0).

bench/agents.py runs it with ``--agent ReActAllToolsAgent``: the workload issue 11 describes,
agents that send one system prompt with all their tool descriptions at every step, whatever
their task. ReActAgent itself shows a per-task shortlist, so its agents share less.
"""

from agent_apps.react_agent.agent import ReActAgent


class ReActAllToolsAgent(ReActAgent):
    pass
