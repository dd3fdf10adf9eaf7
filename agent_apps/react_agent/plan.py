"""The plan by rules: what the next call must be, from the numbers the task states and the calls so far.

A 135M model stops after one step of two ("What is 12 * 15, plus 20?" -> "12 * 15 = 180"), or
repeats the first call. The plan tracks numbers, not words: every number the task states has to
go into some call, and every number a call produced has to go into a later one, until one is
left (dataflow, as a compiler sees it). After each observation ``next_step`` says:

- ``convert``: a stated quantity not used yet ("3 hours" in "2 days and 3 hours", after the
  days) is one the last converter accepts: that converter again, on it (the first such
  quantity only: offered "1" and "4", "day" and "hours", the model converted "1 hours");
- ``calculate``: results and stated numbers remain to be combined (a result and an unused
  number; two results of two calls; the numbers of a file the task asks to add up): the
  calculator, with an expression that must use each of them once (agent_apps/pot.py
  ``pattern``; results first, then the stated numbers in order). The operators are the
  model's, except that quantities in one unit are only added or subtracted ("2 days and
  3 hours" in seconds: the model multiplied them);
- ``answer``: one number is left and every stated one is used: the model states the answer.

What it cannot see: a step that needs no number of the task ("convert 5 km to miles, then to
feet": after the miles nothing is left, so it answers), and a stated number that is not an
operand ("in 2024, ..."), which it makes the model use.
"""

from __future__ import annotations

import copy
import json
from collections import Counter

from agent_apps import pot
from agent_apps.react_agent.ground import FILE, conversion, quantities

CONVERTERS = ("value", "amount")  # the number a converter's call takes (and its result gives)


def results(step: dict) -> list[str]:
    """The numbers a call produced: a tool's value or amount; the numbers in a file's text."""
    obs = str(step.get("observation", ""))
    if not obs:
        return []
    head, _, text = obs.partition("\n")
    try:
        out = json.loads(head)
    except ValueError:
        return pot.numbers(obs)
    if isinstance(out, dict):
        value = next((out[k] for k in ("value", "amount", "result") if k in out), None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [json.dumps(value)]
        if "content" not in out and text == "":
            return []
    return pot.numbers(text)


def used(steps: list[dict]) -> Counter:
    """The numbers the calls' arguments hold, counted."""
    return Counter(n for s in steps for n in pot.numbers(" ".join(_arg_texts(s.get("args") or {}))))


def _arg_texts(args: dict) -> list[str]:
    return [json.dumps(v) if isinstance(v, (int, float)) else str(v) for v in args.values()]


def unit(step: dict) -> str | None:
    """The unit (or currency) of a converter's result, else None."""
    try:
        out = json.loads(str(step.get("observation", "")).split("\n", 1)[0])
    except ValueError:
        return None
    return (out.get("unit") or out.get("currency")) if isinstance(out, dict) else None


def state(task_numbers: list[str], steps: list[dict]) -> tuple[list[str], list[str], int]:
    """(stated numbers no call used, results no later call used, how many calls left results open)."""
    left = used(steps)
    unused = []
    for n in task_numbers:
        if left[n] > 0:
            left[n] -= 1
        else:
            unused.append(n)
    open_, calls = [], 0
    for i, s in enumerate(steps):
        later = used(steps[i + 1:])
        mine = [n for n in results(s) if later[n] == 0]
        calls += bool(mine)
        open_ += mine
    return unused, open_, calls


def first_quantity(task: str, spec: dict) -> list[str]:
    """The number of the task's first quantity in one of the converter's words, when it states two or
    more ("2 days and 3 hours": ["2"]); else [] (no narrowing)."""
    words = {w.lower() for ws in (spec.get("values") or {}).values() for w in ws}
    said = quantities(task, words) if words else []
    return [said[0][0]] if len(said) >= 2 else []


def next_step(task: str, steps: list[dict], specs: dict[str, dict], arithmetic: set[str]) -> tuple[str, dict]:
    """("convert", {"tool", "numbers"}) | ("calculate", {"numbers"}) | ("answer", {"value"}) | ("model", {}).

    ``specs``: the tools shown, by name (a converter lists the words it accepts as ``values``);
    ``arithmetic``: words that ask for a calculation (the calculator's keywords)."""
    if not steps or "error" in steps[-1]:
        return "model", {}  # a failed call: the model reads the error and decides
    unused, open_, calls = state(pot.numbers(task), steps)
    last = specs.get(steps[-1]["tool"]) or {}
    if unused and last.get("values"):
        words = {w.lower() for ws in last["values"].values() for w in ws}
        mine = [n for n, _ in quantities(pot.normalise(task), words) if n in unused]
        if mine:  # one at a time, in the task's order: the number and its unit go together
            return "convert", {"tool": last["name"], "numbers": mine[:1]}
    said = {w.strip(".,?!").lower() for w in task.split()}
    if "calculator" in specs and open_ and (unused or (len(open_) >= 2 and (calls >= 2 or said & arithmetic))):
        units = {unit(s) for i, s in enumerate(steps) if results(s) and not used(steps[i + 1:])[results(s)[0]]}
        same = not unused and len(units) == 1 and None not in units
        return "calculate", {"numbers": open_ + unused, "ops": "+-" if same else ""}
    return "answer", {"value": open_[0] if len(open_) == 1 else None}


def first_call(task: str, allowed: list[dict], shown: list[dict], named: list[dict], first) -> tuple[list, object]:
    """(the tools shown, the first call's tool_choice), by rules of data: a converter is for a task that
    names a quantity and something else to convert it to ("3 miles to km"; not "7 dollars for an
    adult and 4 dollars for a child"); a task that names a file reads it first (its numbers are in
    there); a task that names no other tool but states two numbers or more is arithmetic (a word
    problem: "3 boxes of 12 eggs and 2 boxes of 6 eggs")."""
    by_name = {t["name"]: t for t in allowed}
    idle = {t["name"] for t in allowed if t.get("values") and not converts(task, t)}
    if named is not allowed and idle & {t["name"] for t in named}:
        named = [t for t in named if t["name"] not in idle]
        shown = [t for t in shown if t["name"] not in idle]
        if not named:
            named = allowed
        first = {"type": "function", "function": {"name": named[0]["name"]}} if len(named) == 1 else "required"
    if "read_file" in by_name and FILE.search(task):
        if all(t["name"] != "read_file" for t in shown):
            shown = [by_name["read_file"], *shown]
        return shown, {"type": "function", "function": {"name": "read_file"}}
    if named is allowed and "calculator" in by_name and len(pot.numbers(task)) >= 2:
        return [by_name["calculator"]], {"type": "function", "function": {"name": "calculator"}}
    return shown or allowed, first


def converts(task: str, spec: dict) -> bool:
    """``task`` asks a conversion of this converter: a quantity in one of its words and another of its
    words to convert it to (ground.conversion)."""
    words = {w.lower() for ws in (spec.get("values") or {}).values() for w in ws}
    start, end = conversion(task, words)
    return bool(start and end)


def with_pattern(defs: list[dict], regex: str) -> list[dict]:
    """``defs`` with the calculator's expression held to ``regex`` (pot.pattern)."""
    out = []
    for d in defs:
        if d["function"]["name"] == "calculator":
            params = copy.deepcopy(d["function"]["parameters"])
            params["properties"]["expression"] = {"type": "string", "pattern": regex, "maxLength": 200}
            d = {**d, "function": {**d["function"], "parameters": params}}
        out.append(d)
    return out
