"""NarrativeAgent: a workflow agent (one LLM call per step of config.json)."""

from agent_apps.base import BaseAgent


class NarrativeAgent(BaseAgent):
    pass
