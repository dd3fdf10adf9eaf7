"""Grounded arguments: what a call may name is read from the task and the observations so far.

A 135M model copies its worked examples and mixes up the direction of a conversion: asked
"Convert 50 EUR to GBP." it called ``currency_converter(50, "GBP", "USD")``. Before every call,
ReActAgent narrows each tool's argument schema in the grammar the engine decodes under (the
prompt and the kernel's own checks are unchanged):

- a required number argument: an ``enum`` of the numbers written in the task and observations;
  of a converter's (a tool that lists the words it accepts), the task's quantities: the numbers
  followed by one of those words ("3 miles", "20 USD"), when it has any; ``only`` (the plan's
  numbers still unused) narrows both;
- arguments for which the tool lists the words it accepts (``values``: the unit converter's
  units, the currency converter's currencies) and whose names say ``from_``/``to_``: the word
  right after a number of the task is where the conversion starts ("50 EUR to GBP", "10 USD",
  "2.5 hours"), the other accepted words of the task where it may end; only when the task
  names both;
- a required ``path``: an ``enum`` of the file names the task and observations mention.

An argument with nothing to ground it keeps its schema (an expression is left to the model:
constraining it to the task's numbers made the model write worse ones).
"""

from __future__ import annotations

import copy
import re

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
FILE = re.compile(r"[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{1,5}\b")
WORD = re.compile(r"[A-Za-z°$€£¥]+")
NOT_NAMES = {"in", "to"}  # accepted by the unit converter, but nearly always a preposition


def numbers(texts: list[str]) -> list[str]:
    """The numbers written in ``texts``, in order, each once."""
    return list(dict.fromkeys(n for t in texts for n in NUMBER.findall(t)))


def quantities(task: str, accepted: set[str]) -> list[tuple[str, str]]:
    """(number, word) for each number of ``task`` followed by an accepted word: "3 miles", "20 USD"."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"(?<![\w.])(-?\d+(?:\.\d+)?)\s*([A-Za-z°$€£¥]+)", task)
            if m.group(2).lower() in accepted and m.group(2).lower() not in NOT_NAMES]


def conversion(task: str, accepted: set[str], only: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(words a conversion may start from, words it may end at): the accepted word right after a
    number (of ``only``, when given), and the task's other accepted words."""
    start = [w for n, w in quantities(task, accepted) if only is None or n in only]
    rest = [w for w in WORD.findall(task) if w.lower() in accepted and w.lower() not in NOT_NAMES
            and w.lower() not in {s.lower() for s in start}]
    return list(dict.fromkeys(start)), list(dict.fromkeys(rest))


def ground(defs: list[dict], specs: dict[str, dict], task: str, observations: list[str],
           only: list[str] | None = None) -> list[dict]:
    """``defs`` (OpenAI function tools) with their arguments grounded in the task and observations;
    ``only``: the numbers a converter may still take (the plan's unused ones)."""
    texts = [task, *observations]
    nums = numbers(texts)
    files = list(dict.fromkeys(f for t in texts for f in FILE.findall(t)))
    out = []
    for d in defs:
        f = d["function"]
        params = copy.deepcopy(f["parameters"])
        props = params.get("properties") or {}
        accepted = (specs.get(f["name"]) or {}).get("values") or {}
        words = {w.lower() for ws in accepted.values() for w in ws}
        said = [n for n, _ in quantities(task, words)] if words else []
        mine = [n for n in said if only is None or n in only] or [n for n in nums if only is None or n in only] \
            or nums
        for name, p in props.items():
            kind = p.get("type") if isinstance(p, dict) else None
            if kind in ("number", "integer") and name in params.get("required", ()):
                values = [float(n) if "." in n else int(n) for n in dict.fromkeys(mine)]
                values = [v for v in values if kind == "number" or isinstance(v, int)]
                if values:
                    p["enum"] = values
            elif kind == "string" and name in accepted and name.startswith(("from_", "to_")):
                start, end = conversion(task, {w.lower() for w in accepted[name]}, only)
                if start and end:
                    p["enum"] = start if name.startswith("from_") else end
            elif kind == "string" and name == "path" and files and name in params.get("required", ()):
                p["enum"] = files
        out.append({**d, "function": {**f, "parameters": params}})
    return out


def unused(task: str, steps: list[dict]) -> list[str]:
    """Numbers the task states that no call so far has used (a step may remain)."""
    used = set(numbers([repr(s.get("args")) for s in steps]))
    return [n for n in numbers([task]) if n not in used]
