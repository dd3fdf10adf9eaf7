"""SDKChatAgent (bench/frameworks.py): the same calls as OpenAIChatAgent, written against the AIOS SDK.

Task (JSON): {"prompt", "calls", "max_new_tokens", "start_at"}: sleeps until start_at (wall clock, so
every agent of a batch starts together, whatever its start-up cost), then makes the calls one after
another; returns per call {t_start, t_end, text, tokens_in, tokens_out}.
"""

import json
import time

from agent_apps.sdk import llm


class SDKChatAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        spec = json.loads(task)
        late = time.time() - spec["start_at"]
        time.sleep(max(0.0, -late))
        calls = []
        for i in range(spec["calls"]):
            t0 = time.time()
            r = llm.chat_full([{"role": "user", "content": f"{spec['prompt']} ({i})"}],
                              max_new_tokens=spec["max_new_tokens"])
            calls.append({"t_start": t0, "t_end": time.time(), "text": r["text"], "tokens_in": r["tokens_in"],
                          "tokens_out": r["tokens_out"]})
        return {"late_s": late, "calls": calls}
