"""The Berkeley Function Calling Leaderboard (BFCL v4) through the kernel, scored by BFCL's own checker.

Usage::

    python bench/bfcl.py [--category simple_python multiple parallel irrelevance ...] [--limit N]
                         [--tool-choice auto|required] [--llm-name NAME] [--weights auto|int8|fp32]
                         [--show-failures] [--out FILE]

Each case is one agent (bench/agents/bfcl_agent) that makes one ``llm.chat`` call with the case's
messages and its functions as ``tools``: the path every agent's tool calls take, the kernel's
constrained decoding included. The calls come back as ``tool_calls`` and are scored by
bfcl-eval's AST checker (``ast_checker``; ``irrelevance``/``live_irrelevance``: a case passes when
no call is made, ``live_relevance`` when one is, as BFCL's relevance runner decides), not by a
re-implementation.

bfcl-eval pins packages the project must not take (numpy 1.26.4, a dozen vendor SDKs, vLLM as an
extra), and its checker needs none of them: the benchmark installs ``bfcl-eval==BFCL_VERSION`` with
``--no-deps`` (plus ``filelock``, which its utils import) into its own folder,
``~/.cache/aios/bfcl-eval-BFCL_VERSION`` (``--bfcl-dir``), and puts that folder on ``sys.path``
of this process only; nothing is installed into the project's environment. Two pieces of
bfcl-eval are not imported as modules because their files import the vendor SDKs:
``constants.model_config`` (a table of model handlers; the checker reads one flag of it,
``underscore_to_dot``, provided here for the one model name this benchmark scores) and
``model_handler.utils`` (its ``_cast_to_openai_type``, which turns BFCL's types such as ``dict``
and ``float`` into JSON Schema, is compiled from that file's own source). Function names with
``.`` are sent with ``_`` (OpenAI-compatible servers refuse dots), as BFCL does for such APIs.

The categories are BFCL v4's single-turn ones: simple_python, multiple, parallel,
parallel_multiple, irrelevance, live_simple, live_multiple, live_parallel, live_parallel_multiple,
live_irrelevance, live_relevance (any call passes, as in BFCL); ``--limit N``: the first N cases of
each. The last line printed is one JSON object: ``{"accuracy": {category: share}, "cases":
{category: n}, "cut": {category: n}, "passed_cut": {category: n}, "weights": "int8"|"fp32"|...,
"wall_s": ..., ...}``.

``weights`` is what the local model ran (``--weights auto`` picks int8 on a CPU with AVX-512 VNNI
and float16 weights elsewhere: see docs/llm-engine.md), so figures from different machines say which
weights they measured. ``cut`` counts the replies that ran into ``--max-new-tokens`` (a call that
never closed, say) and ``passed_cut`` those of them that passed anyway: BFCL reads an unfinished
call as no call, so in the irrelevance categories a runaway reply scores as a right refusal.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "bench" / "agents")

BFCL_VERSION = "2026.3.23"
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance", "live_simple",
              "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
MODEL = "aios"  # the name the checker is told; underscore_to_dot is set for it (see the docstring)


# -- bfcl-eval, kept out of the project's environment -----------------------------------------------
def install_bfcl(folder: Path) -> Path:
    """bfcl-eval (no dependencies) in ``folder``; installs it on first use. Returns the package folder."""
    pkg = folder / "bfcl_eval"
    if not (pkg / "data" / "BFCL_v4_simple_python.json").exists():
        print(f"installing bfcl-eval=={BFCL_VERSION} (--no-deps) into {folder} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--target", str(folder), f"bfcl-eval=={BFCL_VERSION}", "filelock"], check=True)
    return pkg


class Checker:
    """bfcl-eval's own scoring functions, imported from ``folder``."""

    def __init__(self, folder: Path):
        pkg = install_bfcl(folder)
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        stub = types.ModuleType("bfcl_eval.constants.model_config")
        stub.MODEL_CONFIG_MAPPING = {MODEL: types.SimpleNamespace(underscore_to_dot=True)}
        sys.modules["bfcl_eval.constants.model_config"] = stub
        from bfcl_eval.constants.enums import Language
        from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
        from bfcl_eval.utils import is_empty_output

        self.language, self.ast_checker, self.is_empty_output = Language.PYTHON, ast_checker, is_empty_output
        self.mapping = GORILLA_TO_OPENAPI
        source = (pkg / "model_handler" / "utils.py").read_text()
        fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "_cast_to_openai_type")
        scope = {"GORILLA_TO_OPENAPI": GORILLA_TO_OPENAPI}
        exec(compile(ast.Module(body=[fn], type_ignores=[]), str(pkg / "model_handler" / "utils.py"), "exec"), scope)
        self._cast = scope["_cast_to_openai_type"]
        self.data = pkg / "data"

    def cases(self, category: str, limit: int) -> list[dict]:
        rows = [json.loads(line) for line in (self.data / f"BFCL_v4_{category}.json").read_text().splitlines() if line]
        answers = self.data / "possible_answer" / f"BFCL_v4_{category}.json"
        truth = {}
        if answers.exists():
            truth = {r["id"]: r["ground_truth"] for r in map(json.loads, answers.read_text().splitlines()) if r}
        rows = rows[:limit] if limit else rows
        for r in rows:
            r["ground_truth"] = truth.get(r["id"])
        return rows

    def tools(self, functions: list[dict]) -> list[dict]:
        """BFCL's function docs as OpenAI tools, as its OpenAI function-calling handler sends them."""
        out = []
        for f in copy.deepcopy(functions):
            f["name"] = re.sub(r"\.", "_", f["name"])
            f["parameters"]["type"] = "object"
            f["parameters"]["properties"] = self._cast(f["parameters"]["properties"], self.mapping)
            out.append({"type": "function", "function": f})
        return out

    def score(self, category: str, case: dict, calls: list[dict]) -> tuple[bool, str]:
        """(passed, why not) for the calls the model made (``[{"name", "arguments"}]``)."""
        decoded = [{c["name"]: c["arguments"]} for c in calls]
        if "irrelevance" in category:
            return (self.is_empty_output(decoded), "made a call where none fits")
        if category == "live_relevance":  # some call is right; which one is not scored (as BFCL does)
            return (not self.is_empty_output(decoded), "no call where one fits")
        if not calls:
            return False, "no call"
        res = self.ast_checker(case["function"], decoded, case["ground_truth"], self.language, category, MODEL)
        return bool(res["valid"]), "; ".join(map(str, res.get("error", [])))[:300]


# -- the run ---------------------------------------------------------------------------------------
def run(args, checker: Checker) -> dict:
    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig

    work = [(cat, case) for cat in args.category for case in checker.cases(cat, args.limit)]
    results: dict[str, list[dict]] = {cat: [] for cat in args.category}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dict(log_dir=tmp, data_dir=tmp, scheduler_log_mode="file", agent_log_mode="file",
                   max_new_tokens=args.max_new_tokens, max_agents=max(64, args.concurrency * 2),
                   tool_decision=args.tool_decision, weights=args.weights)
        if args.llm_name:
            cfg["llm_name"] = args.llm_name
        with KernelClient(KernelConfig.from_flags(**cfg)) as k:
            pending = list(work)
            live: list[tuple[str, dict, int]] = []
            done = 0
            while pending or live:
                while pending and len(live) < args.concurrency:
                    cat, case = pending.pop(0)
                    task = {"messages": case["question"][0], "tools": checker.tools(case["function"]),
                            "tool_choice": args.tool_choice, "max_new_tokens": args.max_new_tokens}
                    live.append((cat, case, k.spawn("BFCLAgent", json.dumps(task))))
                cat, case, pid = live.pop(0)
                snap = k.wait(pid, timeout=3600)
                rec = snap.get("result") if isinstance(snap.get("result"), dict) else {}
                calls = rec.get("tool_calls") or []
                ok, why = checker.score(cat, case, calls)
                if snap.get("state") != "done" or "error" in rec:
                    ok, why = False, str(rec.get("error") or snap.get("error"))[:300]
                results[cat].append({"id": case["id"], "passed": ok, "why": "" if ok else why, "calls": calls,
                                     "text": (rec.get("text") or "")[:200], "finish": rec.get("finish_reason")})
                done += 1
                print(f"[{done}/{len(work)} {time.time() - t0:.0f}s] {case['id']}: {'ok' if ok else 'x'} "
                      f"{json.dumps(calls)[:150] if calls else repr((rec.get('text') or '')[:80])}",
                      file=sys.stderr, flush=True)
    wall = time.time() - t0
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    if args.show_failures:
        for cat, rows in results.items():
            for r in rows:
                if not r["passed"]:
                    print(f"  x {r['id']}: {r['why'][:160]} | {json.dumps(r['calls'])[:200] or repr(r['text'])}")
    return {"accuracy": {cat: round(sum(r["passed"] for r in rows) / len(rows), 4) if rows else None
                         for cat, rows in results.items()},
            "cases": {cat: len(rows) for cat, rows in results.items()},
            "passed": {cat: sum(r["passed"] for r in rows) for cat, rows in results.items()},
            # Replies cut by --max-new-tokens (finish_reason "length"): a call that never closed is no
            # call to BFCL, so an irrelevance case "passes" that way; these say how many did.
            "cut": {cat: sum(r["finish"] == "length" for r in rows) for cat, rows in results.items()},
            "passed_cut": {cat: sum(r["passed"] and r["finish"] == "length" for r in rows)
                           for cat, rows in results.items()},
            "tool_choice": args.tool_choice, "tool_decision": args.tool_decision, "llm_name": args.llm_name or "embedded",
            "weights": ran_weights(args), "wall_s": round(wall, 1)}


def ran_weights(args) -> str:
    """What ``--weights`` resolved to for the local model on this machine (the kernel's own rule)."""
    from kernel.config import EMBEDDED_MODEL
    from kernel.llm import catalog, model

    if catalog.resolve(args.llm_name or EMBEDDED_MODEL).remote:
        return "remote"
    return model.resolve_weights(args.weights, "cpu")


def calibrate(args, checker: Checker) -> dict:
    """The kernel's tool decision (kernel.llm.relevance) on BFCL cases, without generating: the
    best relevance score of each case's callable tools, swept over thresholds. Shows how
    ``RELEVANCE_MIN`` and ``RELEVANCE_NEAR`` were chosen (on the live categories)."""
    from kernel.config import EMBEDDED_MODEL
    from kernel.llm import constrain, ground, model, relevance

    m, tok = model.load(args.llm_name or EMBEDDED_MODEL)
    rows = []
    for cat in args.category:
        for case in checker.cases(cat, args.limit):
            functions = constrain.tool_functions(checker.tools(case["function"]))
            msgs = case["question"][0]
            nums = ground.numbers([x["content"] for x in msgs if isinstance(x.get("content"), str)])
            able = [f for f in functions if ground.ground(f["parameters"], nums) is not None]
            s = relevance.scores(m, tok, relevance.request_text(msgs), able) if able and relevance.applies(
                msgs, "auto") else []
            truth = {re.sub(r"\.", "_", next(iter(c))) for c in case["ground_truth"] or []}
            best = max(s) if s else float("-inf")
            rows.append({"cat": cat, "relevant": "irrelevance" not in cat, "best": best,
                         "truth_gap": min((best - x for f, x in zip(able, s) if f["name"] in truth), default=None),
                         "n_tools": len(functions)})
    out = {"cases": len(rows), "sweep": []}
    for tau in [x / 20 for x in range(-10, 17)]:
        rel = [r for r in rows if r["relevant"]]
        irr = [r for r in rows if not r["relevant"]]
        out["sweep"].append({"min": tau, "relevant_called": round(sum(r["best"] >= tau for r in rel) / max(1, len(rel)), 3),
                             "irrelevant_not_called": round(sum(r["best"] < tau for r in irr) / max(1, len(irr)), 3)})
    multi = [r for r in rows if r["n_tools"] > 1 and r["relevant"]]
    out["near"] = [{"near": d, "truth_kept": round(sum(r["truth_gap"] is not None and r["truth_gap"] <= d
                                                       for r in multi) / max(1, len(multi)), 3)}
                   for d in (0.0, 0.1, 0.25, 0.5, 1.0)]
    for line in out["sweep"]:
        print(f"  min {line['min']:+.2f}: relevant called {line['relevant_called']:.3f}, "
              f"irrelevant not called {line['irrelevant_not_called']:.3f}")
    for line in out["near"]:
        print(f"  near {line['near']:.2f}: the right tool among those kept in {line['truth_kept']:.3f} of {len(multi)}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="BFCL v4 single-turn categories through the kernel's llm.chat with tools")
    p.add_argument("--category", nargs="+", default=["simple_python"], choices=CATEGORIES, metavar="CATEGORY",
                   help=f"one or more of: {', '.join(CATEGORIES)}")
    p.add_argument("--limit", type=int, default=0, help="only the first N cases of each category (0: all)")
    p.add_argument("--tool-choice", default="auto", choices=("auto", "required"),
                   help="auto (default; as BFCL runs every model) or required")
    p.add_argument("--llm-name", help="the kernel's --llm_name (default: the embedded model)")
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--weights", default="auto", choices=("auto", "int8", "fp16", "fp32"),
                   help="the local model's --weights (auto: int8 on a CPU with AVX-512 VNNI, fp16 elsewhere)")
    p.add_argument("--concurrency", type=int, default=32, help="agents in flight at once (one batch)")
    p.add_argument("--bfcl-dir", default=str(Path.home() / ".cache" / "aios" / f"bfcl-eval-{BFCL_VERSION}"),
                   help="where bfcl-eval is installed (--no-deps) and read from")
    p.add_argument("--show-failures", action="store_true")
    p.add_argument("--out", help="write every case's calls and verdict to this JSON file")
    p.add_argument("--install-only", action="store_true", help="install bfcl-eval into --bfcl-dir and stop")
    p.add_argument("--calibrate", action="store_true",
                   help="no generation: sweep the kernel's tool-decision thresholds over the categories' cases")
    p.add_argument("--tool-decision", default="kernel", choices=("kernel", "model"),
                   help="the kernel's --tool_decision (local model, tool_choice auto)")
    args = p.parse_args(argv)
    checker = Checker(Path(args.bfcl_dir))
    if args.install_only:
        return 0
    summary = calibrate(args, checker) if args.calibrate else run(args, checker)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
