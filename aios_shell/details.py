"""Grouped views: ``info PID``, ``sched`` and ``status`` as sections a person reads.

Pure functions from snapshots (plain dicts) to text, like views.py. Each view
lists its fields in sections (``SECTIONS``: section, key, label); a field the
kernel reports that no section names still shows, under ``other``, so nothing
is hidden. Values are formatted for people: ``-`` for none, yes/no, seconds as
``1.2s``/``3m05s``, bytes as ``23.0M``, other numbers rounded. The same data
as JSON (``-o json``) keeps the kernel's snake_case keys, with ``null``,
``true``/``false`` and rounded floats (views.json_text).
"""

from __future__ import annotations

import time

from aios_shell.views import ENDED, batch_text, fmt_bytes, fmt_secs, is_seconds, printable, table_lines

INFO_SECTIONS = [
    ("", [("task", "task"), ("answer", "answer"), ("error", "error")]),
    ("process", [("state", "state"), ("exit", "exit"), ("os_pid", "os pid"), ("priority", "priority"),
                 ("group", "group"), ("parent", "parent"), ("tree", "spawn tree"), ("start_time", "started"),
                 ("end_time", "ended"), ("elapsed_s", "elapsed"), ("startup_s", "start-up"),
                 ("confinement", "confinement"), ("restart_max", "restarts allowed"), ("lineage", "lineage"),
                 ("restarted_as", "restarted as")]),
    ("resources", [("cpu_percent", "cpu %"), ("rss", "memory (rss)"), ("cpu_time_s", "cpu time")]),
    ("llm", [("llm_calls", "calls"), ("llm_calls_done", "calls done"), ("tokens_in", "tokens in"),
             ("tokens_out", "tokens out"), ("preemptions", "preemptions"), ("waiting_s", "wait (avg)"),
             ("turnaround_s", "turnaround (avg)"), ("llm_time_s", "llm time"), ("llm_share", "share of llm time")]),
    ("syscalls", [("syscalls_total", "total"), ("syscalls", "by kind")]),
    ("files", [("log_path", "log"), ("result_path", "whole result")]),
]
INFO_HIDDEN = ("pid", "agent", "result", "exit_code", "exit_signal")  # in the title line, or shown as answer/exit

SCHED_SECTIONS = [
    ("model", [("model", "model"), ("backend", "backend"), ("device", "device"), ("threads", "threads"),
               ("loaded", "loaded"), ("load_time_s", "load time"), ("load_error", "load error")]),
    ("scheduler", [("policy", "policy"), ("max_batch", "max batch"), ("rr_quantum", "rr quantum"),
                   ("program_aware", "program aware"), ("queue", "queued"), ("running", "decoding now"),
                   ("batch_occupancy", "batch (avg rows)"), ("batch_occupancy_pct", "batch (avg %)"),
                   ("calls", "calls"), ("errors", "errors"), ("preemptions", "preemptions"),
                   ("resumes_kv", "resumed (kv kept)"), ("resumes_recompute", "resumed (recomputed)")]),
    ("throughput", [("tokens_per_s", "tokens/s"), ("tokens_per_s (shell)", "tokens/s (shell)"),
                    ("tokens_per_busy_s", "tokens/busy s"), ("tokens_in", "tokens in"), ("tokens_out", "tokens out"),
                    ("busy_s", "busy"), ("prefill_s", "prefill"), ("decode_s", "decode"), ("steps", "steps"),
                    ("prefill_tokens", "prefill tokens"), ("prefill_chunk", "prefill chunk")]),
    ("cache", [("prefix_cache", "prefix cache"), ("prefix_hit_tokens", "prefix hit tokens"),
               ("cache_bytes", "prefix cache size"), ("prefix_cache_budget_bytes", "prefix cache budget"),
               ("kv_bytes", "kv now"), ("kv_batch_bytes", "kv of the batch"), ("kv_saved_bytes", "kv saved"),
               ("kv_budget_bytes", "kv budget")]),
    ("memory", [("mem_processes", "processes"), ("mem_resident_bytes", "resident"),
                ("mem_evicted_bytes", "evicted")]),
    ("tools", [("tools_running", "running"), ("tools_queued", "queued")]),
]
SCHED_HIDDEN = ("scheduler", "kernel_pid", "kernel_cpu_percent", "kernel_rss", "uptime_s", "agents_live",
                "agents_total")  # scheduler: the same as policy; the rest: status

STATUS_FIELDS = [("model", "model"), ("policy", "policy"), ("kernel_pid", "kernel pid"), ("uptime_s", "uptime"),
                 ("agents", "agents"), ("kernel_rss", "kernel memory"), ("kernel_cpu_percent", "kernel cpu %"),
                 ("connection", "connection"), ("log_dir", "logs")]


def value_text(key: str, v) -> str:
    """One value as a person reads it (``-`` for none; never Python's None/True)."""
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if key in ("start_time", "end_time") and isinstance(v, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v))
    if is_seconds(key) and isinstance(v, (int, float)):
        return fmt_secs(v)
    if (key.endswith("_bytes") or key in ("rss", "kernel_rss")) and isinstance(v, (int, float)):
        return fmt_bytes(v)
    if key == "llm_share" and isinstance(v, (int, float)):
        return f"{100 * v:.1f}%"
    if key.endswith("_pct") or key.endswith("_percent"):
        return f"{v:.1f}%" if isinstance(v, (int, float)) else str(v)
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {value_text(k, x)}" for k, x in v.items()) or "-"
    if isinstance(v, list):
        return ", ".join(value_text(key, x) for x in v) or "-"
    return printable(v)


def sections_text(data: dict, sections: list, hidden=()) -> list[str]:
    """``data`` as sections of ``label  value`` lines; unnamed keys under ``other``. Multi-line values
    (an answer, a traceback) continue indented under their label."""
    named = {k for _, fields in sections for k, _ in fields}
    rest = [(k, k) for k in data if k not in named and k not in hidden]
    groups = [(title, [(k, label) for k, label in fields if k in data]) for title, fields in sections]
    groups.append(("other", rest))
    width = max([len(label) for _, fields in groups for _, label in fields] + [4])
    lines: list[str] = []
    for title, fields in groups:
        if not fields:
            continue
        if title:
            lines.append(title)
        for key, label in fields:
            text = value_text(key, data[key]).rstrip("\n").splitlines() or ["-"]
            lines.append(f"  {label:<{width}}  {text[0]}")
            lines += [f"  {'':<{width}}  {more}" for more in text[1:]]
    return lines


def info_text(snap: dict) -> str:
    """``info PID``: a title line (pid, agent, state, elapsed), then the fields in sections."""
    state = snap.get("state", "?")
    took = f" in {fmt_secs(snap.get('elapsed_s'))}" if state in ENDED else \
        f" for {fmt_secs(snap.get('elapsed_s'))}"
    title = f"pid {snap.get('pid')}: {printable(snap.get('agent', '?'))}, {state}{took}"
    data = dict(snap)
    if state != "done" or not data.get("answer"):
        data.pop("answer", None)
    if not data.get("error"):
        data.pop("error", None)
    return "\n".join([title, *sections_text(data, INFO_SECTIONS, INFO_HIDDEN)])


def sched_text(stats: dict, snaps: list[dict], tok_s: float | None = None) -> str:
    """``sched``: the engine's stats in sections, then the live processes' LLM accounting."""
    data = dict(stats)
    if "policy" not in data and "scheduler" in data:
        data["policy"] = data["scheduler"]
    if tok_s is not None and "tokens_per_s" not in data:
        data["tokens_per_s (shell)"] = round(tok_s, 2)
    if "running" in data:
        data["running"] = batch_text(stats)
        for k in ("batch_occupancy", "batch_occupancy_pct", "max_batch"):  # shown by batch_text
            data.pop(k, None)
    lines = sections_text(data, SCHED_SECTIONS, SCHED_HIDDEN)
    live = [s for s in snaps if s.get("state") not in ENDED]
    if live:
        lines.append("")
        cols = [("PID", 5, True), ("AGENT", 14, False), ("STATE", 12, False), ("PRI", 3, True), ("CALLS", 5, True),
                ("PREEMPT", 7, True), ("WAIT", 7, True), ("TURNAROUND", 10, True), ("LLM TIME", 8, True),
                ("SHARE", 6, True)]
        rows = [[s.get("pid", "?"), s.get("agent", ""), s.get("state", ""), s.get("priority", 0),
                 s.get("llm_calls", 0), s.get("preemptions", 0), fmt_secs(s.get("waiting_s")),
                 fmt_secs(s.get("turnaround_s")), fmt_secs(s.get("llm_time_s")),
                 f"{100 * (s.get('llm_share') or 0):.1f}%"] for s in live]
        lines += table_lines(cols, rows)
    return "\n".join(lines)


SCHED_PROC_KEYS = ("pid", "agent", "state", "priority", "llm_calls", "preemptions", "waiting_s", "turnaround_s",
                   "llm_time_s", "llm_share")


def sched_record(stats: dict, snaps: list[dict]) -> dict:
    """``sched -o json``: {"engine": the stats, "processes": the live processes' LLM accounting}."""
    live = [{k: s.get(k) for k in SCHED_PROC_KEYS} for s in snaps if s.get("state") not in ENDED]
    return {"engine": dict(stats), "processes": live}


def status_record(stats: dict, connection: str, log_dir: str | None) -> dict:
    """``status -o json``: the kernel in one object (model, policy, pid, uptime, agents, where)."""
    return {"model": stats.get("model"), "policy": stats.get("scheduler") or stats.get("policy"),
            "loaded": stats.get("loaded"), "load_error": stats.get("load_error"),
            "kernel_pid": stats.get("kernel_pid"), "uptime_s": stats.get("uptime_s"),
            "agents_running": stats.get("agents_live"), "agents_total": stats.get("agents_total"),
            "kernel_rss": stats.get("kernel_rss"), "kernel_cpu_percent": stats.get("kernel_cpu_percent"),
            "connection": connection, "log_dir": log_dir}


def status_text(rec: dict) -> str:
    """``status``: one line per field of status_record."""
    data = dict(rec)
    state = "loading" if not rec.get("loaded") else "ready"
    if rec.get("load_error"):
        state = f"failed to load: {rec['load_error']}"
    data["model"] = f"{rec.get('model') or '-'} ({state})"
    data["agents"] = f"{rec.get('agents_running', '-')} running, {rec.get('agents_total', '-')} in all"
    width = max(len(label) for _, label in STATUS_FIELDS)
    return "\n".join(f"{label:<{width}}  {value_text(key, data.get(key))}" for key, label in STATUS_FIELDS)
