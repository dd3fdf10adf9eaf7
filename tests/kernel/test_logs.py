"""Deployment logs: ISO 8601 timestamps on every line, the scheduler's per-call events, agent logs
that end with status/exit/result, size rotation and run retention, --log-level.

Unit tier (no kernel): the formatter, AuditLog rotation, prune_runs. Kernel tier: one kernel of its
own in file mode (rr, a batch of 1 and a 2-token quantum, so two concurrent calls preempt).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from conftest import start_kernel
from kernel.access.audit import AuditLog
from kernel.logs import iso_now, prune_runs

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
LINE = re.compile(rf"^{ISO} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def every_line_timestamped(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines, f"{path} is empty"
    bad = [line for line in lines if not LINE.match(line)]
    assert bad == [], f"{path}: lines without an ISO 8601 timestamp: {bad[:3]}"
    return lines


def with_rotated(path: Path) -> list[str]:
    """Lines of a log and its rotated copies, oldest first (path.N ... path.1, path), each timestamped."""
    copies = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    return [line for p in [*copies, path] for line in every_line_timestamped(p)]


class Pcb:
    pid, name, group = 4, "TravelAgent", "TravelAgent"


def test_iso_timestamps_and_audit_rotation(tmp_path):
    assert re.fullmatch(ISO, iso_now(0.5))
    audit = AuditLog(str(tmp_path / "audit-x.log"), max_bytes=1024, backups=2)
    for i in range(60):
        audit.write("deny", Pcb(), action="read", resource=f"fs:{i}", reason="x" * 40)
    audit.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit-x.log", "audit-x.log.1", "audit-x.log.2"], files  # 2 backups kept, no more
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 1024
        for line in p.read_text().splitlines():
            rec = json.loads(line)
            assert re.fullmatch(ISO, rec["ts"]) and rec["kind"] == "deny" and rec["pid"] == 4
    newest = [json.loads(x) for x in (tmp_path / "audit-x.log").read_text().splitlines()]
    assert newest[-1]["resource"] == "fs:59"  # rotation keeps the newest lines


def test_prune_runs_keeps_the_newest_and_never_a_live_file(tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / f"kernel-2026010{i}-1-{i}.log"
        p.write_text("x")
        os.utime(p, (1000 + i, 1000 + i))
        paths.append(p)
    (tmp_path / f"{paths[0].name}.1").write_text("rotated")  # goes with its file
    assert prune_runs(str(tmp_path / "kernel-*.log"), 2, protect=[str(paths[1])]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths[1:2] + paths[3:])


def test_file_mode_logs_end_to_end(tmp_path):
    # confine off: an agent rotates its own log only where it can see the log folder (a confined one
    # cannot; its log is capped instead: test_confined_agent_log_is_capped)
    k, events = start_kernel(tmp_path, scheduler_log_mode="file", agent_log_mode="file", scheduler="rr",
                             max_batch=1, rr_quantum=2, kv_budget_mb=0, log_max_bytes=2048, log_backups=50, log_keep_runs=3,
                             log_level="DEBUG", kill_grace_s=10.0, confine="off")
    try:
        calls = [k.spawn("LLMCallAgent", json.dumps({"prompt": p, "max_new_tokens": 8}))
                 for p in ("Name three fruits.", "What is the capital of Italy?")]
        done = k.spawn("EchoAgent", "hello log")
        crash = k.spawn("EchoAgent", "crash")
        sleepy = k.spawn("SleepyAgent", "600")
        big = k.spawn("EchoAgent", "long " * 1000)  # one 5 KB line: the agent's log rotates
        snaps = {pid: k.wait(pid, timeout=120) for pid in calls + [done, crash, big]}
        k.kill(sleepy)
        snaps[sleepy] = k.wait(sleepy, timeout=60)
        paths = {pid: Path(s["log_path"]) for pid, s in snaps.items()}
        first = paths[done]
        lines = {pid: every_line_timestamped(path) for pid, path in paths.items()}  # before retention runs
        rotated = [p.name for p in paths[big].parent.glob(paths[big].name + ".*")]
        big_size = paths[big].stat().st_size
        for i in range(4):  # retention: 3 EchoAgent runs kept, the live-or-newest ones
            k.wait(k.spawn("EchoAgent", f"again {i}"), timeout=60)
    finally:
        k.stop()
    assert [snaps[p]["state"] for p in calls] == ["done", "done"] and snaps[sleepy]["state"] == "killed"
    console = [e for e in events.events if e.get("event") == "log"]
    assert console == [], console[:3]  # file mode: nothing on the console

    logs = tmp_path / "logs"
    kernel_log = with_rotated(next(logs.glob("kernel-*.log")))
    assert any("spawned EchoAgent" in line for line in kernel_log)
    sched = with_rotated(next(logs.glob("scheduler-*.log")))
    for pid in calls:  # each call's admission and finish, with pid, tokens and waits
        mine = [line for line in sched if f" pid={pid} " in line]
        assert any(" submit pid=" in line for line in mine), mine
        assert any(" admit pid=" in line for line in mine), mine
        fin = [line for line in mine if " finish pid=" in line]
        assert len(fin) == 1 and re.search(r"tokens_in=\d+ tokens_out=[1-8] waiting=\d+\.\d+ turnaround=", fin[0])
    assert any(" preempt pid=" in line for line in sched), "rr with a batch of 1 preempts one of two calls"
    assert sum(snaps[p]["preemptions"] for p in calls) == sum(" preempt pid=" in line for line in sched)

    # agent logs: timestamped, first line the start, last line status, exit and result
    text = lines[sleepy]
    assert "start: SleepyAgent" in text[0] and "task: 600" in text[0]
    assert text[-1].endswith('end: status=killed exit=SIGTERM result=null'), text[-1]
    text = lines[crash]
    assert any("RuntimeError: asked to crash" in line for line in text)
    assert " end: status=failed exit=1 result=" in text[-1] and "asked to crash" in text[-1]
    call_log = lines[calls[0]]
    assert " end: status=done exit=0 result={" in call_log[-1] and '"tokens_out"' in call_log[-1]
    assert rotated and big_size < 5000 + 200, (rotated, big_size)  # the echo line went to a rotated copy
    assert lines[big][-1].split(" ", 2)[2].startswith("end: status=done exit=0")

    echo_runs = sorted((logs / "agents" / "EchoAgent").glob("*-pid*.log"))
    assert len(echo_runs) == 3 and not first.exists(), echo_runs  # --log-keep-runs 3
    last = every_line_timestamped(next(p for p in echo_runs if "again 3" in p.read_text()))
    assert last[-1].endswith('end: status=done exit=0 result="again 3"')


def test_model_load_reports_progress_before_ready(kernel, kernel_events):
    """The shared kernel loaded the cached model: a "progress" event (the shell's toolbar, main.py's
    bar) came before "ready"."""
    assert kernel.ready.wait(120)
    kinds = [(e.get("event"), e.get("stage")) for e in list(kernel_events.events)
             if e.get("event") in ("progress", "ready")]
    assert ("progress", "load") in kinds and kinds.index(("progress", "load")) < kinds.index(("ready", None))
    ev = next(e for e in kernel_events.events if e.get("event") == "progress")
    assert "smollm2-135m-instruct" in ev["text"]


def test_confined_agent_log_is_capped(tmp_path):
    """A confined agent cannot see the log folder, so it cannot rotate its log: it writes at most
    --log-max-bytes x (--log-backups + 1) bytes to the file the kernel opened for it, then one line."""
    k, _ = start_kernel(tmp_path, agent_log_mode="file", log_max_bytes=2048, log_backups=1)
    try:
        snap = k.wait(k.spawn("EchoAgent", "long " * 2000), timeout=120)
    finally:
        k.stop()
    assert snap["state"] == "done" and snap["confinement"] != "off"
    text = Path(snap["log_path"]).read_text()
    assert "log truncated: it reached 4096 bytes" in text and len(text.encode()) < 4096 + 400
    assert not list(Path(snap["log_path"]).parent.glob("*.log.1"))
