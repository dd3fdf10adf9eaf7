"""ForkingOpenAIAgent (tests): one openai call, then descendants that try to outlive a kill."""

import os
import subprocess
import sys
import time

from openai import OpenAI

OpenAI(max_retries=0).chat.completions.create(model="any", messages=[{"role": "user", "content": sys.argv[-1]}],
                                              max_tokens=4)
subprocess.Popen(["sleep", "600"])
if os.fork() == 0:  # double fork + setsid: the classic daemon escape
    os.setsid()
    if os.fork() == 0:
        time.sleep(600)
    os._exit(0)
print("descendants started", file=sys.stderr, flush=True)
time.sleep(600)
