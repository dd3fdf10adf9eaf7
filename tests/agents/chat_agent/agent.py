import json

from agent_apps.sdk import llm


class ChatAgent:
    """Task: plain text, or JSON {"prompt": ..., "max_new_tokens": N, "calls": K}."""

    def __init__(self, app):
        self.app = app

    def run(self, task):
        spec = json.loads(task) if task.startswith("{") else {"prompt": task}
        outs = []
        for i in range(spec.get("calls", 1)):
            outs.append(llm.chat([{"role": "user", "content": spec["prompt"]}],
                                 max_new_tokens=spec.get("max_new_tokens", 24)))
        return outs[0] if len(outs) == 1 else outs
