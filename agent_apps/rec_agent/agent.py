"""RecAgent: a workflow agent (one LLM call per step of config.json) that reads the request first.

A 135M model asked for "wants", "where" and "when" in one free JSON object wrote the task's
most salient name into every field (``"wants": "New York"``) and then recommended cities; asked
to recommend on the whole conversation it copied earlier turns. So:

- **Read in the task's own words.** A schema step that lists fields in ``"ground"`` reads them in
  that order. The field named in ``"asked"`` is what the request's verb asks for, read without
  the model ("... recommend some restaurants around": restaurants, not the tour). The model
  gives each other field, one call each, after the step's worked ``examples``, under an ``enum``
  of the task's phrases (runs of 1-3 words without a function word: "New York", "spring
  break") plus the field's ``default`` ("anywhere") when it has one. A phrase given to one
  field is not offered to the next (the place is never the thing wanted).
- **Restate it.** A step's text may name ``{request}`` ("restaurants in New York", from what
  was read, defaults left out) or a field (``{where}``). A text step that
  does is asked on its own (system prompt, what a lookup found, the step; not the conversation):
  the restated request is all the model needs, and the short prompt is the one it answers best.
- **A list is a list.** That step's answer is its numbered items, one line each, each item its
  name and first sentence; what follows the list ("Please choose one...") is dropped.
- A lookup by the request: a step's one tool whose required arguments are text is called with
  the request as read.
"""

from __future__ import annotations

import json
import re

from agent_apps.base import BaseAgent, _norm, clean, render
from agent_apps.sdk import llm, mem

WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+")
TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+|[^\sA-Za-z\d]")  # a word or a punctuation mark
# Words a phrase of the request does not hold: function words and the words of asking itself.
FUNCTION = set("""a an the some any this that these those my me i you your we our us it its for to of in on at
around near by with from into during about and or but is are be am was do does can could would should will please
want wants like need take make get give go going recommend recommends suggest suggests find show tell list
good best great nice few several one two three""".split())
ASKING = re.compile(r"(?i)\b(?:recommend|suggest|find|show me|list|name|looking for|look for)\b")  # the request's verb
MAX_WORDS = 3  # words in one phrase of the task
MAX_ITEM = 160  # characters of one recommendation (its name and first sentence)
ITEM = re.compile(r"^\s*(\d+)[.)]\s*(.+)$")  # a numbered line: "1. Name: why"
FIELD = re.compile(r"\{(\w+)\}")
# The first sentence of an item: up to a stop that does not end an initial or a title ("A.J. Smith", "St. Paul").
SENTENCE_END = re.compile(r".+?(?<!\b[A-Z])(?<!\bSt)(?<!\bDr)(?<!\bMr)(?<!\bMs)(?<!\bJr)[.!?](?=\s|$)")


def runs(text: str) -> list[list[str]]:
    """The maximal runs of words of ``text`` without a function word or a punctuation mark."""
    out, run = [], []
    for tok in TOKEN.findall(text):
        if WORD.fullmatch(tok) and tok.lower() not in FUNCTION:
            run.append(tok)
        elif run:
            out, run = out + [run], []
    return out + [run] if run else out


def phrases(text: str) -> list[str]:
    """The runs of 1..MAX_WORDS words of ``text`` without a function word, longest first, each once
    (as written): "New York", "spring break", "sci-fi book", "restaurants"."""
    out = []
    for n in range(MAX_WORDS, 0, -1):
        out += [" ".join(run[i:i + n]) for run in runs(text) for i in range(len(run) - n + 1)]
    return list(dict.fromkeys(out))


def asked_object(task: str) -> str | None:
    """What the request's (last) asking verb asks for: the first run of words after it
    ("recommend some restaurants around" -> "restaurants", "suggest a laptop for programming" ->
    "laptop"), with the topic that follows it ("films about space travel"); None when the task
    has no such verb."""
    verbs = list(ASKING.finditer(task))
    if not verbs:
        return None
    rest = task[verbs[-1].end():]
    after = runs(rest)
    if not after:
        return None
    head = " ".join(after[0])
    topic = re.match(rf".*?\b{re.escape(head)}\s+(about\s+[^.,;!?]+)", rest)  # "films about space travel"
    return f"{head} {topic.group(1).strip()}" if topic else head


def plural(noun: str) -> str:
    """``noun`` with its last word (before an "about ...") in the plural, by the common rules:
    book -> books, city -> cities, film about space -> films about space."""
    if " about " in noun:
        head, topic = noun.split(" about ", 1)
        return f"{plural(head)} about {topic}"
    if re.search(r"(?i)(s|ss|sh|ch|x|z)$", noun):
        return noun if noun.lower().endswith("s") and not noun.lower().endswith("ss") else noun + "es"
    if re.search(r"(?i)[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


def items(text: str) -> list[str]:
    """The numbered items of ``text``, each its name and first sentence (at most MAX_ITEM
    characters), without its number, each once; what is not an item (a preamble, a closing
    remark, a name's extra lines) is dropped."""
    out, said = [], set()
    for line in text.splitlines():
        m = ITEM.match(line)
        if not m:
            continue
        first = SENTENCE_END.match(m.group(2).strip())
        body = (first.group(0) if first else m.group(2)).strip()
        if len(body) > MAX_ITEM:
            body = body[:MAX_ITEM].rsplit(" ", 1)[0].rstrip(",;:") + "…"
        key = _norm(body)  # not the part before a colon: "Star Wars: The Force Awakens", "Star Wars: ..."
        if re.search(r"\w", body) and key not in said:
            said.add(key)
            out.append(body)
    return out


class RecAgent(BaseAgent):
    def __init__(self, app):
        super().__init__(app)
        self.fields: dict[str, str] = {}  # what the grounded schema step read, by field name
        self.defaults: set[str] = set()  # the values that mean "the request does not say"
        self.found: list[str] = []  # what the lookups found (their step texts): notes for the list

    def request(self) -> str:
        """The request as read, what and where: "restaurants in New York". (With "for spring break"
        added the model named one museum three times and wrote runs of specs.)"""
        said = {k: v for k, v in self.fields.items() if v not in self.defaults}
        text = plural(said["what"]) if "what" in said else "options"
        return text + (f" in {said['where']}" if "where" in said else "")

    def fill(self, message: str) -> str:
        """``message`` with ``{request}`` and ``{field}`` names filled in from what was read."""
        values = {**self.fields, "request": self.request()}
        return FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), message)

    def text_step(self, message: str) -> dict:
        if not FIELD.search(message):
            return super().text_step(message)
        prompt = self.fill(message)
        notes = "".join(f"({text})\n" for text in self.found)
        rec = llm.chat_full([{"role": "system", "content": self.system_prompt()},
                             {"role": "user", "content": notes + prompt}], max_new_tokens=self.max_new_tokens)
        cut_off = rec.get("finish_reason") == "length"
        # Each item is checked against the earlier steps only: items alike in shape are not repeats.
        listed = [kept for item in items(rec["text"]) if (kept := clean(item, set(self.seen)))]
        text = "\n".join(f"{i}. {x}" for i, x in enumerate(listed, 1)) if listed else \
            clean(rec["text"], self.seen, cut_off)
        text = text or "(nothing new)"
        self.keep(prompt, text)
        return {"text": text}

    def tool_step(self, message: str, names: list[str]) -> dict:
        rec = super().tool_step(self.fill(message), names)
        out = rec.get("result")
        if "error" not in rec and out and not (isinstance(out, dict) and out.get("results") == []):
            self.found.append(rec["text"])
        return rec

    def constrained_call(self, message: str, specs: dict) -> tuple[str, dict]:
        """A step with one tool whose required arguments are all text calls it with the request as
        read (the model's query was "space_travel_films_by_country_and_industry_by..."); else the
        model calls it (BaseAgent). The call is kept in memory either way."""
        name, spec = next(iter(specs.items()))
        params = spec.get("schema") or {}
        required, props = params.get("required") or [], params.get("properties") or {}
        if len(specs) > 1 or not required or any(props.get(k, {}).get("type") != "string" for k in required):
            return super().constrained_call(message, specs)
        args = {k: self.request() for k in required}
        mem.add(message, role="user")
        mem.add(f"<tool_call>[{json.dumps({'name': name, 'arguments': args})}]</tool_call>", role="assistant")
        return name, args

    def json_step(self, message: str, schema: dict) -> dict:
        step = next((s for s in self.app.steps if isinstance(s, dict) and s.get("schema") is schema), {})
        grounded = [k for k in step.get("ground", []) if k in (schema.get("properties") or {})]
        if not grounded:
            return super().json_step(message, schema)
        shots = "".join(f"Request: {ex['request']}\n{json.dumps({k: ex[k] for k in grounded if k in ex})}\n\n"
                        for ex in step.get("examples", []))
        data = {}  # field -> value, in the order of "ground"
        asked = asked_object(self.task) if step.get("asked") in grounded else None
        known = {step["asked"]: asked} if asked else {}  # read without the model
        used = set(_norm(asked).split()) if asked else set()  # words a later field may not take
        for name in grounded:
            prop = schema["properties"][name]
            default = prop.get("default", "anything")  # the last resort of a field that has none
            self.defaults.add(default)
            if name in known:
                data[name] = known[name]
                continue
            choices = [p for p in phrases(self.task) if not set(_norm(p).split()) & used]
            if "default" in prop or not choices:
                choices.append(default)
            # The fields read so far are fixed (const), so the reply has the examples' shape.
            props = {**{k: {"const": v} for k, v in data.items()}, name: {"type": "string", "enum": choices}}
            one = {"type": "object", "additionalProperties": False, "required": list(props), "properties": props}
            fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": one}}
            rec = self.ask(f"{message}\n\n{shots}Request: {self.task}", response_format=fmt)
            data[name] = _value(rec["text"], name, default)
            if data[name] != default:
                used |= set(_norm(data[name]).split())
        self.fields = data
        text = render(data)
        for line in text.splitlines():
            self.seen.add(_norm(line))
        self.keep(message, text)
        return {"text": text, "data": data}


def _value(text: str, name: str, default: str) -> str:
    try:
        return str(json.loads(text)[name])
    except (ValueError, KeyError, TypeError):  # cut off: the request does not say
        return default
