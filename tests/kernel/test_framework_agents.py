"""Agents written for other frameworks, run unmodified as AIOS command agents (issue 15), end to end on
the embedded model: their OpenAI calls are llm.chat syscalls of the agent (ps/info count them and
their tokens), streaming works, a killed framework agent takes all its descendants with it."""

from __future__ import annotations

import json
import os
import time

import psutil
import pytest

from agent_apps import command, endpoint
from kernel import apps as registry
from kernel.protocol.profile import validate_command
from kernel.config import EMBEDDED_MODEL


def test_openai_sdk_agent_calls_are_syscalls(kernel):
    pid = kernel.spawn("OpenAIAgent", "What is the capital of France?")
    snap = kernel.wait(pid, timeout=180)
    assert snap["state"] == "done", snap["error"]
    assert snap["exit_code"] == 0
    assert isinstance(snap["result"], str) and snap["result"].strip()  # the script's stdout
    assert snap["syscalls"]["llm.chat"] == 1
    assert snap["tokens_in"] > 10 and snap["tokens_out"] > 0
    row = next(r for r in kernel.ps(all=True) if r["pid"] == pid)
    assert row["tokens_in"] == snap["tokens_in"] and row["tokens_out"] == snap["tokens_out"]
    info = kernel.info(pid)
    assert info["llm_calls_done"] == 1 and info["tokens_out"] == snap["tokens_out"]


def test_openai_sdk_streaming_models_errors(kernel):
    pid = kernel.spawn("OpenAIStreamAgent", "Name a colour.")
    snap = kernel.wait(pid, timeout=240)
    assert snap["state"] == "done", snap["error"]
    out = json.loads(snap["result"])
    assert out["task_env"] == "Name a colour." and out["base_url"].startswith("http://127.0.0.1:")
    assert out["models"] == [EMBEDDED_MODEL]  # the session kernel runs the embedded model
    plain, stream = out["plain"], out["stream"]
    assert plain["text"] and plain["model"] == "gpt-4o-mini"  # any model name maps to the kernel's model
    assert plain["usage"]["prompt_tokens"] > 0
    assert plain["usage"]["total_tokens"] == plain["usage"]["prompt_tokens"] + plain["usage"]["completion_tokens"]
    # greedy decoding: the streamed reply is the plain one, with its usage at the end
    assert stream["text"] == plain["text"] and stream["usage"] == plain["usage"]
    assert stream["chunks"] >= 4 and stream["finish"] in ("stop", "length")
    # tools: passed to llm.chat; a kernel without constrained decoding refuses them as a clear 400
    assert out["tools"] == {"status": 200, "finish": "tool_calls"}, out["tools"]
    # the next turn: openai's own message object and a tool message answering its call id
    turn2 = out["turn2"]
    assert turn2["call"] == "add" and turn2["text"] and turn2["prompt_tokens"] > turn2["first_prompt_tokens"], turn2
    assert out["refused"]["status"] == 400 and "EINVAL" in out["refused"]["message"]
    assert out["refused"]["type"] == "BadRequestError"
    # the plain and the streamed call went through the kernel (a call its validation refused is not counted)
    assert snap["syscalls"]["llm.chat"] >= 2 and snap["tokens_out"] > 0


def test_smolagents_agent_runs_under_aios(kernel):
    pid = kernel.spawn("SmolAgent", "What is 6 times 7?")
    snap = kernel.wait(pid, timeout=600)
    # a 135M model rarely writes valid smolagents code: the framework then runs out of steps and asks
    # for a final answer. Either way it ran its loop on the kernel's LLM and printed an answer.
    assert snap["state"] == "done", snap["error"]
    assert snap["result"].strip()
    assert snap["syscalls"]["llm.chat"] >= 2
    assert snap["tokens_in"] > 500  # smolagents' own system prompt went through the kernel


def _tree(os_pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(os_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _sid(p: psutil.Process) -> int | None:
    try:
        return os.getsid(p.pid)
    except ProcessLookupError:
        return None


def test_killed_framework_agent_takes_its_descendants(kernel, kernel_events):
    pid = kernel.spawn("ForkingOpenAIAgent", "hi")
    deadline = time.time() + 120
    while time.time() < deadline and "descendants started" not in " ".join(kernel_events.outputs(pid)):
        time.sleep(0.2)
    assert "descendants started" in " ".join(kernel_events.outputs(pid)), kernel.info(pid)
    os_pid = kernel.info(pid)["os_pid"]
    deadline = time.time() + 30
    while True:  # the setsid'd grandchild appears a moment after the script says so
        tree = _tree(os_pid)
        live = [p for p in tree if _alive(p)]  # the double fork's middle one may linger as a zombie
        escaped = [p for p in live[1:] if _sid(p) not in (None, _sid(live[0]))]
        if (escaped and any(p.name() == "sleep" for p in live)) or time.time() > deadline:
            break
        time.sleep(0.2)
    # the agent's runtime, the script, its sleep child and its setsid'd grandchild
    assert escaped and any(p.name() == "sleep" for p in live), [p.cmdline() for p in live]
    kernel.kill(pid)
    snap = kernel.wait(pid, timeout=60)
    assert snap["state"] == "killed"
    gone, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive, [p.pid for p in alive]
    assert snap["syscalls"]["llm.chat"] == 1 and snap["tokens_out"] > 0


# -- unit tier: translation, no kernel ------------------------------------------------------------------

def test_messages_translate_to_llm_chat():
    got = endpoint.chat_args({
        "model": "x", "max_completion_tokens": 9, "stop": "END", "temperature": 0, "seed": 3,
        "response_format": {"type": "text"}, "tools": [{"type": "function"}], "tool_choice": "none",
        "messages": [{"role": "developer", "content": "be brief"},
                     {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                     {"role": "assistant", "content": None, "tool_calls": [
                         {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 1}"}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "1"}]})
    assert got == {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "ab"},
                                {"role": "assistant", "content": "",
                                 "tool_calls": [{"id": "c1", "name": "add", "arguments": {"a": 1}}]},
                                {"role": "tool", "content": "1", "tool_call_id": "c1"}],
                   "max_new_tokens": 9, "stop": ["END"], "temperature": 0, "seed": 3}
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}
    assert endpoint.chat_args({"messages": [{"role": "user", "content": "q"}], "response_format": fmt})[
        "response_format"] == fmt
    for bad in ({"messages": []}, {"messages": [{"role": "god", "content": "x"}]}, {"messages": "hi"},
                {"messages": [{"role": "user", "content": 5}]}, {"messages": [{"role": "user", "content": "x"}], "n": 2},
                {"messages": [{"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "[1]"}}]}]},
                {"messages": [{"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{"}}]}]},
                {"messages": [{"role": "assistant", "content": "x", "tool_calls": "add"}]}):
        with pytest.raises(endpoint.HTTPError) as e:
            endpoint.chat_args(bad)
        assert e.value.status == 400


@pytest.mark.parametrize("code,status", [("EDQUOT", 429), ("EPERM", 403), ("EINVAL", 400), ("E2BIG", 413),
                                         ("EIO", 502), ("ECONNRESET", 503), ("EWHAT", 500)])
def test_kernel_refusals_map_to_http(code, status):
    from agent_apps.sdk import SyscallError

    e = endpoint._Handler._refused(SyscallError(code, "no"))
    assert e.status == status and e.message == f"{code}: no" and e.code == code


def test_kernel_tool_calls_become_openai_tool_calls():
    done = endpoint.completion({"text": "", "tokens_in": 5, "tokens_out": 2, "finish_reason": "stop",
                                "tool_calls": [{"name": "add", "arguments": {"a": 1}}]}, "m", 0, "id")
    choice = done["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "add", "arguments": '{"a": 1}'} and call["id"].startswith("call_")
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_command_profiles_are_validated():
    assert registry.find("OpenAIAgent").config["command"] == ["python", "agent.py"]
    for bad in ([], "python agent.py", [""], ["python", 3], ["a\0b"]):
        with pytest.raises(ValueError):
            validate_command(bad)
    argv = command.argv_for(["python", "agent.py"], "the task")
    assert argv[1:] == ["agent.py", "the task"] and argv[0].endswith(("python", "python3")) and "/" in argv[0]


def test_failing_command_is_a_failed_agent_with_its_status(kernel):
    snap = kernel.wait(kernel.spawn("FailingCommandAgent", "the task"), timeout=120)
    assert snap["state"] == "failed" and snap["exit_code"] == 3
    assert "exit status 3" in snap["error"] and "half done: the task" in snap["error"]
