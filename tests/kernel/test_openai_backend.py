"""openai_compat backend end to end: real server process, real kernel, real agent processes.

The server is ``python -m kernel.llm.serve`` on 127.0.0.1 (tests/llm_server.py),
serving the embedded model greedily; the kernel's RemoteEngine reaches it with
the official ``openai`` client. Nothing is mocked.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from llm_server import call, free_port, hooks, llm_server, remote_kernel  # noqa: F401  (fixtures)

PROMPTS = ["What is the capital of France?", "Name a primary color.", "Say hello to Ada.", "What is 3 plus 4?"]


def entry(server, **kw) -> dict:
    base = {"backend": "openai_compat", "model": server.model, "base_url": server.base_url,
            "max_concurrency": 2, "timeout_s": 30, "max_retries": 3, "backoff_s": 0.05,
            "resume": "continue_final_message"}
    return {**base, **kw}


@pytest.fixture(scope="module")
def remote(llm_server, tmp_path_factory):
    """One fifo kernel on the server, 2 calls in flight at most."""
    client, _ = remote_kernel(tmp_path_factory.mktemp("remote"), "test-remote", entry(llm_server))
    assert not client.ready_info.get("load_error"), client.ready_info
    yield client
    client.stop()


def test_ready_stats_name_the_backend(remote, llm_server):
    st = remote.stats()
    assert st["backend"] == "openai_compat" and st["base_url"] == llm_server.base_url
    assert st["loaded"] and st["load_error"] is None and st["max_concurrency"] == 2


def test_greedy_output_equals_local_engine(remote, kernel, hooks):
    """Same prompt, greedy: the remote path returns exactly what the kernel's own engine returns."""
    local = call(kernel, PROMPTS[0], 12)
    far = call(remote, PROMPTS[0], 12)
    assert "error" not in far, far
    assert far["text"] == local["text"] and far["text"]
    assert far["tokens_in"] == local["tokens_in"]
    assert far["finish_reason"] == local["finish_reason"]


def test_constrained_calls_pass_through(remote, kernel, hooks):
    """response_format and tools reach the server in OpenAI's form; greedy, the server's constrained
    reply (its message.tool_calls, streamed) is exactly what the kernel's own engine returns."""
    from toolspecs import CALC, CONVERT, FMT, PERSON
    import jsonschema

    ask = dict(tools=[CALC, CONVERT], tool_choice="required")
    local, far = call(kernel, "What is 17 * 23?", 48, **ask), call(remote, "What is 17 * 23?", 48, **ask)
    assert "error" not in far, far
    assert far["tool_calls"] == local["tool_calls"] and far["tool_calls"][0]["name"] in ("calculator", "unit_converter")
    assert far["finish_reason"] == local["finish_reason"] == "tool_calls"
    prompt = "Describe a person who lives in a European city, as JSON."
    local, far = call(kernel, prompt, 64, response_format=FMT), call(remote, prompt, 64, response_format=FMT)
    assert far["text"] == local["text"]
    jsonschema.validate(json.loads(far["text"]), PERSON)
    bad = call(remote, "Hi", 8, response_format={"type": "json_schema", "json_schema": {"schema": {"type": "nope"}}})
    assert bad["error"]["code"] == "EINVAL"  # refused by the kernel before any request is sent


def test_tool_turns_go_native_and_read_as_the_model_writes_them(remote, kernel, hooks):
    """A history with the model's earlier call and its result. The server refuses a tool message that
    answers no call by id, as OpenAI does, so the remote call works only if the kernel sent native tool
    messages; greedy, its answer equals the local engine's, which reads the call in the model's own format
    (the same history with the call written by hand as that text gives the same prompt and answer)."""
    calls = [{"name": "calculator", "arguments": {"expression": "17 * 23"}}]
    history = [{"role": "user", "content": "What is 17 * 23?"},
               {"role": "assistant", "content": "", "tool_calls": calls},
               {"role": "tool", "content": '{"expression": "17 * 23", "value": 391}'}]
    local, far = call(kernel, "", 24, messages=history), call(remote, "", 24, messages=history)
    assert "error" not in far, far
    assert (far["text"], far["tokens_in"]) == (local["text"], local["tokens_in"]) and local["text"], local
    by_hand = [history[0], {"role": "assistant", "content": '<tool_call>[{"name":"calculator","arguments":'
                                                            '{"expression":"17 * 23"}}]</tool_call>'}, history[2]]
    assert (lambda r: (r["text"], r["tokens_in"]))(call(kernel, "", 24, messages=by_hand)) == (
        local["text"], local["tokens_in"])
    named = [history[0], {**history[1], "tool_calls": [{"id": "c7", **calls[0]}]}, {**history[2], "tool_call_id": "c7"}]
    assert call(remote, "", 24, messages=named)["text"] == far["text"]
    wrong = call(remote, "", 24, messages=[*named[:2], {**history[2], "tool_call_id": "c8"}])
    assert wrong["error"]["code"] == "EINVAL" and "tool" in wrong["error"]["message"], wrong  # the server's 400
    orphan = call(remote, "", 8, messages=[history[0], history[2]])  # answers no call: goes as user text
    assert "error" not in orphan and orphan["text"], orphan


def test_react_agent_runs_on_a_remote_model(remote, kernel):
    """ReActAgent passes its calls back as tool_calls and tool messages: the server (strict as OpenAI) takes
    them, and the agent's steps and answer are the local engine's."""
    snaps = []
    for k in (remote, kernel):
        pid = k.spawn("ReActAgent", "Convert 5 km to miles.")  # a call the model writes (17 * 23 is taken as written)
        snaps.append(k.wait(pid, timeout=300))
    far, local = snaps
    assert far["state"] == "done", far["error"]
    assert far["syscalls"]["llm.chat"] >= 2 and "3.10686" in far["result"]["answer"], far["result"]
    assert far["result"]["answer"] == local["result"]["answer"] and far["result"]["steps"] == local["result"]["steps"]


def test_calls_carry_the_traceparent_of_their_span(remote, hooks):
    """W3C trace context: the server gets a ``traceparent`` header naming the kernel's llm.chat span, so
    an OpenTelemetry-instrumented server (vLLM) continues the agent's trace."""
    pid = remote.spawn("LLMCallAgent", json.dumps({"prompt": PROMPTS[1], "max_new_tokens": 4}))
    assert remote.wait(pid, timeout=120)["state"] == "done"
    chat = next(s for s in remote.request("trace", timeout=10, pid=pid)["spans"] if s["name"] == "llm.chat")
    assert chat["attrs"]["backend"] == "openai_compat" and chat["attrs"]["tokens_out"] > 0
    assert hooks.admin("stats")["traceparents"] == [f"00-{chat['trace_id']}-{chat['span_id']}-01"]


def test_stop_string_and_max_tokens(remote, hooks):
    cut = call(remote, PROMPTS[0], 12, stop=[" of"])
    assert cut["text"] == "The capital", cut  # greedy: "The capital of France is Paris."
    assert cut["finish_reason"] == "stop"
    short = call(remote, PROMPTS[0], 3)
    assert short["text"] == "The capital of" and short["tokens_out"] == 3 and short["finish_reason"] == "length"


def test_concurrency_limit_is_honoured_at_the_server(remote, hooks):
    """3 agents at once against a 2-slot backend: the server sees exactly 2 requests in flight at most."""
    hooks.admin("inject", token_delay_s=0.05)  # long enough streams that the calls overlap
    pids = [remote.spawn("LLMCallAgent", json.dumps({"prompt": p, "max_new_tokens": 6}))
            for p in PROMPTS[:3]]
    snaps = [remote.wait(pid, timeout=120) for pid in pids]
    assert all(s["state"] == "done" and "error" not in s["result"] for s in snaps), snaps
    st = hooks.admin("stats")
    assert st["requests"] == 3
    assert st["max_inflight"] == 2  # 2 overlapped, never 3


def test_retry_on_429_and_503(remote, hooks):
    before = remote.stats()["retries"]
    hooks.admin("inject", fail=[429, 503], retry_after=0.05)
    out = call(remote, PROMPTS[1], 8)
    assert "error" not in out and out["text"] and out["retries"] == 2
    st = hooks.admin("stats")
    assert st["injected"] == 2 and st["requests"] == 3
    assert remote.stats()["retries"] - before == 2


def test_retries_exhausted_give_a_clear_error(remote, hooks):
    hooks.admin("inject", fail=[503] * 4, retry_after=0)
    out = call(remote, PROMPTS[1], 8)
    err = out["error"]
    assert err["code"] == "EIO"
    assert "answered 503" in err["message"] and "after 4 tries" in err["message"] and "\n" not in err["message"]
    assert hooks.admin("stats")["requests"] == 4


def test_timeout_gives_a_clear_error(llm_server, hooks, tmp_path):
    client, _ = remote_kernel(tmp_path, "test-timeout", entry(llm_server, timeout_s=0.5, max_retries=0))
    try:
        hooks.admin("inject", delay_s=3.0)  # the server stalls before its first byte
        out = call(client, PROMPTS[0], 4)
        assert out["error"]["code"] == "ETIMEDOUT"
        assert "no response within 0.5s" in out["error"]["message"], out
        hooks.admin("inject", token_delay_s=2.0)  # ... or in the middle of its stream
        out = call(client, PROMPTS[0], 4)
        assert out["error"]["code"] == "ETIMEDOUT", out
        assert out["error"]["message"] in (f"test-timeout: {hooks.base_url}: no response within 0.5s",
                                           f"test-timeout: {hooks.base_url}: stream stalled for more than 0.5s")
    finally:
        client.stop()


def test_rr_preempts_streams_and_resumes_them_identically(llm_server, hooks, tmp_path):
    """One slot, quantum 3: calls are cut and continued from their partial text; output is unchanged.

    Alone, a call is never preempted (nobody waits), so running them one by one gives the reference.
    """
    prompts = ["Tell me a story about a cat.", "Describe the ocean in one paragraph."]
    client, _ = remote_kernel(tmp_path, "test-rr", entry(llm_server, max_concurrency=1),
                              scheduler="rr", rr_quantum=3)
    try:
        assert client.stats()["preemptible"]
        alone = [call(client, p, 8) for p in prompts]
        assert client.stats()["preemptions"] == 0
        pids = [client.spawn("LLMCallAgent", json.dumps({"prompt": p, "max_new_tokens": 8})) for p in prompts]
        together = [client.wait(pid, timeout=120)["result"] for pid in pids]
        assert [r["text"] for r in together] == [r["text"] for r in alone]
        assert [r["tokens_out"] for r in together] == [r["tokens_out"] for r in alone] == [8, 8]
        assert sum(r["preemptions"] for r in together) >= 2 and client.stats()["preemptions"] >= 2
    finally:
        client.stop()


def test_unreachable_server_is_one_clear_line(tmp_path):
    port = free_port()
    client, _ = remote_kernel(tmp_path, "test-down", {"backend": "openai_compat", "model": "m",
                                                      "base_url": f"http://127.0.0.1:{port}/v1"})
    try:
        err = client.ready_info["load_error"]
        assert err == f"model test-down: cannot reach http://127.0.0.1:{port}/v1: [Errno 111] Connection refused"
        out = call(client, "hi", 4)  # agents still run and get the same line as their error
        assert out["error"]["code"] == "EIO" and err in out["error"]["message"]
    finally:
        client.stop()
    cli = subprocess.run([sys.executable, "-m", "kernel.llm.check", "--llm_name", "openai:m",
                          "--llm_base_url", f"http://127.0.0.1:{port}/v1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1 and cli.stderr == ""
    assert cli.stdout == f"error: model openai:m: cannot reach http://127.0.0.1:{port}/v1: [Errno 111] Connection refused\n"


def test_missing_key_is_one_clear_line(tmp_path):
    client, _ = remote_kernel(tmp_path, "gpt-4-copy", {"backend": "openai_compat", "model": "gpt-4",
                                                       "base_url": "https://api.openai.com/v1",
                                                       "api_key_env": "OPENAI_API_KEY"},
                              env={"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None})
    try:
        assert client.ready_info["load_error"] == ("model gpt-4-copy: OPENAI_API_KEY is not set (an API key is "
                                                   "needed for https://api.openai.com/v1); export OPENAI_API_KEY=...")
    finally:
        client.stop()
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    cli = subprocess.run([sys.executable, "-m", "kernel.llm.check", "--llm_name", "gpt-4"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert cli.returncode == 1 and cli.stdout.startswith("error: model gpt-4: OPENAI_API_KEY is not set")
    assert cli.stdout.count("\n") == 1 and "Traceback" not in cli.stderr


def test_unknown_model_is_one_clear_line(llm_server, tmp_path):
    """A wrong model id at a reachable server is caught at start (the server lists what it serves)."""
    client, _ = remote_kernel(tmp_path, "test-wrong-model", entry(llm_server, model="no-such-model"))
    try:
        err = client.ready_info["load_error"]
        assert err == (f"model test-wrong-model: {llm_server.base_url} does not serve model 'no-such-model' "
                       f"(it serves: {llm_server.model})")
    finally:
        client.stop()


def test_refused_key_is_one_clear_line_and_a_good_key_works(llm_server, hooks, tmp_path):
    hooks.admin("inject", api_key="sesame")  # the server now wants "Authorization: Bearer sesame"
    spec = entry(llm_server, api_key_env="AIOS_TEST_KEY")
    client, _ = remote_kernel(tmp_path, "test-keyed", spec, env={"AIOS_TEST_KEY": None})
    try:
        assert client.ready_info["load_error"] == (
            f"model test-keyed: {llm_server.base_url} refused the request (401: invalid API key); "
            "AIOS_TEST_KEY is not set")
    finally:
        client.stop()
    client, _ = remote_kernel(tmp_path, "test-keyed", spec, env={"AIOS_TEST_KEY": "sesame"})
    try:
        assert not client.ready_info.get("load_error"), client.ready_info
        out = call(client, PROMPTS[2], 4)
        assert out["tokens_out"] == 4 and out["finish_reason"] == "length"
    finally:
        client.stop()


@pytest.mark.parametrize("scheduler, program_aware", [("priority", "off"), ("fifo", "on")])
def test_remote_admission_follows_the_shared_policy(llm_server, hooks, scheduler, program_aware):
    """RemoteEngine admits through kernel/llm/scheduler.py, as the local engine does. One slot, busy:
    under priority the higher-priority call queued second goes first; under fifo with --program_aware on,
    the call of the agent served least so far goes first (pid 1 was served before, pid 2 never)."""
    import threading

    from kernel.config import KernelConfig
    from kernel.llm.catalog import ModelSpec
    from kernel.llm.remote import RemoteEngine
    from kernel.llm.request import LLMRequest, SamplingParams

    spec = ModelSpec(name="test-policy", **entry(llm_server, max_concurrency=1))
    eng = RemoteEngine(KernelConfig.from_flags(llm_name="test-policy", scheduler=scheduler, program_aware=program_aware,
                                    max_new_tokens=64), spec)
    admitted, done = [], threading.Semaphore(0)
    started = threading.Event()

    def req(pid: int, i: int, n: int = 3, priority: int = 0) -> LLMRequest:
        def on_state(r, s):
            if s == "running":
                admitted.append(r.req_id)
                started.set()
        return LLMRequest(pid=pid, req_id=i, messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                          sampling=SamplingParams(max_new_tokens=n), priority=priority, on_state=on_state,
                          on_done=lambda r, res, err: done.release())

    eng.start()
    try:
        assert eng.ready.wait(60) and not eng.load_error, eng.load_error
        assert eng.stats()["program_aware"] == program_aware
        eng.submit(req(1, 0, n=6))  # pid 1 is served once
        assert done.acquire(timeout=120)
        hooks.admin("inject", token_delay_s=0.2)  # the slot stays busy while two more calls queue
        started.clear()
        eng.submit(req(9, 1))
        assert started.wait(60)
        eng.submit(req(1, 2))
        eng.submit(req(2, 3, priority=5 if scheduler == "priority" else 0))
        for _ in range(3):
            assert done.acquire(timeout=120)
        assert admitted == [0, 1, 3, 2], admitted
    finally:
        eng.stop()
