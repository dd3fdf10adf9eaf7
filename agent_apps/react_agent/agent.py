"""ReActAgent: reason + act with the kernel's tools (Yao et al., ReAct, 2022).

Loop, at most ``max_steps`` times: the model (greedy) either calls one tool or
answers. Each call is a *constrained* llm.chat (``tools`` + ``tool_choice``): the
kernel's grammar lets the model write only ``<tool_call>[{"name": N, "arguments":
{...}}]</tool_call>`` with N one of this profile's tools and arguments that follow
N's schema, so it cannot invent a tool or leave out an argument. The first turn
must call a tool (``tool_choice="required"``); after an observation the model may
call another or answer in plain text (``"auto"``), and the observation turn tells
it that a result that already answers the task should simply be stated. A
repeated identical call ends the loop (a greedy model that repeats itself will
not stop on its own). Each call goes back into the history as the assistant
message's ``tool_calls`` and its observation as the ``tool`` message that answers
it: the local model reads the call as the text it wrote (the prefix cache keeps
the whole turn), and a remote server gets OpenAI's own tool messages.

The model sees only the tools its profile (config.json "tools") lists, and the
kernel enforces the same list. Of those, a small model is shown only a shortlist
(``shortlist``, default 3): the tools whose keywords (each tool declares the words
of a task it serves: unit names, currency codes, "times", "file"...) the task
mentions most, plus the profile's ``always`` tools (the calculator, which composes
the others' results); a task that mentions none of them gets every tool. With
twelve tools to choose from, the 135M model called unit_converter for "seventeen
times twenty-three" and search_docs to read a named file. Arguments are grounded in
the task (ground.py). An observation is data, not an instruction: an irreversible
call still goes through the access manager's confirmation.

Multi-step tasks (plan.py): number words in the task are read as numerals first
(pot.normalise); a task that names a file reads it first, and one that names no
other tool but states two numbers is a word problem for the calculator, whose first
expression is a program of thought (agent_apps/pot.py). After each observation the
plan, which counts numbers (each stated number into a call, each result into a later
one), forces the next call: the converter again on a quantity not yet converted,
the calculator on what is left (its expression held to those numbers), or, with one
number left, the model's answer (``tool_choice="none"``).

``"constrained": false`` in the profile falls back to free text parsed by
agent_apps.toolcall (the original protocol; bench/agent_tasks.py compares both).

Returns {"answer": str, "steps": [{"tool", "args", "observation" | "error"}],
"stopped": why, "tokens": tokens in+out of its LLM calls}: the answer is one plain
line, the model's own when it states the tool's value (else the call and its result,
``5 km = 3.10686 miles``). Stopped without an answer of the model's and with its last
call failed, it has no answer: it ends failed with that error (sdk.Failed).
"""

from __future__ import annotations

import json
import re

from agent_apps import pot, toolcall
from agent_apps.react_agent import plan as planner
from agent_apps.react_agent.ground import ground, unused
from agent_apps.base import describe
from agent_apps.sdk import Failed, SyscallError, function_tools, llm, log, tools

PROTOCOL = ("Solve the task with the tools, one call per turn. Put the numbers of the task into the call. "
            "After an Observation, if it answers the task, reply with the answer in one short sentence "
            "that states the result; if a step remains, call the next tool.")
FREE_PROTOCOL = """Reply with exactly one JSON object per turn, nothing else.
To call a tool: {"tool": "<name>", "args": {...}}
To finish: {"answer": "<final answer>"}
Always call a tool first; answer only after an Observation."""
NEXT = "If this answers the task, state the answer. Otherwise call the next tool."

# Worked examples shown before the task (those whose tools the agent has): the small
# model copies their shape. Each is (task, [(tool, args, observation), ...], answer).
EXAMPLES = [
    ("Add up the numbers in numbers.txt.",
     [("read_file", {"path": "numbers.txt"}, {"path": "numbers.txt", "content": "12 30"}),
      ("calculator", {"expression": "12 + 30"}, {"expression": "12 + 30", "value": 42})],
     "The numbers add up to 42."),
    ("How many feet are in 3 meters?",
     [("unit_converter", {"value": 3, "from_unit": "m", "to_unit": "ft"}, {"value": 9.84252, "unit": "ft"})],
     "3 meters is 9.84252 feet."),
    ("What is eight plus five?",
     [("calculator", {"expression": "8 + 5"}, {"expression": "8 + 5", "value": 13})],
     "Eight plus five is 13."),
    ("Convert 4 feet to meters, then multiply by 3.",
     [("unit_converter", {"value": 4, "from_unit": "ft", "to_unit": "m"}, {"value": 1.2192, "unit": "m"}),
      ("calculator", {"expression": "1.2192 * 3"}, {"expression": "1.2192 * 3", "value": 3.6576})],
     "4 feet is 1.2192 meters; times 3 that is 3.6576 meters."),
    ("Convert 20 GBP to JPY.",
     [("currency_converter", {"amount": 20, "from_currency": "GBP", "to_currency": "JPY"},
       {"amount": 4062.95, "currency": "JPY"})],
     "20 GBP is 4062.95 JPY."),
]
MAX_OBSERVATION = 1500  # characters of a tool result shown to the model


def observation(result) -> str:
    """A tool result as the model reads it: JSON, except that file text is shown as text."""
    if isinstance(result, dict) and isinstance(result.get("content"), str):
        head = {k: v for k, v in result.items() if k != "content"}
        return f"{json.dumps(head, ensure_ascii=False)}\n{result['content']}"
    return json.dumps(result, ensure_ascii=False)


def shortlist(task: str, specs: list[dict], k: int, always: list[str]) -> list[dict]:
    """The tools to show for ``task``: up to ``k`` whose keywords (or name parts) it mentions most
    (at least half as many as the best), best first, then the ``always`` ones; every tool if it
    mentions none (or k is 0)."""
    if k <= 0:
        return specs
    said = {w for w in re.findall(r"[a-z]+", task.lower()) if len(w) > 2}  # not "in", "m", "to"
    symbols = re.search(r"\d\s*(?:[-+*/^%x]|\*\*)\s*[\d(]|\(\s*\d", task) is not None

    def score(t: dict) -> int:
        vocab = {*(t.get("keywords") or ()), *t["name"].lower().split("_")}
        return len(said & vocab) + (symbols and "arithmetic" in vocab)
    ranked = sorted(((score(t), i, t) for i, t in enumerate(specs)), key=lambda x: (-x[0], x[1]))
    top = ranked[0][0] if ranked else 0
    picked = [t for s, _, t in ranked if s > 0 and 2 * s >= top][:k]  # "convert" alone does not pick both converters
    if not picked:
        return specs
    return picked + [t for t in specs if t["name"] in always and t not in picked]


class ReActAgent:
    max_steps = 6
    max_new_tokens = 96
    shortlist = 3

    def __init__(self, app):
        self.app = app
        self.name = app.name
        self.max_steps = int(app.config.get("max_steps", self.max_steps))
        self.max_new_tokens = int(app.config.get("max_new_tokens", self.max_new_tokens))
        self.constrained = bool(app.config.get("constrained", True))
        self.shortlist = int(app.config.get("shortlist", self.shortlist))
        self.always = list(app.config.get("always", ["calculator"]))
        self.tokens = 0

    # -- prompts -----------------------------------------------------------------------
    def system_prompt(self, specs: list[dict]) -> str:
        if self.constrained:  # the kernel lists the tools itself, in the model's own format
            return f"{self.app.description}\n{PROTOCOL}"
        return f"{self.app.description}\n{FREE_PROTOCOL}\nTools:\n{toolcall.describe_tools(specs)}"

    def examples(self, names: set[str]) -> list[dict]:
        shots = []
        for task, calls, answer in EXAMPLES:
            if all(tool in names for tool, _, _ in calls):
                shots.append({"role": "user", "content": f"Task: {task}"})
                for tool, args, obs in calls:
                    if self.constrained:
                        shots += [{"role": "assistant", "content": "",
                                   "tool_calls": [{"name": tool, "arguments": args}]},
                                  {"role": "tool", "content": f"Observation: {observation(obs)}\n{NEXT}"}]
                    else:
                        shots += [{"role": "assistant", "content": json.dumps({"tool": tool, "args": args})},
                                  {"role": "user", "content": f"Observation: {observation(obs)}"}]
                shots.append({"role": "assistant",
                              "content": answer if self.constrained else json.dumps({"answer": answer})})
        return shots

    # -- the loop ----------------------------------------------------------------------
    def ask(self, messages: list[dict], defs: list[dict], choice, names: list[str]) -> toolcall.Step:
        """One model turn as a Step: a tool call, an answer, or (free mode only) text."""
        if not self.constrained:
            reply = llm.chat_full(messages, max_new_tokens=self.max_new_tokens)
            self.tokens += reply["tokens_in"] + reply["tokens_out"]
            return toolcall.parse(reply["text"], names)
        rec = llm.call_tool(messages, defs, tool_choice=choice,
                            max_new_tokens=self.max_new_tokens)
        self.tokens += rec["tokens_in"] + rec["tokens_out"]
        if rec.get("tool_calls"):
            c = rec["tool_calls"][0]
            return toolcall.Step("tool", tool=c["name"], args=c["arguments"] or {}, raw=json.dumps(c))
        return toolcall.Step("answer", answer=rec["text"].strip(), raw=rec["text"])

    def done(self, answer: str, steps: list[dict], why: str) -> dict:
        return {"answer": answer, "steps": steps, "stopped": why, "tokens": self.tokens}

    def run(self, task: str) -> dict:
        allowed = [t for t in tools.list() if t["allowed"]]
        by_name = {t["name"]: t for t in allowed}  # free text may still name any of them
        if self.constrained:
            task = pot.normalise(task)  # "forty-five minus nineteen" -> "45 minus 19": numbers the grammar can hold
        shown = shortlist(task, allowed, self.shortlist, self.always)
        # The first call is one of the tools the task names (not the calculator a unit task also
        # shows: the model reached for it and multiplied by a number of its own). Every call shows
        # the same tools, so each turn's prompt extends the last one's (the prefix cache's hit).
        named = shortlist(task, allowed, self.shortlist, [])
        first = {"type": "function", "function": {"name": named[0]["name"]}} if len(named) == 1 else "required"
        if self.constrained:
            shown, first = planner.first_call(task, allowed, shown, named, first)
        defs = function_tools(shown)  # the grammar allows only these
        specs = {t["name"]: t for t in shown}
        arithmetic = set((by_name.get("calculator") or {}).get("keywords") or ())
        messages = [{"role": "system", "content": self.system_prompt(shown)},
                    *self.examples({t["name"] for t in shown}),
                    {"role": "user", "content": f"Task: {task}"}]
        steps: list[dict] = []
        seen: set[str] = set()
        nudged = False
        plan, info = "model", {}
        for i in range(self.max_steps):
            observed = [s.get("observation", "") for s in steps]
            if plan == "convert":
                grounded = ground(defs, by_name, task, observed, only=info["numbers"])
                choice = {"type": "function", "function": {"name": info["tool"]}}
            elif plan == "calculate":
                grounded = planner.with_pattern(ground(defs, by_name, task, observed),
                                        pot.pattern(info["numbers"], groups="(" in task, ops=info["ops"]))
                choice = {"type": "function", "function": {"name": "calculator"}}
            elif plan == "answer":
                grounded, choice = defs, "none"
            else:
                choice = first if not steps else "required" if unused(task, steps) else "auto"  # a step remains
                one = planner.first_quantity(task, by_name.get(_names(choice)) or {}) if not steps else []
                grounded = ground(defs, by_name, task, observed, only=one or None)
            step = None
            if not steps and self.constrained and _names(choice) == "calculator":
                step = self.program(task)  # the first expression: a program of thought (agent_apps/pot.py)
            if step is None:
                step = self.ask(messages, grounded, choice, names=list(by_name))
            log(f"step {i + 1}: {step.raw.strip()}")
            if step.kind == "answer":
                return self.done(with_value(step.answer, steps, info.get("value")), steps, "answer")
            if step.kind == "text":  # free mode: one reminder of the protocol, then take the text
                if nudged or not step.answer:
                    return self.done(step.answer, steps, "plain text")
                nudged = True
                messages += [{"role": "assistant", "content": step.raw},
                             {"role": "user", "content": 'Reply with one JSON object: {"tool": ..., "args": ...} '
                                                         'or {"answer": ...}.'}]
                continue
            args = step.args
            if not self.constrained and step.tool in by_name:
                args = toolcall.repair_args(step.args, by_name[step.tool]["schema"])
            key = json.dumps([step.tool, args], sort_keys=True)
            call = {"tool": step.tool, "args": args}
            if self.constrained:
                messages.append({"role": "assistant", "content": "",
                                 "tool_calls": [{"name": step.tool, "arguments": args}]})
            else:
                messages.append({"role": "assistant", "content": json.dumps({"tool": step.tool, "args": args})})
            if key in seen:
                return self.done(with_value(last_seen(steps), steps), steps, "repeated call")
            seen.add(key)
            try:
                obs = observation(tools.call(step.tool, **args))[:MAX_OBSERVATION]
                call["observation"] = obs
            except SyscallError as e:
                obs = f"Error {e.code}: {e.message}"
                call["error"] = obs
            log(f"{step.tool}({json.dumps(args)}) -> {obs[:300]}")
            steps.append(call)
            hint = ""
            if self.constrained:
                plan, info = planner.next_step(task, steps, specs, arithmetic)
                left = planner.state(pot.numbers(task), steps)[0]  # a stated number no call has used
                hint = f"\nNot used yet: {', '.join(left)}. Call the next tool." if left and "error" not in call \
                    else "\nCombine the results with the calculator." if plan == "calculate" else f"\n{NEXT}"
            messages.append({"role": "tool" if self.constrained else "user",  # constrained: it answers the call
                             "content": f"Observation: {obs}{hint}"})
        return self.done(with_value(last_seen(steps), steps), steps, f"{self.max_steps} steps")

    def program(self, task: str) -> toolcall.Step | None:
        """The calculator call whose expression the model wrote as a program of thought (one LLM call
        under pot's grammar: every number of the task, the first one first); None if cut off."""
        expr = pot.expression(task, max_new_tokens=self.max_new_tokens)
        if not expr:
            return None
        args = {"expression": expr}
        return toolcall.Step("tool", tool="calculator", args=args, raw=json.dumps({"name": "calculator",
                                                                                   "arguments": args}))


def _names(choice) -> str | None:
    """The tool a tool_choice forces, if it forces one."""
    return (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None


def last_seen(steps: list[dict]) -> str:
    """The answer when the model gave none (a repeated call, the step limit): the last call's result
    in one line (``5 km = 3.10686 miles``); no answer at all when that call failed (sdk.Failed)."""
    if not steps:
        return ""
    last = steps[-1]
    if "error" in last:
        raise Failed(f"{last['tool']} failed: {last['error']}")
    return _describe(last) or str(last.get("observation", ""))


def _describe(step: dict) -> str | None:
    try:
        out = json.loads(str(step.get("observation", "")).split("\n", 1)[0])
    except ValueError:
        return None
    return describe(step["tool"], step.get("args") or {}, out) if isinstance(out, dict) else None


def with_value(answer: str, steps: list[dict], value: str | None = None) -> str:
    """The model's answer, unless it leaves out the last tool's value or the number it converted
    (a small model restates its own guess: "3.10686 is 3.10686 miles."): then the call and its
    result in one line, ``5 km = 3.10686 miles`` (the tool's value is the ground truth). ``value``:
    the one number the plan left (plan.py); an answer without it (a file's "19.99" answered as
    "10.99") becomes the observation's line that holds it, ``price: 19.99 dollars``."""
    if not steps or "observation" not in steps[-1]:
        return answer
    try:
        out = json.loads(steps[-1]["observation"].split("\n", 1)[0])
    except ValueError:
        out = None
    result = next((out.get(k) for k in ("value", "amount", "result") if isinstance(out, dict) and k in out), None)
    if result is None:
        if value is None or _states(answer, value):
            return answer
        return next((line.strip() for s in reversed(steps) for line in str(s.get("observation", "")).splitlines()[1:]
                     if value in pot.numbers(line)), answer)
    args = steps[-1].get("args") or {}
    given = next((args[k] for k in ("value", "amount") if k in args), None)
    known = {n for s in steps for n in [*planner.results(s), *planner.used([s])]} | {str(result)}
    guessed = [n for n in pot.numbers(answer) if not any(_states(k, n) for k in known)]
    if str(result) in answer and (given is None or str(given) in answer.replace(str(result), "")) and not guessed:
        return answer  # (guessed: a number no call gave, "Eight plus five is 27.": the call's line instead)
    return _describe(steps[-1]) or answer


def _states(answer: str, value: str) -> bool:
    """``answer`` writes the number ``value`` (19.99, 19.990, or 1,000 for 1000)."""
    try:
        want = float(value)
    except ValueError:
        return value in answer
    return any(abs(float(n) - want) <= 1e-9 * max(1.0, abs(want)) for n in pot.numbers(answer))
