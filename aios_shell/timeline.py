"""The timeline of a run: one self-contained HTML page (inline SVG and CSS, no script, nothing to fetch).

``render(procs)`` takes the kernel's ``trace`` record of every kept process (kernel/trace/ops.py)
and draws, on one time axis:

  one row per agent process    its life from spawn to exit (a thin line), children indented under
                               their parent, joined to the parent's ``proc.spawn`` by a dotted line
  each llm.chat                queued (grey) / prefill (orange) / decode (blue), time back in the
                               queue after a preemption hatched red, a red tick at each preemption
  each tool.call               a green bar below (its duration), yellow when a confirmation was asked
  every other syscall          a dark tick below, at its start
  errors                       outlined red; the exit mark is red for failed and killed processes

Hovering any mark shows its ``trace`` line (the browser's tooltip of an SVG ``<title>``). Below the
picture, a table sums each process's time: waiting for the model, prefill, decode, tools, tokens.
Every string from the kernel is escaped (syscall names and arguments come from agents).
"""

from __future__ import annotations

import html
import time

from aios_shell.trace_view import format_line, seconds
from aios_shell.views import printable

LABEL_W = 220  # px: the process names
PLOT_W = 1100  # px: the time axis
ROW_H = 38  # px per process
TOP = 56  # px above the first row: legend and axis
COLORS = {"queued": "#bab0ac", "prefill": "#f28e2b", "decode": "#4e79a7", "tool": "#59a14f",
          "confirm": "#edc948", "syscall": "#555", "preempt": "#e15759", "life": "#999"}


def _esc(text) -> str:
    return html.escape(printable(str(text)), quote=True)


def _nice_step(span_s: float) -> float:
    """An axis step of 1, 2 or 5 x 10^k seconds giving 5 to 12 ticks."""
    step = 10 ** int(f"{span_s / 8:e}".split("e")[1])
    for m in (1, 2, 5, 10):
        if span_s / (step * m) <= 12:
            return step * m
    return step * 10


def _order(procs: list[dict]) -> list[tuple[dict, int]]:
    """Processes in spawn order, each child right under its parent: [(proc, depth)]."""
    by_pid = {p["pid"]: p for p in procs}
    kids: dict = {}
    roots = []
    for p in sorted(procs, key=lambda p: p["root"]["start"]):
        parent = (p["root"].get("attrs") or {}).get("parent")
        (kids.setdefault(parent, []) if parent in by_pid else roots).append(p)
    out: list[tuple[dict, int]] = []

    def walk(p, depth):
        out.append((p, depth))
        for c in kids.get(p["pid"], []):
            walk(c, depth + 1)
    for p in roots:
        walk(p, 0)
    return out


class _Canvas:
    def __init__(self, t0: float, t1: float):
        self.t0, self.scale = t0, PLOT_W / max(t1 - t0, 1e-6)
        self.parts: list[str] = []

    def x(self, t: float) -> float:
        return LABEL_W + (t - self.t0) * self.scale

    def rect(self, t_a: float, t_b: float, y: float, h: float, fill: str, tip: str, extra: str = "") -> None:
        x = self.x(t_a)
        w = max(1.0, self.x(t_b) - x)
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}"{extra}>'
                          f'<title>{_esc(tip)}</title></rect>')

    def line(self, x1, y1, x2, y2, stroke: str, extra: str = "", tip: str | None = None) -> None:
        title = f"<title>{_esc(tip)}</title>" if tip else ""
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{extra}>'
                          f'{title}</line>')

    def text(self, x, y, s: str, extra: str = "") -> None:
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{_esc(s)}</text>')


def _llm(c: _Canvas, s: dict, y: float, end: float) -> None:
    a = s.get("attrs") or {}
    tip = format_line(s)
    admitted, first = a.get("admitted_at"), a.get("first_token_at")
    err = ' stroke="#d00" stroke-width="1.5"' if s.get("error") else ""
    h = 14
    c.rect(s["start"], admitted or end, y, h, COLORS["queued"], tip, err)
    if admitted:
        c.rect(admitted, first or end, y, h, COLORS["prefill"], tip, err)
    if first:
        c.rect(first, end, y, h, COLORS["decode"], tip, err)
    pending = None
    for t, name, _ in s.get("events") or ():
        if name == "preempt":
            pending = t
            c.line(c.x(t), y - 3, c.x(t), y + h + 3, COLORS["preempt"], ' stroke-width="2"', f"preempted: {tip}")
        elif name == "resume" and pending is not None:
            c.rect(pending, t, y, h, "url(#requeued)", f"back in the queue after a preemption: {tip}")
            pending = None
    if pending is not None:
        c.rect(pending, end, y, h, "url(#requeued)", f"back in the queue after a preemption: {tip}")


def _totals(p: dict) -> dict:
    t = {"llm": 0, "wait": 0.0, "prefill": 0.0, "decode": 0.0, "tool": 0, "tool_s": 0.0, "calls": 0, "errors": 0,
         "tin": 0, "tout": 0, "cached": 0, "preempt": 0}
    for s in p["spans"]:
        a = s.get("attrs") or {}
        t["calls"] += 1
        t["errors"] += bool(s.get("error"))
        dur = (s["end"] - s["start"]) if s.get("end") else 0.0
        if s["name"] == "llm.chat":
            t["llm"] += 1
            t["wait"] += a.get("wait_s") or 0.0
            t["prefill"] += a.get("prefill_s") or 0.0
            t["decode"] += a.get("decode_s") or 0.0
            t["tin"] += a.get("tokens_in") or 0
            t["tout"] += a.get("tokens_out") or 0
            t["cached"] += a.get("cached") or 0
            t["preempt"] += a.get("preemptions") or 0
        elif s["name"] == "tool.call":
            t["tool"] += 1
            t["tool_s"] += dur
    return t


def render(procs: list[dict], title: str = "AIOS trace") -> str:
    """The whole page for ``procs`` (the ``trace`` control op's list)."""
    now = time.time()
    rows = _order(procs)
    starts = [p["root"]["start"] for p in procs] + [s["start"] for p in procs for s in p["spans"]]
    ends = [x for p in procs for x in [p["root"].get("end")] + [s.get("end") for s in p["spans"]] if x]
    t0 = min(starts, default=now)
    t1 = max(ends + [t0 + 1e-3] + ([now] if any(not p["ended"] for p in procs) else []))
    c = _Canvas(t0, t1)
    height = TOP + ROW_H * max(1, len(rows)) + 24
    step = _nice_step(t1 - t0)
    k = 0
    while k * step <= (t1 - t0) + 1e-9:
        x = c.x(t0 + k * step)
        c.line(x, TOP - 6, x, height - 20, "#e4e4e4")
        c.text(x, TOP - 10, f"{k * step:g}s", ' text-anchor="middle" class="axis"')
        k += 1
    y_of: dict[int, float] = {}
    for i, (p, depth) in enumerate(rows):
        y = TOP + i * ROW_H
        y_of[p["pid"]] = y
        root = p["root"]
        a = root.get("attrs") or {}
        label = ("  " * depth) + ("└ " if depth else "") + f"{a.get('agent', p.get('agent', '?'))}  pid {p['pid']}"
        c.text(8, y + 17, label, ' class="label"')
        if p.get("dropped"):
            c.text(8, y + 30, f"({p['dropped']} earlier calls not kept)", ' class="note"')
        end = root.get("end") or now
        c.line(c.x(root["start"]), y + 21, c.x(end), y + 21, COLORS["life"], ' stroke-width="1"',
               f"{format_line({**root, 'end': None})} … {format_line(root) if root.get('end') else 'running'}")
        if root.get("end"):
            bad = a.get("state") not in (None, "done")
            c.parts.append(f'<circle cx="{c.x(end):.1f}" cy="{y + 21:.1f}" r="4" fill="{"#d00" if bad else "#333"}">'
                           f'<title>{_esc(format_line(root))}</title></circle>')
        for s in p["spans"]:
            s_end = s.get("end") or now
            if s["name"] == "llm.chat":
                _llm(c, s, y + 2, s_end)
            elif s["name"] == "tool.call":
                fill = COLORS["confirm"] if (s.get("attrs") or {}).get("confirm") else COLORS["tool"]
                c.rect(s["start"], s_end, y + 24, 8, fill, format_line(s),
                       ' stroke="#d00"' if s.get("error") else "")
            else:
                x = c.x(s["start"])
                c.line(x, y + 24, x, y + 33, "#d00" if s.get("error") else COLORS["syscall"], ' stroke-width="1.5"',
                       format_line(s))
    for p, depth in rows:  # spawn links: the parent's spawn time down to the child's row
        parent = (p["root"].get("attrs") or {}).get("parent")
        if parent in y_of:
            x = c.x(p["root"]["start"])
            c.line(x, y_of[parent] + 33, x, y_of[p["pid"]] + 21, "#777", ' stroke-dasharray="2,2"',
                   f"pid {parent} spawned pid {p['pid']}")
    legend = [("queued", "waiting for the model"), ("prefill", "prefill"), ("decode", "decode"),
              ("preempt", "preempted"), ("tool", "tool call"), ("confirm", "tool call, confirmation asked"),
              ("syscall", "other syscall")]
    lx = LABEL_W
    for key, text in legend:
        c.parts.append(f'<rect x="{lx}" y="8" width="12" height="12" fill="{COLORS[key]}"/>')
        c.text(lx + 16, 18, text, ' class="legend"')
        lx += 36 + 7 * len(text)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + PLOT_W + 20}" height="{height}" '
           f'font-family="sans-serif">'
           '<defs><pattern id="requeued" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f4d0d0"/>'
           f'<line x1="0" y1="0" x2="0" y2="6" stroke="{COLORS["preempt"]}" stroke-width="2"/></pattern></defs>'
           + "".join(c.parts) + "</svg>")
    table = ["<table><tr><th>pid</th><th>agent</th><th>state</th><th>calls</th><th>LLM calls</th>"
             "<th>waiting</th><th>prefill</th><th>decode</th><th>preemptions</th><th>tokens in (cached) / out</th>"
             "<th>tool calls</th><th>tool time</th><th>errors</th></tr>"]
    for p, _ in rows:
        t = _totals(p)
        a = p["root"].get("attrs") or {}
        table.append("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in (
            p["pid"], a.get("agent", "?"), a.get("state", "running"), t["calls"], t["llm"], seconds(t["wait"]),
            seconds(t["prefill"]), seconds(t["decode"]), t["preempt"], f"{t['tin']} ({t['cached']}) / {t['tout']}",
            t["tool"], seconds(t["tool_s"]), t["errors"])) + "</tr>")
    table.append("</table>")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0))
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + _esc(title) + "</title><style>"
            "body{font-family:sans-serif;margin:16px;color:#222}.label{font-size:13px}.note{font-size:10px;fill:#888}"
            ".axis{font-size:10px;fill:#666}.legend{font-size:11px}table{border-collapse:collapse;margin-top:12px;"
            "font-size:12px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
            "</style></head><body><h2>" + _esc(title) + "</h2><p>" + _esc(
                f"{len(rows)} process(es) from {when}, {seconds(t1 - t0)}. Hover a mark for its call.") + "</p>"
            + svg + "".join(table) + "</body></html>\n")
