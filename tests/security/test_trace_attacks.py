"""A hostile agent (tests/security/agents/trace_spy) against the tracer.

Attacks: read another agent's trace, or its own, through any syscall name a trace reader might
have; read a victim's secret through the syscalls that do exist; flood the kernel with calls whose
names and arguments are huge, full of HTML and terminal escapes, so that the trace grows without
bound or carries the payload into the shell, the timeline or the exported file.

Asserts what the attacker could not do: every trace syscall is ENOSYS; the victim's secret is in no
reply, no span, no exported line (content is opt-in: --trace-content is off); the spy's ring holds
TRACE_SPANS_PER_PROC spans whatever it sent (the rest counted as dropped), each bounded, so the
tracer stays within (live + TRACE_ENDED_KEPT) x (TRACE_SPANS_PER_PROC + 1) x TRACE_SPAN_BYTES; the
shell's lines and the timeline show the payload inert.
"""

from __future__ import annotations

import json

import pytest

from aios_shell import timeline, trace_view
from kernel.param import TRACE_ARGS_MAX, TRACE_SPANS_PER_PROC
from secure_kernel import start_hostile_kernel

SECRET = "victim-launch-code-5501-7734"
FLOOD = 3 * TRACE_SPANS_PER_PROC + 17
SPAN_JSON_MAX = 2048  # bytes of one span as the trace op returns it, whatever the agent sent


@pytest.fixture(scope="module")
def k(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trace-attacks")
    client, _ = start_hostile_kernel(tmp, trace_file=str(tmp / "spans.jsonl"))
    yield client, tmp / "spans.jsonl"
    client.stop()


def test_no_agent_reads_a_trace_and_no_secret_leaves_the_kernel_in_one(k):
    client, path = k
    victim = client.spawn("ToolAgent", json.dumps([
        {"sys": "fs.write", "args": {"name": "trace-secret.txt", "data": SECRET}},
        {"sys": "mem.add", "args": {"content": SECRET}},
        {"tool": "calculator", "args": {"expression": "1+1", "note": SECRET}},
        {"sys": "llm.chat", "args": {"messages": [{"role": "user", "content": SECRET}], "max_new_tokens": 2}}]))
    assert client.wait(victim, timeout=120)["state"] == "done"
    snap = client.wait(client.spawn("TraceSpy", json.dumps({"victim": victim, "flood": 0, "big": 0})), timeout=120)
    assert snap["state"] == "done", snap
    spy = snap["result"]["spy"]
    for r in spy:
        if r["name"] not in ("proc.info", "mem.search", "fs.read"):
            assert r == {"name": r["name"], "ok": False, "code": "ENOSYS", "message": f"unknown syscall {r['name']!r}"}
    assert SECRET not in json.dumps(spy)
    assert SECRET not in json.dumps(client.request("trace", timeout=10))  # no content without --trace-content
    client.stop()  # flushes the exporter
    assert SECRET not in path.read_text() and path.read_text().count("\n") > 5
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.fixture(scope="module")
def flooded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trace-flood")
    client, _ = start_hostile_kernel(tmp)
    try:
        pid = client.spawn("TraceSpy", json.dumps({"victim": 1, "flood": FLOOD, "big": 40}))
        snap = client.wait(pid, timeout=300)
        assert snap["state"] == "done" and snap["result"]["flood"] == FLOOD, snap
        yield client, pid, client.request("trace", timeout=30, pid=pid), client.request("trace", timeout=30)
    finally:
        client.stop()


def test_a_flood_keeps_one_bounded_ring(flooded):
    client, pid, trace, everything = flooded
    calls = FLOOD + len(trace_spy_names()) + 1  # the spy's calls, then proc.exit
    assert len(trace["spans"]) == TRACE_SPANS_PER_PROC and trace["dropped"] == calls - TRACE_SPANS_PER_PROC
    for s in trace["spans"]:
        assert len(s["args"]) <= TRACE_ARGS_MAX and len(s["name"]) <= 64 and s["message"] is None
        assert len(json.dumps(s)) <= SPAN_JSON_MAX
    stats = everything["stats"]
    assert stats["spans_kept"] <= stats["processes"] * (TRACE_SPANS_PER_PROC + 1)
    assert stats["spans_dropped"] >= calls - TRACE_SPANS_PER_PROC


def test_the_payload_stays_inert_in_the_shell_and_the_timeline(flooded):
    client, pid, trace, everything = flooded
    hostile = [s for s in trace["spans"] if s["name"].startswith("<script>")]
    assert hostile and all(s["error"] == "ENOSYS" for s in hostile)
    for s in trace["spans"]:
        line = trace_view.format_line(s)
        assert "\x1b" not in line and "\n" not in line and len(line) < 600
    page = timeline.render(everything["procs"])
    assert "<script" not in page and "&lt;script&gt;" in page and "\x1b" not in page


def trace_spy_names() -> list:
    """The spy's probing calls before the flood: 7 names x 2 pids, then proc.info, mem.search, fs.read."""
    return [None] * (7 * 2 + 3)
