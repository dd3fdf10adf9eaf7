"""Text views over kernel snapshots: ps table, process details, sched, agents, tools.

Pure functions from plain dicts (control.process_snapshots / kernel_stats) to
lines of text; nothing here talks to the kernel. Every key is read with
``.get`` so a kernel that reports more or fewer fields still renders.
Units: sizes in bytes in, "123M" out; times in seconds in, "1.2s"/"3m05s" out.
"""

from __future__ import annotations

import json
import re
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
CONFINE_SHORT = {"namespaces": "ns", "landlock": "ll", "seccomp": "sc", "rlimits": "rl", "net": "net"}


def fmt_confine(c) -> str:
    """namespaces+landlock+seccomp+rlimits -> ns+ll+sc+rl; "off" -> OFF (unconfined); unknown -> -."""
    if not c:
        return "-"
    return "OFF" if c == "off" else "+".join(CONFINE_SHORT.get(p, p) for p in c.split("+"))
TASK_MIN = 12


def term_width(default: int = 120) -> int:
    return shutil.get_terminal_size((default, 24)).columns


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1


def printable(text) -> str:
    """Agent text made safe for a terminal: control characters (ESC, CR, BEL, ...) are shown as
    ``\\x1b``, never sent, so an agent cannot move the cursor, retitle the window, recolour or
    overwrite the line's ``[Agent pid]`` prefix."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def cut(text, n: int) -> str:
    """One line of at most ``n`` characters (newlines folded, an ellipsis when cut)."""
    text = " ".join(printable(text).split())
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


DROP_ORDER = ("SYSCALLS", "CONFINE", "TURNAROUND", "WAIT", "PRI", "TOK IN/OUT", "RSS", "%CPU")  # first to go when narrow


def fit_columns(width: int) -> list:
    """The PS_COLUMNS that leave TASK at least TASK_MIN characters in ``width``."""
    cols = list(PS_COLUMNS)
    for title in DROP_ORDER:
        if sum(w + 1 for _, w, _, _ in cols) + TASK_MIN <= width:
            break
        cols = [c for c in cols if c[0] != title]
    return cols


def fit_cells(text, w: int, right: bool = False) -> str:
    """``text`` on one line in exactly ``w`` terminal cells: cut with an ellipsis, padded left or right.

    Cells, not characters (rich.cells): CJK and emoji take two, so columns stay aligned.
    """
    from rich.cells import cell_len, set_cell_size

    text = " ".join(printable(text).split())
    n = cell_len(text)
    if n > w:
        return set_cell_size(text, w - 1) + "…" if w > 1 else set_cell_size(text, w)
    return " " * (w - n) + text if right else text + " " * (w - n)


def table_lines(columns: list[tuple[str, int, bool]], rows: list[list], width: int | None = None) -> list[str]:
    """A borderless table: a header line, then one line per row, each at most ``width`` cells.

    columns: (title, width in terminal cells, right-aligned). Widths are fixed so columns
    do not move between refreshes (top); values are cut with an ellipsis, never wrapped.
    """
    lines = [" ".join(fit_cells(t, w, right) for t, w, right in columns)]
    lines += [" ".join(fit_cells(v, w, right) for v, (_, w, right) in zip(row, columns)) for row in rows]
    return [line.rstrip() for line in lines]


def ps_header_and_rows(snaps: list[dict], width: int | None = None) -> tuple[str, list[str]]:
    """The ps table as a header line and one line per snapshot, each at most ``width`` cells.

    Narrow terminals drop columns in DROP_ORDER before TASK gets shorter than TASK_MIN.
    """
    width = width or term_width()
    cols = fit_columns(width)
    task_w = max(TASK_MIN, width - sum(w + 1 for _, w, _, _ in cols))
    columns = [(t, w, right) for t, w, right, _ in cols] + [("TASK", task_w, False)]
    lines = table_lines(columns, [[fn(s) for _, _, _, fn in cols] + [s.get("task", "")] for s in snaps], width)
    return lines[0], lines[1:]


def ps_table(snaps: list[dict], width: int | None = None) -> str:
    if not snaps:
        return "no agent processes (run <Agent>: <task> starts one; ps -a shows finished ones)"
    header, rows = ps_header_and_rows(snaps, width)
    return "\n".join([header, *rows])


def result_text(snap: dict) -> str:
    """The result (or error) of an ended process as text."""
    if snap.get("state") == "done":
        r = snap.get("result")
        return printable(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False))
    return printable(snap.get("error") or snap.get("state", "?"))


def ended_head(snap: dict) -> str:
    """``[3] MathAgent done in 12.3s``; the OS exit status is added when it is not 0: ``(SIGTERM)``, ``(exit 1)``."""
    how = snap.get("exit")
    how = "" if how in (None, "0") else f" ({how})" if how.startswith("SIG") or how.startswith("signal") \
        else f" (exit {how})"
    return (f"[{snap.get('pid')}] {printable(snap.get('agent'))} {snap.get('state')}{how} in "
            f"{fmt_secs(snap.get('elapsed_s'))}")


def exit_line(snap: dict, width: int | None = None) -> str:
    """One-line notice that a process ended: ``[3] MathAgent done in 12.3s: 42``."""
    width = width or term_width()
    head = ended_head(snap)
    return f"{head}: {cut(result_text(snap), max(10, width - len(head) - 2))}"


def result_block(snap: dict) -> str:
    """The full result of an ended process: a header line and the text indented."""
    head = f"{ended_head(snap)} (tokens {snap.get('tokens_in', 0)}/{snap.get('tokens_out', 0)})"
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
               "tokens_out", "busy_s", "prefill_s", "decode_s", "prefill_tokens", "prefix_hit_tokens", "cache_bytes")
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
        cols = [("PID", 5, True), ("AGENT", 14, False), ("STATE", 12, False), ("PRI", 3, True), ("CALLS", 5, True),
                ("PREEMPT", 7, True), ("WAIT", 7, True), ("TURNAROUND", 10, True), ("LLM TIME", 8, True),
                ("SHARE", 6, True)]
        rows = [[s.get("pid", "?"), s.get("agent", ""), s.get("state", ""), s.get("priority", 0),
                 s.get("llm_calls", 0), s.get("preemptions", 0), fmt_secs(s.get("waiting_s")),
                 fmt_secs(s.get("turnaround_s")), fmt_secs(s.get("llm_time_s")),
                 f"{100 * (s.get('llm_share') or 0):.1f}%"] for s in live]
        lines += table_lines(cols, rows, sum(w + 1 for _, w, _ in cols))
    return "\n".join(lines)


def agents_text(apps: dict, width: int | None = None) -> str:
    """`agents`: installed agent apps with their descriptions."""
    if not apps:
        return "no agent apps installed (agent_apps/<name>/config.json, or folders in AIOS_AGENT_PATH)"
    from rich.cells import cell_len

    width = width or term_width()
    nw = max(cell_len(n) for n in apps) + 1
    rows = [[name, app.description] for name, app in sorted(apps.items())]
    return "\n".join(table_lines([("NAME", nw, False), ("DESCRIPTION", max(10, width - nw - 1), False)],
                                  rows, width)[1:])


def tools_text(tools: list[dict], width: int | None = None) -> str:
    """`tools`: the kernel's tool registry (name, side effect, parallel limit, description)."""
    if not tools:
        return "no tools installed in the kernel"
    from rich.cells import cell_len

    width = width or term_width()
    nw = max(cell_len(str(t.get("name", ""))) for t in tools) + 1
    cols = [("NAME", nw, False), ("SIDE EFFECT", 13, False), ("PAR", 4, True),
            ("DESCRIPTION", max(10, width - nw - 21), False)]
    rows = [[t.get("name", ""), t.get("side_effect", "-"),
             t.get("parallel", t.get("parallel_limit", t.get("max_parallel", "-"))), t.get("description", "")]
            for t in tools]
    return "\n".join(table_lines(cols, rows, width))
