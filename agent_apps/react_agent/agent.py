"""ReActAgent: reason + act with the kernel's tools (Yao et al., ReAct, 2022).

Loop, at most ``max_steps`` times: the model (greedy) replies with one JSON
object, either ``{"tool": name, "args": {...}}`` or ``{"answer": ...}``; a tool
call goes to the kernel (``tool.call``: validated, access-checked, confirmed
if irreversible, run on a worker) and its result or error comes back as the
next user turn, ``Observation: ...``. Replies are parsed robustly
(agent_apps.toolcall); a repeated identical call ends the loop, since a small
greedy model that repeats itself will not stop on its own.

The model sees only the tools its profile (config.json "tools") lists, and
the kernel enforces the same list. An observation is data, not an
instruction: whatever it tells the model, an irreversible call still goes
through the access manager's confirmation.

Returns {"answer": str, "steps": [{"tool", "args", "observation" | "error"}], "stopped": why}.
"""

from __future__ import annotations

import json

from agent_apps import toolcall
from agent_apps.sdk import SyscallError, llm, log, tools

PROTOCOL = """Reply with exactly one JSON object per turn, nothing else.
To call a tool: {"tool": "<name>", "args": {...}}
To finish: {"answer": "<final answer>"}
Always call a tool first; answer only after an Observation."""

# Worked examples shown before the task (those whose tools the agent has): the small
# model copies their shape. Each is (task, [(tool, args, observation), ...], answer).
EXAMPLES = [
    ("Add up the numbers in numbers.txt.",
     [("read_file", {"path": "numbers.txt"}, {"path": "numbers.txt", "content": "12 30"}),
      ("calculator", {"expression": "12 + 30"}, {"value": 42})], "The numbers add up to 42."),
    ("How many feet are in 3 meters?",
     [("unit_converter", {"value": 3, "from_unit": "m", "to_unit": "ft"}, {"value": 9.84252, "unit": "ft"})],
     "3 meters is about 9.84 feet."),
    ("What is 12 * (3 + 4)?", [("calculator", {"expression": "12 * (3 + 4)"}, {"value": 84})], "84"),
]
MAX_OBSERVATION = 1500  # characters of a tool result shown to the model


def observation(result) -> str:
    """A tool result as the model reads it: JSON, except that file text is shown as text."""
    if isinstance(result, dict) and isinstance(result.get("content"), str):
        head = {k: v for k, v in result.items() if k != "content"}
        return f"{json.dumps(head, ensure_ascii=False)}\n{result['content']}"
    return json.dumps(result, ensure_ascii=False)


class ReActAgent:
    max_steps = 6
    max_new_tokens = 64

    def __init__(self, app):
        self.app = app
        self.name = app.name
        self.max_steps = int(app.config.get("max_steps", self.max_steps))
        self.max_new_tokens = int(app.config.get("max_new_tokens", self.max_new_tokens))

    def system_prompt(self, specs: list[dict]) -> str:
        return f"{self.app.description}\n{PROTOCOL}\nTools:\n{toolcall.describe_tools(specs)}"

    def examples(self, names: set[str]) -> list[dict]:
        shots = []
        for task, calls, answer in EXAMPLES:
            if all(tool in names for tool, _, _ in calls):
                shots.append({"role": "user", "content": f"Task: {task}"})
                for tool, args, obs in calls:
                    shots += [{"role": "assistant", "content": json.dumps({"tool": tool, "args": args})},
                              {"role": "user", "content": f"Observation: {observation(obs)}"}]
                shots.append({"role": "assistant", "content": json.dumps({"answer": answer})})
        return shots

    def run(self, task: str) -> dict:
        specs = [t for t in tools.list() if t["allowed"]]
        by_name = {t["name"]: t for t in specs}
        messages = [{"role": "system", "content": self.system_prompt(specs)}, *self.examples(set(by_name)),
                    {"role": "user", "content": f"Task: {task}"}]
        steps: list[dict] = []
        seen: set[str] = set()
        nudged = False
        for i in range(self.max_steps):
            reply = llm.chat(messages, max_new_tokens=self.max_new_tokens)
            step = toolcall.parse(reply, list(by_name))
            log(f"step {i + 1}: {reply.strip()}")
            if step.kind == "answer":
                return {"answer": step.answer, "steps": steps, "stopped": "answer"}
            if step.kind == "text":
                if nudged or not step.answer:
                    return {"answer": step.answer, "steps": steps, "stopped": "plain text"}
                nudged = True
                messages += [{"role": "assistant", "content": reply},
                             {"role": "user", "content": 'Reply with one JSON object: {"tool": ..., "args": ...} '
                                                         'or {"answer": ...}.'}]
                continue
            args = toolcall.repair_args(step.args, by_name[step.tool]["schema"]) if step.tool in by_name else step.args
            key = json.dumps([step.tool, args], sort_keys=True)
            call = {"tool": step.tool, "args": args}
            messages.append({"role": "assistant", "content": json.dumps(call)})
            if key in seen:
                last = steps[-1].get("observation", steps[-1].get("error", "")) if steps else ""
                return {"answer": str(last), "steps": steps, "stopped": "repeated call"}
            seen.add(key)
            try:
                obs = observation(tools.call(step.tool, **args))[:MAX_OBSERVATION]
                call["observation"] = obs
            except SyscallError as e:
                obs = f"Error {e.code}: {e.message}"
                call["error"] = obs
            log(f"{step.tool}({json.dumps(args)}) -> {obs[:300]}")
            steps.append(call)
            messages.append({"role": "user", "content": f"Observation: {obs}"})
        last = steps[-1].get("observation", steps[-1].get("error", "")) if steps else ""
        return {"answer": str(last), "steps": steps, "stopped": f"{self.max_steps} steps"}
