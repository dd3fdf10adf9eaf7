"""Tracer: the kernel's record of every call of every process (``strace`` for agents).

What it records (kernel/trace/span.py): a root span per process from spawn to
reap (exit status, kill requests as events), nested under the ``proc.spawn``
span of the agent that spawned it; one span per system call (name, arguments
in brief, result size or error code, start, duration); for ``llm.chat`` the
detail only the kernel knows (queued, admitted, first token, preemptions and
resumes, prompt/cached/generated tokens, policy, backend, model); for
``tool.call`` the tool, and the confirmation asked and its answer.

Bounds (kernel/param.py): a ring of TRACE_SPANS_PER_PROC spans per process
(the oldest go first, counted in ``dropped``); the rings of the last
TRACE_ENDED_KEPT ended processes are kept for ``trace -a``; a span's text is
bounded (kernel/trace/brief.py). Live processes are at most --max_agents, so
the tracer holds at most (max_agents + TRACE_ENDED_KEPT) x TRACE_SPANS_PER_PROC
spans, whatever agents send.

Threads and locks: ``begin``, ``spawned``, ``exited`` and the control ops run
on the loop thread; ``end`` and the LLM/tool notes come from any thread (the
engine, tool threads, the loop). ``lock`` guards ``procs``, every ring,
``watched``, ``_outbox`` and the fields of spans not yet ended; it is held for
a few dict and deque operations only, never across I/O, and is not the
process table's lock. Span events for the front (``trace PID`` following a
process) are sent on the loop thread only (``_flush``), never from the engine.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time

from kernel.param import TRACE_ENDED_KEPT, TRACE_EVENTS_MAX, TRACE_SPANS_PER_PROC, TRACE_TEXT_MAX
from kernel.protocol.messages import ECANCELED
from kernel.trace import brief
from kernel.trace.span import Span, new_id

NAME_MAX = 64  # characters of a syscall name kept (an unknown name is the agent's text)


class ProcTrace:
    """One process's spans: its root and a ring of its calls."""

    __slots__ = ("pid", "agent", "root", "ring", "dropped", "ended")

    def __init__(self, pid: int, agent: str, root: Span):
        self.pid, self.agent, self.root = pid, agent, root
        self.ring: collections.deque[Span] = collections.deque(maxlen=TRACE_SPANS_PER_PROC)
        self.dropped = 0  # spans that left the ring
        self.ended = False


class Tracer:
    """The kernel's tracing service (``kernel.trace``): start(kernel), stop(); calls from the kernel's hooks."""

    def __init__(self, config):
        self.enabled = config.trace.mode == "on"
        self.content = bool(config.trace.content)
        self.lock = threading.Lock()
        self.procs: dict[int, ProcTrace] = {}
        self._ended: collections.deque[int] = collections.deque()  # ended pids, oldest first
        self.watched: set[int] = set()  # pids whose finished spans go to the front as events
        self._outbox: collections.deque[dict] = collections.deque()
        self._local = threading.local()
        self.kernel = None
        self._loop_ident: int | None = None
        self.llm: dict = {"model": config.llm.name, "policy": config.sched.policy, "backend": None}
        self.spans = 0  # spans begun since boot
        self.exporter = None
        if self.enabled and (config.trace.file or config.trace.otlp_endpoint):
            from kernel.trace.export import Exporter

            self.exporter = Exporter(config)

    # -- service ---------------------------------------------------------------------
    def start(self, kernel) -> None:
        """On the loop thread, before it serves."""
        self.kernel = kernel
        self._loop_ident = threading.get_ident()
        spec = getattr(kernel.engine, "spec", None)
        self.llm["backend"] = spec.backend if spec is not None else "hf_local"
        if spec is not None:
            self.llm["server"] = spec.base_url
            self.llm["remote_model"] = spec.model
        if self.exporter is not None:
            self.exporter.start(self.llm)

    def stop(self) -> None:
        if self.exporter is not None:
            self.exporter.stop()

    # -- the span a handler is answering (loop thread) -----------------------------------
    @property
    def current(self) -> Span | None:
        """The syscall span whose handler runs now on this thread (None elsewhere): a Reply made
        by the handler answers it, a spawn made by it is its child."""
        return getattr(self._local, "span", None)

    @current.setter
    def current(self, span: Span | None) -> None:
        self._local.span = span

    # -- processes (loop thread) -----------------------------------------------------------
    def spawned(self, pcb, confinement: str = "") -> None:
        """``pcb`` has started; its root span is a child of the current span (proc.spawn) if any."""
        if not self.enabled:
            return
        parent = self.current
        trace_id = parent.trace_id if parent is not None else new_id(128)
        root = Span(trace_id, parent.span_id if parent is not None else None, pcb.pid, "agent", "agent",
                    time.time(), f"task={brief.content(pcb.task, self.content)}")
        root.attrs = {"agent": pcb.name, "parent": pcb.parent, "priority": pcb.priority, "group": pcb.group,
                      "confinement": confinement}
        with self.lock:
            self.procs[pcb.pid] = ProcTrace(pcb.pid, pcb.name, root)
            self.spans += 1

    def killed(self, pid: int, reason: str | None) -> None:
        """A kill was requested (by the user, or by the kernel: ``reason``)."""
        with self.lock:
            p = self.procs.get(pid)
            if p is not None:
                self._event(p.root, "kill", {"reason": reason or "requested"})

    def exited(self, pcb) -> None:
        """Loop thread, table lock not held: ``pcb`` was reaped with its final state. Its root span ends,
        its open calls end as unfinished, and the oldest ended process beyond TRACE_ENDED_KEPT goes."""
        if not self.enabled:
            return
        done = []
        with self.lock:
            p = self.procs.get(pcb.pid)
            if p is None or p.ended:
                return
            p.ended = True
            now = time.time()
            for s in p.ring:
                if s.end is None:
                    s.end, s.error = now, ECANCELED
                    done.append(s)
            root = p.root
            root.end = pcb.end_time or now
            root.attrs.update(state=pcb.state.value, exit_code=pcb.exit_code, exit_signal=pcb.exit_signal)
            if pcb.error and self.content:
                root.message = brief.cut(pcb.error, TRACE_TEXT_MAX)
            if pcb.state.value != "done":
                root.error = pcb.state.value.upper()
            done.append(root)
            self._ended.append(pcb.pid)
            while len(self._ended) > TRACE_ENDED_KEPT:
                self.procs.pop(self._ended.popleft(), None)
            for s in done:
                self._finished(s)
            self.watched.discard(pcb.pid)
        self._flush_soon()

    # -- calls ---------------------------------------------------------------------------
    def begin(self, pid: int, name: str, args: dict) -> Span | None:
        """Loop thread: a call arrived. Returns its span (None when tracing is off)."""
        if not self.enabled:
            return None
        summary = brief.args(name, args, self.content) if args else ""
        if len(name) > NAME_MAX or not name.isprintable():  # an unknown name is the agent's text
            name = brief.cut(name, NAME_MAX)
        with self.lock:
            p = self.procs.get(pid)
            if p is None:
                return None  # not spawned through the kernel's spawn (cannot happen): nothing to hang it on
            span = Span(p.root.trace_id, p.root.span_id, pid, name, "syscall", time.time(), summary)
            if len(p.ring) == p.ring.maxlen:
                p.dropped += 1
            p.ring.append(span)
            self.spans += 1
        return span

    def end(self, span: Span | None, error: str | None = None, message: str | None = None,
            size: int | None = None, result=None) -> None:
        """Any thread: the call was answered (once; a later end is ignored)."""
        if span is None:
            return
        with self.lock:
            if span.end is not None:
                return
            span.end = time.time()
            span.error, span.size = error, size
            if self.content:
                if message is not None:
                    span.message = brief.cut(message, TRACE_TEXT_MAX)
                if result is not None:
                    span.result = brief.content(result, True)
            self._finished(span)
        self._flush_soon()

    def note(self, span: Span | None, **attrs) -> None:
        """Any thread: add detail to a span that has not ended."""
        if span is None:
            return
        with self.lock:
            if span.end is None:
                if span.attrs is None:
                    span.attrs = {}
                span.attrs.update(attrs)

    def traceparent(self, span: Span | None) -> str | None:
        return span.traceparent() if span is not None else None

    # -- LLM calls (engine threads) --------------------------------------------------------
    def llm_begin(self, span: Span | None, max_new: int) -> None:
        self.note(span, **{k: v for k, v in self.llm.items() if v is not None}, max_new=max_new, preemptions=0,
                  requeued_s=0.0)

    @contextlib.contextmanager
    def _llm_attrs(self, span: Span | None):
        """Hold the lock and yield the attrs of an LLM call's span that has begun and not ended, else None."""
        if span is None:
            yield None
            return
        with self.lock:
            yield span.attrs if span.end is None else None

    def llm_state(self, span: Span | None, state: str, preemptions: int = 0) -> None:
        """The engine queued ("queued"), admitted ("running") or preempted ("preempted") the call;
        ``preemptions``: how many times so far, as the request counts them (LLMRequest.preemptions)."""
        now = time.time()
        with self._llm_attrs(span) as a:
            if a is None:
                return
            if state == "running":
                if "admitted_at" not in a:
                    a["admitted_at"] = now
                else:
                    self._event(span, "resume")
                    a["requeued_s"] += now - a.pop("preempted_at", now)
            elif state == "preempted":
                a["preemptions"] = preemptions
                a["preempted_at"] = now
                self._event(span, "preempt")

    def llm_done(self, span: Span | None, result: dict | None, first_token_at: float | None) -> None:
        """Before the reply: tokens, finish reason, and the call's phases in wall seconds:
        wait (queued before its first admission, plus time back in the queue after preemptions),
        prefill (admission to first token), decode (first token to the end, less time preempted)."""
        now = time.time()
        with self._llm_attrs(span) as a:
            if a is None:
                return
            a.pop("preempted_at", None)
            admitted = a.get("admitted_at")
            a["wait_s"] = (admitted if admitted is not None else now) - span.start + a["requeued_s"]
            if admitted is not None and first_token_at is not None:
                a["prefill_s"] = max(0.0, first_token_at - admitted)
                a["decode_s"] = max(0.0, now - first_token_at - a["requeued_s"])
                a["first_token_at"] = first_token_at
            if result is not None:
                a.update(tokens_in=result.get("tokens_in", 0), tokens_out=result.get("tokens_out", 0))
                for key, name in (("prefix_hit_tokens", "cached"), ("finish_reason", "finish"),
                                  ("llm_time_s", "compute_s"), ("retries", "retries")):
                    if result.get(key) is not None:
                        a[name] = result[key]
                if result.get("tool_calls"):
                    a["tool_calls"] = len(result["tool_calls"])
                if self.content:
                    span.result = brief.content(result.get("text", ""), True)

    # -- confirmations (loop thread) -------------------------------------------------------
    def on_confirm(self, pid: int, action: str, done):
        """The access manager asks for a confirmation of ``action`` by ``pid``: mark the call's span
        (the newest open ``action`` span of pid) and return ``done`` wrapped to note the answer."""
        if not self.enabled:
            return done
        with self.lock:
            p = self.procs.get(pid)
            call = {"fs.overwrite": "fs.write"}.get(action, action)  # the storage guard's name for it
            span = next((s for s in reversed(p.ring) if s.end is None and s.name == call), None) if p else None
        if span is None:
            return done
        self.note(span, confirm="asked")

        def answered(allow: bool, reason: str) -> None:
            self.note(span, confirm="allowed" if allow else "denied", confirm_by=brief.cut(str(reason), 80))
            done(allow, reason)
        return answered

    # -- views (loop thread: control ops) ----------------------------------------------------
    def snapshot(self, pid: int, follow: bool = False) -> dict | None:
        """What is kept of ``pid`` (None: nothing); with ``follow``, its later spans go to the front
        as ``span`` events until it ends or ``unwatch``. Atomic: no span is in both or in neither."""
        with self.lock:
            p = self.procs.get(pid)
            if p is None:
                return None
            if follow and not p.ended:
                self.watched.add(pid)
            return self._proc_dict(p)

    def unwatch(self, pid: int) -> None:
        with self.lock:
            self.watched.discard(pid)

    def dump(self) -> list[dict]:
        """Every kept process's spans, by pid (the timeline's input)."""
        with self.lock:
            return [self._proc_dict(p) for _, p in sorted(self.procs.items())]

    def stats(self) -> dict:
        with self.lock:
            kept = sum(len(p.ring) + 1 for p in self.procs.values())
            return {"enabled": self.enabled, "content": self.content, "processes": len(self.procs),
                    "following": sorted(self.watched),
                    "spans_kept": kept, "spans_total": self.spans,
                    "spans_dropped": sum(p.dropped for p in self.procs.values()),
                    "exported": self.exporter.exported if self.exporter else 0,
                    "export_dropped": self.exporter.dropped if self.exporter else 0}

    # -- helpers (lock held) -------------------------------------------------------------------
    def _proc_dict(self, p: ProcTrace) -> dict:
        return {"pid": p.pid, "agent": p.agent, "ended": p.ended, "dropped": p.dropped,
                "root": p.root.as_dict(), "spans": [s.as_dict() for s in p.ring]}

    def _event(self, span: Span, name: str, attrs: dict | None = None) -> None:
        if span.events is None:
            span.events = []
        if len(span.events) < TRACE_EVENTS_MAX:
            span.events.append((time.time(), name, attrs))
        else:
            span.lost_events += 1

    def _finished(self, span: Span) -> None:
        if span.pid in self.watched:
            self._outbox.append(span.as_dict())
        if self.exporter is not None:
            self.exporter.put(span)

    def _flush_soon(self) -> None:
        """Send what ``_outbox`` holds, on the loop thread."""
        if not self._outbox or self.kernel is None:
            return
        if threading.get_ident() == self._loop_ident:
            self._flush()
        else:
            self.kernel.post(self._flush)

    def _flush(self) -> None:
        while True:
            with self.lock:
                if not self._outbox:
                    return
                d = self._outbox.popleft()
            self.kernel.event(event="span", pid=d["pid"], span=d)
