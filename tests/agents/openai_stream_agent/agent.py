"""OpenAIStreamAgent (tests): exercises the endpoint with the real openai SDK; prints JSON."""

import json
import os
import sys

import openai
from openai import OpenAI

client = OpenAI(max_retries=0)
msgs = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": sys.argv[-1]}]
out = {"base_url": os.environ["OPENAI_BASE_URL"], "task_env": os.environ.get("AIOS_TASK"),
       "models": [m.id for m in client.models.list()]}
plain = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=16, temperature=0)
out["plain"] = {"text": plain.choices[0].message.content, "finish": plain.choices[0].finish_reason,
                "usage": plain.usage.model_dump(), "model": plain.model}
chunks = list(client.chat.completions.create(model="llama-70b", messages=msgs, max_tokens=16, temperature=0,
                                             stream=True, stream_options={"include_usage": True}))
out["stream"] = {"text": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
                 "chunks": len(chunks), "finish": [c.choices[0].finish_reason for c in chunks if c.choices][-1],
                 "usage": chunks[-1].usage.model_dump() if chunks[-1].usage else None}
tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {
    "a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}}]
try:
    r = client.chat.completions.create(model="m", messages=msgs, max_tokens=32, tools=tools, tool_choice="required")
    out["tools"] = {"status": 200, "finish": r.choices[0].finish_reason}
    call = r.choices[0].message.tool_calls[0]  # the next turn, as openai code writes it: the message object back
    again = client.chat.completions.create(model="m", max_tokens=16, tools=tools, messages=[
        *msgs, r.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "3"}])
    out["turn2"] = {"call": call.function.name, "text": again.choices[0].message.content,
                    "prompt_tokens": again.usage.prompt_tokens, "first_prompt_tokens": r.usage.prompt_tokens}
except openai.APIStatusError as e:
    out["tools"] = {"status": e.status_code, "message": e.message}
try:
    client.chat.completions.create(model="m", messages=msgs, max_tokens=100_000)
    out["refused"] = {"status": 200}
except openai.APIStatusError as e:
    out["refused"] = {"status": e.status_code, "message": e.message, "type": type(e).__name__}
print(json.dumps(out))
