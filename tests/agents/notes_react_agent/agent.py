"""NotesReActAgent: the ReAct agent with a short tool list (calculator, read_file, delete_file), for tests."""

from agent_apps.react_agent.agent import ReActAgent


class NotesReActAgent(ReActAgent):
    pass
