"""main.py as a person runs it: answers last, and Ctrl-C during the first model conversion.

Proves (issue 22): ``main.py`` ends with one answer line per agent (``[1] MathAgent done in
5.9s: 2 * 16 + 2 * 8 = 48``), under ``-q`` too, and a pipe gets them whole; Ctrl-C while the
model is being converted ends the run promptly with one line, no runtime noise (``terminate
called without an active exception``, tracebacks) and no half-written model cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect

ROOT = Path(__file__).resolve().parents[2]


def test_main_ends_with_one_answer_line_per_agent_also_quiet(tmp_path):
    r = subprocess.run([sys.executable, "main.py", "-q", "--agents", "MathAgent", "ReActAgent",
                        "--log-dir", str(tmp_path / "logs"), "--data-dir", str(tmp_path / "data")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.rstrip("\n").splitlines()
    assert re.fullmatch(r"\[1\] MathAgent done in \S+: 2 \* 16 \+ 2 \* 8 = 48", lines[-2]), r.stdout
    assert re.fullmatch(r"\[2\] ReActAgent done in \S+: .*3\.10686.*", lines[-1]), r.stdout
    assert "[MathAgent 1]" not in r.stdout and "step 1" not in r.stdout  # -q: no agent lines
    assert "AIOS run summary" in r.stdout and "…" not in r.stdout  # a pipe: nothing cut


def test_ctrl_c_during_the_model_conversion_leaves_no_noise_and_no_half_cache(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}  # no converted model here: the first run converts it
    child = pexpect.spawn(sys.executable, ["main.py", "--log-dir", str(tmp_path / "logs"),
                                           "--data-dir", str(tmp_path / "data")],
                          cwd=str(ROOT), env=env, encoding="utf-8", timeout=120, dimensions=(40, 160))
    child.expect("converting")
    child.expect(r"[1-9]\d*/[1-9]\d+")  # inside the conversion: its bar counts tensors read (n/total)
    t0 = time.monotonic()
    child.sendcontrol("c")
    child.expect(pexpect.EOF, timeout=60)
    took = time.monotonic() - t0
    child.close()
    out = child.before
    assert child.exitstatus == 130, out
    assert "interrupted: stopping the kernel and all agents" in out
    assert "terminate called" not in out and "Traceback" not in out and "Exception ignored" not in out, out
    models = cache / "aios" / "models"
    left = [p.name for p in models.iterdir()] if models.exists() else []
    assert not [n for n in left if ".tmp" in n], left  # no half-written conversion
    for name in left:  # what is there is whole
        assert (models / name / "model.safetensors").exists(), left
    print(f"exit {took:.2f}s after Ctrl-C")  # measured, not asserted (issue 22: within 2 s)
