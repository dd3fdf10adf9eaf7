"""OpenAIChatAgent (bench/frameworks.py): a plain openai-SDK script, run as an AIOS command agent.

Same task and result as SDKChatAgent (printed as JSON), with the calls made by ``OpenAI()`` through the
agent's endpoint.
"""

import json
import sys
import time

from openai import OpenAI

spec = json.loads(sys.argv[-1])
client = OpenAI()
late = time.time() - spec["start_at"]
time.sleep(max(0.0, -late))
calls = []
for i in range(spec["calls"]):
    t0 = time.time()
    r = client.chat.completions.create(model="gpt-4o-mini", max_tokens=spec["max_new_tokens"],
                                       messages=[{"role": "user", "content": f"{spec['prompt']} ({i})"}])
    calls.append({"t_start": t0, "t_end": time.time(), "text": r.choices[0].message.content,
                  "tokens_in": r.usage.prompt_tokens, "tokens_out": r.usage.completion_tokens})
print(json.dumps({"late_s": late, "calls": calls}))
