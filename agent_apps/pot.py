"""Program of thought for the calculator: the model writes one expression, the calculator evaluates it.

A small model cannot do arithmetic in prose (asked the pizza question, SmolLM2-135M wrote
"16 * 8 = 120" and answered 12), and when it fills the calculator's free-text argument it
copies words ("2 large pizzas, 2 small pizzas" -> EINVAL). So the model writes only the
program, as in PAL (Gao et al., 2022): the expression, decoded under the kernel's grammar
(``response_format`` with a JSON schema whose ``pattern`` admits only arithmetic), and the
calculator computes it. ReActAgent writes its calculator calls under the same ``pattern``.

The task is first normalised (``normalise``): number words become numerals ("forty-five
minus nineteen" -> "45 minus 19", "a dozen eggs" -> "12 eggs"); the model reads the numerals
and the grammar can hold it to them (asked "forty-five minus nineteen" it wrote "14 - 9").
What the grammar allows (``pattern``):

- the numbers the task states, each as often as it states it, every one of them, joined by
  ``+ - * / **``; the first number the task states comes first. Without that last rule the
  135M model began with the most salient number and paired the wrong ones (the pizza task:
  "16 * 8 + 2 * 2" = 132; with it: "2 * 16 + 2 * 8" = 48). "25%" is the number 0.25;
- when the task writes parentheses, groups of neighbouring numbers in parentheses (one
  level: "(8 + 4) * (10 - 3)");
- a task with fewer than two numbers ("How many seconds are in 3 hours?"), or more than
  ``MAX_PERMUTED``, gets a plain arithmetic pattern instead.

Worked examples (``EXAMPLES``, word problems of the usual shapes) come before the task: the
model copies their form. The grammar makes the expression well formed and makes it use the
task's numbers, not right: the operators and their order are the model's (measured in
docs/benchmarks.md, *Agent tasks*).
"""

from __future__ import annotations

import itertools
import json
import re

from agent_apps.sdk import llm

NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:\s*(?:%|percent\b))?")
MAX_PERMUTED = 6  # numbers; 6! = 720 orders is still a small grammar
MAX_GROUPED = 4  # numbers; above it no parentheses (the groupings of 4 numbers in 6 orders: 42 alternatives)
OPS = " (\\*\\*|[-+*/]) "
FREE = r"^\(?-?[0-9]+(\.[0-9]+)?( (\*\*|[-+*/]) \(?-?[0-9]+(\.[0-9]+)?\)?)*$"  # any arithmetic on numbers
SYSTEM = ("You are an expert in solving math problems. You write the arithmetic expression that computes "
          "the answer; a calculator evaluates it.")
# Worked examples, a bank of the usual shapes (none is a task of bench/agent_tasks.py): the SHOTS most like
# the task are shown, the most alike last (the model copies the nearest one's form).
EXAMPLES = [
    ('Tom buys 3 boxes and 2 bags of pens. A box holds 12 pens and a bag holds 5 pens. How many pens '
     'does he have?', '3 * 12 + 2 * 5'),
    ('A shop had 40 cakes and sold 15 of them. How many cakes are left?', '40 - 15'),
    ('Mia has 4 red bags and 5 blue bags. A red bag has 6 marbles and a blue bag has 10 marbles. How '
     'many marbles are there?', '4 * 6 + 5 * 10'),
    ('Anna shares 24 sweets equally among 6 friends. How many does each friend get?', '24 / 6'),
    ('A farm has 7 cows and 3 hens. A cow has 4 legs and a hen has 2 legs. How many legs are there?', '7 * 4 + 3 * 2'),
    ('Sam reads 15 pages a day for 4 days. How many pages does he read?', '15 * 4'),
    ('Ben has 9 packs of 10 cards and loses 14 cards. How many cards does he have now?', '9 * 10 - 14'),
    ('Kim had 30 coins. She spent 8 and then found 5 more. How many coins does she have?', '30 - 8 + 5'),
    ('A library has 5 shelves of 20 books and 3 shelves of 15 books. How many books are there in '
     'all?', '5 * 20 + 3 * 15'),
    ('A hall has 10 rows of 12 chairs. 35 chairs are empty. How many chairs are used?', '10 * 12 - 35'),
    ('Pens cost 3 dollars and notebooks cost 5 dollars. How much do 4 pens and 2 notebooks cost?', '3 * 4 + 5 * 2'),
    ('4 children split 18 dollars of candy and 6 dollars of juice equally. How much does each child '
     'pay?', '(18 + 6) / 4'),
    ('A plant is 12 cm tall and grows 3 cm a week. How tall is it after 5 weeks?', '12 + 3 * 5'),
    ('A printer prints 40 pages a minute. How many pages does it print in 7 minutes?', '40 * 7'),
    ('There are 6 baskets with 8 apples each. 10 apples are rotten. How many good apples are there?', '6 * 8 - 10'),
    ('A pizza is cut into 8 slices. 3 friends eat 2 slices each. How many slices are left?', '8 - 3 * 2'),
    ('A box of 48 crayons is shared by 4 kids. Each kid then loses 2. How many crayons does each kid '
     'have?', '48 / 4 - 2'),
    ('A school has 12 classes of 25 students. How many students are there?', '12 * 25'),
]
SHOTS = 4
STOP = set("a an the of and to is are in on for it he she they his her does do did how many much what there has "
           "have had with each".split())  # words that say nothing of a problem's shape

SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
SCALES = {"dozen": 12, "hundred": 100, "thousand": 10**3, "million": 10**6}
# "one" is a pronoun after these words or before "of" ("a small one", "one of them"): it stays a word.
NOT_ONE_BEFORE = {"a", "an", "the", "each", "every", "this", "that", "which", "any", "no", "another", "other",
                  "small", "large", "big", "little", "new", "old", "only", "same", "no"}
NOT_ONE_AFTER = {"of", "another", "by", "day"}  # "one by one", "one day"


def _value(words: list[str]) -> float:
    total, part = 0.0, 0.0
    for w in words:
        if w in SMALL or w in TENS:
            part += SMALL.get(w, TENS.get(w, 0))
        elif w in SCALES:
            part = (part or 1) * SCALES[w]
            if SCALES[w] > 100:
                total, part = total + part, 0.0
    return total + part


def normalise(text: str) -> str:
    """``text`` with English number words as numerals: "twenty-four" -> "24", "one hundred and five"
    -> "105", "a dozen" -> "12", "two dozen" -> "24". Every other word is kept; "one" stays a
    word where it is a pronoun ("a small one", "one of them")."""
    parts = re.findall(r"[A-Za-z]+|[^A-Za-z]+", text)
    out: list[str] = []
    i = 0
    while i < len(parts):
        w = parts[i].lower()
        if w in SMALL or w in TENS or (w in SCALES and w != "dozen") or (w == "a" and _scale_next(parts, i)):
            run, j = [i], i + 1  # parts[run[0]..run[-1]] is one number; separators between words: " " or "-"
            while j + 1 < len(parts) and parts[j] in (" ", "-"):
                nxt = parts[j + 1].lower()
                last = parts[run[-1]].lower()
                if nxt in SCALES or (nxt in SMALL and last in TENS and parts[j] in ("-", " ")) \
                        or (nxt in SMALL | TENS.keys() and last in SCALES):
                    run.append(j + 1)
                    j += 2
                elif nxt == "and" and last in SCALES and j + 3 < len(parts) and parts[j + 2] == " " \
                        and parts[j + 3].lower() in SMALL | TENS.keys():
                    run.append(j + 3)
                    j += 4
                else:
                    break
            words = [parts[k].lower() for k in range(run[0], run[-1] + 1) if parts[k].strip(" -")]
            if words == ["one"] and _pronoun(parts, i):
                out.append(parts[i])
                i += 1
                continue
            value = _value([x for x in words if x not in ("a", "and")])
            out.append(str(int(value)) if value.is_integer() else repr(value))
            i = run[-1] + 1
            continue
        out.append(parts[i])
        i += 1
    return "".join(out)


def _scale_next(parts: list[str], i: int) -> bool:
    """``parts[i]`` is "a" and the word after it a scale ("a dozen", "a hundred")."""
    return i + 2 < len(parts) and parts[i + 1] == " " and parts[i + 2].lower() in SCALES


def _pronoun(parts: list[str], i: int) -> bool:
    before = parts[i - 2].lower() if i >= 2 and parts[i - 1] == " " else ""
    after = parts[i + 2].lower() if i + 2 < len(parts) and parts[i + 1] == " " else ""
    return before in NOT_ONE_BEFORE or after in NOT_ONE_AFTER or not after


def numbers(task: str) -> list[str]:
    """The numbers the task states, in order, repeats kept, number words read (``normalise``):
    "1,000" is 1000, "25%" and "25 percent" are 0.25."""
    out = []
    for n in NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3}\b)", "", normalise(task))):
        digits = re.match(r"\d+(?:\.\d+)?", n).group(0)
        out.append(plain(float(digits) / 100) if n != digits else digits)
    return out


def _groupings(seq: tuple[str, ...], sep: str = OPS) -> list[str]:
    """``seq`` joined by operators, with neighbouring numbers in parentheses (one level, never all
    of them): regex alternatives."""
    alts = []
    for cuts in itertools.product((False, True), repeat=len(seq) - 1):  # True: a block ends after seq[i]
        blocks, cur = [], [seq[0]]
        for n, cut in zip(seq[1:], cuts):
            if cut:
                blocks.append(cur)
                cur = []
            cur.append(n)
        blocks.append(cur)
        if len(blocks) == 1 and len(seq) > 1:
            continue  # "(a + b + c)": the same as without
        alts.append(sep.join(b[0] if len(b) == 1 else "\\(" + sep.join(b) + "\\)" for b in
                             ([re.escape(x) for x in blk] for blk in blocks)))
    return list(dict.fromkeys(alts))


def pairs(task: str) -> set[int]:
    """Indices i (into ``numbers(task)``) where the task writes "N things of M" ("3 boxes of 12 eggs",
    "8 rows of 4 seats"): the count and the size it counts belong together, nums[i] then nums[i + 1]."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", normalise(task))
    starts = [m.start() for m in NUMBER.finditer(text)]
    out = set()
    for m in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?\s+(?:[A-Za-z]+\s+){1,2}of\s+(?=\d)", text):
        if m.start() in starts and starts.index(m.start()) + 1 < len(starts):
            out.add(starts.index(m.start()))
    return out


def pattern(nums: list[str], groups: bool = False, together: set[int] = frozenset(),
            ops: str = "") -> str:
    """The regular expression the model's expression must match (see the module docstring);
    ``groups``: parentheses may group neighbouring numbers; ``together``: nums[i] is followed
    by nums[i + 1] for each i in it (``pairs``); ``ops``: only these operators (default all)."""
    sep = f" [{'-' if '-' in ops else ''}{ops.replace('-', '')}] " if ops else OPS
    if len(nums) < 2:
        return FREE
    if len(nums) > MAX_PERMUTED:
        any_num = "(" + "|".join(re.escape(n) for n in dict.fromkeys(nums)) + ")"
        return f"^{re.escape(nums[0])}({sep}{any_num})+$"
    orders = []
    for p in itertools.permutations(range(1, len(nums))):
        order = (0, *p)
        if all(order.index(i) + 1 == order.index(i + 1) for i in together):
            orders.append(tuple(nums[i] for i in order))
    orders = sorted(set(orders)) or [tuple(nums)]
    if groups and len(nums) <= MAX_GROUPED:
        alts = [a for order in orders for a in _groupings(order, sep)]
    else:
        alts = [sep.join(re.escape(n) for n in order) for order in orders]
    return "^(" + "|".join(alts) + ")$"


def written(task: str) -> str:
    """The arithmetic the task writes itself, when it uses every number the task states
    ("What is (8 + 4) * (10 - 3)?" -> "(8 + 4) * (10 - 3)", "What is 12*7?" -> "12 * 7"); else ""."""
    nums = numbers(task)
    for m in re.finditer(r"[(\d][\d\s.()+*/^-]*[\d)]", normalise(task)):
        expr = " ".join(re.sub(r"(?<=[\d)])\s*(\*\*|[-+*/^])\s*", r" \1 ", m.group(0)).split())  # 12*7 -> 12 * 7
        if re.search(r"\d\s*(\*\*|[-+*/^])\s*[\d(]", expr) and sorted(numbers(expr)) == sorted(nums) \
                and expr.count("(") == expr.count(")"):
            return expr
    return ""


def shots(task: str, k: int = SHOTS) -> list[tuple[str, str]]:
    """The ``k`` worked examples whose words are most like the task's (Jaccard), the most alike last."""
    def words(t: str) -> set[str]:
        return {w for w in re.findall(r"[a-z]+", t.lower()) if w not in STOP}
    mine = words(normalise(task))
    return sorted(EXAMPLES, key=lambda qa: len(mine & words(qa[0])) / (len(mine | words(qa[0])) or 1))[-k:]


def messages(task: str) -> list[dict]:
    turns = []
    for q, a in shots(task):
        turns += [{"role": "user", "content": q}, {"role": "assistant", "content": json.dumps(a)}]
    return [{"role": "system", "content": SYSTEM}, *turns, {"role": "user", "content": normalise(task)}]


def expression(task: str, max_new_tokens: int = 64) -> str:
    """The model's expression for ``task`` (greedy, under the grammar); "" if it is not whole.

    The reply is a JSON string (``"2 * 16 + 2 * 8"``: 13 tokens; an object around it costs 5
    more), and one cut off before its closing quote is still taken when what is there matches."""
    if written(task):
        return written(task)  # the task wrote the program: nothing for the model to add
    regex = pattern(numbers(task), groups="(" in task, together=pairs(task))
    schema = {"type": "string", "pattern": regex, "maxLength": 200}
    reply = llm.chat(messages(task), max_new_tokens=max_new_tokens,
                     response_format={"type": "json_schema", "json_schema": {"name": "expression", "schema": schema}})
    try:
        text = json.loads(reply)
    except ValueError:
        text = reply.strip().lstrip('"')
    return text if isinstance(text, str) and re.fullmatch(regex, text) else ""


def plain(value) -> str:
    """A calculator value as a person writes it: 48, 3.5, 0.333333 (never 48.0)."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)
