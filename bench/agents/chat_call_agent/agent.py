import json

from agent_apps.sdk import llm


class ChatCallAgent:
    """Task: JSON {"prompt": ..., "max_new_tokens": N}."""

    def __init__(self, app):
        self.app = app

    def run(self, task):
        spec = json.loads(task)
        return llm.chat_full([{"role": "user", "content": spec["prompt"]}], max_new_tokens=spec["max_new_tokens"])
