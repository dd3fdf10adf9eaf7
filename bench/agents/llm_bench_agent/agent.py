"""Benchmark agent for bench/throughput.py.

Task (JSON): {"prompt": str, "calls": K, "max_new_tokens": T, "gate": pid}
waits for process ``gate`` to end (proc.wait: all agents start together),
then makes K greedy llm.chat calls one after another and returns, per call,
its text, tokens in/out, the kernel's waiting/turnaround times and the
call's start/end on the wall clock. Task {"gate": null, "sleep": true}: the
gate itself, sleeps until the benchmark kills it.
"""

import json
import time

from agent_apps.sdk import llm, proc


class LLMBenchAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        spec = json.loads(task)
        if spec.get("sleep"):
            proc.info()  # be in the table as running before blocking
            time.sleep(3600)
            return None
        if spec.get("gate") is not None:
            proc.wait(spec["gate"])
        calls = []
        for _ in range(spec["calls"]):
            t0 = time.time()
            r = llm.chat_full([{"role": "user", "content": spec["prompt"]}], max_new_tokens=spec["max_new_tokens"])
            calls.append({"t_start": t0, "t_end": time.time(), "text": r["text"], "tokens_in": r["tokens_in"],
                          "tokens_out": r["tokens_out"], "waiting_s": r["waiting_s"],
                          "turnaround_s": r["turnaround_s"], "preemptions": r.get("preemptions", 0)})
        return calls
