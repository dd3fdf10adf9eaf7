"""Text views over kernel snapshots: ps table, results, exit lines, agents, tools.

Pure functions from plain dicts (control.process_snapshots / kernel_stats) to
lines of text; nothing here talks to the kernel. Every key is read with
``.get`` so a kernel that reports more or fewer fields still renders.
Units: sizes in bytes in, "123M" out; times in seconds in, "1.2s"/"3m05s" out.
``info``, ``sched`` and ``status`` (grouped sections) are in details.py.

Width: a ``width`` of None means "not a terminal": nothing is cut (a pipe or a
file gets every column and the whole task and answer, like ``ps -ww`` or
docker's ``--no-trunc``); ShellContext.width() says which applies.

Every line about one agent starts the same way: ``[MathAgent 3] text`` for
what it prints (``agent_prefix``), ``[3] MathAgent done in 9.4s: 48`` when it
ends (``exit_line``: the answer on one line; ``result PID`` shows it whole).
"""

from __future__ import annotations

import json
import re
import shutil

from kernel.protocol.results import answer_of, record

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


def agent_prefix(agent, pid) -> str:
    """The prefix of every line an agent prints, in every front: ``[MathAgent 3]``."""
    return f"[{printable(agent)} {pid}]"


def rounded(obj, digits: int = 3):
    """``obj`` with its floats rounded (JSON for people: 2.267, not 2.2671851317087808)."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj


def json_text(obj) -> str:
    """``-o json``: indented, UTF-8, floats rounded; null for None, true/false for booleans."""
    return json.dumps(rounded(obj), ensure_ascii=False, indent=2, default=str)


def output_format(words: list[str], usage: str, choices=("table", "json")) -> tuple[str, list[str]]:
    """``-o FORMAT`` / ``-oFORMAT`` / ``--output FORMAT`` / ``--output=FORMAT`` taken out of ``words``:
    (format, the other words). ValueError with a one-line reason for a bad or missing format."""
    fmt, rest, i = choices[0], [], 0
    while i < len(words):
        w = words[i]
        if w in ("-o", "--output"):
            if i + 1 >= len(words):
                raise ValueError(f"{w} needs a format ({'|'.join(choices)}); usage: {usage}")
            fmt, i = words[i + 1], i + 2
        elif w.startswith("--output="):
            fmt, i = w.split("=", 1)[1], i + 1
        elif w.startswith("-o") and len(w) > 2:
            fmt, i = w[2:], i + 1
        else:
            rest.append(w)
            i += 1
    if fmt not in choices:
        from aios_shell.suggest import hint
        raise ValueError(f"unknown output format {cut(fmt, 20)!r}{hint(fmt, choices)}; "
                         f"formats: {', '.join(choices)}")
    return fmt, rest


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
    ``width`` None (a pipe, ``-o wide``): every column, each as wide as its longest value, the
    whole task.
    """
    if width is None:
        from rich.cells import cell_len

        cells = [[fn(s) for _, _, _, fn in PS_COLUMNS] + [" ".join(printable(s.get("task", "")).split())]
                 for s in snaps]
        titles = [t for t, _, _, _ in PS_COLUMNS] + ["TASK"]
        rights = [r for _, _, r, _ in PS_COLUMNS] + [False]
        widths = [max([cell_len(t), *(cell_len(row[i]) for row in cells)]) for i, t in enumerate(titles)]
        lines = table_lines(list(zip(titles, widths, rights)), cells)
        return lines[0], lines[1:]
    cols = fit_columns(width)
    task_w = max(TASK_MIN, width - sum(w + 1 for _, w, _, _ in cols))
    columns = [(t, w, right) for t, w, right, _ in cols] + [("TASK", task_w, False)]
    lines = table_lines(columns, [[fn(s) for _, _, _, fn in cols] + [s.get("task", "")] for s in snaps], width)
    return lines[0], lines[1:]


def ps_table(snaps: list[dict], width: int | None = 0) -> str:
    """``width``: 0 the terminal's, None no limit (see ps_header_and_rows)."""
    if not snaps:
        return "no agent processes (run <Agent>: <task> starts one; ps -a shows finished ones)"
    header, rows = ps_header_and_rows(snaps, term_width() if width == 0 else width)
    return "\n".join([header, *rows])


def answer(snap: dict) -> str:
    """The plain answer of a process ("" when it has none): the kernel's ``answer`` field, or
    derived from ``result`` the same way (kernel/protocol/results.py) for an older kernel."""
    if snap.get("answer") is not None:
        return str(snap["answer"])
    return answer_of(snap.get("result")) if snap.get("state") == "done" else ""


def result_record(snap: dict) -> dict | None:
    """The result as the one record (``{"answer": ..., ...}``), None when nothing was reported."""
    if snap.get("state") != "done" and snap.get("result") is None:
        return None
    rec = record(snap.get("result"))
    rec["answer"] = answer(snap)
    return rec


def result_text(snap: dict) -> str:
    """The answer (or the error) of an ended process as text."""
    if snap.get("state") == "done":
        return printable(answer(snap))
    return printable(snap.get("error") or snap.get("state", "?"))


def ended_head(snap: dict) -> str:
    """``[3] MathAgent done in 12.3s``; the OS exit status is added when it is not 0: ``(SIGTERM)``, ``(exit 1)``."""
    how = snap.get("exit")
    how = "" if how in (None, "0") else f" ({how})" if how.startswith("SIG") or how.startswith("signal") \
        else f" (exit {how})"
    return (f"[{snap.get('pid')}] {printable(snap.get('agent'))} {snap.get('state')}{how} in "
            f"{fmt_secs(snap.get('elapsed_s'))}")


def exit_line(snap: dict, width: int | None = None) -> str:
    """One-line notice that a process ended: ``[3] MathAgent done in 12.3s: 48`` (the answer, or why
    it failed, on one line; cut to ``width`` cells, whole when ``width`` is None)."""
    head = ended_head(snap)
    text = result_text(snap)
    if not text.strip():
        return f"{head} (no answer)" if snap.get("state") == "done" else head
    if width is None:
        return f"{head}: {' '.join(text.split())}"
    return f"{head}: {cut(text, max(10, width - len(head) - 2))}"


def result_block(snap: dict) -> str:
    """The whole answer of an ended process: a header line and the text indented."""
    head = f"{ended_head(snap)} (tokens {snap.get('tokens_in', 0)}/{snap.get('tokens_out', 0)})"
    body = result_text(snap)
    return head + "\n" + "\n".join("    " + line for line in str(body).splitlines() or [""])


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


def agents_text(apps: list[dict], width: int | None = 0, broken=()) -> str:
    """`agents`: installed agent apps with their descriptions; then each broken app folder (its
    config.json cannot be used) as ``folder  BROKEN: file: error``. ``apps`` and ``broken`` as the
    kernel's ``apps`` op gives them (kernel/apps.py catalog)."""
    if not apps and not broken:
        return "no agent apps installed (agent_apps/<name>/config.json, or folders in AIOS_AGENT_PATH)"
    from rich.cells import cell_len

    rows = [[str(a.get("name", "")), str(a.get("description", ""))] for a in apps]
    rows += [[str(b.get("folder", "")), f"BROKEN: {b.get('path')}: {b.get('error')}"] for b in broken]
    nw = max(cell_len(r[0]) for r in rows) + 1
    if width is None:
        dw = max(cell_len(printable(r[1])) for r in rows) or 1
    else:
        dw = max(10, (width or term_width()) - nw - 1)
    return "\n".join(table_lines([("NAME", nw, False), ("DESCRIPTION", dw, False)], rows)[1:])


def tools_text(tools: list[dict], width: int | None = 0) -> str:
    """`tools`: the kernel's tool registry (name, side effect, parallel limit, description).
    ``width``: 0 the terminal's, None no limit (a pipe)."""
    if not tools:
        return "no tools installed in the kernel"
    from rich.cells import cell_len

    nw = max(cell_len(str(t.get("name", ""))) for t in tools) + 1
    if width is None:
        dw = max(cell_len(" ".join(printable(t.get("description", "")).split())) for t in tools) or 1
    else:
        dw = max(10, (width or term_width()) - nw - 21)
    cols = [("NAME", nw, False), ("SIDE EFFECT", 13, False), ("PAR", 4, True), ("DESCRIPTION", dw, False)]
    rows = [[t.get("name", ""), t.get("side_effect", "-"),
             t.get("parallel", t.get("parallel_limit", t.get("max_parallel", "-"))), t.get("description", "")]
            for t in tools]
    return "\n".join(table_lines(cols, rows))
