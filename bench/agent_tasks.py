"""Agent task suite: do the bundled agents get simple tool tasks right?

Usage::

    python bench/agent_tasks.py [--agents ReActAgent ReActFreeAgent MathAgent] [--kinds arith words ...]
                                [--per-kind N] [--json] [--show-failures] [--mask-bench]
                                [--weights fp32 int8]

44 tasks with checkable answers, in seven kinds: arithmetic in symbols (arith) and in
words (words), unit conversions (unit), currency conversions (currency, the bundled
rate table), reading a file in the agent's workspace (file), two-step tasks
(two-step), and word problems of two or three operations (story: "3 boxes of 12 eggs
and 2 boxes of 6 eggs. How many eggs in all?"). Every (agent, task) pair is spawned at once on one kernel (the embedded
model, greedy), so they run as one batch. ReActAgent decodes its calls under the
kernel's grammar (tools + tool_choice); ReActFreeAgent (bench/agents/) is the same
agent writing free text that agent_apps.toolcall parses, the protocol before
constrained decoding; MathAgent (the workflow agent) gets the arith, words and story tasks.

A task is solved when a number in the agent's answer is within 0.5% (or 0.01) of the
expected one. Prints solved/total per agent and per kind, the share solved of the
tasks whose numbers are stated in the question (all but file), the mean steps and
tokens (in + out) per task, and the calls to unknown tools and with schema-invalid
arguments (the kernel refuses those with ENOENT / EINVAL "bad arguments").
``--mask-bench`` prints instead the grammar's per-token cost next to a decode step.
``--weights fp32 int8`` runs the whole suite once per weight mode (a fresh kernel each,
one after the other) and prints a table per mode: int8 against float32 in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "bench" / "agents")

RATES = json.loads((ROOT / "tools" / "data" / "currency_rates.json").read_text())["rates"]
MI, FT, LB, GAL = 1609.344, 0.3048, 0.45359237, 3.785411784


def fx(amount: float, a: str, b: str) -> float:
    return amount / RATES[a] * RATES[b]


# (kind, task, expected number)
TASKS = [
    ("arith", "What is 17 * 23?", 391),
    ("arith", "What is 1234 + 5678?", 6912),
    ("arith", "What is 144 / 12?", 12),
    ("arith", "What is 2 ** 10?", 1024),
    ("arith", "What is (15 + 27) * 3?", 126),
    ("arith", "What is 1000 - 387?", 613),
    ("words", "What is seventeen times twenty-three?", 391),
    ("words", "What is twelve plus thirty?", 42),
    ("words", "What is one hundred divided by four?", 25),
    ("words", "How many seconds are in 3 hours?", 10800),
    ("words", "What is the product of 6, 7 and 8?", 336),
    ("words", "What is forty-five minus nineteen?", 26),
    ("unit", "Convert 5 kilometers to miles.", 5000 / MI),
    ("unit", "How many feet are in 10 meters?", 10 / FT),
    ("unit", "Convert 70 kilograms to pounds.", 70 / LB),
    ("unit", "How many liters are in 2 gallons?", 2 * GAL),
    ("unit", "Convert 100 celsius to fahrenheit.", 212),
    ("unit", "How many minutes are in 2.5 hours?", 150),
    ("currency", "Convert 100 USD to EUR.", fx(100, "USD", "EUR")),
    ("currency", "Convert 50 EUR to GBP.", fx(50, "EUR", "GBP")),
    ("currency", "How many JPY is 10 USD?", fx(10, "USD", "JPY")),
    ("currency", "Convert 250 CHF to USD.", fx(250, "CHF", "USD")),
    ("currency", "Convert 1000 SEK to EUR.", fx(1000, "SEK", "EUR")),
    ("currency", "How much is 80 CAD in AUD?", fx(80, "CAD", "AUD")),
    ("file", "What number is written in secret.txt?", 7341),
    ("file", "Add up the numbers in numbers.txt.", 12 + 30 + 58),
    ("file", "Read price.txt and tell me the price in dollars.", 19.99),
    ("file", "What is the total of the values in sales.txt?", 120 + 80 + 45),
    ("file", "How many kilometers is the distance given in trip.txt?", 42),
    ("file", "Read count.txt and tell me the count.", 256),
    ("two-step", "What is 12 * 15, plus 20?", 200),
    ("two-step", "Convert 3 miles to kilometers, then multiply by 2.", 2 * 3 * MI / 1000),
    ("two-step", "What is (8 + 4) * (10 - 3)?", 84),
    ("two-step", "Convert 20 USD to EUR and add 5.", fx(20, "USD", "EUR") + 5),
    ("two-step", "How many seconds are in 2 days and 3 hours?", 2 * 86400 + 3 * 3600),
    ("two-step", "What is 25% of 80, times 3?", 60),
    # word problems of two or three operations, in the style of the seed's pizza task (quantities with
    # units, some in words); written before the agents were changed for them, and not changed since
    ("story", "A shop sells 3 boxes of 12 eggs and 2 boxes of 6 eggs. How many eggs in all?", 48),
    ("story", "Lena has twenty-four stickers. She gives five to her brother and then buys twelve more. "
              "How many stickers does she have now?", 31),
    ("story", "A bus has 8 rows of 4 seats. 5 seats are taken. How many seats are free?", 27),
    ("story", "A baker makes five trays of twelve muffins and sells thirty-eight of them. "
              "How many muffins are left?", 22),
    ("story", "Tickets cost 7 dollars for an adult and 4 dollars for a child. "
              "How much do 2 adults and 3 children pay in all?", 26),
    ("story", "A garden has six rows of seven tulips and four rows of five roses. "
              "How many flowers are in the garden?", 62),
    ("story", "Three friends share a 45 dollar meal and a 15 dollar dessert equally. "
              "How much does each friend pay?", 20),
    ("story", "A car uses 6 liters of fuel per 100 kilometers. How many liters does it use for 350 kilometers?", 21),
]
FILES = {"secret.txt": "7341\n", "numbers.txt": "12 30 58\n", "price.txt": "price: 19.99 dollars\n",
         "sales.txt": "120\n80\n45\n", "trip.txt": "distance: 42 km\n", "count.txt": "count = 256\n"}
AGENT_KINDS = {"MathAgent": {"arith", "words", "story"}}  # agents not listed here get every task
STATED = {"arith", "words", "unit", "currency", "two-step", "story"}  # numbers stated in the question
NUM = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def solved(answer: str, expected: float) -> bool:
    nums = [float(n) for n in NUM.findall(answer.replace(",", ""))]
    return any(abs(x - expected) <= max(0.005 * abs(expected), 0.01) for x in nums)


def answer_of(snap: dict) -> tuple[str, list[dict]]:
    res = snap.get("result")
    if isinstance(res, dict):
        return str(res.get("answer", "")), res.get("steps", [])
    return str(res or snap.get("error") or ""), []


def mask_bench() -> None:
    """Per-token cost of a grammar mask next to a decode step (one row, the embedded model)."""
    import torch

    from kernel.config import KernelConfig
    from kernel.llm import constrain
    from kernel.llm import model as model_mod
    from kernel.llm.logitmask import Matcher, apply
    torch.set_num_threads(1)
    model, tok = model_mod.load(KernelConfig().llm.name)
    lltok = constrain.lltokenizer(tok)
    calc = {"type": "function", "function": {"name": "calculator", "parameters": {
        "type": "object", "required": ["expression"], "properties": {"expression": {"type": "string"}}}}}
    g, _ = constrain.grammar(None, [calc], "required")
    t0 = time.perf_counter()
    comp = constrain.Compiler(lambda: lltok)
    m = Matcher(comp.matcher(g), True, lltok.vocab_size)
    t_compile = time.perf_counter() - t0
    ids = list(tok.apply_chat_template([{"role": "user", "content": "What is 17 * 23?"}],
                                       add_generation_prompt=True, return_dict=True)["input_ids"])

    class Row:
        matcher, generated = m, []
    fwd = msk = 0.0
    n = 0
    with torch.inference_mode():
        from transformers import DynamicCache
        cache, inp = DynamicCache(), torch.tensor([ids])
        while not m.done and n < 40:
            t = time.perf_counter()
            logits = model(input_ids=inp, past_key_values=cache, use_cache=True).logits[:, -1, :]
            t1 = time.perf_counter()
            apply(logits, [Row])
            tokid = int(logits.argmax(-1))
            m.advance(tokid)
            Row.generated.append(tokid)
            msk += time.perf_counter() - t1
            fwd += t1 - t
            n += 1
            inp = torch.tensor([[tokid]])
    print(f"grammar mask: compile {t_compile * 1000:.1f} ms; per token {msk / n * 1000:.2f} ms (mask + advance) "
          f"vs {fwd / n * 1000:.1f} ms decode step, {n} tokens: {tok.decode(Row.generated)!r}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="AIOS agent task suite")
    p.add_argument("--agents", nargs="+", default=["ReActAgent", "ReActFreeAgent", "MathAgent"])
    p.add_argument("--kinds", nargs="+", default=None, help="only these kinds of task")
    p.add_argument("--per-kind", type=int, default=0, help="only the first N tasks of each kind (0: all)")
    p.add_argument("--scheduler", default="fifo")
    p.add_argument("--json", action="store_true", help="one JSON line per (agent, task) too")
    p.add_argument("--show-failures", action="store_true")
    p.add_argument("--mask-bench", action="store_true", help="only print the grammar mask's per-token cost")
    p.add_argument("--log-dir", help="keep the kernel's and agents' logs here (default: a temporary folder)")
    p.add_argument("--weights", nargs="+", default=["auto"], choices=("auto", "int8", "fp16", "fp32"),
                   help="the local model's --weights; several: the suite once per mode, tables side by side")
    args = p.parse_args(argv)
    if args.mask_bench:
        mask_bench()
        return 0
    tasks = [t for t in TASKS if args.kinds is None or t[0] in args.kinds]
    if args.per_kind:
        tasks = [t for t in tasks if [u for u in tasks if u[0] == t[0]].index(t) < args.per_kind]
    runs = [(weights, *run_suite(args, tasks, weights)) for weights in args.weights]
    for weights, rows, wall in runs:
        report(rows, args, wall, weights)
    return 0


def run_suite(args, tasks: list, weights: str) -> tuple[list[dict], float]:
    """Every (agent, task) pair on one fresh kernel with ``--weights weights``: (rows, wall seconds)."""
    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig

    with tempfile.TemporaryDirectory() as tmp:
        for agent in args.agents:
            ws = Path(tmp, "workspaces", agent)
            ws.mkdir(parents=True, exist_ok=True)
            for name, text in FILES.items():
                (ws / name).write_text(text)
        cfg = KernelConfig.from_flags(log_dir=args.log_dir or tmp, data_dir=tmp, scheduler=args.scheduler,
                                      scheduler_log_mode="file", agent_log_mode="file", max_new_tokens=128,
                                      weights=weights)
        t0 = time.time()
        with KernelClient(cfg) as k:
            jobs = [(agent, t, k.spawn(agent, t[1])) for agent in args.agents for t in tasks
                    if t[0] in AGENT_KINDS.get(agent, {t[0]})]
            rows = []
            for agent, (kind, task, expected), pid in jobs:
                snap = k.wait(pid, timeout=3600)
                answer, steps = answer_of(snap)
                res = snap.get("result") if isinstance(snap.get("result"), dict) else {}
                errs = [s.get("error", "") for s in steps]
                rows.append({"agent": agent, "kind": kind, "task": task, "expected": round(expected, 4),
                             "solved": snap.get("state") == "done" and solved(answer, expected), "answer": answer,
                             "steps": len(steps) if res else None,
                             "tokens": snap.get("tokens_in", 0) + snap.get("tokens_out", 0),
                             "unknown_tool": sum("no tool named" in e for e in errs),
                             "bad_args": sum("bad arguments" in e for e in errs), "state": snap.get("state"),
                             "weights": weights})
                print(f"[{weights} {len(rows)}/{len(jobs)} {time.time() - t0:.0f}s] {agent} {task!r}: "
                      f"{'ok' if rows[-1]['solved'] else 'x'} {answer[:100]!r}", file=sys.stderr, flush=True)
        return rows, time.time() - t0


def report(rows: list[dict], args, wall: float, weights: str = "auto") -> None:
    kinds = [k for k in dict.fromkeys(t[0] for t in TASKS) if args.kinds is None or k in args.kinds]
    if args.json:
        for r in rows:
            print(json.dumps(r))
    head = f"{'agent':<16}" + "".join(f"{k:>10}" for k in kinds) + f"{'all':>9}{'stated':>9}{'steps':>7}" \
           f"{'tokens':>8}{'unknown':>9}{'bad args':>9}"
    print(f"\n{len(rows)} agent runs in {wall:.0f} s (one kernel, one batch, greedy; --weights {weights})\n{head}")
    for agent in args.agents:
        mine = [r for r in rows if r["agent"] == agent]
        if not mine:
            continue
        cells = []
        for k in kinds:
            ks = [r for r in mine if r["kind"] == k]
            cells.append(f"{sum(r['solved'] for r in ks)}/{len(ks)}" if ks else "-")
        stated = [r for r in mine if r["kind"] in STATED]
        steps = [r["steps"] for r in mine if r["steps"] is not None]
        share = f"{100 * sum(r['solved'] for r in stated) / len(stated):.0f}%" if stated else "-"
        print(f"{agent:<16}" + "".join(f"{c:>10}" for c in cells)
              + f"{sum(r['solved'] for r in mine):>5}/{len(mine):<3}{share:>9}"
              + f"{(sum(steps) / len(steps) if steps else 0):>7.1f}{sum(r['tokens'] for r in mine) / len(mine):>8.0f}"
              + f"{sum(r['unknown_tool'] for r in mine):>9}{sum(r['bad_args'] for r in mine):>9}")
    if args.show_failures:
        for r in rows:
            if not r["solved"]:
                print(f"  x {r['agent']} [{r['kind']}] {r['task']} expected {r['expected']}: {r['answer'][:160]!r}")


if __name__ == "__main__":
    sys.exit(main())
