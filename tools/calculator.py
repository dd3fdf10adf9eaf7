"""calculator: arithmetic by walking the expression's AST (never eval).

Accepts numbers, + - * / // % ** (and ^ as power), parentheses, unary signs,
the constants pi, e, tau, and the functions below. Every intermediate result
is bounded (exponents, integer size, factorial argument), so a call always
ends fast and may run on a kernel thread.

Small models often copy a task's words into the expression, so English is
read too (``words``): number words ("twenty-three", "one hundred and five",
"2.5 thousand"), operator words ("times", "multiplied by", "divided by",
"plus", "minus", "to the power of", "squared"), "N% of M" and "N percent of
M". Any other word is still an error: the calculator never guesses.
"""

from __future__ import annotations

import ast
import math
import operator
import re

from kernel.protocol.messages import EINVAL
from tools.base import READ_ONLY, Tool, ToolError, obj_schema

MAX_EXPR = 500  # characters
MAX_NODES = 200
MAX_POW = 10_000  # largest integer exponent
MAX_INT_BITS = 4096  # integers beyond ~1e1233 are refused

BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: pow}
UNOPS = {ast.UAdd: operator.pos, ast.USub: operator.neg}
CONSTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(x):
    if x != int(x) or not 0 <= x <= 500:
        raise ToolError(EINVAL, "factorial needs an integer between 0 and 500")
    return math.factorial(int(x))


FUNCS = {"sqrt": math.sqrt, "abs": abs, "round": round, "min": min, "max": max, "floor": math.floor,
         "ceil": math.ceil, "exp": math.exp, "log": math.log, "log10": math.log10, "log2": math.log2,
         "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
         "atan": math.atan, "degrees": math.degrees, "radians": math.radians, "factorial": _factorial,
         "gcd": math.gcd, "hypot": math.hypot}


def _check_num(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ToolError(EINVAL, f"not a number: {v!r}")
    if isinstance(v, int) and v.bit_length() > MAX_INT_BITS:
        raise ToolError(EINVAL, "result too large")
    if isinstance(v, float) and not math.isfinite(v):
        raise ToolError(EINVAL, "result is not a finite number")
    return v


def _eval(node):
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        return _check_num(node.value)
    if isinstance(node, ast.Name):
        if node.id in CONSTS:
            return CONSTS[node.id]
        raise ToolError(EINVAL, f"unknown name {node.id!r} (constants: {', '.join(CONSTS)})")
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNOPS:
        return UNOPS[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_POW or (isinstance(left, int) and abs(left) > 1 and
                                        abs(right) * max(1, abs(left).bit_length()) > MAX_INT_BITS):
                raise ToolError(EINVAL, "exponent too large")
        return _check_num(BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = FUNCS.get(node.func.id)
        if fn is None:
            raise ToolError(EINVAL, f"unknown function {node.func.id!r} (known: {', '.join(FUNCS)})")
        return _check_num(fn(*[_eval(a) for a in node.args]))
    raise ToolError(EINVAL, f"unsupported syntax: {type(node).__name__}")


SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
SCALES = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9}
PHRASES = [  # (pattern, replacement), applied in order once number words are numerals
    (r"(\d+(?:\.\d+)?)\s*(?:%|percent)\s+of\b", r"(\1 / 100) *"),
    (r"\bmultiplied\s+by\b|\btimes\b|(?<=\d)\s*x\s*(?=[\d(])", " * "),
    (r"\bdivided\s+by\b|\bover\b", " / "), (r"\bplus\b", " + "), (r"\bminus\b", " - "),
    (r"\b(?:raised\s+)?to\s+the\s+power\s+of\b", " ** "), (r"\bsquared\b", " ** 2"), (r"\bcubed\b", " ** 3"),
    (r"\bmod(?:ulo)?\b", " % "), (r",\s*(?=[-+*/%])", " "),
]
ENGLISH = {*SMALL, *TENS, *SCALES, "times", "multiplied", "divided", "over", "plus", "minus", "percent", "power",
           "squared", "cubed", "mod", "modulo"}  # one of these words: the expression is read as English


def english(src: str) -> bool:
    if set(re.findall(r"[a-z]+", src.lower())) & ENGLISH:
        return True
    return re.search(r"\d\s*x\s*[\d(]|%\s*of\b", src) is not None


def words(expr: str) -> str:
    """``expr`` with English number and operator words turned into symbols; other words are kept
    (and then refused)."""
    src = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", expr.lower())
    out: list[str] = []
    run: list[str] = []  # number words (and a leading numeral) being read

    def flush():
        if run:
            out.append(_number(run))
            run.clear()
    for tok in re.findall(r"[a-z]+|\d+(?:\.\d+)?|\*\*|//|\S", src):
        if tok in SMALL or tok in TENS or tok in SCALES or (tok == "and" and run and run[-1] in SCALES):
            if tok in SCALES and not run and out and re.fullmatch(r"\d+(?:\.\d+)?", out[-1]):
                run.append(out.pop())  # "2.5 thousand"
            run.append(tok)
            continue
        flush()
        out.append(tok)
    flush()
    src = " ".join(out)
    for pattern, repl in PHRASES:
        src = re.sub(pattern, repl, src)
    return src


def _number(run: list[str]) -> str:
    total, part = 0.0, 0.0
    for tok in run:
        if tok == "and":
            continue
        if tok in SMALL or tok in TENS:
            part += SMALL.get(tok, TENS.get(tok, 0))
        elif tok in SCALES:
            part = (part or 1) * SCALES[tok]
            if SCALES[tok] > 100:
                total, part = total + part, 0.0
        else:
            part += float(tok)
    value = total + part
    return str(int(value)) if value.is_integer() else repr(value)


def evaluate(expr: str):
    """Evaluate an arithmetic expression; raises ToolError with a clear message."""
    if len(expr) > MAX_EXPR:
        raise ToolError(EINVAL, f"expression longer than {MAX_EXPR} characters")
    src = expr.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    src = src.rstrip("=?").strip()
    if not re.search(r"[a-zA-Z]", src):
        src = re.sub(r"(?<=\d),(?=\d{3}\b)", "", src)  # 1,000 is a thousand where no function takes a list
    elif english(src):
        src = words(src)
        unknown = [w for w in re.findall(r"[a-z_]\w*", src) if w not in FUNCS and w not in CONSTS]
        if unknown:
            raise ToolError(EINVAL, f"cannot read {unknown[0]!r} in {expr!r}: write numbers and operators, "
                                    "e.g. 17 * 23 or (3 + 4) / 2")
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as e:
        raise ToolError(EINVAL, f"cannot parse {expr!r}: {e.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError(EINVAL, f"expression has more than {MAX_NODES} parts")
    try:
        value = _eval(tree)
    except ToolError:
        raise
    except ZeroDivisionError:
        raise ToolError(EINVAL, "division by zero") from None
    except (ValueError, OverflowError, TypeError) as e:
        raise ToolError(EINVAL, f"math error: {e}") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return value


class Calculator(Tool):
    name = "calculator"
    # No worked example here: a small model copies an example expression instead of writing its own.
    description = ("Evaluate an arithmetic expression made of numbers, + - * / ^ %, parentheses and "
                   "functions such as sqrt or abs. Returns the number.")
    schema = obj_schema(["expression"], expression={"type": "string", "minLength": 1, "maxLength": MAX_EXPR})
    side_effect = READ_ONLY
    parallel = 8
    timeout_s = 2.0
    keywords = ("calculate", "compute", "arithmetic", "plus", "minus", "times", "multiply", "multiplied", "divide",
                "divided", "product", "sum", "add", "subtract", "difference", "quotient", "percent", "power",
                "squared", "square", "root", "total", "twice", "double", "half", "average")

    def run(self, args, ctx):
        return {"expression": args["expression"], "value": evaluate(args["expression"])}


TOOLS = [Calculator()]
