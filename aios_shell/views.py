"""Text views over kernel snapshots: ps table, process details, sched, agents, tools.

Pure functions from plain dicts (control.process_snapshots / kernel_stats) to
lines of text; nothing here talks to the kernel. Every key is read with
``.get`` so a kernel that reports more or fewer fields still renders.
Units: sizes in bytes in, "123M" out; times in seconds in, "1.2s"/"3m05s" out.
"""

from __future__ import annotations

import json
import shutil
import time

ENDED = ("done", "failed", "killed")

# (header, width, right-aligned, cell function) -- TASK takes the rest of the line
PS_COLUMNS = [
    ("PID", 5, True, lambda s: str(s.get("pid", "?"))),
    ("AGENT", 14, False, lambda s: str(s.get("agent", ""))),
    ("STATE", 12, False, lambda s: str(s.get("state", ""))),
    ("PRI", 3, True, lambda s: str(s.get("priority", 0))),
    ("%CPU", 5, True, lambda s: fmt_pct(s.get("cpu_percent"))),
    ("RSS", 6, True, lambda s: fmt_bytes(s.get("rss"))),
    ("TOK IN/OUT", 11, True, lambda s: f"{s.get('tokens_in', 0)}/{s.get('tokens_out', 0)}"),
    ("SYSCALLS", 8, True, lambda s: str(s.get("syscalls_total", 0))),
    ("WAIT", 7, True, lambda s: fmt_secs(s.get("waiting_s"))),
    ("TURNAROUND", 10, True, lambda s: fmt_secs(s.get("turnaround_s"))),
    ("TIME", 7, True, lambda s: fmt_secs(s.get("elapsed_s"))),
    ("CONFINE", 8, False, lambda s: fmt_confine(s.get("confinement"))),
]
CONFINE_SHORT = {"namespaces": "ns", "landlock": "ll", "rlimits": "rl", "net": "net"}


def fmt_confine(c) -> str:
    """namespaces+landlock+rlimits -> ns+ll+rl; "off" -> OFF (unconfined); unknown -> -."""
    if not c:
        return "-"
    return "OFF" if c == "off" else "+".join(CONFINE_SHORT.get(p, p) for p in c.split("+"))
TASK_MIN = 12


def term_width(default: int = 120) -> int:
    return shutil.get_terminal_size((default, 24)).columns


def cut(text, n: int) -> str:
    """One line of at most ``n`` characters (newlines folded, an ellipsis when cut)."""
    text = " ".join(str(text).split())
    if n <= 0:
        return ""
    return text if len(text) <= n else text[: n - 1] + "…"


def fmt_bytes(n) -> str:
    if not n:
        return "-" if n is None else "0"
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" or n >= 100 else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)


def fmt_secs(s) -> str:
    if s is None:
        return "-"
    if s < 10:
        return f"{s:.2f}s"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def is_seconds(key: str) -> bool:
    """Keys that hold seconds end in _s (but tokens_per_s is a rate)."""
    return key.endswith("_s") and "_per_" not in key


def fmt_pct(p) -> str:
    return "-" if p is None else f"{p:.1f}"


DROP_ORDER = ("SYSCALLS", "TURNAROUND", "WAIT", "PRI", "TOK IN/OUT", "RSS", "%CPU")  # first to go when narrow


def fit_columns(width: int) -> list:
    """The PS_COLUMNS that leave TASK at least TASK_MIN characters in ``width``."""
    cols = list(PS_COLUMNS)
    for title in DROP_ORDER:
        if sum(w + 1 for _, w, _, _ in cols) + TASK_MIN <= width:
            break
        cols = [c for c in cols if c[0] != title]
    return cols


def ps_header_and_rows(snaps: list[dict], width: int | None = None) -> tuple[str, list[str]]:
    """The ps table as a header line and one line per snapshot, each at most ``width`` wide.

    Narrow terminals drop columns in DROP_ORDER before TASK gets shorter than TASK_MIN.
    """
    width = width or term_width()
    cols = fit_columns(width)
    fixed = " ".join(t.rjust(w) if right else t.ljust(w) for t, w, right, _ in cols)
    task_w = max(TASK_MIN, width - len(fixed) - 1)
    rows = []
    for s in snaps:
        parts = []
        for _, w, right, fn in cols:
            v = cut(fn(s), w)
            parts.append(v.rjust(w) if right else v.ljust(w))
        rows.append(f"{' '.join(parts)} {cut(s.get('task', ''), task_w)}"[:width])
    return f"{fixed} TASK"[:width], rows


def ps_table(snaps: list[dict], width: int | None = None) -> str:
    if not snaps:
        return "no agent processes (run <Agent>: <task> starts one; ps -a shows finished ones)"
    header, rows = ps_header_and_rows(snaps, width)
    return "\n".join([header, *rows])


def result_text(snap: dict) -> str:
    """The result (or error) of an ended process as text."""
    if snap.get("state") == "done":
        r = snap.get("result")
        return r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)
    return snap.get("error") or snap.get("state", "?")


def exit_line(snap: dict, width: int | None = None) -> str:
    """One-line notice that a process ended: ``[3] MathAgent done in 12.3s: 42``."""
    width = width or term_width()
    head = f"[{snap.get('pid')}] {snap.get('agent')} {snap.get('state')} in {fmt_secs(snap.get('elapsed_s'))}"
    return f"{head}: {cut(result_text(snap), max(10, width - len(head) - 2))}"


def result_block(snap: dict) -> str:
    """The full result of an ended process: a header line and the text indented."""
    head = (f"[{snap.get('pid')}] {snap.get('agent')} {snap.get('state')} in {fmt_secs(snap.get('elapsed_s'))}"
            f" (tokens {snap.get('tokens_in', 0)}/{snap.get('tokens_out', 0)})")
    body = result_text(snap)
    return head + "\n" + "\n".join("    " + line for line in str(body).splitlines() or [""])


def info_lines(snap: dict) -> str:
    """Every field of a snapshot, one per line (the `info` command)."""
    lines = []
    for k, v in snap.items():
        if k in ("start_time", "end_time") and v:
            v = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v))
        elif is_seconds(k) and isinstance(v, (int, float)):
            v = fmt_secs(v)
        elif k == "rss":
            v = fmt_bytes(v)
        elif isinstance(v, (dict, list)):
            v = json.dumps(v, ensure_ascii=False)
        lines.append(f"{k:>15}  {v}")
    return "\n".join(lines)


def tokens_per_s(stats: dict) -> float | None:
    """The engine's own tokens/s figure if it reports one (key names vary by engine)."""
    for key in ("tokens_per_s", "tok_per_s", "tok_s", "throughput_tok_s", "decode_tok_s"):
        if isinstance(stats.get(key), (int, float)):
            return float(stats[key])
    return None


def batch_text(stats: dict) -> str:
    """Batch occupancy: sequences decoding now out of max_batch, and the engine's mean rows per step."""
    running, cap = stats.get("running"), stats.get("max_batch")
    text = "-" if running is None else (f"{running}/{cap}" if cap else str(running))
    occ, pct = stats.get("batch_occupancy"), stats.get("batch_occupancy_pct")
    if isinstance(occ, (int, float)):
        text += f" (avg {occ:.1f}" + (f", {pct:.0f}%" if isinstance(pct, (int, float)) else "") + ")"
    return text


SCHED_FIRST = ("model", "policy", "scheduler", "loaded", "load_error", "load_time_s", "queue", "running",
               "tokens_out", "busy_s")
SCHED_SKIP = ("kernel_pid", "kernel_cpu_percent", "kernel_rss", "uptime_s", "agents_live", "agents_total")


def sched_text(stats: dict, snaps: list[dict], tok_s: float | None = None) -> str:
    """`sched`: the engine's stats (every key it reports) and the live processes' LLM accounting."""
    lines = []
    keys = [k for k in SCHED_FIRST if k in stats] + sorted(k for k in stats if k not in SCHED_FIRST
                                                           and k not in SCHED_SKIP)
    if tok_s is not None and tokens_per_s(stats) is None:
        stats = {**stats, "tokens_per_s (shell)": round(tok_s, 2)}
        keys.append("tokens_per_s (shell)")
    for k in keys:
        v = stats[k]
        if is_seconds(k) and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = fmt_secs(v)
        elif k.endswith("_bytes") and isinstance(v, int):
            v = fmt_bytes(v)
        elif isinstance(v, float):
            v = f"{v:.2f}"
        elif isinstance(v, (dict, list)):
            v = json.dumps(v)
        lines.append(f"{k:>22}  {v}")
    live = [s for s in snaps if s.get("state") not in ENDED]
    if live:
        lines.append("")
        lines.append(f"{'PID':>5} {'AGENT':<14} {'STATE':<12} {'PRI':>3} {'CALLS':>5} {'PREEMPT':>7} "
                     f"{'WAIT':>7} {'TURNAROUND':>10} {'LLM TIME':>8} {'SHARE':>6}")
        for s in live:
            lines.append(f"{s.get('pid', '?'):>5} {cut(s.get('agent', ''), 14):<14} {s.get('state', ''):<12} "
                         f"{s.get('priority', 0):>3} {s.get('llm_calls', 0):>5} {s.get('preemptions', 0):>7} "
                         f"{fmt_secs(s.get('waiting_s')):>7} {fmt_secs(s.get('turnaround_s')):>10} "
                         f"{fmt_secs(s.get('llm_time_s')):>8} {100 * (s.get('llm_share') or 0):>5.1f}%")
    return "\n".join(lines)


def agents_text(apps: dict, width: int | None = None) -> str:
    """`agents`: installed agent apps with their descriptions."""
    if not apps:
        return "no agent apps installed (agent_apps/<name>/config.json, or folders in AIOS_AGENT_PATH)"
    width = width or term_width()
    nw = max(len(n) for n in apps) + 2
    return "\n".join(f"{name:<{nw}}{cut(app.description, width - nw)}" for name, app in sorted(apps.items()))


def tools_text(tools: list[dict], width: int | None = None) -> str:
    """`tools`: the kernel's tool registry (name, side effect, parallel limit, description)."""
    if not tools:
        return "no tools installed in the kernel"
    width = width or term_width()
    nw = max(len(str(t.get("name", ""))) for t in tools) + 2
    lines = [f"{'NAME':<{nw}}{'SIDE EFFECT':<14}{'PAR':>4}  DESCRIPTION"]
    for t in tools:
        par = t.get("parallel", t.get("parallel_limit", t.get("max_parallel", "-")))
        lines.append(f"{str(t.get('name', '')):<{nw}}{str(t.get('side_effect', '-')):<14}{str(par):>4}  "
                     f"{cut(t.get('description', ''), max(10, width - nw - 20))}")
    return "\n".join(lines)
