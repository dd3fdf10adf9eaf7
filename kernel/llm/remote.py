"""RemoteEngine: the Engine interface over a remote backend (openai_compat, gemini).

Same surface as kernel.llm.engine.Engine: ``RemoteEngine(config)``, ``start()``,
``submit(req)``, ``cancel_pid(pid)``, ``stats()``, ``stop()``, ``ready``,
``on_ready``, ``load_error``.

Threads:
  llm-remote-check  started by start(): builds the backend client and runs
                    its check (key present, server reachable, model served);
                    sets load_error (one line) or starts the workers; sets
                    ``ready`` and calls ``on_ready`` either way.
  llm-remote-N      ``slots`` workers, one per call in flight: the backend's
                    concurrency limit holds by construction (1 under serial).

Scheduling (``--scheduler``, ``--program_aware``) is the local engine's:
the same Policy (kernel/llm/scheduler.py) owns the waiting calls and plans
which to admit whenever a slot frees or a call arrives, with ``slots`` as its
batch size; each admitted call is handed to an idle worker. Under rr on a
backend whose spec has ``resume``, a call the policy preempts (its stream has
produced ``rr_quantum`` pieces, one per token on vLLM and kernel.llm.serve,
while others wait) is closed at its next piece and goes to the back of the
queue with its partial text; resuming sends that text as a final assistant
message for the server to continue (``continue_final_message``). Backends
without ``resume``, and constrained calls, are never preempted: they run to
completion.

Retries: on 429, 408, 5xx, timeouts and connection errors, up to
``spec.max_retries`` more tries, waiting ``backoff_s * 2**try`` seconds (a
Retry-After header wins), capped at MAX_BACKOFF_S, on the job's own event so
a cancel or stop ends the wait at once. A stream that breaks after output is
continued from its partial text where the backend can resume, else restarted.

Stop strings are applied on the accumulated text too (the server sees only
the first few, and not across a resume boundary).

Locking: ``_cv`` guards the policy, _running, _assigned, _stopping and the
counters; a _Job's text and token counts belong to the worker running it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from kernel.llm import catalog
from kernel.llm.backends import BackendError, Call
from kernel.llm.request import LLMError, LLMRequest, prompt_token_bound, result
from kernel.llm.scheduler import make_policy
from kernel.llm.stats import EngineStats
from kernel.param import MAX_BACKOFF_S
from kernel.protocol.messages import ECANCELED, EIO

log = logging.getLogger("aios.engine")


class _Job:
    """One LLMRequest while RemoteEngine holds it (what a scheduler Policy schedules)."""

    def __init__(self, req: LLMRequest, max_new: int):
        self.req = req
        self.arrival = req.seq
        self.enqueued = time.monotonic()  # set by the policy when it (re)joins the queue
        self.slice_tokens = 0  # pieces streamed since it was last admitted (rr quantum)
        self.admitted_rank = 0.0  # priority policy: effective priority when admitted
        self.preempt = False  # the policy chose to switch it out: its worker closes the stream
        self.max_new = max_new
        self.text = ""  # assistant text so far (kept across preemptions)
        self.tokens_in: int | None = None
        self.tokens_out = 0
        self.retries = 0
        self.llm_time_s = 0.0
        self.first_token_at: float | None = None  # time.time() of the first piece streamed (the trace's prefill end)
        self.wake = threading.Event()  # set on cancel/stop: ends a backoff wait

    @property
    def priority(self) -> int:
        return self.req.priority

    @property
    def cancelled(self) -> bool:
        return self.req.cancelled


class _Preempted(Exception):
    pass


class RemoteEngine:
    def __init__(self, config, spec: "catalog.ModelSpec | None" = None, error: str | None = None):
        self.spec = spec
        self.llm_name = config.llm.name
        self.policy = config.sched.policy
        self.quantum = max(1, int(config.sched.rr_quantum))
        self.max_new_tokens = config.llm.max_new_tokens
        self.slots = 1 if self.policy == "serial" or spec is None else spec.max_concurrency
        self.preemptible = self.policy == "rr" and spec is not None and spec.resume is not None
        self.ready = threading.Event()  # set once the check has passed or failed
        self.on_ready = None  # called on the check thread once ready (or failed)
        self.load_error: str | None = error
        self.load_time_s: float | None = None
        self.backend = None
        self._cv = threading.Condition()
        self._policy = make_policy(self.policy, self.slots, self.quantum,
                                   config.sched.program_aware == "on")
        self._running: list[_Job] = []  # admitted (streaming, or assigned and about to)
        self._assigned: list[_Job] = []  # admitted, not yet taken by a worker
        self._stopping = False
        self._serving = False  # the check passed and the workers run: calls may be admitted
        self._threads: list[threading.Thread] = []
        self.counters = EngineStats()  # the same counters as the local engine's (kernel/llm/stats.py)

    # -- public, thread-safe --------------------------------------------------------
    def start(self) -> None:
        t = threading.Thread(target=self._check, name="llm-remote-check", daemon=True)
        self._threads.append(t)
        t.start()

    def submit(self, req: LLMRequest) -> None:
        max_new = min(req.sampling.max_new_tokens, self.max_new_tokens)
        if req.admit is not None:  # the token quota reserves a bound of the prompt (no tokenizer here) + max_new
            try:
                max_new = req.admit(prompt_token_bound(req.messages), max_new)
            except LLMError as e:
                req.finish(error=e)
                return
        with self._cv:
            refuse = self._refusal()
        if refuse is not None:
            req.finish(error=refuse)
            return
        req.state("queued")  # before a worker can see it (and call state("running"))
        with self._cv:
            refuse = self._refusal()
            if refuse is None:
                self._policy.add(_Job(req, max_new), time.monotonic())
                self._schedule()
        if refuse is not None:
            req.finish(error=refuse)

    def forget_pid(self, pid: int) -> None:
        """``pid`` ended: the policy drops what it served it."""
        with self._cv:
            self._policy.forget(pid)

    def cancel_pid(self, pid: int) -> int:
        """Cancel every request of ``pid``: queued ones now, running ones at their next chunk."""
        with self._cv:
            for j in self._policy.waiting:
                if j.req.pid == pid:
                    j.req.cancelled = True
            dropped = self._policy.drop_cancelled()
            for j in self._running:
                if j.req.pid == pid:
                    j.req.cancelled = True
                    j.wake.set()
        for j in dropped:
            j.req.finish(error=LLMError(ECANCELED, "process ended"))
        return len(dropped)

    def stats(self) -> dict:
        spec = self.spec
        with self._cv:
            return {"model": self.llm_name, "backend": spec.backend if spec else None,
                    "remote_model": spec.model if spec else None, "base_url": spec.base_url if spec else None,
                    "policy": self.policy, "loaded": self.ready.is_set() and not self.load_error,
                    "load_error": self.load_error, "load_time_s": self.load_time_s,
                    "queue": len(self._policy), "running": len(self._running), "max_concurrency": self.slots,
                    "preemptible": self.preemptible,
                    "program_aware": "on" if self._policy.program_aware else "off",
                    **self.counters.totals(), "retries": self.counters.retries}

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            pending = self._policy.take_all() + self._assigned  # assigned: no worker will take them now
            self._running = [j for j in self._running if j not in self._assigned]
            self._assigned = []
            for j in self._running:
                j.wake.set()
            self._cv.notify_all()
        for j in pending:
            j.req.finish(error=LLMError(ECANCELED, "kernel is stopping"))
        deadline = time.monotonic() + 5
        for t in self._threads:  # a worker blocked on a read ends at the backend's timeout at worst
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- helpers (under _cv) -----------------------------------------------------------
    def _refusal(self) -> LLMError | None:
        if self._stopping:
            return LLMError(ECANCELED, "kernel is stopping")
        if self.ready.is_set() and self.load_error:
            return LLMError(EIO, f"model {self.llm_name} is not available: {self.load_error}")
        return None

    def _schedule(self) -> None:
        """Let the policy admit waiting calls into free slots and mark the calls it preempts."""
        if self._stopping or not self._serving or not len(self._policy):
            return
        # Calls already told to leave count as free slots for the plan, not for admission.
        plan = self._policy.plan([j for j in self._running if not j.preempt], time.monotonic())
        free = self.slots - len(self._running)
        take, back = plan.admit[:max(0, free)], plan.admit[max(0, free):]
        if back:  # their slots free only when the preempted streams close: first in line meanwhile
            self._policy.waiting[:0] = back
        for job in plan.preempt:
            if self.preemptible and not job.req.constrained:
                job.preempt = True
        for job in take:
            job.slice_tokens, job.preempt = 0, False
            self._running.append(job)
            self._assigned.append(job)
        if take:
            self._cv.notify_all()

    # -- threads ---------------------------------------------------------------------
    def _check(self) -> None:
        t0 = time.time()
        try:
            if self.load_error is None:
                self.backend = self._make_backend()
                self.backend.check()
        except BackendError as e:
            self.load_error = f"model {self.llm_name}: {e.message}"
        except Exception as e:  # a client library failing to start: still one line, never a traceback
            self.load_error = f"model {self.llm_name}: {type(e).__name__}: {e}"
        self.load_time_s = time.time() - t0
        if self.load_error:
            # INFO, not ERROR: the front shows load_error from the "ready" event; a console-mode
            # ERROR record would print the same line twice.
            log.info("remote model unusable: %s", self.load_error)
            with self._cv:
                pending = self._policy.take_all()
            for j in pending:
                j.req.finish(error=LLMError(EIO, f"model {self.llm_name} is not available: {self.load_error}"))
        else:
            log.info("remote model %s ready in %.2fs (%d slots, policy %s%s)", self.spec.describe(),
                     self.load_time_s, self.slots, self.policy, ", preemptible" if self.preemptible else "")
            for i in range(self.slots):
                t = threading.Thread(target=self._worker, name=f"llm-remote-{i}", daemon=True)
                self._threads.append(t)
                t.start()
            with self._cv:
                self._serving = True
                self._schedule()  # what arrived during the check
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready()

    def _make_backend(self):
        from kernel.llm import backends

        return backends.load(self.spec)

    def _worker(self) -> None:
        while True:
            with self._cv:
                while not self._assigned and not self._stopping:
                    self._cv.wait()
                if self._stopping:
                    return
                job = self._assigned.pop(0)
            preempted = False
            try:
                preempted = self._run(job)
            except Exception as e:  # a bug here must fail the call, not the worker
                log.exception("remote call failed for pid %s", job.req.pid)
                self._finish(job, error=LLMError(EIO, f"remote call failed: {type(e).__name__}: {e}"))
            with self._cv:
                self._running.remove(job)
                requeue = preempted and not self._stopping
                if requeue:  # to the back of the queue, partial text kept
                    self._policy.add(job, time.monotonic())
                self._schedule()
            if requeue:
                job.req.state("preempted")
            elif preempted:  # preempted while the kernel stops
                self._finish(job, error=LLMError(ECANCELED, "kernel is stopping"))

    def _run(self, job: _Job) -> bool:
        """Stream ``job`` until it finishes (False) or is preempted (True). Finishes the request itself."""
        req = job.req
        req.state("running")
        tries = 0
        while True:
            if req.cancelled or self._stopping:
                self._finish(job, error=LLMError(ECANCELED, "request cancelled"))
                return False
            try:
                return self._segment(job)
            except _Preempted:
                return True
            except BackendError as e:
                if not e.retryable or tries >= self.spec.max_retries:
                    tried = f" (after {tries + 1} tries)" if tries else ""
                    self._finish(job, error=LLMError(e.code, f"{self.llm_name}: {e.message}{tried}"))
                    return False
                delay = min(MAX_BACKOFF_S, e.retry_after if e.retry_after is not None
                            else self.spec.backoff_s * 2 ** tries)
                tries += 1
                job.retries += 1
                self.counters.add(retries=1)
                log.warning("%s: %s; retry %d/%d in %.2fs", self.llm_name, e.message, tries,
                            self.spec.max_retries, delay)
                if not self.spec.resume:
                    job.text, job.tokens_out = "", 0  # cannot continue a partial answer: start again
                job.wake.wait(delay)

    def _segment(self, job: _Job) -> bool:
        """One streamed request. Returns False when the call finished; raises _Preempted or BackendError."""
        req = job.req
        before = job.tokens_out
        if before >= job.max_new:  # a stream cut at the limit, then retried or resumed
            self._finish(job, res=result(job.text, job.tokens_in or 0, before, "length", llm_time_s=job.llm_time_s,
                                         preemptions=req.preemptions, retries=job.retries,
                                         first_token_at=job.first_token_at))
            return False
        call = Call(messages=req.messages, sampling=replace(req.sampling, max_new_tokens=job.max_new - job.tokens_out),
                    partial=job.text, traceparent=req.traceparent,
                    response_format=req.response_format, tools=req.tools, tool_choice=req.tool_choice)
        t0 = time.monotonic()
        stream = self.backend.open(call)
        stopped = False
        try:
            for piece in stream:
                if job.first_token_at is None:
                    job.first_token_at = time.time()
                job.text += piece
                job.tokens_out += 1  # replaced by the server's count when it reports usage
                job.slice_tokens += 1
                if self._apply_stop(job, len(piece)):
                    stopped = True
                    break
                if req.cancelled or self._stopping:
                    break
                # A constrained call is never cut: a server cannot continue a partial JSON or call.
                if (self.preemptible and not req.constrained and job.slice_tokens >= self.quantum
                        and job.tokens_out < job.max_new and self._preempted(job)):
                    raise _Preempted()  # its worker calls req.state("preempted"), which counts it
        finally:
            stream.close()
            dt = time.monotonic() - t0
            job.llm_time_s += dt
            self.counters.add(busy_s=dt)
            with self._cv:
                self._policy.charge(req.pid, dt)  # program-aware admission: its service so far
        if stream.usage is not None and not stopped:
            prompt, completion = stream.usage
            job.tokens_out = before + completion
            if job.tokens_in is None:
                job.tokens_in = max(0, prompt - before)  # a resumed prompt holds the partial answer too
        if req.cancelled or self._stopping:
            self._finish(job, error=LLMError(ECANCELED, "request cancelled"))
            return False
        finish = "stop" if stopped else (stream.finish_reason or
                                         ("length" if job.tokens_out >= job.max_new else "stop"))
        extra = {}
        if req.tools and req.tool_choice != "none":
            extra["tool_calls"] = list(getattr(stream, "tool_calls", None) or [])
            if extra["tool_calls"] and finish == "stop":
                finish = "tool_calls"
        self._finish(job, res=result(job.text, job.tokens_in or 0, job.tokens_out, finish,
                                     llm_time_s=job.llm_time_s, preemptions=req.preemptions,
                                     retries=job.retries, first_token_at=job.first_token_at, **extra))
        return False

    def _preempted(self, job: _Job) -> bool:
        """Its slice is spent: does the policy switch it out for a waiting call?"""
        with self._cv:
            if len(self._policy) and not job.preempt:
                self._schedule()
            if job.preempt:
                self.counters.add(preemptions=1)
            return job.preempt

    def _apply_stop(self, job: _Job, added: int) -> bool:
        """Cut job.text at the first stop string that the last piece completed."""
        stops = job.req.sampling.stop
        start = max(0, len(job.text) - added - max((len(s) for s in stops), default=0))
        hits = [i for i in (job.text.find(s, start) for s in stops) if i >= 0]
        if hits:
            job.text = job.text[:min(hits)]
            return True
        return False

    def _finish(self, job: _Job, res: dict | None = None, error: LLMError | None = None) -> None:
        if error is not None:
            self.counters.add(errors=1)
        else:
            self.counters.finished(res["tokens_in"], res["tokens_out"], time.monotonic())
        job.req.finish(result=res, error=error)
