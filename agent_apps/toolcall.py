"""Reading tool calls out of a small model's text, robustly (agent side, no kernel imports).

The protocol the agents teach the model (one JSON object per reply)::

    {"tool": "calculator", "args": {"expression": "2*16 + 2*8"}}
    {"answer": "48"}

Small models bend it: prose around the JSON, escaped quotes (``{\\"path\\": ...}``),
single quotes, one brace too many, ``"action"``/``"action_input"`` keys, a
tool name with a suffix (``read_file_to_string``), argument names that are
near misses (``file_name`` for ``path``). ``parse`` undoes what it can and
``repair_args`` maps argument names onto the tool's schema; the kernel still
validates the result, and its error goes back to the model as the
observation.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

TOOL_KEYS = ("tool", "action", "tool_name", "name", "function")
ARG_KEYS = ("args", "arguments", "action_input", "input", "parameters", "tool_input")
ANSWER_KEYS = ("answer", "final_answer", "final", "result")
SYNONYMS = {  # schema property -> names a model may use instead
    "path": ("file", "file_name", "filename", "file_path", "filepath", "name", "location"),
    "expression": ("expr", "equation", "formula", "math", "input", "query", "calculation"),
    "query": ("q", "search", "search_query", "text", "keywords", "topic", "term", "input"),
    "amount": ("value", "number", "money", "sum"),
    "value": ("amount", "number", "quantity"),
    "from_currency": ("from", "source", "base", "currency_from", "from_unit"),
    "to_currency": ("to", "target", "currency_to", "to_unit"),
    "from_unit": ("from", "unit", "source_unit", "unit_from"),
    "to_unit": ("to", "target_unit", "unit_to"),
    "command": ("cmd", "shell", "script", "input"),
    "content": ("text", "data", "body", "contents"),
}


@dataclass
class Step:
    """What one model reply asks for: a tool call, a final answer, or neither (``kind == "text"``)."""

    kind: str  # "tool" | "answer" | "text"
    tool: str = ""
    args: dict = field(default_factory=dict)
    answer: str = ""
    raw: str = ""


def _objects(text: str):
    """Yield substrings that look like balanced {...} objects, in order."""
    i = text.find("{")
    while i != -1:
        depth, in_str, esc = 0, False, False
        for j in range(i, len(text)):
            c = text[j]
            if in_str:
                if esc:
                    esc = False
                elif c == "\\":
                    esc = True
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    yield text[i:j + 1]
                    break
        else:
            yield text[i:] + ('"' if in_str else "") + "}" * max(depth, 1)  # cut off by max_new_tokens: close it
        i = text.find("{", i + 1)


def _loads(s: str) -> Any:
    tries = [s, s.replace('\\"', '"'), re.sub(r"'", '"', s),
             re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", s)))]
    for t in tries:
        for cand in (t, t.rstrip("}") + "}", t + "}"):
            try:
                return json.loads(cand)
            except ValueError:
                continue
    return None


def parse(text: str, tool_names: list[str]) -> Step:
    """The first JSON object in ``text`` that is a tool call or an answer; else a text step."""
    step = _parse(text, tool_names)
    if step.kind == "text" and '\\"' in text:  # {\"path\": \"x\"}: quotes escaped outside a string
        step = _parse(text.replace('\\"', '"'), tool_names)
        step.raw = text
    return step


def _parse(text: str, tool_names: list[str]) -> Step:
    for blob in _objects(text):
        obj = _loads(blob)
        if not isinstance(obj, dict):
            continue
        name = next((obj[k] for k in TOOL_KEYS if isinstance(obj.get(k), str) and obj.get(k)), None)
        if name is not None:
            tool = match_tool(name, tool_names)
            if tool is None:
                return Step("tool", tool=name, raw=text)  # unknown: the kernel's ENOENT lists the real ones
            args = next((obj[k] for k in ARG_KEYS if k in obj), None)
            if isinstance(args, str):
                parsed = _loads(args)
                args = parsed if isinstance(parsed, dict) else {"_text": args}
            if not isinstance(args, dict):
                args = {k: v for k, v in obj.items() if k not in TOOL_KEYS}
            return Step("tool", tool=tool, args=args, raw=text)
        for k in ANSWER_KEYS:
            if k in obj:
                v = obj[k]
                return Step("answer", answer=v if isinstance(v, str) else json.dumps(v), raw=text)
    return Step("text", answer=text.strip(), raw=text)


def match_tool(name: str, tool_names: list[str]) -> str | None:
    """Exact, case-insensitive, prefix (read_file_to_string -> read_file) or close match."""
    low = name.strip().lower().replace("-", "_").replace(" ", "_")
    names = sorted(tool_names, key=len, reverse=True)
    for t in names:
        if low == t:
            return t
    for t in names:
        if low.startswith(t) or (len(low) >= 4 and t.startswith(low)):
            return t
    close = difflib.get_close_matches(low, names, n=1, cutoff=0.75)
    return close[0] if close else None


def _fits(value: Any, prop: dict) -> bool:
    t = prop.get("type")
    if t == "string":
        return isinstance(value, str)
    if t in ("number", "integer"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    return "enum" not in prop or value in prop["enum"]


def _coerce(value: Any, prop: dict) -> Any:
    t = prop.get("type")
    if t in ("number", "integer") and isinstance(value, str):
        try:
            num = float(value.replace(",", "").strip())
            return int(num) if t == "integer" or num.is_integer() else num
        except ValueError:
            return value
    if t == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def repair_args(args: dict, schema: dict) -> dict:
    """Map a model's argument names onto the schema's: keep known ones, fill missing required
    ones from synonyms, then from leftover values of a fitting type; drop the rest."""
    props = schema.get("properties", {})
    if not props:
        return {}
    out = {k: _coerce(v, props[k]) for k, v in args.items() if k in props}
    spare = {k: v for k, v in args.items() if k not in props}
    for name in [*schema.get("required", []), *props]:
        if name in out:
            continue
        for syn in SYNONYMS.get(name, ()):
            if syn in spare:
                out[name] = _coerce(spare.pop(syn), props[name])
                break
    for name in schema.get("required", []):
        if name in out:
            continue
        for k in list(spare):
            v = _coerce(spare[k], props[name])
            if _fits(v, props[name]):
                out[name] = v
                del spare[k]
                break
    return out


def describe_tools(tools: list[dict]) -> str:
    """One line per tool for a system prompt: '- name: description args: {"x": string}'."""
    lines = []
    for t in tools:
        props = t.get("schema", {}).get("properties", {})
        req = set(t.get("schema", {}).get("required", []))
        args = ", ".join(f'"{k}": {p.get("type", "value")}' + ("" if k in req else " (optional)")
                         for k, p in props.items())
        lines.append(f"- {t['name']}: {t['description']} args: {{{args}}}")
    return "\n".join(lines)


MATH_RUN = re.compile(r"[\d(][\d\s.,+\-*/x×÷^()%]*[\d)]")


def single_string_arg(schema: dict) -> str | None:
    """The name of a tool's only required argument when it is a string (calculator: expression)."""
    req = schema.get("required", [])
    if len(req) == 1 and schema.get("properties", {}).get(req[0], {}).get("type") == "string":
        return req[0]
    return None


def extract_arg(reply: str, tool: str) -> str:
    """The value a model meant for a one-string-argument tool, from free text.

    calculator: the longest arithmetic run before any '=' ("16 x 8 = 128" -> "16 * 8");
    other tools: the first non-empty line without quotes, backticks or a "label:" prefix.
    """
    text = reply.strip().strip("`").strip()
    if tool == "calculator":
        runs = [m.group(0) for m in MATH_RUN.finditer(text.split("=")[0] if "=" in text else text)]
        runs = [r for r in runs if re.search(r"[+\-*/x×÷^%]", r)] or runs
        if runs:
            return max(runs, key=len).replace("×", "*").replace("x", "*").replace(",", "").strip()
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^[A-Za-z ]{1,20}:\s*", "", line.strip())
    return line.strip().strip("\"'`").strip()
