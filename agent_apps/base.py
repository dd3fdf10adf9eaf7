"""BaseAgent: the workflow agent of the original AIOS, on the SDK.

An agent app is a folder with ``config.json`` (name, description, steps,
tools) and ``agent.py`` defining a class named like the agent. ``run(task)``
walks the profile's steps, one LLM call per step, carrying the conversation
forward, and returns the last step's answer.
"""

from __future__ import annotations

from agent_apps.sdk import llm, log


class BaseAgent:
    max_new_tokens = 96  # per step; small models ramble

    def __init__(self, app):
        self.app = app
        self.name = app.name
        self.steps = app.steps or ["Answer the task."]
        self.max_new_tokens = app.config.get("max_new_tokens", self.max_new_tokens)

    def system_prompt(self) -> str:
        return f"You are {self.name}. {self.app.description}".strip()

    def step_prompt(self, i: int, step: str) -> str:
        return f"Step {i + 1} of {len(self.steps)}: {step}"

    def run(self, task: str) -> str:
        messages = [{"role": "system", "content": self.system_prompt()},
                    {"role": "user", "content": f"Task: {task}"}]
        answer = ""
        for i, step in enumerate(self.steps):
            messages.append({"role": "user", "content": self.step_prompt(i, step)})
            answer = llm.chat(messages, max_new_tokens=self.max_new_tokens).strip()
            log(f"step {i + 1}/{len(self.steps)}: {answer}")
            messages.append({"role": "assistant", "content": answer})
        return answer
