"""Parallel calls: what the request lists or describes again, one call each, where the model wrote one.

Asked "Find the factorial of 5, 10 and 15" with ``math_factorial(number)``, the embedded 135M
model writes ``math_factorial(number=5)`` and closes the list: on BFCL's parallel category it
wrote exactly one call in 98 cases of 100, whatever the prompt said about several calls. What
it gets right is the first call; what it leaves out is in the request. So for a reply to a
request that ends with the user's turn, the local engine completes the calls, in three shapes:

- **A list** (``_more``): an argument whose value is one item of a list the request writes
  (numbers: "5, 10 and 15", "20 minutes and 15 minutes"; words: "Taylor Swift and Maroon 5",
  "the nucleus, mitochondria, and cytoplasm"; quoted: "'Friends' and 'The Office'") makes one
  more call per other item, that argument replaced and every other as the model wrote it. A
  list ends with "and"/"or" before its last item ("Tokyo, Japan" is not one), counts only if
  the call took none of its other items ("Chicago, Illinois" as city and state is one call),
  and two lists in one call go item by item where the request says "respectively" and as
  every combination otherwise ("BRCA1 and BRCA2 in Homo sapiens and Pan troglodytes": four).
  A word item looks like the value (as many words or up to two more, a capital where it has
  one, a digit first only where it has one, no leading article where it has none) and ends
  where the list does (punctuation, "and"/"or", a preposition, the end), never in the middle
  of a clause ("…, and can you also provide", "and I'm looking", "and takes under 30 minutes"
  are no items).
- **Bracketed groups** (``_groups``): a call that took one group's numbers ("the pairs (45, 60)
  and (81, 27)") or an argument's array ("the first set is [12, 15, 11] and the second set is
  [32, 35, 31]") is made again for each other group.
- **A description repeated with other values** (``_echoes``, where neither is found): "a base of
  10 meters and a height of 5 meters, the second garden has a base of 15 meters and a height of
  7 meters". A number argument's value is found with the two words before it (none for a part
  of a date, a time or an expression: "12/03/2024 16:00", "17 * 23"); each other
  number after the same two words, before or after it, (or after the same word and before the same unit: "for a
  7-day trip" … "for a 10-day trip"; or after the same noun, each after a preposition or a
  conjunction: "of the number 4567 and the number 7890") is that argument in one more call, and a string argument
  changes with it where the request writes another value in the same place ("trip to Tokyo" …
  "trip to Paris", "gini criterion" … "entropy criterion").

Three shapes also correct the model's own call, because a small model reads them wrong more often
than right (BFCL parallel: ``gcd(45, 81)`` for "(45, 60) and (81, 27)", ``bmi(height=80,
weight=60)`` for "6 feet tall and weighs 80 kg, also … 5.6 feet and weighs 60 kg"):

- **Groups, read in order** (``regroup``): where the request writes two or more groups of n
  numbers, bracketed or as pairs ("3 and 4, 5 and 12"), a call whose n number arguments took
  numbers of the groups is one call per group, each group's numbers in the order the tool lists
  its arguments.
- **Things described in the same words** (``retable``): where the request's numbers fall into
  slots (numbers written in the same place, as the echoes above find them: "who is 6 feet" …
  "who is 5.6 feet", "weighs 80 kg" … "weighs 60 kg"), every slot with one number per thing and
  the things one after another, a call with one number argument per slot is one call per thing.
  An argument keeps the slot its value is in; arguments whose value is in no slot, or in one
  another argument's is in, take the slots left in the order the tool lists them and the
  request writes them.
- **Numbered arguments in the order written** (``renumber``): ``mass1`` and ``mass2`` take the two
  numbers the request writes before one unit, in its order ("20 kg … 15 kg"), where it writes
  exactly that many and the model's values are among them.

With the first two, and with echoes, a string argument that the request writes once per thing in the
same place ("stage 7 in easy mode and stage 3 in hard mode", or one quoted text per thing) goes
with the numbers in the order the request writes them, in the model's call too.

An added or corrected call keeps its tool's schema (``_fits``), at most ``MAX_CALLS`` come back, and a fault
here leaves the model's calls as they were. It runs on the engine thread, so its work is bounded
whatever the agent sends: a request over ``MAX_REQUEST`` characters or a call with more than
``MAX_ARGS`` arguments is left alone, and a run of more than ``MAX_ITEMS`` numbers is data.

What it does not do: a repetition in other words ("do the same for a loss of $1000"), values
the model would have to compute, and calls of different tools (BFCL parallel_multiple). No vocabulary of any task is used: the rules read
punctuation, conjunctions, prepositions and the request's own words around its values.
``--tool_decision model`` turns this off with the rest of the engine's tool decision.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import re

from kernel.llm import ground
from kernel.llm.constrain import MAX_CALLS

log = logging.getLogger("aios.engine")

MAX_REQUEST = 4000  # characters: a longer request is a document, not a list of calls (and bounds the work)
MAX_ARGS = 32  # a call with more arguments is not fanned out (and bounds the work: arguments x items x arguments)
MAX_ITEMS = 32  # a longer run of numbers is data, not alternatives
CONJUNCTION = re.compile(r"\b(?:and|or)\b|&", re.I)
SEP = re.compile(r"\s*(?:,\s*(?:and\s+|or\s+)?|\s(?:and|or|&)\s+)", re.I)  # between two items of a list
STOP = frozenset(  # a word item never runs past these: where a list ends and the clause goes on
    "in on at for from with to of by into onto via per using over under near between during within "
    "about after before since until respectively then also each both as is are was were be been "
    "can could would should will shall may might must do does did please what which who whose how "
    "when where why that this these those it its they their you your i me my we our".split())
ARTICLES = ("a", "an", "the")
UNIT = re.compile(r"(\s*-\s*|\s*)([A-Za-z]+)")  # the word after a number ("10 meters", "a 7-day trip")
WORD = re.compile(r"[^\W_][\w'’.-]*|&", re.U)


def plan(messages: list[dict], tools, tool_choice) -> tuple[str, dict[str, dict]] | None:
    """What ``complete`` reads for a request with ``tools``: (the user's request, each callable
    tool's parameters), or None where the reply's calls are left as the model writes them (a
    reply after a tool's result, or ``tool_choice: "none"``)."""
    from kernel.llm import constrain

    functions, mode = constrain.chosen(constrain.tool_functions(tools), tool_choice)
    if mode == "none" or not messages or messages[-1].get("role") != "user":
        return None
    request = messages[-1].get("content")
    if not isinstance(request, str) or not request.strip() or len(request) > MAX_REQUEST:
        return None
    return request, {f["name"]: f["parameters"] for f in functions}


def complete(calls: list[dict], request: str, params: dict[str, dict]) -> list[dict]:
    """``expand`` for the engine: only calls that keep their tool's schema are added, and a
    fault here leaves the model's calls as they were (logged), never the reply without them."""
    try:
        ordered = retable(regroup([renumber(c, request, params) for c in calls], request, params), request, params)
        out = expand(ordered, request, params)
        firsts = {c["name"]: c["arguments"] for c in reversed(ordered)}
        added = [c for c in out[len(ordered):] if _fits(c["arguments"], firsts.get(c["name"], {}), params.get(c["name"]))]
        head = [o if _fits(o["arguments"], c["arguments"], params.get(c["name"])) else c for o, c in zip(out, ordered)]
        if added:
            log.debug("fan-out: %d call(s) added to the model's %d", len(added), len(calls))
        return list({_call_key(c): c for c in head + added}.values())  # a corrected call may now be another's
    except Exception:
        log.exception("fan-out failed; the model's calls are kept")
        return calls


def _fits(args: dict, was: dict, schema) -> bool:
    """Does each argument that differs from the model's call (``was``) keep its property's type,
    enum, length and range? A string whose property has a pattern or format is not replaced: the
    pattern is the agent's, and only the grammar's linear-time matcher runs it."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return False
    return all(v == was.get(name) or _value_fits(v, props.get(name)) for name, v in args.items())


def _value_fits(v, p) -> bool:
    if not isinstance(p, dict) or ("enum" in p and v not in p["enum"]) or "const" in p:
        return False
    if isinstance(v, list):
        return p.get("type") == "array" and len(v) <= p.get("maxItems", MAX_CALLS) and \
            all(_value_fits(x, p.get("items") if isinstance(p.get("items"), dict) else {}) for x in v)
    if isinstance(v, str):
        return (p.get("type") in (None, "string") and not {"pattern", "format"} & p.keys()
                and p.get("minLength", 1) <= len(v) <= p.get("maxLength", 10**6) and not set("{}<>\n") & set(v))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (p.get("type") in (None, "number") or (p.get("type") == "integer" and isinstance(v, int))) and \
            p.get("minimum", v) <= v <= p.get("maximum", v)
    return False


def expand(calls: list[dict], request: str, params: dict[str, dict]) -> list[dict]:
    """``calls`` and, after each, the calls its list arguments call for (see the module
    docstring); ``params``: each tool's JSON schema parameters, by name."""
    if not calls or not request:
        return calls
    taken = {_key(v) for c in calls for v in _scalars(c.get("arguments"))}
    out, seen = list(calls), {_call_key(c) for c in calls}
    for c in calls:
        schema = params.get(c.get("name"))
        if not isinstance(c.get("arguments"), dict) or len(c["arguments"]) > MAX_ARGS:
            continue
        extras = _more(c, request, schema, taken) or _groups(c, request, schema)
        if not extras:
            first, extras = _echoes(c, request, schema)
            if first is not None and extras:
                out[out.index(c)] = first  # the strings go with the numbers in the order the request writes them
                seen.add(_call_key(first))
        if not extras:
            extras = _pairs(c, request, schema, calls)
        for extra in extras:
            k = _call_key(extra)
            if k not in seen and len(out) < MAX_CALLS:
                seen.add(k)
                out.append(extra)
    return out


def _more(call: dict, request: str, schema: dict | None, taken: set) -> list[dict]:
    args = call.get("arguments")
    if not isinstance(args, dict) or not isinstance(schema, dict):
        return []
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    own = {_key(v) for v in _scalars(args)}
    lists: dict[str, tuple[list, int]] = {}
    for name, value in args.items():
        prop = props.get(name)
        one = isinstance(value, list) and len(value) == 1 and isinstance(prop, dict) and prop.get("type") == "array"
        if one:  # ["Apple"] for "Apple, Microsoft and Tesla": one item per call
            value, prop = value[0], prop.get("items") if isinstance(prop.get("items"), dict) else {}
        if not isinstance(prop, dict) or isinstance(value, bool) or not isinstance(value, (str, int, float)):
            continue
        found = items_of(request, value)
        if found is None:
            continue
        items, at = found
        others = [x for i, x in enumerate(items) if i != at]
        if any(_overlaps(_key(x), o) for x in others for o in own):
            continue  # the call took two items of it: not a list of alternatives for this argument
        typed = [_as(prop, x) for x in items]
        if any(x is None for x in typed):
            continue
        lists[name] = ([[x] for x in typed] if one else typed, at)
    if not lists:
        return []
    names = list(lists)
    lengths = {len(lists[n][0]) for n in names}
    if len(names) > 1 and len(lengths) == 1 and len({lists[n][1] for n in names}) == 1 \
            and re.search(r"\brespectively\b", request, re.I):
        combos = [tuple(lists[n][0][i] for n in names) for i in range(lengths.pop())]
    else:  # lazily, and never more than a few times the calls that can come back (9 items x 10 arguments
        # would be 3.5e9 combinations)
        combos = itertools.islice(itertools.product(*(lists[n][0] for n in names)), 4 * MAX_CALLS)
    out = []
    for combo in combos:
        if any(_key(v) in taken and _key(v) not in own for v in combo):
            continue  # another call of the reply already took that item
        new = dict(args, **dict(zip(names, combo)))
        if new != args:
            out.append({"name": call["name"], "arguments": new})
    return out[:MAX_CALLS]


GROUP = re.compile(r"([(\[])\s*(-?\d+(?:\.\d+)?(?:\s*,\s*-?\d+(?:\.\d+)?)+)\s*[)\]]")  # "(45, 60)", "[12, 15, 11]"


def _groups(call: dict, request: str, schema: dict | None) -> list[dict]:
    """The calls for the other bracketed groups of numbers the request writes, where the call took
    one group: its numbers as arguments ("the pairs (45, 60) and (81, 27)": ``gcd(45, 60)``, then
    ``gcd(81, 27)``), or one argument's array ("the first set is [12, 15, 11] and the second set is
    [32, 35, 31]"). A group the call also used, or one of another size for a pair, is not one."""
    args = call.get("arguments")
    if not isinstance(args, dict) or not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return []
    groups = [(m.group(1), [ground._value(x) for x in re.split(r"\s*,\s*", m.group(2))]) for m in GROUP.finditer(request)]
    scalars = {n: v for n, v in args.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    out = []
    for kind, g in groups:
        arrays = [n for n, v in args.items() if isinstance(v, list) and v == g]
        if arrays:  # one argument's array: each other group of the same bracket is that argument in one call
            others = [h for k, h in groups if k == kind and h != g and not any(h == v for v in args.values())]
            out = [dict(args, **{arrays[0]: h}) for h in others]
            break
        if len(g) >= 2 and len(set(g)) == len(g) and sorted(scalars.values()) == sorted(g):
            where = {n: g.index(v) for n, v in scalars.items()}
            others = [h for k, h in groups if k == kind and len(h) == len(g) and h != g]
            out = [dict(args, **{n: h[i] for n, i in where.items()}) for h in others]
            break
    props = schema["properties"]
    calls = []
    for new in out:
        typed = {n: ([_as(props.get(n, {}).get("items") or {}, x) for x in v] if isinstance(v, list)
                     else _as(props.get(n) or {}, v)) for n, v in new.items() if new[n] != args[n]}
        if all(x is not None and (not isinstance(x, list) or None not in x) for x in typed.values()):
            calls.append({"name": call["name"], "arguments": dict(new, **typed)})
    return calls[:MAX_CALLS - 1]


NUM = r"-?\d+(?:\.\d+)?"
PAIR = re.compile(r"(?<![\w.,(\[])(%s)\s+and\s+(%s)(?!\w|[.,]\d)" % (NUM, NUM))  # "3 and 4"
PAIR_SEP = re.compile(r"\s*[,;]\s*(?:and\s+)?|\s+and\s+")


def _tuples(request: str) -> list[list]:
    """The groups of numbers the request writes when it writes two or more of one size: bracketed
    ("(45, 60) and (81, 27)") or pairs joined by "and" ("3 and 4, 5 and 12")."""
    groups = [[ground._value(x) for x in re.split(r"\s*,\s*", m.group(2))] for m in GROUP.finditer(request)]
    if len(groups) < 2:  # pairs joined by "and", one after another: "3 and 4, 5 and 12"
        runs: list[list] = [[]]
        for m in PAIR.finditer(request):
            if runs[-1] and not PAIR_SEP.fullmatch(request, runs[-1][-1].end(), m.start()):
                runs.append([])
            runs[-1].append(m)
        groups = [[ground._value(m.group(1)), ground._value(m.group(2))] for m in max(runs, key=len)]
    return groups if len(groups) >= 2 and len({len(g) for g in groups}) == 1 and len(groups[0]) >= 2 else []


def regroup(calls: list[dict], request: str, params: dict[str, dict]) -> list[dict]:
    """Where the request writes two or more groups of n numbers and a tool's call takes n of their
    numbers as its number arguments, one call of it per group, each group's numbers in the order the
    tool lists those arguments: "the GCD of the pairs (45, 60) and (81, 27)" is ``gcd(45, 60)`` and
    ``gcd(81, 27)`` whether the model wrote ``gcd(45, 81)`` (the first of each) or ``gcd(60, 45)``.
    Other calls are kept as the model wrote them."""
    groups = _tuples(request) if len(request) <= MAX_REQUEST else []
    if not groups:
        return calls
    pool = {v for g in groups for v in g}
    out, done = [], set()
    for c in calls:
        found = _number_args(c, params)
        if found is None or len(found[2]) != len(groups[0]) or not all(found[0][n] in pool for n in found[2]):
            out.append(c)
            continue
        if c["name"] in done:
            continue  # the tool's calls are the groups'
        args, schema, nums = found
        each = _each(c, [dict(args, **{n: _as(schema["properties"][n], v) for n, v in zip(nums, g)}) for g in groups],
                     schema)
        out.extend(each or [c])  # a set the schema refuses: the model's call stays
        if each:
            done.add(c["name"])
    return out[:max(MAX_CALLS, len(calls))]


def _number_args(call: dict, params: dict[str, dict]) -> tuple[dict, dict, list[str]] | None:
    """(arguments, the tool's schema, the number arguments in the order the tool lists them) of a
    call, or None for a call the corrections leave alone."""
    args, schema = call.get("arguments"), params.get(call.get("name"))
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(args, dict) or not isinstance(props, dict) or len(args) > MAX_ARGS:
        return None
    return args, schema, [n for n in props if n in args and isinstance(args[n], (int, float)) and not isinstance(args[n], bool)]


def _each(call: dict, made: list[dict], schema: dict) -> list[dict] | None:
    """One call of ``call``'s tool per arguments of ``made`` (at most ``MAX_CALLS``), or None where one
    of them is not of the tool's schema."""
    if any(None in new.values() for new in made) or not all(_fits(new, call["arguments"], schema) for new in made):
        return None
    return [{"name": call["name"], "arguments": new} for new in made[:MAX_CALLS]]


def _echoes(call: dict, request: str, schema: dict | None) -> tuple[dict | None, list[dict]]:
    """The calls the request describes again in the same words, with other numbers: "a base of
    10 meters and a height of 5 meters, the second garden has a base of 15 meters and a height of
    7 meters", "6 feet tall and weighs 80 kg, also for a person who is 5.6 feet and weighs 60 kg".

    Each number argument's value is found in the request with the two words before it (articles
    left out); every other number the request writes after the same two words, before or after
    it (the model may have taken the second: "a change in time of 4 seconds, then repeat with a
    change in time of 10 seconds"), is that argument's value in one more call, in order of
    appearance (the k-th of each argument's echoes go in the k-th new call; an argument with fewer
    keeps the first call's value). The numbers no argument took that way may still be one's by the
    other readings of ``SAME`` (the word before and the unit after: "for a 7-day trip" ... "for a
    10-day trip"). Returns (the model's call with its strings put in the numbers' order, or None
    where they are already, the new calls)."""
    args = call.get("arguments")
    if not isinstance(args, dict) or not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return None, []
    tokens = _number_tokens(request)
    order: list[int] = []  # where the request writes each call's numbers (the model's call first)
    used: set[int] = set()
    spots: dict[str, int] = {}
    for name, value in args.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        at = next((i for i, t in enumerate(tokens) if t[1] == value and i not in used), None)
        if at is not None:
            used.add(at)
            spots[name] = at
    echoes: dict[str, list] = {}
    found: dict[str, list[int]] = {}
    for same in SAME:  # the closer reading first; a later one may add to what an earlier one found
        for name, at in spots.items():
            hits = [i for i, t in enumerate(tokens) if i not in used and t[0] != tokens[at][0] and same(tokens[at], t)]
            typed = [_as(schema["properties"].get(name) or {}, tokens[i][1]) for i in hits]
            if hits and None not in typed:
                found.setdefault(name, []).extend(hits)
                used.update(hits)
    for name, hits in found.items():
        hits.sort()
        echoes[name] = [_as(schema["properties"].get(name) or {}, tokens[i][1]) for i in hits]
        order = order or [tokens[spots[name]][0]] + [tokens[i][0] for i in hits]
    calls = max(map(len, echoes.values()), default=0)
    first = dict(args)
    if calls:  # the words that change with the numbers: "a 7-day trip to Tokyo ... a 10-day trip to Paris"
        own = {_key(v) for v in _scalars(args)}
        for name, value in args.items():
            prop = schema["properties"].get(name)
            if isinstance(value, str) and isinstance(prop, dict) and name not in echoes:
                spots_w = _word_echoes(request, value)
                if len(spots_w) != calls + 1:
                    quoted = _quoted(request, value)
                    spots_w = quoted if len(quoted) == calls + 1 else spots_w
                if len(spots_w) == calls + 1 == len(order) and len({_key(w) for _, w in spots_w}) == calls + 1:
                    # one word for each call: "stage 7 in easy mode and stage 3 in hard mode", each call's
                    # word the one at its number's rank, the model's call's too
                    rank = sorted(range(calls + 1), key=order.__getitem__)
                    words = [w for _, w in sorted(spots_w)]
                    typed = [_as(prop, w) for w in words]
                    if None not in typed:
                        mine = {k: typed[j] for j, k in enumerate(rank)}
                        first[name] = mine[0]
                        echoes[name] = [mine[k] for k in range(1, calls + 1)]
                        continue
                mine_at = next((p for p, w in spots_w if w == " ".join(value.split())), None)
                found = [w for p, w in spots_w if mine_at is not None and p > mine_at and _key(w) not in own]
                typed = [_as(prop, w) for w in found]
                if found and None not in typed:
                    echoes[name] = typed[:calls]
    out = []
    for k in range(calls):
        new = dict(first, **{n: v[k] for n, v in echoes.items() if k < len(v)})
        if new != first:
            out.append({"name": call["name"], "arguments": new})
    return ({"name": call["name"], "arguments": first} if first != args else None), out[:MAX_CALLS - 1]


def _same_words(t, u) -> bool:
    """Do two numbers follow the same two words?"""
    return len(t[2]) == 2 and t[2] == u[2]


def _same_unit(t, u) -> bool:
    """Do two numbers follow the same word and come before the same unit ("for a 7-day trip")?"""
    return bool(t[2]) and t[2][-1:] == u[2][-1:] and bool(t[3]) and t[3] == u[3]


def _compound(t, u) -> bool:
    """Are two numbers joined to the same word by a hyphen ("a 7-day trip" … "a 10-day trip")?"""
    return t[3][:1] == "-" and t[3] == u[3]


def _named_again(t, u) -> bool:
    """Do two numbers follow the same noun, each after a preposition or a conjunction ("the prime
    factors of the number 4567 and the number 7890")?"""
    return len(t[2]) == 2 and len(u[2]) == 2 and t[2][1] == u[2][1] and t[2][1] not in STOP \
        and t[2][1] not in ("and", "or") and {t[2][0], u[2][0]} <= STOP | {"and", "or"}


SAME = (_same_words, _same_unit, _named_again, _compound)  # two numbers written in the same place of a description


def _table(request: str) -> list[tuple[list, set[str]]] | None:
    """The request's numbers as a table when it describes two or more things in the same words: its
    slots (numbers written in the same place: ``SAME``), each with one number per thing, in the
    order the request writes them, and the words around them ("a person who is 6 feet tall and
    weighs 80 kg, also for a person who is 5.6 feet and weighs 60 kg": [6, 5.6] after "who is" and
    before "feet", [80, 60] after "and weighs" and before "kg"). None where the slots are of
    different sizes or the things' numbers interleave."""
    tokens = _number_tokens(request)
    if not 2 <= len(tokens) <= MAX_ITEMS:
        return None
    root = list(range(len(tokens)))

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i
    for i, j in itertools.combinations(range(len(tokens)), 2):
        if any(same(tokens[i], tokens[j]) for same in SAME):
            root[find(j)] = find(i)
    slots: dict[int, list[int]] = {}
    for i in range(len(tokens)):
        slots.setdefault(find(i), []).append(i)
    table = sorted((g for g in slots.values() if len(g) >= 2), key=lambda g: g[0])
    if not table or len({len(g) for g in table}) != 1:
        return None
    if any(max(tokens[g[k]][0] for g in table) > min(tokens[g[k + 1]][0] for g in table) for k in range(len(table[0]) - 1)):
        return None
    return [([tokens[i][1] for i in g], {w.lstrip("-") for i in g for w in (*tokens[i][2], tokens[i][3]) if w}) for g in table]


def renumber(call: dict, request: str, params: dict[str, dict]) -> dict:
    """``call`` with its numbered arguments (``mass1``, ``mass2``: one name and 1 to k) given the
    numbers the request writes before one unit in the order it writes them, where it writes exactly
    k numbers before that unit and the model's values are among them: "20 kg of water at 30 degree
    Celsius is mixed with 15 kg of water at 60 degree Celsius" is ``mass1=20, mass2=15`` (the model
    wrote 15 twice) and ``temperature1=30, temperature2=60``."""
    args, schema = call.get("arguments"), params.get(call.get("name"))
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(args, dict) or not isinstance(props, dict) or len(args) > MAX_ARGS or len(request) > MAX_REQUEST:
        return call
    stems: dict[str, list[tuple[int, str]]] = {}
    for name, v in args.items():
        m = re.fullmatch(r"(.*?[A-Za-z])_?(\d)", name)
        if m and isinstance(v, (int, float)) and not isinstance(v, bool):
            stems.setdefault(m.group(1), []).append((int(m.group(2)), name))
    units: dict[str, list] = {}
    for t in _number_tokens(request):
        if t[3] and t[3].lstrip("-") not in STOP and t[3] not in ("and", "or"):
            units.setdefault(re.sub(r"(?<=..)e?s$", "", t[3].lstrip("-")), []).append(t[1])
    new = dict(args)
    for names in stems.values():
        names.sort()
        if len(names) < 2 or [i for i, _ in names] != list(range(names[0][0], names[0][0] + len(names))):
            continue
        mine = {args[n] for _, n in names}
        fits = [vals for vals in units.values() if len(vals) == len(names) and mine <= set(vals)]
        if len(fits) == 1:
            typed = [_as(props.get(n) or {}, v) for (_, n), v in zip(names, fits[0])]
            if None not in typed:
                new.update({n: v for (_, n), v in zip(names, typed)})
    return call if new == args or not _fits(new, args, schema) else dict(call, arguments=new)


def retable(calls: list[dict], request: str, params: dict[str, dict]) -> list[dict]:
    """Where the request describes things in the same words (``_table``) and a tool's call has one
    number argument per slot, one call of it per thing, each argument the number of its slot: the
    model's value tells the slot ("weighs 80 kg": ``weight``), and arguments whose value tells none,
    or the same as another's, take the slots left in the order the tool lists them and the request
    writes them (``bmi(height=80, weight=60)`` for the request above is ``bmi(6, 80)`` and
    ``bmi(5.6, 60)``). Other calls are kept as the model wrote them."""
    table = _table(request) if len(request) <= MAX_REQUEST else None
    if not table:
        return calls
    out, done = [], set()
    for c in calls:
        found = _number_args(c, params)
        if found is None or len(found[2]) != len(table):
            out.append(c)
            continue
        args, schema, nums = found
        if c["name"] in done and all(any(args[n] in slot for slot, _ in table) for n in nums):
            continue  # the tool's calls are the table's
        homes = {n: [i for i, (slot, _) in enumerate(table) if args[n] in slot] for n in nums}
        mine = {n: h[0] for n, h in homes.items() if len(h) == 1 and sum(homes[o] == h for o in nums) == 1}
        left = [i for i in range(len(table)) if i not in mine.values()]
        where = dict(mine, **dict(zip([n for n in nums if n not in mine], left)))
        if any(not homes[n] and not _names(n, table[where[n]][1]) for n in nums):
            out.append(c)  # a value written nowhere in the table goes to a slot only where the slot's words name it
            continue
        props = schema["properties"]
        each = _each(c, [dict(args, **{n: _as(props[n], table[where[n]][0][k]) for n in nums})
                         for k in range(len(table[0][0]))], schema)
        out.extend(each or [c])  # a set the schema refuses: the model's call stays
        if each:
            done.add(c["name"])
    return out[:max(MAX_CALLS, len(calls))]


def _names(arg: str, words: set[str]) -> bool:
    """Does one of ``words`` (around a slot's numbers) start with a word of the argument's name, or
    the other way round ("for serving 4 people": ``serving_size``)?"""
    return any(len(a) >= 3 and len(w) >= 3 and (w.startswith(a) or a.startswith(w))
               for a in ground.name_words(arg) for w in words if w not in STOP)


PAIR_JOIN = re.compile(r"\s+(to|and|vs\.?|versus)\s+", re.I)


def _pairs(call: dict, request: str, schema: dict | None, reply: list[dict]) -> list[dict]:
    """The calls for a pair of values the request writes again after the same word: two string
    arguments whose values it writes as "<first> to|and <second>" after a preposition ("from San
    Francisco to Tokyo" … "from Tokyo to Sydney", "between New York and Washington DC, and between
    Los Angeles and San Francisco"); each other such pair is one more call, those two arguments
    replaced, unless a call of the reply (``reply``) already has that pair."""
    args = call.get("arguments")
    if not isinstance(args, dict) or not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return []
    strings = {n: " ".join(v.split()) for n, v in args.items() if isinstance(v, str) and v.strip() and len(v) <= 200}
    where = {n: m for n, m in ((n, _find(request, v)) for n, v in strings.items()) if m is not None}
    for a, b in itertools.permutations(where, 2):  # one search per value, then only positions are compared
        va, vb = strings[a], strings[b]
        j = PAIR_JOIN.match(request, where[a].end())
        before = re.search(r"(?<![\w])([A-Za-z]+)\s+$", request[max(0, where[a].start() - 40):where[a].start()])
        if j is None or j.end() != where[b].start() or before is None or before.group(1).lower() not in STOP:
            continue
        prep, join = before.group(1), j.group(1)
        out = []
        for p in itertools.islice(re.finditer(r"\b%s\s+" % re.escape(prep), request, re.I), 4 * MAX_CALLS):
            if p.end() == where[a].start():
                continue
            first = _word_item(request, p.end(), va)
            j = PAIR_JOIN.match(request, first[1]) if first else None
            second = _word_item(request, j.end(), vb) if j and j.group(1).lower() == join.lower() else None
            if second is None or any(isinstance(r.get("arguments"), dict) and _key(r["arguments"].get(a)) == _key(first[0])
                                     and _key(r["arguments"].get(b)) == _key(second[0]) for r in [call, *reply]):
                continue
            typed = [_as(schema["properties"].get(a) or {}, first[0]), _as(schema["properties"].get(b) or {}, second[0])]
            if None not in typed:
                out.append({"name": call["name"], "arguments": dict(args, **{a: typed[0], b: typed[1]})})
        if out:
            return out[:MAX_CALLS - 1]
    return []


def _word_echoes(request: str, value: str) -> list[tuple[int, str]]:
    """(where, words) for ``value`` and each other value shaped like it that the request writes in
    the same place, before or after it: after the two words before it ("trip to Tokyo" ... "trip to
    Paris") or before the word after it ("gini criterion" ... "entropy criterion")."""
    v = " ".join(value.split())
    m = _find(request, v)
    if m is None or not v:
        return []
    before = [w for w in re.findall(r"[A-Za-z]+", request[:m.start()][-80:]) if w.lower() not in ARTICLES][-2:]
    after = re.match(r"\s+([A-Za-z]+)\b", request[m.end():])
    found: dict[int, str] = {m.start(): v}
    art = r"\s+(?:(?:a|an|the)\s+)?"
    if len(before) == 2:
        for b in re.finditer(r"\b" + re.escape(before[0]) + art + re.escape(before[1]) + art, request, re.I):
            item = _word_item(request, b.end(), v)
            if item is not None and b.end() != m.start():
                found.setdefault(b.end(), item[0])
    if after and after.group(1).lower() not in STOP:
        n = len(v.split())
        for a in re.finditer(r"(?<![\w'’-])((?:[^\W_][\w'’-]*\s+){%d})%s\b" % (n, re.escape(after.group(1))), request, re.I):
            item = a.group(1).strip()
            words = item.split()
            if a.start() == m.start() or any(w.lower() in STOP or w.lower() in ("and", "or", *ARTICLES) for w in words):
                continue
            if item[:1].isdigit() == v[:1].isdigit() and (not v[:1].isupper() or item[:1].isupper()):
                found.setdefault(a.start(), item)
    out: list[tuple[int, str]] = []
    for at, item in sorted(found.items()):
        if (at == m.start() or item.lower() != v.lower()) and item not in (w for _, w in out):
            out.append((at, item))
    return out


def _quoted(request: str, value: str) -> list[tuple[int, str]]:
    """(where, text) of each quoted text in ``request`` where ``value`` is one (the same quotes)."""
    v = " ".join(value.split())
    for q, close in (("'", "'"), ('"', '"'), ("‘", "’"), ("“", "”")):
        spots = [(m.start(1), m.group(1)) for m in re.finditer(
            r"(?<!\w)%s([^%s\n]{1,200})%s(?!\w)" % (re.escape(q), re.escape(q + close), re.escape(close)), request)]
        if any(" ".join(t.split()) == v for _, t in spots):
            return spots
    return []


@functools.lru_cache(maxsize=4)
def _number_tokens(request: str) -> tuple[tuple[int, int | float, tuple[str, ...], str], ...]:
    """(position, value, the two words before it, the word after it) of each number the request
    writes outside brackets (a number in "[12, 15, 11]" or "(5, 7)" belongs to an array or a point)."""
    out, depth, last = [], 0, 0
    for m in ground.DIGITS.finditer(request):
        gap = request[last:m.start()]
        depth = max(0, depth + gap.count("[") + gap.count("(") - gap.count("]") - gap.count(")"))
        last = m.start()
        if depth:
            continue
        head = request[max(0, m.start() - 80):m.start()]
        words = [w.lower() for w in re.findall(r"[A-Za-z]+", head) if w.lower() not in ARTICLES]
        tail = re.search(r"[A-Za-z][^A-Za-z]*$", head)
        if tail is None or re.search(r"\d", tail.group()) or request[m.end():m.end() + 1] in ("/", ":"):
            words = []  # "on 12/03/2024 16:00": a date's or a time's parts have no words of their own
        unit = UNIT.match(request, m.end())
        out.append((m.start(), ground._value(m.group()), tuple(words[-2:]),
                    ("-" if unit and "-" in unit.group(1) else "") + unit.group(2).lower() if unit else ""))
    return tuple(out)


def items_of(request: str, value) -> tuple[list, int] | None:
    """(the items of a list in ``request`` that has ``value`` as an item, its index), or None."""
    if isinstance(value, str) and ground.DIGITS.fullmatch(value.strip()):
        found = _number_list(request, ground._value(value.strip()))
        return None if found is None else ([str(x) for x in found[0]], found[1])
    if isinstance(value, (int, float)):
        return _number_list(request, value)
    return _word_list(request, value)


def _number_list(request: str, value) -> tuple[list, int] | None:
    """A run of numbers joined by commas and/or, "and" or "or" before the last ("1, 5 and 10",
    "20 minutes and 15 minutes": a unit word may follow each), one of them ``value``. A run with
    no conjunction ("[12, 15, 11]") is one value's array, not a list of alternatives."""
    for vals in _number_runs(request):
        if value in vals:
            return list(vals), vals.index(value)
    return None


@functools.lru_cache(maxsize=4)
def _number_runs(request: str) -> tuple[tuple, ...]:
    """The request's lists of numbers (read once per request, whatever the number of arguments)."""
    spans = [(m.start(), m.end(), ground._value(m.group())) for m in ground.DIGITS.finditer(request)]
    runs, run, gaps = [], [], []
    for s in spans:
        gap = request[run[-1][1]:s[0]] if run else ""
        if run and not _joins_numbers(gap):
            runs.append(_listed(run, gaps))
            run, gaps = [], []
        elif run:
            gaps.append(gap)
        run.append(s)
    runs.append(_listed(run, gaps))
    out = (tuple(v for _, _, v in run) for run in runs)
    return tuple(vals for vals in out if 1 < len(vals) <= MAX_ITEMS and len(set(vals)) == len(vals))


def _listed(items: list, seps: list[str]) -> list:
    """``items`` up to the last one a conjunction joins (none when none does)."""
    last = max((i for i, sep in enumerate(seps) if CONJUNCTION.search(sep)), default=-1)
    return items[:last + 2]


def _joins_numbers(gap: str) -> bool:
    """Is ``gap``, the text between two numbers, a list's separator (a unit word may come before it)?"""
    return re.fullmatch(r"(?:\s*%|\s*[^\W\d_]+\.?)?" + SEP.pattern + r"\$?", gap, re.I) is not None


def _word_list(request: str, value: str) -> tuple[list, int] | None:
    """Items after ``value`` in ``request``, joined by commas and/or: quoted where the value is
    quoted in the request, otherwise words shaped like the value's."""
    v = " ".join(value.split())
    if not v or len(v) > 200:
        return None
    m = _find(request, v)
    if m is None or request[:m.start()].rstrip()[-1:].isdigit():
        return None  # not in the request, or a number's unit ("10 units")
    quote = request[m.start() - 1] if m.start() > 0 and request[m.start() - 1] in "'\"‘“" else None
    items, seps, pos = [value], [], m.end()
    while len(items) < MAX_CALLS + 1:
        if quote:
            close = {"‘": "’", "“": "”"}.get(quote, quote)
            if not request.startswith(close, pos):
                break
            sep = SEP.match(request, pos + len(close))
            nxt = re.compile(re.escape(quote) + r"([^" + re.escape(quote + close) + r"\n]{1,200})" + re.escape(close))
            q = nxt.match(request, sep.end()) if sep else None
            if q is None:
                break
            items.append(q.group(1))
            seps.append(sep.group())
            pos = q.end() - len(close)
        else:
            sep = SEP.match(request, pos)
            if sep is None:
                break
            item = _word_item(request, sep.end(), v)
            if item is None:
                break
            items.append(item[0])
            seps.append(sep.group())
            pos = item[1]
    items = _listed(items, seps)
    if len(items) < 2 or len({i.lower() for i in items}) < len(items):
        return None
    return items, 0


def _find(request: str, v: str):
    """Where ``request`` writes ``v`` as whole words (any case), or None."""
    return re.search(r"(?<![\w])" + re.escape(v) + r"(?![\w])", request, re.I)


def _word_item(request: str, pos: int, like: str) -> tuple[str, int] | None:
    """(the item that starts at ``pos``, where it ends) when it is shaped like ``like``."""
    most = len(like.split()) + 2
    words = []
    end, stopped = pos, False
    for m in WORD.finditer(request, pos):
        if request[end:m.start()].strip():  # punctuation between words ends the item
            break
        w = m.group().rstrip(".").lower()
        if w in STOP or w.split("'")[0].split("’")[0] in STOP or w in ("and", "or", "&"):
            stopped = bool(words) and w not in ("and", "or", "&")
            break
        if len(words) == most:
            return None  # no end in sight: a clause, not an item
        words.append(m.group())
        end = m.end()
        if m.group().endswith(".") and not re.fullmatch(r"(?:[A-Z][a-z]{0,3}|[A-Z])\.", m.group()):
            break  # a full stop ends it ("Inc." does not)
    if not words or (words[0].lower() in ARTICLES and like.split()[0].lower() not in ARTICLES):
        return None
    n, whole = len(like.split()), len(words)
    while len(words) > n and not words[-1][:1].isupper():
        words.pop()  # "Drama and Comedy movies": the noun after the list is not the item's
    if stopped and len(words) == whole and not words[0][:1].isupper() and not words[0][:1].isdigit():
        return None  # "… and takes under 30 minutes", "… and directed by": a verb and its clause
    item = " ".join(words).rstrip(".") if not re.search(r"\b[A-Z][a-z]{0,3}\.$", " ".join(words)) \
        else " ".join(words)
    if like[:1].isdigit() != item[:1].isdigit() or (like[:1].isupper() and not item[:1].isupper()):
        return None
    return item, end


def _as(prop: dict, x):
    """``x`` (a list item) as ``prop``'s type, or None where it is not one."""
    kind = prop.get("type")
    if "enum" in prop and x not in prop["enum"]:
        return None
    if kind == "integer":
        return int(x) if isinstance(x, (int, float)) and float(x).is_integer() else None
    if kind == "number":
        if not isinstance(x, (int, float)):
            return None
        return float(x) if prop.get("format") in ("float", "double") else x
    if kind == "string":
        return x if isinstance(x, str) else None
    return x if kind is None else None


def _scalars(v):
    if isinstance(v, dict):
        for x in v.values():
            yield from _scalars(x)
    elif isinstance(v, list):
        for x in v:
            yield from _scalars(x)
    elif not isinstance(v, bool) and isinstance(v, (str, int, float)):
        yield v


def _overlaps(a: str, b: str) -> bool:
    """Is one of two values' keys the other, or its words' start or end ("samsung" and "samsung occured")?"""
    return a == b or bool(re.match(re.escape(a) + r"\b|.*\b" + re.escape(a) + "$", b)) or \
        bool(re.match(re.escape(b) + r"\b|.*\b" + re.escape(b) + "$", a))


def _key(v) -> str:
    if isinstance(v, list):
        return _key(v[0]) if len(v) == 1 else json.dumps(v, default=str)
    return str(v).strip().lower() if isinstance(v, str) else repr(float(v))


def _call_key(c: dict) -> str:
    return json.dumps(c, sort_keys=True, default=str)
