"""Program of thought for the calculator: the model writes one expression, the calculator evaluates it.

A small model cannot do arithmetic in prose (asked the pizza question, SmolLM2-135M wrote
"16 * 8 = 120" and answered 12), and when it fills the calculator's free-text argument it
copies words ("2 large pizzas, 2 small pizzas" -> EINVAL). So the model writes only the
program, as in PAL (Gao et al., 2022): the expression, decoded under the kernel's grammar
(``response_format`` with a JSON schema whose ``pattern`` admits only arithmetic), and the
calculator computes it. What the grammar allows (``pattern``):

- the numbers the task states, each as often as it states it, every one of them, joined by
  ``+ - * /``; the first number the task states comes first. Without that last rule the
  135M model began with the most salient number and paired the wrong ones (the pizza task:
  "16 * 8 + 2 * 2" = 132; with it: "2 * 16 + 2 * 8" = 48);
- a task with fewer than two numbers written in digits ("seventeen times twenty-three"),
  or more than ``MAX_PERMUTED``, gets a plain arithmetic pattern instead.

Worked examples (``EXAMPLES``, word problems of the usual shapes) come before the task: the
model copies their form. Measured on SmolLM2-135M, greedy: 12*7, 60 km/h for 3 h, 3 packs
of 10 and 4 of 5, 120 cookies in bags of 8 and the pizza task right; "5 apples, gives 2
away" (5 * 2) and "4 rows of 6 desks and 3 more" (4 * 3 + 6) still wrong: the grammar
makes the expression well formed, not right.
"""

from __future__ import annotations

import itertools
import json
import re

from agent_apps.sdk import llm

NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
MAX_PERMUTED = 6  # numbers; 6! = 720 orders is still a small grammar
OPS = " [-+*/] "
FREE = r"^-?[0-9]+(\.[0-9]+)?( [-+*/] -?[0-9]+(\.[0-9]+)?)*$"  # any arithmetic on numbers
SYSTEM = ("You are an expert in solving math problems. You write the arithmetic expression that computes "
          "the answer; a calculator evaluates it.")
EXAMPLES = [
    ("Tom buys 3 boxes and 2 bags of pens. A box holds 12 pens and a bag holds 5 pens. How many pens does he "
     "have?", "3 * 12 + 2 * 5"),
    ("A shop had 40 cakes and sold 15 of them. How many cakes are left?", "40 - 15"),
    ("Mia has 4 red bags and 5 blue bags. A red bag has 6 marbles and a blue bag has 10 marbles. How many "
     "marbles are there?", "4 * 6 + 5 * 10"),
    ("Anna shares 24 sweets equally among 6 friends. How many does each friend get?", "24 / 6"),
    ("A farm has 7 cows and 3 hens. A cow has 4 legs and a hen has 2 legs. How many legs are there?",
     "7 * 4 + 3 * 2"),
    ("Sam reads 15 pages a day for 4 days. How many pages does he read?", "15 * 4"),
]


def numbers(task: str) -> list[str]:
    """The numbers the task writes in digits, in order, repeats kept ("1,000" is 1000)."""
    return NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3}\b)", "", task))


def pattern(nums: list[str]) -> str:
    """The regular expression the model's expression must match (see the module docstring)."""
    if len(nums) < 2:
        return FREE
    if len(nums) > MAX_PERMUTED:
        any_num = "(" + "|".join(re.escape(n) for n in dict.fromkeys(nums)) + ")"
        return f"^{re.escape(nums[0])}({OPS}{any_num})+$"
    orders = sorted({p for p in itertools.permutations(nums[1:])})
    alts = [OPS.join(re.escape(n) for n in (nums[0], *p)) for p in orders]
    return "^(" + "|".join(alts) + ")$"


def messages(task: str) -> list[dict]:
    shots = []
    for q, a in EXAMPLES:
        shots += [{"role": "user", "content": q}, {"role": "assistant", "content": json.dumps(a)}]
    return [{"role": "system", "content": SYSTEM}, *shots, {"role": "user", "content": task}]


def expression(task: str, max_new_tokens: int = 64) -> str:
    """The model's expression for ``task`` (greedy, under the grammar); "" if it is not whole.

    The reply is a JSON string (``"2 * 16 + 2 * 8"``: 13 tokens; an object around it costs 5
    more), and one cut off before its closing quote is still taken when what is there matches."""
    regex = pattern(numbers(task))
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
