"""Earlier tool calls and their results in llm.chat messages, as each backend receives them (no model).

The kernel tier (tests/kernel/test_openai_backend.py, test_gemini_backend.py) sends the same histories
through a real server that checks the pairing as the real APIs do.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from kernel.llm.backends.gemini import to_contents
from kernel.llm.backends.openai_compat import to_openai
from kernel.llm.constrain import as_text, call_text, parse_reply
from kernel.llm.request import prompt_token_bound
from kernel.llm.serve.gemini import to_messages
from kernel.llm.serve.server import from_openai
from kernel.syscall import CHAT_MESSAGES

CALC = {"name": "calculator", "arguments": {"expression": "17 * 23"}}
CONV = {"name": "unit_converter", "arguments": {"value": 3, "from_unit": "km", "to_unit": "m"}}
HISTORY = [{"role": "system", "content": "Use tools."},
           {"role": "user", "content": "What is 17 * 23, and 3 km in m?"},
           {"role": "assistant", "content": "", "tool_calls": [CALC, CONV]},
           {"role": "tool", "content": '{"value": 391}'},
           {"role": "tool", "content": '{"value": 3000}'},
           {"role": "user", "content": "Thanks."},
           {"role": "tool", "content": "a tool result that answers no call"}]


def test_the_local_model_reads_calls_as_it_writes_them():
    assert call_text([CALC]) == '<tool_call>[{"name":"calculator","arguments":{"expression":"17 * 23"}}]</tool_call>'
    assert parse_reply(call_text([CALC, CONV])) == {"tool_calls": [CALC, CONV], "text": ""}
    local = as_text([{"role": "assistant", "content": "Let me compute.", "tool_calls": [{"id": "c9", **CALC}]},
                     {"role": "tool", "content": "391", "tool_call_id": "c9"}])
    assert local == [{"role": "assistant", "content": "Let me compute.\n" + call_text([CALC])},
                     {"role": "tool", "content": "391"}]


def test_openai_gets_native_tool_messages_paired_by_position_or_id():
    out = to_openai(HISTORY)
    ids = [c["id"] for c in out[2]["tool_calls"]]
    assert ids == ["call_2_0", "call_2_1"] and out[2]["content"] is None
    assert out[2]["tool_calls"][1]["function"] == {"name": "unit_converter",
                                                   "arguments": json.dumps(CONV["arguments"])}
    assert [(m["role"], m.get("tool_call_id")) for m in out[3:]] == [
        ("tool", "call_2_0"), ("tool", "call_2_1"), ("user", None), ("user", None)]  # the orphan goes as text
    named = to_openai([{"role": "assistant", "content": "", "tool_calls": [{"id": "a", **CALC}, {"id": "b", **CONV}]},
                       {"role": "tool", "content": "3000", "tool_call_id": "b"}, {"role": "tool", "content": "391"}])
    assert [m.get("tool_call_id") for m in named[1:]] == ["b", "a"]
    assert from_openai(out) == [  # the test server's check, as strict as OpenAI's, passes and reads back:
        *HISTORY[:2], {"role": "assistant", "content": "",
                       "tool_calls": [{"id": "call_2_0", **CALC}, {"id": "call_2_1", **CONV}]},
        *HISTORY[3:6], {"role": "user", "content": "a tool result that answers no call"}]


def test_the_test_server_checks_pairing_as_openai_does():
    call = {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}
    for bad, why in [([{"role": "tool", "content": "1", "tool_call_id": "c1"}], "must be a response"),
                     ([{"role": "assistant", "content": None, "tool_calls": [call]},
                       {"role": "user", "content": "next"}], "must be followed by tool messages"),
                     ([{"role": "assistant", "content": None, "tool_calls": [call]},
                       {"role": "tool", "content": "1", "tool_call_id": "c2"}], "must be a response"),
                     ([{"role": "user", "content": None}], "string content")]:
        with pytest.raises(ValueError, match=why):
            from_openai(bad)


def test_gemini_gets_function_call_and_response_parts():
    contents, system = to_contents(HISTORY)
    assert system == "Use tools."
    model = contents[1]
    assert model.role == "model" and [p.function_call.name for p in model.parts] == ["calculator", "unit_converter"]
    assert model.parts[1].function_call.args == CONV["arguments"]
    answers = [c.parts[0].function_response for c in contents[2:4]]
    assert [(a.name, a.response) for a in answers] == [("calculator", {"result": '{"value": 391}'}),
                                                       ("unit_converter", {"result": '{"value": 3000}'})]
    assert [(c.role, c.parts[0].text) for c in contents[4:]] == [("user", "Thanks."),
                                                                 ("user", "a tool result that answers no call")]


def test_the_gemini_test_server_reads_calls_and_responses():
    wire = {"systemInstruction": {"parts": [{"text": "Use tools."}]}, "contents": [
        {"role": "user", "parts": [{"text": "What is 17 * 23?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "calculator", "args": CALC["arguments"]}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "calculator", "response": {"result": "391"}}}]}]}
    assert to_messages(wire) == [{"role": "system", "content": "Use tools."},
                                 {"role": "user", "content": "What is 17 * 23?"},
                                 {"role": "assistant", "content": call_text([CALC])},
                                 {"role": "tool", "content": "391"}]


def test_the_syscall_schema_bounds_tool_turns():
    ok = jsonschema.Draft202012Validator(CHAT_MESSAGES)
    assert ok.is_valid(HISTORY + [{"role": "tool", "content": "x", "tool_call_id": "c1"}])
    for bad in ([{"role": "assistant", "content": "", "tool_calls": [CALC] * 17}],
                [{"role": "assistant", "content": "", "tool_calls": []}],
                [{"role": "assistant", "content": "", "tool_calls": [{"name": "x", "arguments": "{}"}]}],
                [{"role": "assistant", "content": "", "tool_calls": [{"name": "x" * 65, "arguments": {}}]}],
                [{"role": "assistant", "content": "", "tool_calls": [{"name": "x]}</tool_call>", "arguments": {}}]}],
                [{"role": "tool", "content": "", "tool_call_id": "x" * 65}],
                [{"role": "assistant", "content": "", "tool_calls": [{**CALC, "type": "function"}]}]):
        assert not ok.is_valid(bad), bad


def test_remote_quota_bound_counts_the_calls():
    """A remote prompt is charged by a bound without a tokenizer: calls must count, or big arguments
    would ride free past the token quota."""
    big = {"name": "x", "arguments": {"blob": "a" * 10_000}}
    bare = prompt_token_bound([{"role": "assistant", "content": ""}])
    assert prompt_token_bound([{"role": "assistant", "content": "", "tool_calls": [big]}]) >= bare + 10_000
