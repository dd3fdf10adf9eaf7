"""A smolagents CodeAgent, written as for any OpenAI-compatible server: ``python agent.py "a task"``.

OpenAIServerModel with no api_base/api_key lets the openai client read
OPENAI_BASE_URL and OPENAI_API_KEY, which AIOS points at the agent's own
endpoint. The agent's code runs in smolagents' local executor, inside the
agent's AIOS sandbox. Prints the final answer: the agent's result.
"""

import os
import sys

from smolagents import CodeAgent, LogLevel, OpenAIServerModel

task = sys.argv[-1] if len(sys.argv) > 1 else os.environ.get("AIOS_TASK", "What is 2 + 2?")
model = OpenAIServerModel(model_id="gpt-4o-mini", max_tokens=96, temperature=0)
agent = CodeAgent(tools=[], model=model, max_steps=int(os.environ.get("SMOL_MAX_STEPS", "2")),
                  verbosity_level=LogLevel.OFF)
print(agent.run(task))
