"""The tool manager through real agent processes and the shared kernel:
schemas, profiles, parallel limits (measured overlap), queueing, timeouts,
confirmation by the default policy (deny), release on kill.

Test tools (tests/tools/slow.py): sleep (2 at a time), sleep_solo (1 at a
time), hang (a child process that never ends; 1 s default timeout).
"""

from __future__ import annotations

import json
import time

import psutil

from conftest import ROOT
from mcp_util import audit, run_script


def script(kernel, steps, agent="ToolAgent", timeout=60):
    """``run_script`` with this module's shorter default timeout."""
    return run_script(kernel, steps, agent=agent, timeout=timeout)


def max_overlap(intervals) -> int:
    events = sorted([(s, 1) for s, e in intervals] + [(e, -1) for s, e in intervals])
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def test_tool_list_and_calls(kernel):
    listed, calc, unit = script(kernel, [
        {"sys": "tool.list"}, {"tool": "calculator", "args": {"expression": "2*16 + 2*8"}},
        {"tool": "unit_converter", "args": {"value": 1, "from_unit": "mi", "to_unit": "km"}}])
    names = {t["name"]: t for t in listed["ok"]}
    assert {"calculator", "shell", "read_file", "write_file", "search_docs", "wikipedia"} <= set(names)
    assert names["shell"]["side_effect"] == "irreversible" and names["calculator"]["schema"]["required"] == ["expression"]
    assert calc["ok"]["value"] == 48 and abs(unit["ok"]["value"] - 1.60934) < 1e-4


def test_schema_errors_are_clear(kernel):
    out = script(kernel, [
        {"tool": "calculator", "args": {}}, {"tool": "calculator", "args": {"expression": 7}},
        {"tool": "calculator", "args": {"expression": "1", "extra": 1}},
        {"tool": "unit_converter", "args": {"value": "five", "from_unit": "m", "to_unit": "ft"}},
        {"tool": "no_such_tool", "args": {}}, {"sys": "tool.call", "args": {"name": "calculator", "args": "1+1"}},
        {"sys": "tool.call", "args": {"name": "calculator", "args": {"expression": "1"}, "timeout": -1}},
        {"tool": "calculator", "args": {"expression": "1+1"}}])
    codes = [o.get("err") for o in out]
    assert codes == ["EINVAL"] * 4 + ["ENOENT", "EINVAL", "EINVAL", None]
    assert "'expression' is a required property" in out[0]["msg"]
    assert "is not of type 'string'" in out[1]["msg"] and "(at expression)" in out[1]["msg"]
    assert "Additional properties" in out[2]["msg"]
    assert "installed:" in out[4]["msg"] and "calculator" in out[4]["msg"]


def test_profile_limits_tools_and_denial_is_audited(kernel):
    pid = kernel.spawn("CalcOnlyAgent", json.dumps([{"tool": "calculator", "args": {"expression": "6*7"}},
                                                    {"tool": "read_file", "args": {"path": "x"}}]))
    snap = kernel.wait(pid, timeout=30)
    ok, denied = snap["result"]
    assert ok["ok"]["value"] == 42
    assert denied["err"] == "EPERM" and "lists calculator" in denied["msg"]
    lines = [a for a in audit(kernel) if a["kind"] == "deny" and a["pid"] == pid]
    assert len(lines) == 1 and lines[0]["resource"] == "tool read_file" and lines[0]["agent"] == "CalcOnlyAgent"


def test_parallel_limits_hold_and_extra_calls_queue(kernel):
    """6 sleep calls (limit 2) and 3 sleep_solo calls (limit 1), all in flight at once."""
    t0 = time.time()
    [replies] = script(kernel, [{"pipeline": [{"tool": "sleep", "args": {"seconds": 0.4}}] * 6
                                 + [{"tool": "sleep_solo", "args": {"seconds": 0.4}}] * 3}])
    assert all(r["ok"] for r in replies), replies  # queued, never rejected
    spans = [(r["result"]["start"], r["result"]["end"]) for r in replies]
    assert max_overlap(spans[:6]) == 2  # the limit, and reached
    assert max_overlap(spans[6:]) == 1
    assert max_overlap(spans) == 3  # the two tools do not wait for each other (no global lock)
    assert time.time() - t0 >= 1.2  # 6 calls of 0.4 s, 2 at a time: 3 rounds
    tools = {t["name"]: t for t in kernel.request("tools", timeout=5)}
    assert tools["sleep"]["max_running"] == 2 and tools["sleep_solo"]["max_running"] == 1
    assert tools["sleep"]["running"] == tools["sleep"]["queued"] == 0


def test_timeouts_thread_and_process(kernel):
    t0 = time.time()
    [thread_tool] = script(kernel, [{"tool": "sleep", "args": {"seconds": 3}, "timeout": 0.5}])
    assert thread_tool["err"] == "ETIMEDOUT" and thread_tool["t1"] - thread_tool["t0"] < 1.5
    # hang never returns; limit 1: the second call starts only once the first child is killed.
    [replies] = script(kernel, [{"pipeline": [{"tool": "hang", "args": {}}] * 2}])
    assert [r["error"]["code"] for r in replies] == ["ETIMEDOUT", "ETIMEDOUT"]
    assert "killed" in replies[0]["error"]["message"]
    assert 0.8 < replies[1]["t"] - replies[0]["t"] < 3  # each ran its 1 s, one after the other
    assert time.time() - t0 < 10
    assert not _tool_children()


def _tool_children() -> list:
    return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and "kernel.tools.child" in p.info["cmdline"]]


def test_irreversible_calls_denied_by_default_policy(kernel):
    out = script(kernel, [{"tool": "write_file", "args": {"path": "keep.txt", "content": "v1"}},
                          {"tool": "write_file", "args": {"path": "keep.txt", "content": "v2"}},
                          {"tool": "delete_file", "args": {"path": "keep.txt"}},
                          {"tool": "shell", "args": {"command": "rm -f keep.txt"}},
                          {"tool": "read_file", "args": {"path": "keep.txt"}}])
    assert out[0]["ok"]["bytes"] == 2
    assert [o.get("err") for o in out[1:4]] == ["EPERM"] * 3 and "--confirm_policy deny" in out[1]["msg"]
    assert out[4]["ok"]["content"] == "v1"
    decisions = [a for a in audit(kernel) if a["kind"] == "confirm" and a["agent"] == "ToolAgent"]
    assert {d["resource"] for d in decisions[-3:]} == {"tool write_file", "tool delete_file", "tool shell"}
    assert all(d["allow"] is False and d["by"] == "policy" for d in decisions[-3:])


def test_killed_agent_frees_its_tool_slots(kernel):
    busy = kernel.spawn("ToolAgent", json.dumps([{"tool": "hang", "args": {}, "timeout": 30}]))
    deadline = time.time() + 10
    while time.time() < deadline and kernel.info(busy)["state"] != "waiting-tool":
        time.sleep(0.05)
    assert kernel.info(busy)["state"] == "waiting-tool"
    # waiting-tool starts when the call is admitted; the tool's child process comes a moment later
    # (on a loaded machine, much later): wait for it rather than assume it.
    while time.time() < deadline + 20 and not _tool_children():
        time.sleep(0.05)
    assert _tool_children()
    kernel.kill(busy)
    kernel.wait(busy, timeout=10)
    t0 = time.time()
    [r] = script(kernel, [{"tool": "hang", "args": {}, "timeout": 0.5}])
    assert r["err"] == "ETIMEDOUT" and time.time() - t0 < 5  # did not queue behind the 30 s call
    assert not _tool_children()


def test_tools_control_op_describes_every_tool(kernel):
    tools = kernel.request("tools", timeout=5)
    assert all({"name", "description", "side_effect", "parallel", "schema"} <= set(t) for t in tools)
    assert (ROOT / "tools" / "shell.py").exists() and any(t["name"] == "shell" for t in tools)
