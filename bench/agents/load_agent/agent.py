import json

from agent_apps.sdk import fs, llm, tools


class LoadAgent:
    """Task: JSON {"i": n, "calls": K, "tokens": T}."""

    def __init__(self, app):
        self.app = app

    def run(self, task):
        spec = json.loads(task)
        outs = [llm.chat([{"role": "user", "content": f"Say a word about the number {spec['i'] + c}."}],
                         max_new_tokens=spec["tokens"]) for c in range(spec["calls"])]
        value = tools.call("calculator", expression=f"{spec['i']} * 3 + 1")
        fs.write(f"load-{spec['i']}", outs[-1])
        return {"calc": value, "stored": fs.read(f"load-{spec['i']}") == outs[-1], "tokens": spec["tokens"]}
