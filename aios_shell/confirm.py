"""Confirmation of irreversible actions: the shell side of the access manager's question.

Protocol (kernel/access): with ``interactive_confirm`` the kernel sends
``{"event": "confirm", "cid", "pid", "agent", "action", "detail",
"timeout_s"}`` and waits for the control op ``confirm {cid, allow}``; it
denies by itself after ``timeout_s`` and announces every decision with
``{"event": "confirm_done", "cid", "allow", "by"}``.

Here every question is answered at most once: by the user (``y``/``yes``
allows, anything else denies: the default is No), or not at all when the
kernel settled it first (timeout, the agent ended): then ``confirm_done``
withdraws it and a question on screen is taken down. If an event carries no
``timeout_s`` the shell itself denies after ``default_timeout_s``.

Threads: ``on_event``/``on_done`` run on the KernelClient reader thread and
never call the kernel (its reply would be read by that same thread); they
record the question and wake the foreground (prompt, blocking command or
top), which asks on the main thread. ``_lock`` guards ``_pending``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from aios_shell.client import KernelError


@dataclass
class ConfirmRequest:
    cid: int
    pid: int
    agent: str
    action: str
    detail: str
    deadline: float  # time.monotonic() when it is denied unanswered
    kernel_timeout: bool  # the kernel denies it itself at the deadline
    settled: threading.Event = field(default_factory=threading.Event, repr=False)  # answered or withdrawn
    timer: threading.Timer | None = field(default=None, repr=False)

    def question(self) -> str:
        """``DangerAgent (pid 1) wants to run: echo hi; id``: the agent, then exactly what it wants."""
        return f"{self.agent} (pid {self.pid}) wants to {self.what()}"

    def what(self) -> str:
        """The action in words, with the exact command or call (``run: CMD``, ``call delete_file(path=...)``,
        ``join group g (...)``, ``fs.delete notes (...)``)."""
        action, detail = self.action, self.detail.strip()
        verb, _, rest = action.partition(" ")
        if verb == "tool" or (verb == "tool.call" and rest.startswith("tool ")):
            tool = rest[5:] if rest.startswith("tool ") else rest
            if detail.startswith(f"{tool}: "):
                detail = detail[len(tool) + 2:]
            if tool == "shell":
                return f"run: {detail or '?'}"
            return f"call {detail}" if detail.startswith(f"{tool}(") else f"call {tool}" + (f": {detail}" if detail else "")
        if verb == "access.setgroup":
            who = f"{self.agent} (pid {self.pid}) asks to "
            return detail[len(who):] if detail.startswith(who) else f"join {rest}" + (f" ({detail})" if detail else "")
        return action + (f" ({detail})" if detail else "")

    def left_s(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


def parse_event(ev: dict, default_timeout_s: float) -> ConfirmRequest | None:
    """A ConfirmRequest from a confirm event, or None if the event is malformed."""
    cid = ev.get("cid")
    if not isinstance(cid, int) or isinstance(cid, bool):
        return None
    pid, timeout = ev.get("pid"), ev.get("timeout_s")
    own = not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0
    return ConfirmRequest(cid=cid, pid=pid if isinstance(pid, int) else -1, agent=str(ev.get("agent", "?")),
                          action=str(ev.get("action", "?")), detail=str(ev.get("detail", "")),
                          deadline=time.monotonic() + (default_timeout_s if own else float(timeout)),
                          kernel_timeout=not own)


class ConfirmBroker:
    """Pending questions and their answers.

    ``send(cid, allow)`` delivers an answer (KernelClient.request "confirm");
    ``wake()`` tells the foreground a question waits; ``echo(text)`` prints a
    line above the prompt.
    """

    def __init__(self, send: Callable[[int, bool], None], default_timeout_s: float = 30.0,
                 wake: Callable[[], None] = lambda: None, echo: Callable[[str], None] = print):
        self.send = send
        self.default_timeout_s = default_timeout_s
        self.wake = wake
        self.echo = echo
        self._lock = threading.Lock()
        self._pending: dict[int, ConfirmRequest] = {}
        self.answered: list[tuple[int, bool, str]] = []  # (cid, allow, by): what this shell decided or saw

    # -- reader thread ----------------------------------------------------------------
    def on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "confirm_done":
            self.on_done(ev)
            return
        req = parse_event(ev, self.default_timeout_s)
        if req is None:
            self.echo(f"ignoring a malformed confirm request: {ev!r}")
            return
        if not req.kernel_timeout:  # nobody else will deny it: we do, at the deadline
            req.timer = threading.Timer(req.left_s(), self.answer, (req.cid, False, "no answer in time"))
            req.timer.daemon = True
        with self._lock:
            self._pending[req.cid] = req
        if req.timer is not None:
            req.timer.start()
        self.wake()

    def on_done(self, ev: dict) -> None:
        """The kernel settled ``cid`` (our answer, its timeout, the agent ended): withdraw the question."""
        with self._lock:
            req = self._pending.pop(ev.get("cid"), None)
        if req is None:
            return
        if req.timer is not None:
            req.timer.cancel()
        req.settled.set()
        by = str(ev.get("by", "kernel"))
        self.answered.append((req.cid, bool(ev.get("allow")), by))
        why = "no answer in time" if by == "timeout" else by
        self.echo(f"{'allowed' if ev.get('allow') else 'denied'}: {req.question()} ({why})")

    # -- any other thread -----------------------------------------------------------------
    def pending(self) -> list[ConfirmRequest]:
        with self._lock:
            return sorted(self._pending.values(), key=lambda r: r.cid)

    def answer(self, cid: int, allow: bool, by: str = "user") -> bool:
        """Answer ``cid`` once; False if it is no longer pending. Never on the reader thread."""
        with self._lock:
            req = self._pending.pop(cid, None)
        if req is None:
            return False
        if req.timer is not None:
            req.timer.cancel()
        req.settled.set()
        self.answered.append((cid, allow, by))
        verdict = "allowed" if allow else "denied"
        try:
            self.send(cid, allow)
            self.echo(f"{verdict}: {req.question()} ({by})")
        except KernelError as e:
            self.echo(f"{verdict} too late: {req.question()}: {e.message}")
        return True

    def deny_all(self, by: str) -> None:
        for req in self.pending():
            self.answer(req.cid, False, by)
