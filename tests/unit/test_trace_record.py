"""Tracing without a kernel process: argument summaries, the recorder's rings and bounds, the
OpenTelemetry mapping, the shell's strace lines and the timeline page.

Proves: identifiers show and content shows only as <size #hash> unless --trace-content; every kept
text is bounded; a process's ring keeps TRACE_SPANS_PER_PROC spans and counts the rest; ended
processes beyond TRACE_ENDED_KEPT go; a span takes at most TRACE_SPAN_BYTES (tracemalloc); LLM
phases and confirmations land on the right span; GenAI names and attributes; the line format of
the issue; the timeline escapes what agents wrote and fetches nothing.
"""

from __future__ import annotations

import json
import re
import threading
import time
import tracemalloc
from types import SimpleNamespace

import pytest

from aios_shell import timeline, trace_view
from aios_shell.commands import CommandError
from kernel.config import KernelConfig
from kernel.param import (TRACE_ARGS_MAX, TRACE_ENDED_KEPT, TRACE_EVENTS_MAX, TRACE_SPAN_BYTES, TRACE_SPANS_PER_PROC,
                          TRACE_TEXT_MAX)
from kernel.trace import brief, otel
from kernel.trace.recorder import Tracer

SECRET = "the launch code is 0000-1234"


class FakeKernel:
    """What the tracer calls on the kernel: post (run on 'the loop') and event (to the front)."""

    def __init__(self):
        self.events: list[dict] = []

    def post(self, fn):
        fn()

    def event(self, **ev):
        self.events.append(ev)


def pcb(pid: int, name: str = "MathAgent", parent=None, state: str = "done"):
    return SimpleNamespace(pid=pid, name=name, task=SECRET, parent=parent, priority=0, group=name,
                           state=SimpleNamespace(value=state), end_time=time.time(), exit_code=0, exit_signal=None,
                           error=None)


def tracer(**cfg) -> tuple[Tracer, FakeKernel]:
    tr = Tracer(KernelConfig.from_flags(**cfg))
    k = FakeKernel()
    tr.kernel, tr._loop_ident = k, threading.get_ident()
    tr.llm["backend"] = "hf_local"
    return tr, k


# -- arguments in brief ---------------------------------------------------------------------------
def test_identifiers_show_and_content_is_a_size_and_a_keyed_hash():
    s = brief.args("fs.write", {"name": "notes.txt", "data": SECRET}, False)
    assert s.startswith('name="notes.txt", data=<28 B #') and SECRET not in s
    again = brief.args("fs.write", {"name": "other", "data": SECRET}, False)
    assert re.search(r"#[0-9a-f]{6}", s).group() == re.search(r"#[0-9a-f]{6}", again).group()  # same content
    chat = brief.args("llm.chat", {"messages": [{"role": "user", "content": SECRET}], "max_new_tokens": 64}, False)
    assert chat.startswith("1 msgs <28 B #") and "max_new_tokens=64" in chat and SECRET not in chat
    tool = brief.args("tool.call", {"name": "calculator", "args": {"expression": SECRET}}, False)
    assert tool.startswith('name="calculator", args={expression=<') and SECRET not in tool


def test_with_trace_content_previews_are_kept_and_bounded():
    s = brief.args("fs.write", {"name": "n", "data": SECRET}, True)
    assert SECRET in s
    long = brief.args("mem.add", {"content": "x" * 100_000}, True)
    assert len(long) <= TRACE_ARGS_MAX and "x" * (TRACE_TEXT_MAX - 1) in long


def test_briefs_are_bounded_and_printable_whatever_is_sent():
    hostile = {f"k{i}\n\x1b[2J": "\x00" * 5000 for i in range(100)}
    hostile["name"] = "\x1b]0;pwned\x07" + "n" * 500
    for content in (False, True):
        s = brief.args("x" * 10_000, hostile, content)
        assert len(s) <= TRACE_ARGS_MAX and s.isprintable()


# -- the recorder -----------------------------------------------------------------------------------
def test_a_ring_per_process_keeps_the_newest_and_counts_the_rest():
    tr, _ = tracer()
    tr.spawned(pcb(1))
    for i in range(TRACE_SPANS_PER_PROC + 50):
        tr.end(tr.begin(1, "proc.info", {"pid": i}), size=10)
    snap = tr.snapshot(1)
    assert len(snap["spans"]) == TRACE_SPANS_PER_PROC and snap["dropped"] == 50
    assert snap["spans"][-1]["args"] == f"pid={TRACE_SPANS_PER_PROC + 49}"


def test_ended_processes_beyond_the_bound_are_forgotten_oldest_first():
    tr, _ = tracer()
    for pid in range(1, TRACE_ENDED_KEPT + 6):
        tr.spawned(pcb(pid))
        tr.end(tr.begin(pid, "proc.exit", {}), size=1)
        tr.exited(pcb(pid))
    live = TRACE_ENDED_KEPT + 6
    tr.spawned(pcb(live))
    assert tr.snapshot(1) is None and tr.snapshot(5) is None and tr.snapshot(6) is not None
    assert tr.snapshot(live) is not None and tr.stats()["processes"] == TRACE_ENDED_KEPT + 1


def test_a_kept_span_takes_at_most_the_stated_bytes():
    """The worst case: the longest arguments, every LLM detail, TRACE_EVENTS_MAX events (and more)."""
    tr, _ = tracer()
    procs = 8
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for pid in range(1, procs + 1):
            tr.spawned(pcb(pid))
            for _ in range(TRACE_SPANS_PER_PROC):
                s = tr.begin(pid, "llm.chat" + "x" * 500, {f"key{i}": "v" * 10_000 for i in range(50)})
                s.name = "llm.chat"
                tr.llm_begin(s, 4096)
                tr.llm_state(s, "queued")
                tr.llm_state(s, "running")
                for n in range(1, TRACE_EVENTS_MAX + 6):
                    tr.llm_state(s, "preempted", n)
                    tr.llm_state(s, "running", n)
                tr.note(s, confirm="allowed", confirm_by="x" * 500)
                tr.llm_done(s, {"tokens_in": 10**6, "tokens_out": 10**6, "prefix_hit_tokens": 10**6,
                                "finish_reason": "length", "llm_time_s": 1.5, "retries": 3,
                                "tool_calls": [{}] * 16}, time.time())
                tr.end(s, "EINVAL", "m" * 10_000, size=10**6)
        per_span = (tracemalloc.get_traced_memory()[0] - before) / (procs * (TRACE_SPANS_PER_PROC + 1))
    finally:
        tracemalloc.stop()
    assert per_span <= TRACE_SPAN_BYTES, per_span
    assert s.lost_events == 2 * (TRACE_EVENTS_MAX + 5) - TRACE_EVENTS_MAX


def test_llm_detail_lands_on_the_span_and_the_reply_ends_it_once():
    tr, _ = tracer()
    tr.spawned(pcb(1))
    s = tr.begin(1, "llm.chat", {"messages": [{"role": "user", "content": "hi"}]})
    tr.llm_begin(s, 64)
    tr.llm_state(s, "queued")
    tr.llm_state(s, "running")
    tr.llm_state(s, "preempted", 1)  # the count comes from the request (LLMRequest.preemptions)
    tr.llm_state(s, "running", 1)
    tr.llm_done(s, {"tokens_in": 412, "tokens_out": 38, "prefix_hit_tokens": 380, "finish_reason": "stop",
                    "llm_time_s": 1.0}, time.time())
    tr.end(s, size=300)
    tr.end(s, "EIO", "late")  # a second answer (a timeout racing the result) changes nothing
    d = tr.snapshot(1)["spans"][0]
    a = d["attrs"]
    assert d["error"] is None and d["size"] == 300
    assert (a["tokens_in"], a["tokens_out"], a["cached"], a["preemptions"], a["finish"]) == (412, 38, 380, 1, "stop")
    assert a["model"] == KernelConfig().llm.name and a["policy"] == "fifo" and a["backend"] == "hf_local"
    assert min(a["wait_s"], a["prefill_s"], a["decode_s"]) >= 0
    assert [e[1] for e in d["events"]] == ["preempt", "resume"]


def test_a_confirmation_and_its_answer_are_noted_on_the_calls_span():
    tr, _ = tracer()
    tr.spawned(pcb(1))
    s = tr.begin(1, "fs.write", {"name": "a"})
    answers = []
    done = tr.on_confirm(1, "fs.overwrite", lambda allow, why: answers.append((allow, why)))
    assert s.attrs == {"confirm": "asked"}
    done(False, "the user said no")
    assert answers == [(False, "the user said no")] and s.attrs["confirm"] == "denied"
    assert tr.on_confirm(2, "tool.call", print) is print  # no such span: the callback as it was


def test_watched_spans_go_to_the_front_and_stop_at_exit():
    tr, k = tracer()
    tr.spawned(pcb(1))
    tr.end(tr.begin(1, "proc.info", {}), size=1)
    assert tr.snapshot(1, follow=True)["spans"][0]["name"] == "proc.info" and not k.events
    tr.end(tr.begin(1, "mem.stats", {}), size=1)
    s = tr.begin(1, "proc.wait", {"pid": 2})
    tr.exited(pcb(1, state="killed"))  # its open call ends as cancelled, then its root
    names = [(e["span"]["name"], e["span"]["error"]) for e in k.events]
    assert names == [("mem.stats", None), ("proc.wait", "ECANCELED"), ("agent", "KILLED")]
    assert s.end is not None and 1 not in tr.watched
    tr.end(tr.begin(1, "proc.info", {}))
    assert len(k.events) == 3


def test_children_nest_under_the_spawn_span_in_one_trace():
    tr, _ = tracer()
    tr.spawned(pcb(1))
    spawn = tr.begin(1, "proc.spawn", {"agent": "EchoAgent", "task": "x"})
    tr.current = spawn
    tr.spawned(pcb(2, "EchoAgent", parent=1))
    tr.current = None
    child = tr.snapshot(2)["root"]
    assert child["parent_id"] == f"{spawn.span_id:016x}" and child["trace_id"] == f"{spawn.trace_id:032x}"
    assert tr.traceparent(spawn) == f"00-{spawn.trace_id:032x}-{spawn.span_id:016x}-01"


def test_tracing_off_records_nothing():
    tr, _ = tracer(trace="off")
    tr.spawned(pcb(1))
    assert tr.begin(1, "proc.info", {}) is None and tr.snapshot(1) is None and tr.traceparent(None) is None


@pytest.mark.parametrize("cfg, message", [({"trace": "maybe"}, "--trace must be on or off"),
                                          ({"otlp_endpoint": "localhost:4318"}, "--otlp-endpoint must be")])
def test_config_is_checked(cfg, message):
    with pytest.raises(ValueError, match=message):
        KernelConfig.from_flags(**cfg)


# -- OpenTelemetry names and records ------------------------------------------------------------------
def test_genai_span_names_and_attributes():
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as G

    tr, _ = tracer()
    tr.spawned(pcb(1))
    chat = tr.begin(1, "llm.chat", {"messages": [{"role": "user", "content": SECRET}]})
    tr.llm_begin(chat, 64)
    tr.llm_done(chat, {"tokens_in": 412, "tokens_out": 38, "prefix_hit_tokens": 380, "finish_reason": "stop"}, None)
    tr.end(chat, size=10)
    tool = tr.begin(1, "tool.call", {"name": "calculator", "args": {"expression": SECRET}})
    tr.note(tool, tool="calculator", side_effect="read_only", mcp_server=None)
    tr.end(tool, size=42)
    tr.exited(pcb(1))
    root = tr.procs[1].root
    assert otel.name_and_kind(root) == ("invoke_agent MathAgent", "INTERNAL")
    assert otel.name_and_kind(chat) == (f"chat {KernelConfig().llm.name}", "CLIENT")
    assert otel.name_and_kind(tool) == ("execute_tool calculator", "INTERNAL")
    a = otel.attributes(chat)
    assert a[G.GEN_AI_OPERATION_NAME] == "chat" and a[G.GEN_AI_REQUEST_MODEL] == KernelConfig().llm.name
    assert a[G.GEN_AI_USAGE_INPUT_TOKENS] == 412 and a[G.GEN_AI_USAGE_OUTPUT_TOKENS] == 38
    assert a[G.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 380 and a[G.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    t = otel.attributes(tool)
    assert t[G.GEN_AI_TOOL_NAME] == "calculator" and t[G.GEN_AI_TOOL_TYPE] == "function"
    assert G.GEN_AI_TOOL_CALL_ARGUMENTS not in t  # content is opt-in
    r = otel.attributes(root)
    assert r[G.GEN_AI_AGENT_NAME] == "MathAgent" and r[G.GEN_AI_AGENT_ID] == "1"
    rec = otel.otlp_json(chat)
    assert rec["parentSpanId"] == f"{root.span_id:016x}" and rec["traceId"] == f"{root.trace_id:032x}"
    assert rec["kind"] == 3 and int(rec["endTimeUnixNano"]) >= int(rec["startTimeUnixNano"])
    assert {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "412"}} in rec["attributes"]
    assert SECRET not in json.dumps([otel.otlp_json(s) for s in (root, chat, tool)])


# -- the shell's lines --------------------------------------------------------------------------------
def span(**kw) -> dict:
    base = {"span_id": "1", "pid": 3, "kind": "syscall", "start": 1_700_000_000.120, "end": 1_700_000_002.5,
            "args": "", "error": None, "message": None, "size": 120, "result": None, "attrs": {}, "events": []}
    return {**base, **kw}


def test_the_llm_line_has_the_issue_format():
    line = trace_view.format_line(span(name="llm.chat", attrs={
        "model": "smollm2", "tokens_in": 412, "cached": 380, "tokens_out": 38, "wait_s": 0.41, "prefill_s": 0.05,
        "decode_s": 1.90}))
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.120 llm\.chat\(model=smollm2, 412 tok in, prefix hit 380\) = 38 tok  "
                        r"\[wait 0\.41s prefill 0\.05s decode 1\.90s\]", line), line
    pre = trace_view.format_line(span(name="llm.chat", attrs={"model": "m", "tokens_in": 9, "tokens_out": 1,
                                                             "wait_s": 0.1, "prefill_s": 0.1, "decode_s": 1.0,
                                                             "preemptions": 2}))
    assert pre.endswith("preempted 2x]") and "prefix hit" not in pre


def test_errors_confirmations_exits_and_unfinished_calls():
    err = trace_view.format_line(span(name="fs.delete", args='name="a"', error="EPERM",
                                      attrs={"confirm": "denied", "confirm_by": "the user said no"}))
    assert 'fs.delete(name="a") = -1 EPERM (Operation not permitted)  <2.380s>' in err
    assert err.endswith("[confirm: denied, the user said no]")
    ok = trace_view.format_line(span(name="tool.call", args='name="calculator"', size=1500))
    assert ok.endswith('tool.call(name="calculator") = 1.5 KB  <2.380s>')
    assert trace_view.format_line(span(name="proc.wait", end=None)).endswith("proc.wait() <unfinished ...>")
    root = span(kind="agent", name="agent", attrs={"agent": "MathAgent", "state": "killed", "exit_signal": 9})
    assert trace_view.format_line(root).endswith("+++ exited: killed, signal 9 +++")
    assert trace_view.spawn_line(root).endswith("+++ spawned MathAgent (pid 3) +++")
    hostile = trace_view.format_line(span(name="\x1b[2Jx", args="\x1b]0;t\x07"))
    assert "\x1b" not in hostile and "\x07" not in hostile


@pytest.mark.parametrize("arg, want", [("7", (7, False, False, None)), ("-a 7", (7, True, False, None)),
                                       ("-o json 7", (7, False, True, None)), ("-ojson -a 7", (7, True, True, None)),
                                       ("--timeline t.html", (None, False, False, "t.html"))])
def test_trace_options(arg, want):
    assert trace_view.parse(arg) == want


@pytest.mark.parametrize("arg", ["", "-x 3", "-o yaml 3", "3 4", "--timeline", "--timeline f 3", "abc"])
def test_bad_trace_options_are_one_clear_error(arg):
    with pytest.raises(CommandError):
        trace_view.parse(arg)


# -- the timeline -------------------------------------------------------------------------------------
def test_the_timeline_draws_every_phase_escapes_agent_text_and_fetches_nothing():
    tr, _ = tracer()
    tr.spawned(pcb(1))
    s = tr.begin(1, "llm.chat", {"messages": [{"role": "user", "content": "hi"}]})
    tr.llm_begin(s, 8)
    for st, n in (("queued", 0), ("running", 0), ("preempted", 1), ("running", 1)):
        tr.llm_state(s, st, n)
    tr.llm_done(s, {"tokens_in": 5, "tokens_out": 8}, time.time())
    tr.end(s, size=100)
    tr.end(tr.begin(1, "<script>alert(1)</script>", {"name": "<img src=x onerror=alert(1)>"}), "ENOSYS")
    tool = tr.begin(1, "tool.call", {"name": "calculator"})
    tr.note(tool, tool="calculator", confirm="allowed")
    tr.end(tool, size=5)
    spawn = tr.begin(1, "proc.spawn", {"agent": "EchoAgent"})
    tr.current = spawn
    tr.spawned(pcb(2, "EchoAgent", parent=1))
    tr.current = None
    tr.end(spawn, size=10)
    tr.exited(pcb(1))
    page = timeline.render(tr.dump())
    assert page.startswith("<!doctype html>") and "<svg" in page and "</html>" in page
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert not re.search(r"\s(src|href)\s*=\s*[\"']|https?://(?!www\.w3\.org/2000/svg)", page)  # nothing to fetch
    for color in timeline.COLORS.values():
        assert color in page
    assert "url(#requeued)" in page and "MathAgent  pid 1" in page and "└ EchoAgent  pid 2" in page
    assert "stroke-dasharray" in page  # the spawn link
