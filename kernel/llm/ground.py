"""Grounded tool arguments: a number the model passes to a tool is one the conversation wrote.

A 135M model asked to call ``calculate_triangle_area`` for "a base of 10 units and height of 5
units" writes ``{"base": 10, "height": 5}``; asked for "the mass of an electron" with only
``calculate_current(voltage, resistance)`` at hand, it writes ``{"voltage": 12, "resistance":
4}``: numbers of its own, and a call that answers nothing. The local engine therefore decodes a
number argument (a property of type number or integer, or the items of an array of them) under an
``enum`` of the numbers the conversation's messages write, in digits ("2.5", "1,000", "-3") or in
words ("forty-five", "twelve", "a hundred"):

- a tool whose *required* number argument has no such number cannot be called in an ``auto``
  reply (kernel.llm.relevance: the request lacks what the tool needs, so the reply is text); with
  ``required`` or a named tool the call was demanded, and its schema is left as it is;
- an optional number argument with no such number cannot be written (the tool's default applies);
- an argument with its own ``enum`` or ``const`` keeps it; one of ``format`` ``float`` or
  ``double`` (OpenAPI's number formats) is written with a fraction part (``10.0``);
- an argument whose whole name the user writes right before a number ("a width of 7 units and a
  length of 10 units", "a = 3", "a current of 20 Amperes": ``bound``) takes only the numbers
  written there. Against BFCL's expected answers this binding is right for 184 of the 187
  arguments it binds in simple_python, multiple, live_simple and live_multiple (the other three
  need a unit converted: "50mH" is 0.05); the model had swapped ``width`` and ``length``.

A boolean argument is what the user's words say of it (``asked``: the user's turns, lower case):

- one they do not name (no word of its name, of four letters or more) is left out if optional (the
  tool's default applies) and left to the model if required;
- one they name is true, or false where a negation comes before the name in the same clause ("not",
  "no", "without", "never", "neither", "nor", "n't", "exclude", "non-": "avoid tolls" is
  ``avoid_tolls: true``, "it shouldn't be unisex" is ``is_unisex: false``), and is written even if
  optional; a name that is itself negative is read through its negative word ("without tolls" is
  ``avoid_tolls: true``, see ``said_bool``).

Against the expected answers of BFCL's cases (``bench/bfcl.py``'s data) the rule gives 30 of the 30
named booleans of simple_python and 15 of 16 of multiple, and leaves out 12 of 15 unnamed optional ones
where the default was expected (docs/llm.md has every category).

What it does not do: arithmetic. A number the model would have to compute ("half of 30") is not
offered; an agent that wants one passes the expression to a calculator tool (its arguments are
strings, which this leaves alone) or computes it itself.
"""

from __future__ import annotations

import functools
import re

DIGITS = re.compile(r"(?<![\w.^])-?(?:\d{1,3}(?:,\d{3})+(?![\d])|\d+)(?:\.\d+)?(?:[eE][-+]?\d+(?![\w.]))?")
UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
WORDS = re.compile(r"[a-z]+(?:-[a-z]+)?")
MAX_NUMBERS = 64  # an enum that long is still a small grammar; a conversation with more keeps the first


class PercentWhole(int):
    """The N of "N%" or "N percent": an integer argument, or one whose description says it is in
    percent, may take it; another number argument takes N/100, which is what a rate means (BFCL:
    N/100 in 18 of the 20 simple_python cases that write a percentage)."""


class PercentWholeF(float):
    """PercentWhole for a fractional N ("2.5%")."""


PERCENT = re.compile(r"\s*(?:%|per\s?cent\b)", re.I)
SCALED = re.compile(r"[ \t]*(thousand|million|billion|trillion)\b", re.I)  # "213 million", "8.5 billion"


def numbers(texts: list[str]) -> list[int | float]:
    """The numbers ``texts`` write, in order of first appearance, each once. "5%" is 0.05 and a
    PercentWhole 5; "8.5 million" is 8500000 (and 8.5, the figure as written); a group of
    thousands that opens a bracketed list ("[200,300,400]") is also read as the list's numbers."""
    out: dict[int | float, int | float] = {}
    for text in texts:
        found = []
        for m in DIGITS.finditer(text):
            found += [(m.start(), v) for v in _read(text, m)]
            if PERCENT.match(text, m.end()):
                continue
            if "," in m.group() and text[max(0, m.start() - 64):m.start()].rstrip()[-1:] in ("[", "(", ","):
                found += [(m.start(), _value(part)) for part in m.group().split(",")]
        found += _words(text.lower())
        for _, v in sorted(found, key=lambda x: x[0]):
            if v not in out or (isinstance(out[v], (PercentWhole, PercentWholeF)) and type(v) in (int, float)):
                out[v] = v  # a number written plainly is plain, even after "N%" wrote it
    return list(out.values())[:MAX_NUMBERS]


def _value(s: str) -> int | float:
    s = s.replace(",", "")
    v = float(s)
    return int(v) if v.is_integer() and "." not in s and abs(v) < 2**53 else v


def _words(text: str) -> list[tuple[int, int]]:
    """(position, value) of each number written in words: "forty-five", "three hundred and
    twelve", "a thousand", "twelve"; punctuation ends one."""
    out: list[tuple[int, int]] = []
    total, current, start, end = 0, None, 0, 0

    def flush():
        nonlocal total, current
        if current is not None or total:
            out.append((start, total + (current or 0)))
        total, current = 0, None

    for m in WORDS.finditer(text):
        word, parts = m.group(), m.group().split("-")
        if text[end:m.start()].strip():
            flush()
        end = m.end()
        if len(parts) <= 2 and all(p in UNITS or p in TENS for p in parts):
            if current is None and not total:
                start = m.start()
            current = (current or 0) + sum(UNITS.get(p, 0) + TENS.get(p, 0) for p in parts)
        elif word in SCALES and (current is not None or text[max(0, m.start() - 2):m.start()] == "a "):
            if current is None and not total:
                start = m.start()
            total += (current or 1) * SCALES[word]
            current = None
        elif word == "and" and total:
            continue
        else:
            flush()
    flush()
    return out


def name_words(name: str) -> set[str]:
    """The words of an identifier, lower case: get_weather, getWeather, get-weather -> {"get", "weather"}."""
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name)}


MAX_NAME_WORD = 32  # a longer word of an argument's name is never looked for in the conversation


class Mentions:
    """Where ``text`` (lower case) first writes a word that starts with a given word (what the pattern
    ``\\bword`` finds), in time linear in the text however many words are looked up: a tool list of
    64 KiB can name a thousand arguments, and searching the conversation once for each of their words
    held the grammar thread for 10 s (``re.search`` per word over a 100 KB message)."""

    def __init__(self, text: str):
        self.first: dict[str, int] = {}
        for m in re.finditer(r"\w+", text):
            self.first.setdefault(m.group(), m.start())
        self._prefixes: dict[int, dict[str, int]] = {}  # length -> {prefix: first position}

    def at(self, word: str) -> int | None:
        n = len(word)
        if not 0 < n <= MAX_NAME_WORD:
            return None
        table = self._prefixes.get(n)
        if table is None:  # at most MAX_NAME_WORD tables, each one pass over the text's distinct words
            table = self._prefixes[n] = {}
            for w, pos in self.first.items():
                if len(w) >= n and pos < table.get(w[:n], pos + 1):
                    table[w[:n]] = pos
        return table.get(word)


@functools.lru_cache(maxsize=8)
def mentions(text: str) -> Mentions:
    """One index per conversation (ground() runs once per tool)."""
    return Mentions(text)


def _first_mention(name: str, text: str) -> tuple[int, str] | None:
    """(position, word) of the first word of the argument ``name`` (four letters or more) that ``text``
    (lower case) writes; None if it writes none."""
    index = mentions(text)
    found = [(pos, w) for w in name_words(name) if len(w) >= 4 and (pos := index.at(w)) is not None]
    return min(found) if found else None


def _named(name: str, text: str) -> bool:
    """Does ``text`` (lower case) name the argument ``name`` (a word of it, of four letters or more)?"""
    return _first_mention(name, text) is not None


NEGATION = re.compile(r"\b(?:not|no|without|never|neither|nor|exclud\w*)\b|n't\b|\bnon-?$")
CLAUSE = re.compile(r"[.?!;:,()]")


# words that make an argument's name negative: "avoid_tolls" is true for "without tolls"
NEGATIVE_NAMES = frozenset("avoid exclude without disable skip ignore hide omit prevent block".split())


def said_bool(name: str, asked: str) -> bool | None:
    """What ``asked`` (lower case) says of the boolean argument ``name``: None where it does not name
    it, else True unless a negation comes before the first mention in its clause. An argument whose
    name is negative (``avoid_tolls``) is read through its negative word where that is what the user
    wrote ("avoid tolls", "don't avoid tolls"); through its other words a negation makes it true
    ("without tolls", "no tolls") and anything else says nothing sure ("with tolls": None)."""
    words = name_words(name)
    first = _first_mention(name, asked)
    if first is None:
        return None
    at, word = first
    clause = CLAUSE.split(asked[max(0, at - 80):at].replace("\u2019", "'"))[-1]
    negated = bool(NEGATION.search(clause))
    if words & NEGATIVE_NAMES and word not in NEGATIVE_NAMES:
        return True if negated else None
    return not negated


MAX_BOUND_TEXT = 8000  # characters: the user's last words that ``bound`` reads (bounds its work per argument)


def bound(name: str, asked: str) -> list[int | float]:
    """The numbers the user writes right after an argument's whole name: "a width of 7 units and a
    length of 10 units" binds ``width`` to 7 and ``length`` to 10, "a = 3" binds ``a``, "a current
    of 20 Amperes" binds ``current`` (each as ``numbers`` reads it: "5%" is 0.05 and 5). The name's
    words in order (plurals alike), then "of", "is", "was", "at", "=", ":" or nothing, then the
    number. A name with a digit ("charge2") or of more than four words binds nothing, and one of a
    single letter binds only with "=" or ":". ``asked``: the user's words, lower case; its last
    ``MAX_BOUND_TEXT`` characters are read once, however many arguments look (``_bindings``)."""
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]
    if not words or len(words) > 4 or any(w.isdigit() or len(w) > MAX_NAME_WORD for w in words):
        return []
    return list(_bindings(asked[-MAX_BOUND_TEXT:]).get(tuple(map(_singular, words)), ()))


def _singular(w: str) -> str:
    return w[:-1] if len(w) > 3 and w.endswith("s") else w


BIND_SEP = re.compile(r"(?:\s(?:of|is|was|at)|\s*[=:])$")
BIND_WORDS = re.compile(r"[a-z]+(?:[ \t_-]+[a-z]+)*$")


@functools.lru_cache(maxsize=8)
def _bindings(text: str) -> dict[tuple[str, ...], tuple]:
    """For each number ``text`` writes after words (see ``bound``): the last one to four of those
    words (singular) -> the numbers written after them."""
    out: dict[tuple[str, ...], tuple] = {}
    for m in DIGITS.finditer(text):
        head = text[max(0, m.start() - 80):m.start()]
        h = head.rstrip()
        h = h[:-1].rstrip() if h.endswith("$") else h  # "a price of $5"
        sep = BIND_SEP.search(h)
        h = h[:sep.start()].rstrip() if sep else h
        run = BIND_WORDS.search(h)
        if run is None:
            continue
        said = re.findall(r"[a-z]+", run.group())[-4:]
        vals = _read(text, m)
        for k in range(1, len(said) + 1):
            if k == 1 and len(said[-1]) == 1 and not (sep and sep.group().strip() in "=:"):
                continue
            key = tuple(map(_singular, said[-k:]))
            out[key] = out.get(key, ()) + tuple(v for v in vals if v not in out.get(key, ()))
    return out


def _read(text: str, m) -> list[int | float]:
    """The number ``m`` matched in ``text`` as ``numbers`` reads it: "5%" is 0.05 and a
    PercentWhole 5, "8.5 million" is 8500000 and 8.5."""
    v = _value(m.group())
    if PERCENT.match(text, m.end()):
        return [round(v / 100, 12), (PercentWhole if isinstance(v, int) else PercentWholeF)(v)]
    scale = SCALED.match(text, m.end())
    if scale:
        whole = round(v * (SCALES | {"trillion": 10**12})[scale.group(1).lower()], 6)
        return [int(whole) if float(whole).is_integer() and abs(whole) < 2**53 else whole, v]
    return [v]


def _same_number(v, x, kind) -> bool:
    """Is ``v`` (an argument's enum value) the number ``x`` (a bound one)? For a number argument a
    percentage's whole is not the plain number ("5%" binds 0.05, not the 5 of "5 years")."""
    whole = (PercentWhole, PercentWholeF)
    return v == x and (kind == "integer" or isinstance(v, whole) == isinstance(x, whole))


def _ground_number(p: dict, nums: list[int | float]) -> dict | None:
    """``p`` (a number or integer schema) under an enum of ``nums``; None when none fits."""
    if {"enum", "const"} & p.keys():
        return p
    if p.get("type") == "number":  # a rate: "5%" is 0.05, and 5 where the argument is in percent
        said = "percent" in str(p.get("description", "")).lower()
        vals = [v for v in nums if said or not isinstance(v, (PercentWhole, PercentWholeF))]
    else:
        vals = [v for v in nums if isinstance(v, int) or float(v).is_integer()]
    if p.get("type") == "integer":
        vals = list(dict.fromkeys(int(v) for v in vals))
    lo, hi = p.get("minimum"), p.get("maximum")
    vals = [v for v in vals if (lo is None or v >= lo) and (hi is None or v <= hi)]
    if p.get("format") in ("float", "double"):
        vals = list(dict.fromkeys(float(v) for v in vals))
    if not vals:
        return None
    return {k: v for k, v in p.items() if k not in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                                       "multipleOf")} | {"enum": vals}


def ground(parameters: dict, nums: list[int | float], text: str | None = None,
           asked: str | None = None) -> dict | None:
    """A tool's parameters with its number arguments grounded in ``nums``; None when a required
    one cannot be (the tool cannot be called from this conversation). ``text``, the
    conversation's words: an optional number argument is offered only when they name it.
    ``asked``, the user's words: what a boolean argument is (``said_bool``)."""
    if not isinstance(parameters, dict) or not isinstance(parameters.get("properties"), dict):
        return parameters
    required = set(parameters.get("required") or ())
    props = {}
    for name, p in parameters["properties"].items():
        q = p
        if asked is not None and isinstance(p, dict) and p.get("type") == "boolean" \
                and not {"enum", "const"} & p.keys():
            said = said_bool(name, asked)
            if said is None and name not in required:
                continue  # not asked about: the tool's default
            if said is not None:
                props[name] = dict(p, enum=[said])
                required.add(name)
                continue
        if isinstance(p, dict) and p.get("type") in ("number", "integer"):
            q = _ground_number(p, nums)
            said = bound(name, asked) if q is not None and q is not p and asked is not None else []
            kept = [v for v in q["enum"] if any(_same_number(v, x, p.get("type")) for x in said)] if said else []
            if kept:
                q = dict(q, enum=kept)  # "a width of 7": width is 7
        elif isinstance(p, dict) and p.get("type") == "array" and isinstance(p.get("items"), dict) \
                and p["items"].get("type") in ("number", "integer"):
            items = _ground_number(p["items"], nums)
            q = None if items is None else dict(p, items=items)
        if q is not p and name not in required and text is not None and not _named(name, text):
            q = None  # an optional number the conversation does not ask for: the tool's default
        if q is None:
            if name in required:
                return None
            continue
        props[name] = q
    out = dict(parameters, properties=props)
    if required - set(parameters.get("required") or ()):
        out["required"] = [n for n in props if n in required]
    return out


SHORT_VALUE = 4  # words: a name, a unit, a mode; a longer string is text the model composed (a query, a message)
SHORT_CHARS = 80  # and characters (which also bounds the search for it in the conversation)


def settle(calls: list[dict], params: dict[str, dict], text: str) -> list[dict]:
    """``calls`` (a reply's decoded tool calls) with the optional string arguments the conversation
    does not speak to left out, so the tool's default applies, as ``ground`` leaves out optional
    numbers and booleans before decoding. A string's value is only known once written, so this
    runs on the reply. ``params``: each tool's parameters by name; ``text``: the conversation's
    words (lower case).

    An optional string argument (no ``enum`` or ``const``: those are the tool's own words) is left
    out where its value repeats another argument of the same call (``{"snp_id": "rs6034464",
    "species": "rs6034464"}``), or where it is short (``SHORT_VALUE`` words and ``SHORT_CHARS``
    characters at most) and the conversation neither names the argument nor writes the value
    (``unit: "F"`` for a trip from New York to Washington; "by train" keeps ``transportation:
    "train"``, "5m" keeps ``units: "m"``). A longer value is text the model composed (a message, a
    query) and is kept. A required argument is never touched."""
    flat = None
    out = []
    for call in calls:
        found = _typed_call(call, params)
        if found is None:
            out.append(call)
            continue
        args, props, required = found
        values = {name: " ".join(v.lower().split()) for name, v in args.items() if isinstance(v, str)}
        written = {}  # value -> how many arguments wrote it
        for value in values.values():
            written[value] = written.get(value, 0) + 1
        keep = {}
        for name, v in args.items():
            p = props.get(name)
            if name in required or not isinstance(v, str) or not isinstance(p, dict) \
                    or p.get("type") != "string" or {"enum", "const"} & p.keys():
                keep[name] = v
                continue
            value = values[name]
            if written[value] > 1:
                continue  # a value also written for another argument
            if len(value.split()) <= SHORT_VALUE and len(value) <= SHORT_CHARS and not _named(name, text):
                flat = " ".join(text.split()) if flat is None else flat
                if not _said(value, flat):
                    continue
            keep[name] = v
        out.append(call if len(keep) == len(args) else dict(call, arguments=keep))
    return out


def _typed_call(call, params: dict[str, dict]) -> tuple[dict, dict, set] | None:
    """(arguments, the tool's properties, its required names) of a decoded call of a tool in
    ``params``; None for anything else."""
    name = call.get("name") if isinstance(call, dict) else None
    schema = params.get(name) if isinstance(name, str) else None
    args = call.get("arguments") if isinstance(call, dict) else None
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(args, dict) or not isinstance(props, dict):
        return None
    return args, props, set(schema.get("required") or ())


def _said(value: str, text: str) -> bool:
    """Does ``text`` write ``value`` (both lower case, spaces collapsed) with no letter joined to
    either end? ("5m" writes "m"; "from" does not.)"""
    if not value:
        return False
    at = text.find(value)
    while at >= 0:
        end = at + len(value)
        if (at == 0 or not text[at - 1].isalpha()) and (end == len(text) or not text[end].isalpha()):
            return True
        at = text.find(value, at + 1)
    return False


def wanting(call: dict, params: dict[str, dict]) -> bool:
    """Does ``call`` leave a required string argument without a value of its own: the value of
    another required string argument (``get_dominant_trait(allele1="rs7412", allele2="rs7412")``
    asked for the frequency of one variant) or the argument's own name (``cell_shape:
    "cell_shape"``)? Then the request lacks what the tool needs, as when a required number has no
    number of the conversation to take (``ground``): the engine leaves the call out of an ``auto``
    reply, and a reply left without calls is answered in text."""
    found = _typed_call(call, params)
    if found is None:
        return False
    args, props, required = found
    values = {}
    for name, v in args.items():
        p = props.get(name)
        if name in required and isinstance(v, str) and isinstance(p, dict) and p.get("type") == "string" \
                and not {"enum", "const"} & p.keys():
            values[name] = " ".join(v.lower().split())
    return len(set(values.values())) < len(values) or any(v == name.lower() for name, v in values.items())
