"""Benchmark agent for bench/long_prompt.py.

Task (JSON): {"gate": pid, "watch": pid, "max_new_tokens": 4, "max_calls": 500}
waits for process ``gate`` to end, then makes short greedy llm.chat calls one
after another until process ``watch`` has ended (or ``max_calls``), and
returns each call's turnaround (the kernel's figure) and wall-clock span.
"""

import json
import time

from agent_apps.sdk import llm, proc

ENDED = ("done", "failed", "killed")


class ShortCallsAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        spec = json.loads(task)
        proc.wait(spec["gate"])
        calls = []
        for i in range(spec.get("max_calls", 500)):
            t0 = time.time()
            r = llm.chat_full([{"role": "user", "content": f"Say the number {i}."}],
                              max_new_tokens=spec.get("max_new_tokens", 4))
            calls.append({"t_start": t0, "t_end": time.time(), "turnaround_s": r["turnaround_s"],
                          "tokens_out": r["tokens_out"]})
            if proc.info(spec["watch"])["state"] in ENDED:
                break
        return calls
