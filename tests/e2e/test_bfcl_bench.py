"""bench/bfcl.py as a user runs it: bfcl-eval installed outside the project's environment, BFCL cases
through a real kernel, scored by BFCL's own checker, one JSON object on the last line.

The first test installs bfcl-eval (--no-deps) from the package index into ~/.cache/aios, as the
benchmark does on first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "bfcl.py"


@pytest.fixture(scope="module")
def checker():
    import importlib.util
    import os

    env = dict(os.environ)  # the bench sets AIOS_AGENT_PATH for its kernel: not for the other tests
    try:
        spec = importlib.util.spec_from_file_location("bfcl_bench", BENCH)
        bfcl = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bfcl)
    finally:
        os.environ.clear()
        os.environ.update(env)
    dest = Path.home() / ".cache" / "aios" / f"bfcl-eval-{bfcl.BFCL_VERSION}"
    return bfcl, bfcl.Checker(dest)


def test_bfcl_eval_stays_out_of_the_projects_environment(checker):
    bfcl, c = checker
    import importlib.util
    spec = importlib.util.find_spec("bfcl_eval")
    assert spec is not None and not spec.origin.startswith(sys.prefix), spec  # imported from the cache folder
    out = subprocess.run([sys.executable, "-c", "import bfcl_eval"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0  # the venv itself has no bfcl-eval


def test_the_checker_is_bfcls_own_and_can_fail(checker):
    _, c = checker
    case = c.cases("simple_python", 1)[0]  # calculate_triangle_area(base=10, height=5)
    name = c.tools(case["function"])[0]["function"]["name"]
    assert c.score("simple_python", case, [{"name": name, "arguments": {"base": 10, "height": 5}}])[0]
    ok, why = c.score("simple_python", case, [{"name": name, "arguments": {"base": 5, "height": 10}}])
    assert not ok and "base" in why
    assert not c.score("simple_python", case, [])[0]
    irr = c.cases("irrelevance", 1)[0]
    assert c.score("irrelevance", irr, [])[0]
    assert not c.score("irrelevance", irr, [{"name": "x", "arguments": {"a": 1}}])[0]
    rel = c.cases("live_relevance", 1)[0]
    assert c.score("live_relevance", rel, [{"name": "x", "arguments": {"a": 1}}])[0]
    assert not c.score("live_relevance", rel, [])[0]


def test_the_bench_runs_cases_through_the_kernel_and_prints_json_last():
    out = subprocess.run([sys.executable, str(BENCH), "--category", "simple_python", "irrelevance", "--limit", "2",
                          "--weights", "fp32"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["cases"] == {"simple_python": 2, "irrelevance": 2}
    assert set(summary["accuracy"]) == {"simple_python", "irrelevance"}
    assert all(0 <= v <= 1 for v in summary["accuracy"].values())
    assert summary["tool_choice"] == "auto" and summary["wall_s"] > 0
    assert summary["weights"] == "fp32"  # what the model ran, named in the figures
    assert summary["cut"] == {"simple_python": 0, "irrelevance": 0} == summary["passed_cut"]
    # the kernel decided: the triangle-area request was called (case 0 is solved by the embedded model)
    assert summary["passed"]["simple_python"] >= 1, out.stderr[-3000:]


def test_replies_cut_by_max_new_tokens_are_counted():
    """A call that cannot close within --max-new-tokens is no call to BFCL; the summary says it was cut."""
    out = subprocess.run([sys.executable, str(BENCH), "--category", "simple_python", "--limit", "1",
                          "--max-new-tokens", "4"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["cut"] == {"simple_python": 1} and summary["passed"] == {"simple_python": 0}, out.stderr[-3000:]
    assert summary["passed_cut"] == {"simple_python": 0}
    assert summary["weights"] in ("int8", "fp16", "fp32")  # auto, resolved for this CPU
