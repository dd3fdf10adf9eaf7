"""ToolLoopAgent (bench/tool_turns.py): a tool-calling loop, its earlier calls passed back in one of two forms.

Task (JSON): {"question", "turns", "max_new_tokens", "form"}. Each turn is one llm.chat with the
calculator and the unit converter (tool_choice "required"); the call is run with tools.call and its
result appended as a tool message. ``form`` says how the model's call goes back into the history:
"native" (the assistant message's ``tool_calls``, as llm.chat returned them) or "text" (the
assistant's content, ``{"tool": ..., "args": ...}`` JSON: how the OpenAI endpoint passed calls on
before llm.chat took tool_calls). Returns per turn {tokens_in, tokens_out, turnaround_s, call}.
"""

import json

from agent_apps.sdk import SyscallError, function_tools, llm, tools


class ToolLoopAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        spec = json.loads(task)
        funcs = function_tools([t for t in tools.list() if t["name"] in ("calculator", "unit_converter")])
        msgs = [{"role": "user", "content": spec["question"]}]
        turns = []
        for _ in range(spec["turns"]):
            r = llm.chat_full(msgs, max_new_tokens=spec["max_new_tokens"], tools=funcs, tool_choice="required")
            turns.append({"tokens_in": r["tokens_in"], "tokens_out": r["tokens_out"],
                          "turnaround_s": r["turnaround_s"], "call": r["tool_calls"][:1]})
            if not r["tool_calls"]:
                break
            call = r["tool_calls"][0]
            try:
                content = json.dumps(tools.call(call["name"], **call["arguments"]))
            except SyscallError as e:
                content = f"error: {e.message}"
            if spec["form"] == "native":
                msgs.append({"role": "assistant", "content": r["text"], "tool_calls": [call]})
            else:
                msgs.append({"role": "assistant", "content": json.dumps({"tool": call["name"],
                                                                        "args": call["arguments"]})})
            msgs.append({"role": "tool", "content": content})
        return {"turns": turns}
