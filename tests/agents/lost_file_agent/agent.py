"""LostFileAgent: BaseAgent whose last step is a tool call that fails (there is no file to read), so it
has no answer and must end failed with the tool's error, not done."""

from agent_apps.base import BaseAgent


class LostFileAgent(BaseAgent):
    pass
