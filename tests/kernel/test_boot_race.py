"""Cold boots with agents started while the model loads: the LLM must be ready in every one.

Regression: the LLM engine and the memory embedder imported transformers on
two threads at once, and in about one cold boot in three the model failed to
load with ``ImportError: cannot import name 'DynamicCache'`` (kernel/hf.py).
"""

from __future__ import annotations

import json

import pytest

from aios_shell.client import KernelClient
from kernel.config import KernelConfig

BOOTS = 20
# mem.add wakes the embedder (it loads MiniLM) while the engine thread loads the LLM.
TASK = json.dumps({"ops": [{"mem_fill": {"n": 2, "size": 40}}, {"chat": {"content": "hi", "max_new_tokens": 2}}]})


@pytest.mark.timeout(1800)  # 20 boots: ~2 min on a quiet 2-core machine, far more on a loaded one
def test_cold_boots_with_agents_before_ready(tmp_path):
    failures = []
    for i in range(BOOTS):
        cfg = KernelConfig.from_flags(log_dir=str(tmp_path / f"logs{i}"), data_dir=str(tmp_path / f"data{i}"),
                                      max_new_tokens=4)
        with KernelClient(cfg, boot_timeout=300) as k:
            for _ in range(2):
                k.spawn("MemFsAgent", TASK)  # before the model is ready; their mem.add wakes the embedder
            assert k.ready.wait(300), f"boot {i}: no word from the model loader"
            if k.ready_info.get("load_error"):
                failures.append((i, k.ready_info["load_error"]))
    assert not failures, failures
