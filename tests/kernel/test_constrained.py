"""Constrained decoding in the local engine: the real model, greedy, driven directly.

response_format and tools become a grammar per sequence (kernel.llm.constrain); the
engine masks those rows' logits inside the batch (kernel.llm.logitmask).
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from kernel.llm import constrain
from kernel.llm.request import LLMRequest, SamplingParams
from test_engine import chat, run, shared_model, start, weights  # noqa: F401 (fixtures)
from toolspecs import CALC, CONVERT, FMT, PERSON, TOOL_SCHEMAS



def person(i: int, **kw):
    return chat("Describe a person who lives in a European city, as JSON.", i, max_new=64, response_format=FMT, **kw)


def tool_call(prompt: str, i: int, **kw):
    return chat(prompt, i, max_new=64, tools=[CALC, CONVERT], tool_choice="required", **kw)


def check_call(res: dict) -> dict:
    assert res["finish_reason"] == "tool_calls", res
    (call,) = res["tool_calls"]
    assert call["name"] in TOOL_SCHEMAS
    jsonschema.validate(call["arguments"], TOOL_SCHEMAS[call["name"]])
    return call


def test_json_schema_output_validates_and_tools_name_a_real_tool_in_one_mixed_batch():
    """Constrained and free rows decode in one batch; free rows are what they are alone."""
    free = [chat("What is the capital of France?", 0, max_new=48), chat("Name a famous painter.", 1, max_new=48)]
    alone, _ = run(free, scheduler="fifo")
    reqs = [person(2), chat("What is the capital of France?", 0, max_new=48),
            tool_call("What is 17 * 23?", 3), chat("Name a famous painter.", 1, max_new=48),
            tool_call("Convert 5 kilometers to miles.", 4)]
    out, stats = run(reqs, scheduler="fifo")
    assert all(err is None for _, err in out), out
    assert stats["batch_occupancy"] > 2, stats  # they really shared the batch
    obj = json.loads(out[0][0]["text"])
    jsonschema.validate(obj, PERSON)
    assert out[0][0]["finish_reason"] == "stop"
    assert [out[1][0]["text"], out[3][0]["text"]] == [r["text"] for r, _ in alone]
    assert "tool_calls" not in out[1][0]
    calc, conv = check_call(out[2][0]), check_call(out[4][0])
    # Which tool the small model picks is its own business; the grammar's part is a valid call.
    assert "17" in json.dumps(calc["arguments"]) and "5" in json.dumps(conv["arguments"])


def test_an_earlier_call_reads_back_as_the_model_wrote_it():
    """The next turn shows the model its call as the very text it generated (constrain.as_text), so the
    prefix cache serves the whole previous turn, the call included, and only the tool's result is new."""
    e = start(prefix_cache="on", scheduler="fifo")
    try:
        (first, err), = run([tool_call("What is 17 * 23?", 0)], engine=e)[0]
        assert err is None
        check_call(first)
        before = e.stats()["prefix_hit_tokens"]
        history = [{"role": "user", "content": "What is 17 * 23?"},
                   {"role": "assistant", "content": "", "tool_calls": first["tool_calls"]},
                   {"role": "tool", "content": '{"value": 391}'}]
        (second, err), = run([LLMRequest(pid=100, req_id=1, messages=history, tools=[CALC, CONVERT],
                                         sampling=SamplingParams(max_new_tokens=4))], engine=e)[0]
        assert err is None, err
        hit = e.stats()["prefix_hit_tokens"] - before
        # all of turn one (its last token, the end of turn, was sampled but never fed back)
        assert hit >= first["tokens_in"] + first["tokens_out"] - 1, (hit, first)
        assert second["tokens_in"] - hit <= 24, (second, hit)  # the tool turn and the reply header (20)
    finally:
        e.stop()


def test_named_tool_choice_and_auto():
    named = chat("What is 2 + 2?", 0, max_new=48, tools=[CALC, CONVERT],
                 tool_choice={"type": "function", "function": {"name": "unit_converter"}})
    auto = chat("Say hello.", 1, max_new=16, tools=[CALC], tool_choice="auto")
    (n, err), (a, err2) = run([named, auto], scheduler="fifo")[0]
    assert err is None and err2 is None
    assert check_call(n)["name"] == "unit_converter"  # forced, even for an arithmetic question
    assert a["tool_calls"] == [] and a["text"].strip() and a["finish_reason"] in ("stop", "length")


@pytest.mark.usefixtures("weights")
def test_preemption_keeps_the_matcher_state():
    """Greedy constrained output is identical with and without preemption (rr, small quantum)."""
    def reqs():
        return [person(0), tool_call("What is 17 * 23?", 1), person(2, seed=1),
                tool_call("How many seconds are in 3 hours?", 3), chat("Write a haiku about rain.", 4, max_new=40)]
    plain, _ = run(reqs(), scheduler="fifo")
    engine = start(scheduler="rr", rr_quantum=3, max_batch=2, kv_budget_mb=0)  # preempt often, recompute KV
    try:
        pre, stats = run(reqs(), engine=engine)
    finally:
        engine.stop()
    assert stats["preemptions"] >= 4 and stats["resumes_recompute"] >= 4
    assert [r for r, _ in pre][:4] != [None] * 4
    for (a, ea), (b, eb) in zip(plain, pre):
        assert ea is None and eb is None
        assert (a["text"], a.get("tool_calls")) == (b["text"], b.get("tool_calls"))
    assert sum(r["preemptions"] for r, _ in pre) >= 4


@pytest.mark.parametrize("fmt, tools, choice, why", [
    ({"type": "json_schema", "json_schema": {"schema": {"type": "strnig"}}}, None, None, "invalid JSON schema"),
    ({"type": "json_schema", "json_schema": {"schema": {"$ref": "#/nope"}}}, None, None, "nope"),
    ({"type": "json_schema", "json_schema": {"schema": {"type": "string", "pattern": "(a"}}}, None, None, "regex"),
    (None, [CALC], {"type": "function", "function": {"name": "rm"}}, "not one of the tools"),
    (None, [CALC, CALC], "required", "unique"),
])
def test_bad_schema_is_einval_with_the_reason(fmt, tools, choice, why):
    """Checked first by the syscall (check_schemas), then by compilation on the grammar thread."""
    try:
        constrain.check_schemas(fmt, tools, choice)
    except constrain.ConstraintError as e:
        assert why in str(e)
        return
    (res, err), = run([chat("Hi", 0, response_format=fmt, tools=tools, tool_choice=choice)])[0]
    assert res is None and err.code == "EINVAL" and why in err.message, err
