"""Per-agent quotas: LLM tokens, syscalls per second, storage bytes.

  llm tokens    per process (one run): tokens in + out of its finished
                llm.chat calls. When spent, llm.chat fails with EDQUOT; while
                some is left, a call's max_new_tokens is capped to what is
                left. (An agent that issues several llm.chat calls at once,
                which the SDK never does, can overshoot by those calls.)
  syscalls/s    per process: a token bucket (rate per second, ``burst``
                deep), checked in the kernel's dispatch before the syscall's
                handler. Over the rate: EAGAIN at once, never a wait.
                proc.exit is exempt: an agent can always end.
  storage bytes per owner (agent app): the storage manager's
                ``usage_bytes(owner)`` plus the bytes a write adds; over the
                quota: EDQUOT.

0 means unlimited. Thread-safety: the bucket table has its own lock (the
dispatch runs on the loop, but storage checks may come from other threads).
"""

from __future__ import annotations

import threading
import time

from kernel import messages
from kernel.syscall import SyscallFailure

EDQUOT = "EDQUOT"
EXEMPT = {"proc.exit"}


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` banked. Times: time.monotonic()."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.t = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Quotas:
    def __init__(self, config):
        self.llm_tokens = int(config.quota_llm_tokens)
        self.syscalls_per_s = float(config.quota_syscalls_per_s)
        self.burst = int(config.quota_syscall_burst)
        self.storage_bytes = int(config.quota_storage_bytes)
        self._lock = threading.Lock()
        self._buckets: dict[int, TokenBucket] = {}
        self.throttled: dict[int, int] = {}  # pid -> syscalls refused for rate

    def describe(self) -> dict:
        return {"llm_tokens": self.llm_tokens, "syscalls_per_s": self.syscalls_per_s,
                "syscall_burst": self.burst, "storage_bytes": self.storage_bytes}

    @staticmethod
    def llm_used(pcb, lock) -> int:
        with lock:
            return sum(c.tokens_in + c.tokens_out for c in pcb.llm_calls)

    def llm_allowance(self, pcb, lock) -> int:
        """Tokens this process may still generate (a large number when unlimited); EDQUOT when spent."""
        if not self.llm_tokens:
            return 1 << 30
        used = self.llm_used(pcb, lock)
        if used >= self.llm_tokens:
            raise SyscallFailure(EDQUOT, f"LLM token quota spent: pid {pcb.pid} used {used} of its "
                                         f"{self.llm_tokens} tokens (--quota_llm_tokens)")
        return self.llm_tokens - used

    def admit_syscall(self, pcb, name: str) -> bool:
        """True if the call may proceed; False when over the rate (the caller answers EAGAIN)."""
        if not self.syscalls_per_s or name in EXEMPT:
            return True
        with self._lock:
            b = self._buckets.get(pcb.pid)
            if b is None:
                b = self._buckets[pcb.pid] = TokenBucket(self.syscalls_per_s, self.burst)
            if b.take():
                return True
            self.throttled[pcb.pid] = self.throttled.get(pcb.pid, 0) + 1
            return False

    def rate_error(self, pcb) -> SyscallFailure:
        return SyscallFailure(messages.EAGAIN, f"syscall rate quota exceeded: pid {pcb.pid} may make "
                                               f"{self.syscalls_per_s:g} syscalls per second (burst {self.burst}); "
                                               "try again later")

    def check_storage(self, owner: str, used: int, add_bytes: int) -> None:
        if self.storage_bytes and used + add_bytes > self.storage_bytes:
            raise SyscallFailure(EDQUOT, f"storage quota exceeded: {owner} would hold {used + add_bytes} bytes, "
                                         f"its quota is {self.storage_bytes} (--quota_storage_bytes)")

    def forget(self, pid: int) -> None:
        with self._lock:
            self._buckets.pop(pid, None)
            self.throttled.pop(pid, None)
