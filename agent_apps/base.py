"""BaseAgent: the workflow agent of the original AIOS, on the SDK.

An agent app is a folder with ``config.json`` (name, description, steps,
tools) and ``agent.py`` defining a class named like the agent. ``run(task)``
walks the profile's steps, one LLM call per step, and returns
``{"answer": <the last step's text>, "steps": [{"step", "text", ...}]}``:
the answer is the plain text a person reads (kernel/protocol/results.py).
The conversation lives in the kernel's working memory (``mem``): the memory
manager keeps it, evicts old turns under its budget and brings them back
when the next step needs them.

Steps, as the profile writes them:

- a string: the model writes that step (a user turn with the step's text);
- ``{"message": ..., "schema": {JSON schema}}``: the reply is constrained to
  the schema (``response_format``), e.g. an outline with fixed fields;
- ``{"message": ..., "tool_use": ["calculator"]}`` as in the original AIOS
  workflows: on such a step the model calls one of the listed tools (those its
  profile's "tools" also lists; the kernel enforces the same list) through a
  constrained llm.chat (``tools`` with ``tool_choice="required"``: the kernel's
  grammar makes the reply name one of them, with arguments that follow its
  schema) and the agent runs the call through the kernel. The step's text is
  the call and its result (``100 USD = 93.4143 EUR``), written by the agent:
  asked to restate a result, a small model copied the prompt around it. The
  calculator is driven by a program of thought (agent_apps/pot.py): the model
  writes one expression over the task's numbers and the answer is
  ``2 * 16 + 2 * 8 = 48``. ``"constrained": false`` in the profile brings
  back the free-text path (agent_apps.toolcall.extract_arg).

What the model writes is cleaned before it is logged, kept and built on
(``clean``): a leading ``Step 2 of 3:`` that imitates the plan is dropped,
sentences already said (in this step or an earlier one) are dropped, and a
reply cut off by max_new_tokens loses its unfinished last sentence. A step
left with nothing new is asked once more, told not to repeat itself. So a
step never repeats an earlier one and never counts past the plan.

If the last step calls a tool and the call fails, the agent has no answer:
it ends ``failed`` with the tool's error as the reason (``sdk.Failed``).
"""

from __future__ import annotations

import json
import re

from agent_apps import pot, toolcall
from agent_apps.sdk import Failed, SyscallError, function_tools, llm, log, mem, tools

STEP_ECHO = re.compile(r"^\s*(?:#+\s*)?\**\s*step\s+\d+(?:\s*(?:of|/)\s*\d+)?\s*\**\s*[:.)\-–]?\s*\**\s*", re.I)
SENTENCE = re.compile(r"[^.!?\n]*[.!?]+[\"')\]]*|[^.!?\n]+|\n")  # a sentence, a fragment, a line break
AGAIN = "Write only this step, with new content: do not repeat what was already said."


def _norm(sentence: str) -> str:
    """A sentence's identity for repeat checks: lower case, no punctuation, no digits ("Day 2: Departure
    from Paris" and "Day 3: Departure from Paris" are one sentence said twice); a sentence of digits only
    is itself."""
    key = " ".join(re.sub(r"[^a-z\s]", " ", sentence.lower()).split())
    return key or " ".join(sentence.split())


def _repeats(key: str, seen: set[str]) -> bool:
    """``key`` was said before, or nearly: 80% of the words of a sentence of 5 or more already said."""
    if key in seen:
        return True
    words = set(key.split())
    if len(words) < 5:
        return False
    return any(len(words & set(old.split())) >= 0.8 * max(len(words), len(set(old.split()))) for old in seen)


def clean(text: str, seen: set[str], cut_off: bool = False) -> str:
    """``text`` without step-number echoes, without sentences in ``seen`` or nearly (the ones kept
    are added to it) and, when ``cut_off``, without its unfinished last sentence (if another is left)."""
    lines = [STEP_ECHO.sub("", line) for line in text.strip().splitlines()]
    text = "\n".join(lines).strip()
    if cut_off:
        end = max(text.rfind(c) for c in ".!?\n")
        if end > 0:
            text = text[:end + 1].rstrip()
    out = []
    for m in SENTENCE.finditer(text):
        piece = m.group(0)
        key = _norm(piece)
        if not key:  # a line break, or nothing but spaces and punctuation
            out.append(piece if piece == "\n" else "")
            continue
        if _repeats(key, seen):
            continue
        seen.add(key)
        out.append(piece)
    kept = "".join(out)
    kept = re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+\n", "\n", kept))
    kept = "\n".join(line for line in kept.splitlines() if line.strip(" -*:#") or not line.strip())
    return kept.strip()


def render(data: dict) -> str:
    """A JSON step's reply as text: ``key: value`` lines; a list of records as numbered lines
    ``1. name: why``; an object with one list field is that list alone."""
    def one(v) -> str:
        if isinstance(v, dict):
            return ": ".join(str(x).strip() for x in v.values() if str(x).strip())
        return v.strip() if isinstance(v, str) else json.dumps(v, ensure_ascii=False)

    if len(data) == 1 and isinstance(next(iter(data.values())), list):
        return "\n".join(f"{i}. {one(v)}" for i, v in enumerate(next(iter(data.values())), 1))
    lines = []
    for k, v in data.items():
        if isinstance(v, list):
            lines += [f"{k}:"] + [f"{i}. {one(x)}" for i, x in enumerate(v, 1)]
        else:
            lines.append(f"{k}: {one(v)}")
    return "\n".join(lines)


def describe(name: str, args: dict, out) -> str:
    """One line for a tool's result: ``100 USD = 93.4143 EUR``, ``12*7 = 84``, else its JSON, cut."""
    if isinstance(out, dict):
        value = next((out[k] for k in ("value", "amount") if k in out), None)
        if value is not None:
            unit = out.get("unit") or out.get("currency") or ""
            given = args.get("expression") or " ".join(
                str(args[k]) for k in ("value", "amount", "from_unit", "from_currency") if k in args)
            return f"{given or json.dumps(args)} = {pot.plain(value)}{' ' + unit if unit else ''}"
        if isinstance(out.get("results"), list) and not out["results"]:
            return f"{name}: nothing found for {json.dumps(args, ensure_ascii=False)}"
    text = json.dumps(out, ensure_ascii=False)
    return f"{name}: {text if len(text) <= 300 else text[:299] + '…'}"


class BaseAgent:
    max_new_tokens = 96  # per step; small models ramble

    def __init__(self, app):
        self.app = app
        self.name = app.name
        self.steps = app.steps or ["Answer the task."]
        self.max_new_tokens = app.config.get("max_new_tokens", self.max_new_tokens)
        self.constrained = bool(app.config.get("constrained", True))
        self.task = ""
        self.seen: set[str] = set()  # sentences said so far (normalised): no step repeats them

    def system_prompt(self) -> str:
        return f"You are {self.name}. {self.app.description}".strip()

    def run(self, task: str) -> dict:
        self.task = task
        mem.add(self.system_prompt(), role="system")
        mem.add(f"Task: {task}", role="user")
        done: list[dict] = []
        for i, step in enumerate(self.steps):
            message = step["message"] if isinstance(step, dict) else str(step)
            wanted = step.get("tool_use", []) if isinstance(step, dict) else []
            usable = [t for t in wanted if t in self.app.tools]
            schema = step.get("schema") if isinstance(step, dict) else None
            if usable:
                rec = self.tool_step(message, usable)
            elif isinstance(schema, dict):
                rec = self.json_step(message, schema)
            else:
                rec = self.text_step(message)
            log(f"step {i + 1}/{len(self.steps)}: {rec['text']}")
            done.append({"step": message, **rec})
        last = done[-1]
        if "error" in last:  # the last step's tool failed: there is no answer to give
            raise Failed(f"{last['tool']} failed: {last['error']}")
        return {"answer": last["text"], "steps": done}

    # -- steps ------------------------------------------------------------------------
    def ask(self, prompt: str, **kw) -> dict:
        """One model turn on the conversation so far plus ``prompt`` (the turn is not kept)."""
        return llm.chat_full([*mem.history(), {"role": "user", "content": prompt}],
                             max_new_tokens=self.max_new_tokens, **kw)

    def keep(self, prompt: str, reply: str) -> None:
        mem.add(prompt, role="user")
        mem.add(reply, role="assistant")

    def text_step(self, message: str) -> dict:
        rec = self.ask(message)
        text = clean(rec["text"], self.seen, rec.get("finish_reason") == "length")
        if not text:  # all of it was said before: once more, told so
            rec = self.ask(f"{message}\n{AGAIN}")
            text = clean(rec["text"], self.seen, rec.get("finish_reason") == "length")
        self.keep(message, text or "(nothing new)")
        return {"text": text or "(nothing new)"}

    def json_step(self, message: str, schema: dict) -> dict:
        fmt = {"type": "json_schema", "json_schema": {"name": "step", "schema": schema}}
        rec = self.ask(message, response_format=fmt)
        try:
            data = json.loads(rec["text"])
        except ValueError:  # cut off by max_new_tokens: keep what there is, as text
            data = None
        if isinstance(data, dict):
            for k, v in data.items():  # a string stopped by its maxLength ends at its last whole sentence
                if isinstance(v, str) and len(v) >= ((schema.get("properties") or {}).get(k) or {}).get("maxLength", 1e9):
                    end = max(v.rfind(c) for c in ".!?")
                    data[k] = v[:end + 1] if end > 0 else v
            text = render(data)
        else:
            text = rec["text"].strip()
        for line in text.splitlines():
            self.seen.add(_norm(line))
        self.keep(message, text)
        return {"text": text, "data": data}

    def tool_step(self, message: str, names: list[str]) -> dict:
        """A workflow step backed by a tool: the model calls it (constrained), the agent runs the call
        (through the kernel) and writes the step's text from the result."""
        specs = {t["name"]: t for t in tools.list() if t["name"] in names and t["allowed"]}
        if not specs:
            return self.text_step(message)
        if "calculator" in specs and self.constrained:
            name, args = "calculator", {"expression": pot.expression(self.task)}
            mem.add(f"{message}\nWrite the expression for the calculator.", role="user")
            mem.add(args["expression"], role="assistant")
        elif self.constrained:
            name, args = self.constrained_call(message, specs)
        else:
            name, args = self.free_call(message, specs)
        try:
            out = tools.call(name, **args)
        except SyscallError as e:
            err = f"{e.code}: {e.message}"
            log(f"{name}({json.dumps(args, ensure_ascii=False)}) -> error {err}")
            mem.add(f"({name} failed: {err})", role="user")
            return {"text": f"{name} failed: {err}", "tool": name, "args": args, "error": err}
        text = describe(name, args, out)
        obs = json.dumps(out, ensure_ascii=False)
        # The result as a note in the conversation (a sentence like "The tool returned:" the model copied).
        mem.add(f"({text})" if len(obs) > 300 or not text.startswith(f"{name}:") else f"({obs[:1500]})",
                role="user")
        self.seen.add(_norm(text))
        return {"text": text, "tool": name, "args": args, "result": out}

    def constrained_call(self, message: str, specs: dict) -> tuple[str, dict]:
        """The model's call of one of ``specs``, decoded under the kernel's grammar; kept in memory."""
        prompt = f"{message}\nCall the tool with the numbers and names from the task."
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

    def free_call(self, message: str, specs: dict) -> tuple[str, dict]:
        """The original path: the model writes the tool's input as free text (no grammar)."""
        name, spec = next(iter(specs.items()))
        arg = toolcall.single_string_arg(spec["schema"])
        ask = (f"Reply with only the {arg} for the {name} tool ({spec['description']})." if arg else
               f"Reply only with the JSON arguments for the {name} tool ({spec['description']}).")
        reply = mem.chat(f"{message}\n{ask}", max_new_tokens=self.max_new_tokens)
        step = toolcall.parse(reply, list(specs))
        if step.kind == "tool" and step.tool in specs:
            return step.tool, toolcall.repair_args(step.args, specs[step.tool]["schema"])
        if arg:
            return name, {arg: toolcall.extract_arg(reply, name)}
        obj = next((toolcall._loads(b) for b in toolcall._objects(reply)), None)
        return name, toolcall.repair_args(obj if isinstance(obj, dict) else {}, spec["schema"])
