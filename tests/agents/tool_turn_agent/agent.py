"""ToolTurnAgent: the README's "The next turn" example, verbatim (tests/kernel/test_agents_tools.py checks both)."""

import json

from agent_apps.sdk import function_tools, llm, tools


class ToolTurnAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        msgs = [{"role": "user", "content": "What is 17 * 23?"}]
        rec = llm.call_tool(msgs, function_tools([t for t in tools.list() if t["allowed"]]))
        call = rec["tool_calls"][0]
        msgs += [{"role": "assistant", "content": rec["text"], "tool_calls": rec["tool_calls"]},
                 {"role": "tool", "content": json.dumps(tools.call(call["name"], **call["arguments"]))}]
        answer = llm.chat(msgs)
        return {"call": call, "answer": answer}
