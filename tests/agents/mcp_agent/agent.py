"""McpAgent: an agent app that uses an MCP tool through the kernel, then the model.

Task: "<source zone> <HH:MM> <target zone>". It finds the convert tool in tool.list (allowed
by its profile's "mcp__time__*"), calls it, and asks the model for one sentence. Returns
{"tool": name, "target": the converted datetime, "sentence": the model's reply}.
"""

from agent_apps.sdk import llm, tools


class McpAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task: str) -> dict:
        source, hhmm, target = task.split()
        name = next(t["name"] for t in tools.list() if t["allowed"] and t["name"].endswith("__convert_time"))
        out = tools.call(name, source_timezone=source, time=hhmm, target_timezone=target)
        when = out["structured"]["target"]["datetime"]
        sentence = llm.chat([{"role": "user", "content": f"In one sentence: {hhmm} in {source} is {when} in {target}."}],
                            max_new_tokens=24)
        return {"tool": name, "target": when, "sentence": sentence}
