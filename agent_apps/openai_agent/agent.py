"""A script written for the openai SDK, nothing AIOS in it: ``python agent.py "a task"``.

Under AIOS (``"command": ["python", "agent.py"]`` in config.json) ``OpenAI()``
finds OPENAI_BASE_URL and OPENAI_API_KEY pointing at the agent's own
endpoint, so the call is an llm.chat syscall of this agent. Anywhere else it
talks to whatever those variables name. Prints the answer: the agent's result.
"""

import sys

from openai import OpenAI

client = OpenAI()
reply = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "system", "content": "You are a helpful assistant. Answer briefly."},
              {"role": "user", "content": sys.argv[-1]}],
    max_tokens=48, temperature=0)
print(reply.choices[0].message.content)
