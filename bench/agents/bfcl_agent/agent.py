import json

from agent_apps.sdk import SyscallError, llm


class BFCLAgent:
    """Task: JSON {"messages": [...], "tools": [...], "tool_choice": ..., "max_new_tokens": N}.

    Returns llm.chat_full's record, or {"error": ...} when the kernel refuses the call (a schema
    the grammar cannot take, say): the benchmark counts that case as failed and shows why."""

    def __init__(self, app):
        self.app = app

    def run(self, task):
        spec = json.loads(task)
        try:
            return llm.chat_full(spec["messages"], tools=spec["tools"], tool_choice=spec["tool_choice"],
                                 max_new_tokens=spec["max_new_tokens"])
        except SyscallError as e:
            return {"error": f"{e.code}: {e.message}"}
