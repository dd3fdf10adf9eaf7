import base64
import json
import zlib

from agent_apps.sdk import SyscallError, llm


class LLMCallAgent:
    """Task: JSON {"prompt": ..., "max_new_tokens": N, "stop": [...], and optionally
    "response_format", "tools", "tool_choice" as llm.chat takes them, and "messages" (the whole
    history, sent instead of the prompt)}.

    Returns llm.chat_full's record, or {"error": {"code": ..., "message": ...}}
    when the kernel answers the call with an error (tests check that error).
    A task longer than a task may be (kernel/protocol/limits.py MAX_TASK) comes as "zlib:" + base64 of it, compressed.
    """

    def __init__(self, app):
        self.app = app

    def run(self, task):
        if task.startswith("zlib:"):
            task = zlib.decompress(base64.b64decode(task[5:])).decode()
        spec = json.loads(task)
        try:
            return llm.chat_full(spec.get("messages") or [{"role": "user", "content": spec["prompt"]}],
                                 max_new_tokens=spec.get("max_new_tokens", 16), stop=spec.get("stop"),
                                 response_format=spec.get("response_format"), tools=spec.get("tools"),
                                 tool_choice=spec.get("tool_choice"))
        except SyscallError as e:
            return {"error": {"code": e.code, "message": e.message}}
