"""BaseAgent: the workflow agent of the original AIOS, on the SDK.

An agent app is a folder with ``config.json`` (name, description, steps,
tools) and ``agent.py`` defining a class named like the agent. ``run(task)``
walks the profile's steps, one LLM call per step, and returns the last
step's answer. The conversation lives in the kernel's working memory
(``mem.chat``): the memory manager keeps it, evicts old turns under its
budget and brings them back when the next step needs them.

A step is a string, or ``{"message": ..., "tool_use": ["calculator"]}`` as in
the original AIOS workflows: on such a step the model calls one of the listed
tools (those its profile's "tools" also lists; the kernel enforces the same
list) through a constrained llm.chat (``tools`` with ``tool_choice="required"``:
the kernel's grammar makes the reply name one of them, with arguments that
follow its schema), the agent runs the call through the kernel, and the model
states the step's result from the tool's answer, told that the result may
already be the answer. ``"constrained": false`` in the profile brings back the
free-text path (a one-string-argument tool fed from the reply's text,
agent_apps.toolcall.extract_arg).
"""

from __future__ import annotations

import json

from agent_apps import toolcall
from agent_apps.sdk import SyscallError, function_tools, llm, log, mem, tools


class BaseAgent:
    max_new_tokens = 96  # per step; small models ramble

    def __init__(self, app):
        self.app = app
        self.name = app.name
        self.steps = app.steps or ["Answer the task."]
        self.max_new_tokens = app.config.get("max_new_tokens", self.max_new_tokens)
        self.constrained = bool(app.config.get("constrained", True))

    def system_prompt(self) -> str:
        return f"You are {self.name}. {self.app.description}".strip()

    def step_prompt(self, i: int, step: str) -> str:
        return f"Step {i + 1} of {len(self.steps)}: {step}"

    def run(self, task: str) -> str:
        mem.add(self.system_prompt(), role="system")
        mem.add(f"Task: {task}", role="user")
        answer = ""
        for i, step in enumerate(self.steps):
            message = step["message"] if isinstance(step, dict) else str(step)
            wanted = step.get("tool_use", []) if isinstance(step, dict) else []
            usable = [t for t in wanted if t in self.app.tools]
            if usable:
                answer = self.tool_step(i, message, usable)
            else:
                answer = mem.chat(self.step_prompt(i, message), max_new_tokens=self.max_new_tokens).strip()
            log(f"step {i + 1}/{len(self.steps)}: {answer}")
        return answer

    def tool_step(self, i: int, message: str, names: list[str]) -> str:
        """A workflow step backed by a tool: the model calls the tool (constrained), the agent runs
        the call (via the kernel), and the model states the step's answer from the result."""
        specs = {t["name"]: t for t in tools.list() if t["name"] in names and t["allowed"]}
        if not specs:
            return mem.chat(self.step_prompt(i, message), max_new_tokens=self.max_new_tokens).strip()
        if self.constrained:
            name, args = self.constrained_call(i, message, specs)
            arg = None
        else:
            name, args, arg = self.free_call(i, message, specs)
        value = None
        try:
            out = tools.call(name, **args)
            obs = json.dumps(out, ensure_ascii=False)[:1500]
            value = next((out[k] for k in ("value", "amount") if k in out), None) if isinstance(out, dict) else None
        except SyscallError as e:
            obs = f"Error {e.code}: {e.message}"
        log(f"{name}({json.dumps(args)}) -> {obs[:300]}")
        answer = mem.chat(f"The {name} tool returned: {obs}\nThis result may already answer step {i + 1}: state "
                          f"the result of step {i + 1} in one or two sentences, with its value.",
                          max_new_tokens=self.max_new_tokens).strip()
        if value is not None and str(value) not in answer:
            # A small model may restate its own earlier guess; the tool's answer is the ground truth.
            answer += f"\n({name}: {args.get(arg, '') if arg else json.dumps(args)} = {value})"
        return answer

    def constrained_call(self, i: int, message: str, specs: dict) -> tuple[str, dict]:
        """The model's call of one of ``specs``, decoded under the kernel's grammar; kept in memory."""
        prompt = f"{self.step_prompt(i, message)}\nCall the tool with the numbers and names from the task."
        mem.add(prompt, role="user")
        rec = llm.call_tool(mem.history(), function_tools(list(specs.values())), tool_choice="required",
                            max_new_tokens=self.max_new_tokens)
        calls = rec.get("tool_calls") or []
        if calls and calls[0]["name"] in specs and isinstance(calls[0].get("arguments"), dict):
            name, args = calls[0]["name"], calls[0]["arguments"]
        else:  # cut off by max_new_tokens: the kernel's EINVAL will say what is missing
            name, args = next(iter(specs)), {}
        mem.add(f"<tool_call>[{json.dumps({'name': name, 'arguments': args})}]</tool_call>", role="assistant")
        return name, args

    def free_call(self, i: int, message: str, specs: dict) -> tuple[str, dict, str | None]:
        """The original path: the model writes the tool's input as free text (no grammar)."""
        name, spec = next(iter(specs.items()))
        arg = toolcall.single_string_arg(spec["schema"])
        ask = (f"Reply with only the {arg} for the {name} tool ({spec['description']})." if arg else
               f"Reply only with the JSON arguments for the {name} tool ({spec['description']}).")
        reply = mem.chat(f"{self.step_prompt(i, message)}\n{ask}", max_new_tokens=self.max_new_tokens)
        step = toolcall.parse(reply, list(specs))
        if step.kind == "tool" and step.tool in specs:
            name, args = step.tool, toolcall.repair_args(step.args, specs[step.tool]["schema"])
        elif arg:
            args = {arg: toolcall.extract_arg(reply, name)}
        else:
            obj = next((toolcall._loads(b) for b in toolcall._objects(reply)), None)
            args = toolcall.repair_args(obj if isinstance(obj, dict) else {}, spec["schema"])
        return name, args, arg
