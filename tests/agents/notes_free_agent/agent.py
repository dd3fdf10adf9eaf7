"""NotesFreeAgent: NotesReActAgent without constrained decoding (free text parsed by agent_apps.toolcall).

The prompt-injection tests use it: the greedy model obeys an injected call in free text, so
the access manager's refusal of that irreversible call is exercised.
"""

from agent_apps.react_agent.agent import ReActAgent


class NotesFreeAgent(ReActAgent):
    pass
