"""Tracing against a real kernel and real agent processes (nothing mocked).

Proves: every call of a process is a span (name, arguments in brief, reply size or error code, start,
end) under the process's root span; llm.chat spans carry the engine's detail (queued, admitted, first
token, prefill/decode, tokens in/cached/out, model, backend, policy) and tool.call spans the tool and
its confirmation; a child's root sits under its parent's proc.spawn span, in the parent's trace;
``trace`` with follow streams later spans as events and stops at exit; under rr with one batch slot
preemptions and resumes are events of the preempted call; --trace-file writes OTLP/JSON lines;
--trace off records nothing and says so.
"""

from __future__ import annotations

import json
import time

import pytest

from aios_shell.client import KernelError
from conftest import start_kernel


def run(kernel, agent: str, task) -> tuple[int, dict]:
    pid = kernel.spawn(agent, task if isinstance(task, str) else json.dumps(task))
    snap = kernel.wait(pid, timeout=180)
    assert snap["state"] == "done", snap
    return pid, kernel.request("trace", timeout=10, pid=pid)


def by_name(trace: dict) -> dict[str, dict]:
    return {s["name"]: s for s in trace["spans"]}


def test_every_call_is_a_span_with_llm_and_tool_detail(kernel):
    script = [{"tool": "calculator", "args": {"expression": "6*7"}},
              {"sys": "llm.chat", "args": {"messages": [{"role": "user", "content": "Say hi"}], "max_new_tokens": 6}},
              {"sys": "fs.write", "args": {"name": "trace-notes.txt", "data": "hello"}},
              {"sys": "no.such.call"}]
    pid, trace = run(kernel, "ToolAgent", script)
    names = [s["name"] for s in trace["spans"]]
    assert names == ["tool.call", "llm.chat", "fs.write", "no.such.call", "proc.exit"]
    root, spans = trace["root"], by_name(trace)
    assert trace["ended"] and root["attrs"]["state"] == "done" and root["attrs"]["exit_code"] == 0
    for s in trace["spans"]:
        assert s["parent_id"] == root["span_id"] and s["trace_id"] == root["trace_id"] and s["pid"] == pid
        assert root["start"] <= s["start"] <= s["end"] <= root["end"]
    llm = spans["llm.chat"]["attrs"]
    stats = kernel.stats()
    assert llm["model"] == stats["model"] and llm["backend"] == "hf_local" and llm["policy"] == stats["policy"]
    assert llm["tokens_in"] > 0 and 0 < llm["tokens_out"] <= 6 and llm["max_new"] == 6
    assert min(llm["wait_s"], llm["prefill_s"], llm["decode_s"]) >= 0
    assert spans["llm.chat"]["start"] <= llm["admitted_at"] <= llm["first_token_at"] <= spans["llm.chat"]["end"]
    tool = spans["tool.call"]
    assert tool["attrs"]["tool"] == "calculator" and tool["size"] > 0 and tool["error"] is None
    assert tool["args"].startswith('name="calculator", args={expression=<3 B #')
    assert spans["fs.write"]["args"].startswith('name="trace-notes.txt", data=<5 B #')
    assert spans["no.such.call"]["error"] == "ENOSYS"


def test_a_childs_spans_sit_under_the_parents_spawn(kernel):
    pid, trace = run(kernel, "TraceTreeAgent", "hello child")
    child = kernel.wait(pid)["result"]["child"]
    spawn = by_name(trace)["proc.spawn"]
    kid = kernel.request("trace", timeout=10, pid=child)
    assert kid["root"]["parent_id"] == spawn["span_id"] and kid["root"]["trace_id"] == trace["root"]["trace_id"]
    assert kid["root"]["attrs"]["parent"] == pid and kid["root"]["attrs"]["agent"] == "EchoAgent"
    assert [s["name"] for s in kid["spans"]] == ["proc.exit"]
    everything = kernel.request("trace", timeout=10)
    assert {pid, child} <= {p["pid"] for p in everything["procs"]} and everything["stats"]["enabled"]


def test_follow_streams_later_spans_and_stops_at_exit(kernel, kernel_events):
    pid = kernel.spawn("SleepyAgent", "1")
    first = kernel.request("trace", timeout=10, pid=pid, follow=True)
    assert not first["ended"]
    snap = kernel.wait(pid, timeout=60)
    deadline = time.monotonic() + 10  # the exit event is sent after the last span events
    while not any(e.get("event") == "exit" and e.get("pid") == pid for e in kernel_events.events):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    events = [e["span"] for e in list(kernel_events.events) if e.get("event") == "span" and e.get("pid") == pid]
    seen = {s["span_id"] for s in first["spans"]}
    later = [s["name"] for s in events if s["span_id"] not in seen]
    assert later[-2:] == ["proc.exit", "agent"] and snap["state"] == "done"
    with pytest.raises(KernelError) as e:
        kernel.request("trace", timeout=10, pid=10**6)
    assert e.value.code == "ESRCH"


def test_preemptions_show_and_the_trace_file_has_otlp_json(tmp_path):
    """rr with one batch slot: two calls take turns, each switch a preempt/resume event of the call."""
    path = tmp_path / "spans.jsonl"
    k, _ = start_kernel(tmp_path, scheduler="rr", max_batch=1, rr_quantum=4, trace_file=str(path))
    try:
        pids = [k.spawn("ChatAgent", json.dumps({"prompt": p, "max_new_tokens": 16}))
                for p in ("Tell me a long story about a cat", "Tell me a long story about a dog")]
        for pid in pids:
            assert k.wait(pid, timeout=180)["state"] == "done"
        traces = [k.request("trace", timeout=10, pid=pid) for pid in pids]
    finally:
        k.stop()
    chats = [by_name(t)["llm.chat"] for t in traces]
    assert sum(c["attrs"]["preemptions"] for c in chats) >= 1
    for c in chats:
        names = [e[1] for e in c["events"]]
        assert names.count("preempt") == c["attrs"]["preemptions"] == names.count("resume")
        assert c["attrs"]["policy"] == "rr"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    ids = {c["span_id"] for c in chats}
    exported = [r for r in lines if r["spanId"] in ids]
    assert len(exported) == 2 and all(r["name"].startswith("chat ") and r["kind"] == 3 for r in exported)
    roots = [r for r in lines if r["name"] == "invoke_agent ChatAgent"]
    assert len(roots) == 2 and all(r["parentSpanId"] == "" for r in roots)
    for r in exported:
        keys = {a["key"] for a in r["attributes"]}
        assert {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.request.model",
                "aios.llm.prefill_s", "aios.llm.decode_s"} <= keys
        assert {"startTimeUnixNano", "endTimeUnixNano", "traceId", "parentSpanId", "events", "status"} <= set(r)
    assert any(e["name"] == "preempt" for r in exported for e in r["events"])


def test_trace_off_records_nothing_and_says_so(tmp_path):
    k, _ = start_kernel(tmp_path, trace="off")
    try:
        pid = k.spawn("EchoAgent", "hi")
        assert k.wait(pid, timeout=60)["state"] == "done"
        with pytest.raises(KernelError) as e:
            k.request("trace", timeout=10, pid=pid)
        assert e.value.code == "ENOSYS" and "--trace off" in e.value.message
    finally:
        k.stop()


def test_the_granted_max_new_is_what_the_span_shows(tmp_path):
    """A call asking for more than --max_new_tokens is granted the flag's value, once, when the engine
    admits it; the span carries the grant, not the request."""
    k, _ = start_kernel(tmp_path, max_new_tokens=5)
    try:
        pid = k.spawn("LLMCallAgent", json.dumps({"prompt": "Tell me a long story about a cat",
                                                   "max_new_tokens": 32768}))
        snap = k.wait(pid, timeout=180)
        assert snap["state"] == "done" and 0 < snap["result"]["tokens_out"] <= 5, snap
        llm = by_name(k.request("trace", timeout=10, pid=pid))["llm.chat"]["attrs"]
    finally:
        k.stop()
    assert llm["max_new"] == 5
