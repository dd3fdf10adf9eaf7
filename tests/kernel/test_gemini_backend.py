"""gemini backend: Google's official client (google-genai) against kernel.llm.serve's Gemini-shaped routes.

Google's API cannot be reached here, so this checks our request/response
mapping over real HTTP with the real client, plus the errors; it is not a
live test against Gemini.
"""

from __future__ import annotations

from google.genai import types

from kernel.llm.backends import Call
from kernel.llm.request import SamplingParams
from kernel.llm.backends.gemini import finish_reason, to_config, to_contents
from llm_server import call, hooks, llm_server, remote_kernel  # noqa: F401  (fixtures)

PROMPT = "What is the capital of France?"


def entry(server, **kw) -> dict:
    return {"backend": "gemini", "model": server.model, "base_url": server.root_url, "api_key_env": "GEMINI_API_KEY",
            "max_concurrency": 2, "timeout_s": 30, "max_retries": 2, "backoff_s": 0.05, **kw}


def test_request_mapping():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"}, {"role": "tool", "content": "42"},
            {"role": "system", "content": "No emoji."}]
    contents, system = to_contents(msgs)
    assert system == "Be brief.\n\nNo emoji."
    assert [(c.role, c.parts[0].text) for c in contents] == [("user", "Hi"), ("model", "Hello!"), ("user", "42")]
    cfg = to_config(Call(messages=msgs,
                         sampling=SamplingParams(max_new_tokens=7, temperature=0.5, top_p=0.9,
                                                 stop=tuple("abcdef"), seed=3)), system)
    assert (cfg.max_output_tokens, cfg.temperature, cfg.top_p, cfg.seed, cfg.candidate_count) == (7, 0.5, 0.9, 3, 1)
    assert cfg.stop_sequences == list("abcde")  # Gemini takes 5; RemoteEngine applies the rest on the text
    assert to_config(Call(messages=msgs, sampling=SamplingParams(max_new_tokens=1)), None).stop_sequences is None


def test_structured_output_mapping():
    from toolspecs import CALC, FMT, PERSON

    cfg = to_config(Call(messages=[], sampling=SamplingParams(max_new_tokens=8), response_format=FMT, tools=[CALC],
                         tool_choice={"type": "function", "function": {"name": "calculator"}}), None)
    assert cfg.response_mime_type == "application/json" and cfg.response_json_schema == PERSON
    decl = cfg.tools[0].function_declarations[0]
    assert decl.name == "calculator" and decl.parameters_json_schema == CALC["function"]["parameters"]
    fcc = cfg.tool_config.function_calling_config
    assert fcc.mode == "ANY" and fcc.allowed_function_names == ["calculator"]


def test_finish_reason_mapping():
    assert finish_reason(types.FinishReason.STOP) == "stop"
    assert finish_reason(types.FinishReason.MAX_TOKENS) == "length"
    assert finish_reason(types.FinishReason.SAFETY) == "safety"
    assert finish_reason(None) is None


def test_gemini_kernel_end_to_end(llm_server, hooks, kernel, tmp_path):
    """Through the kernel and agent processes: greedy text equals the local engine's; stop, length, retry."""
    # A reply with tools comes in one piece at the end (the server buffers it): room for a busy CPU.
    client, _ = remote_kernel(tmp_path, "test-gemini", entry(llm_server, timeout_s=120), env={"GEMINI_API_KEY": "k"})
    try:
        assert not client.ready_info.get("load_error"), client.ready_info
        assert client.stats()["backend"] == "gemini" and not client.stats()["preemptible"]
        far = call(client, PROMPT, 12)
        local = call(kernel, PROMPT, 12)
        assert far["text"] == local["text"] == "The capital of France is Paris."
        assert far["tokens_in"] == local["tokens_in"] and far["finish_reason"] == "stop"
        cut = call(client, PROMPT, 12, stop=[" of"])
        assert (cut["text"], cut["finish_reason"]) == ("The capital", "stop")
        short = call(client, PROMPT, 3)
        assert (short["text"], short["tokens_out"], short["finish_reason"]) == ("The capital of", 3, "length")
        from toolspecs import CALC, CONVERT
        ask = dict(tools=[CALC, CONVERT], tool_choice="required")
        tool = call(client, "What is 17 * 23?", 48, timeout=300, **ask)
        assert "error" not in tool, tool
        assert tool["tool_calls"] == call(kernel, "What is 17 * 23?", 48, **ask)["tool_calls"], tool
        assert tool["tool_calls"][0]["name"] in ("calculator", "unit_converter") and tool["finish_reason"] == "tool_calls"
        history = [{"role": "user", "content": "What is 17 * 23?"},  # earlier call and result: native parts
                   {"role": "assistant", "content": "", "tool_calls": tool["tool_calls"]},
                   {"role": "tool", "content": '{"value": 391}'}]
        turn = call(client, "", 12, messages=history)
        assert "error" not in turn and (turn["text"], turn["tokens_in"]) == (
            lambda r: (r["text"], r["tokens_in"]))(call(kernel, "", 12, messages=history)), turn
        hooks.admin("inject", fail=[429])  # RESOURCE_EXHAUSTED once, then served
        again = call(client, PROMPT, 3)
        assert again["text"] == "The capital of" and again["retries"] == 1
    finally:
        client.stop()


def test_missing_key_is_one_clear_line(tmp_path):
    client, _ = remote_kernel(tmp_path, "gemini-pro", {"backend": "gemini", "model": "gemini-2.5-pro",
                                                       "api_key_env": "GEMINI_API_KEY"},
                              env={"GEMINI_API_KEY": None})
    try:
        assert client.ready_info["load_error"] == ("model gemini-pro: GEMINI_API_KEY is not set "
                                                   "(a Gemini API key is needed); export GEMINI_API_KEY=...")
        out = call(client, PROMPT, 4)
        assert out["error"]["code"] == "EIO" and "GEMINI_API_KEY is not set" in out["error"]["message"]
    finally:
        client.stop()


def test_refused_key_is_one_clear_line(llm_server, hooks, tmp_path):
    hooks.admin("inject", api_key="sesame")
    client, _ = remote_kernel(tmp_path, "test-gemini-key", entry(llm_server), env={"GEMINI_API_KEY": "wrong"})
    try:
        assert client.ready_info["load_error"] == (f"model test-gemini-key: {llm_server.root_url} refused the "
                                                   "request (401: invalid API key); check GEMINI_API_KEY")
    finally:
        client.stop()
