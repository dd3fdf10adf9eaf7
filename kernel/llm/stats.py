"""EngineStats: an engine's counters, as ``stats()`` reports them: the one place they are kept for the
local engine (kernel/llm/engine.py) and the remote one (kernel/llm/remote.py).

Written by the engine's threads, read by the kernel's loop thread (``stats``
control op, ``ps``/``top``); ``lock`` guards every field. Units: seconds of
time.monotonic(), tokens, bytes. Per call, the request counts its own
preemptions (kernel/llm/request.py); these are the engine's totals.
"""

from __future__ import annotations

import collections
import threading
import time

from kernel.param import RATE_WINDOW_S


class EngineStats:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = 0          # requests finished with a result
        self.errors = 0         # requests finished with an error (cancellations included)
        self.tokens_in = 0      # prompt tokens of admitted requests
        self.tokens_out = 0     # generated tokens (EOS included)
        self.prefill_tokens = 0  # tokens fed by prefills (prompts and recomputes; prefix hits excluded)
        self.prefix_hit_tokens = 0  # tokens whose K/V came from the prefix cache instead of a prefill
        self.prefill_s = 0.0    # seconds in prefill passes (part of busy_s)
        self.decode_s = 0.0     # seconds in decode steps (part of busy_s)
        self.steps = 0          # decode steps
        self.rows = 0           # sum over decode steps of the batch size
        self.busy_s = 0.0       # seconds in forward passes and batch bookkeeping (remote: streaming, summed
        #                         over calls, so it can exceed wall time)
        self.preemptions = 0
        self.retries = 0        # remote: requests sent again after a retryable error
        self.running = 0
        self.queue = 0
        self.kv_batch_bytes = 0
        self._recent: collections.deque[tuple[float, int]] = collections.deque()  # (t, tokens)

    def step(self, rows: int, dt: float, now: float) -> None:
        with self.lock:
            self.steps += 1
            self.rows += rows
            self.tokens_out += rows
            self.busy_s += dt
            self.decode_s += dt
            self._recent.append((now, rows))
            while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
                self._recent.popleft()

    def prefill(self, tokens: int, first_tokens: int, dt: float, now: float) -> None:
        """A prefill fed ``tokens`` and produced ``first_tokens`` new ones."""
        with self.lock:
            self.prefill_tokens += tokens
            self.tokens_out += first_tokens
            self.busy_s += dt
            self.prefill_s += dt
            self._recent.append((now, first_tokens))

    def add(self, **deltas) -> None:
        with self.lock:
            for k, v in deltas.items():
                setattr(self, k, getattr(self, k) + v)

    def finished(self, tokens_in: int, tokens_out: int, now: float) -> None:
        """Remote: a call's result, with the tokens the server counted (they enter the rate now)."""
        with self.lock:
            self.calls += 1
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out
            self._recent.append((now, tokens_out))

    def totals(self) -> dict:
        """What every engine reports: calls, errors, tokens, busy time, preemptions, and tokens_per_s over
        the last RATE_WINDOW_S seconds."""
        now = time.monotonic()
        with self.lock:
            recent = sum(n for t, n in self._recent if t >= now - RATE_WINDOW_S)
            return {"calls": self.calls, "errors": self.errors, "tokens_in": self.tokens_in,
                    "tokens_out": self.tokens_out, "busy_s": self.busy_s, "preemptions": self.preemptions,
                    "tokens_per_s": recent / RATE_WINDOW_S}

    def gauges(self, running: int, queue: int, kv_batch_bytes: int) -> None:
        with self.lock:
            self.running, self.queue, self.kv_batch_bytes = running, queue, kv_batch_bytes

    def snapshot(self, max_batch: int) -> dict:
        """The local engine's: totals() and its batch's own counters."""
        totals = self.totals()
        with self.lock:
            occupancy = self.rows / self.steps if self.steps else 0.0
            return {
                **totals, "prefill_tokens": self.prefill_tokens,
                "prefix_hit_tokens": self.prefix_hit_tokens, "prefill_s": self.prefill_s, "decode_s": self.decode_s,
                "steps": self.steps, "running": self.running,
                "queue": self.queue, "kv_batch_bytes": self.kv_batch_bytes,
                "tokens_per_busy_s": self.tokens_out / self.busy_s if self.busy_s else 0.0,
                "batch_occupancy": occupancy,  # mean rows per decode step
                "batch_occupancy_pct": 100.0 * occupancy / max_batch if max_batch else 0.0,
            }
