"""The bundled demo agents end with a plain answer, on the real embedded model (greedy).

Proves (issue 22, item 3): each demo agent on its demo task ends ``done`` with ``answer`` a
non-empty string (RecAgent's: a numbered list, after reading "where: New York", "what:
restaurants"); its steps count 1..n of its plan, never past it, and no step repeats a
sentence of another (nor a "Step 4 of 3" echo of the plan); an agent whose last tool call
failed has no answer and ends ``failed`` with the tool's error as the reason; an app whose
config.json cannot be read is warned about once at boot, with its file and the error.
"""

from __future__ import annotations

import json
import re

from kernel import apps as registry
from agent_apps.base import _norm
from conftest import start_kernel

DEMOS = ["MathAgent", "NarrativeAgent", "RecAgent", "TravelAgent", "ReActAgent"]


def _steps(lines: list[str]) -> list[tuple[int, int, str]]:
    """(i, n, text) of each ``step i/n: text`` line an agent printed, its continuation lines joined."""
    out: list[list] = []
    for line in lines:
        m = re.match(r"step (\d+)/(\d+): (.*)", line)
        if m:
            out.append([int(m.group(1)), int(m.group(2)), m.group(3)])
        elif out and not re.match(r"\w+\(\{", line):  # not a tool-call trace line
            out[-1][2] += "\n" + line
    return [tuple(x) for x in out]


def test_demo_agents_end_with_a_plain_answer_and_never_repeat_a_step(kernel, kernel_events):
    pids = {name: kernel.spawn(name, registry.find(name).config["demo_task"]) for name in DEMOS}
    snaps = {name: kernel.wait(pid, timeout=600) for name, pid in pids.items()}
    for name, snap in snaps.items():
        assert snap["state"] == "done", (name, snap["error"])
        assert isinstance(snap["answer"], str) and snap["answer"].strip(), (name, snap["result"])
        assert snap["result"]["answer"] == snap["answer"]
        assert not re.search(r"(?i)\bstep \d+ of \d+", snap["answer"]), (name, snap["answer"])
    assert "48" in snaps["MathAgent"]["answer"]
    assert re.search(r"\b5\b.*3\.10686", snaps["ReActAgent"]["answer"]), snaps["ReActAgent"]["answer"]
    rec = snaps["RecAgent"]  # the request read in its own words, then a numbered list of restaurants there
    assert rec["result"]["steps"][0]["data"] == {"where": "New York", "what": "restaurants", "when": "spring break"}, rec
    lines = rec["answer"].splitlines()
    assert [line.split(".")[0] for line in lines] == [str(i) for i in range(1, len(lines) + 1)] and lines, rec["answer"]
    for name in DEMOS[:4]:  # the workflow agents: "step i/n" lines, one per step of the plan
        plan = len(registry.find(name).steps)
        steps = _steps(kernel_events.outputs(pids[name]))
        assert [(i, n) for i, n, _ in steps] == [(i, plan) for i in range(1, plan + 1)], (name, steps)
        said: dict[str, int] = {}
        for i, _, text in steps:
            for sentence in re.findall(r"[^.!?\n]*[.!?]+|[^.!?\n]+", text):
                key = _norm(sentence)
                if len(key.split()) >= 3:  # a sentence, not a "1." or "Day 1:"
                    assert said.setdefault(key, i) == i, (name, i, sentence, steps)
        assert snaps[name]["answer"] == steps[-1][2] or snaps[name]["answer"] in steps[-1][2]


def test_an_agent_whose_last_tool_call_failed_is_failed_with_the_reason(kernel):
    snap = kernel.wait(kernel.spawn("LostFileAgent", "Summarise my notes."), timeout=180)
    assert snap["state"] == "failed" and snap["answer"] is None, snap
    assert snap["error"].startswith("read_file failed: ENOENT") and "Traceback" not in snap["error"], snap["error"]
    assert snap["syscalls"]["tool.call"] == 1


def test_a_broken_app_is_warned_once_at_boot_with_its_file_and_error(tmp_path, monkeypatch):
    apps = tmp_path / "apps"
    (apps / "broken_agent").mkdir(parents=True)
    bad = apps / "broken_agent" / "config.json"
    bad.write_text('{"name": "BrokenAgent",\n "description": "no comma"\n "tools": []}\n')
    monkeypatch.setenv("AIOS_AGENT_PATH", f"{registry.os.environ['AIOS_AGENT_PATH']}:{apps}")
    client, events = start_kernel(tmp_path)
    try:
        pid_err = None
        try:
            client.spawn("BrokenAgent", "hi")
        except Exception as e:  # the kernel says why there is no such agent
            pid_err = str(e)
        warnings = [e["text"] for e in list(events.events) if e.get("event") == "log" and e.get("level") == "WARNING"
                    and "broken_agent" in e.get("text", "")]
    finally:
        client.stop()
    assert len(warnings) == 1, events.events
    assert str(bad) in warnings[0] and "line 3, column 2: Expecting ',' delimiter" in warnings[0]
    assert pid_err and f"{bad} cannot be read (line 3, column 2" in pid_err, pid_err
    assert json.loads(json.dumps(warnings))  # plain text
