"""Quotas per agent app (its privilege group): LLM tokens, syscalls per second, storage bytes.

A quota belongs to the privilege group (by default one per agent app), so
every process of an app, and every child it spawns, draws on the same
budget: spawning children or restarting does not start a fresh one.

  llm tokens    tokens in + out of every llm.chat call of the group, for
                the kernel's life. A call *reserves* its prompt tokens plus
                its max_new_tokens when the engine admits it (``llm_admit``,
                which caps max_new_tokens to what is left), and the unused
                part is refunded when it ends (``llm_settle``): pipelined calls
                cannot overshoot the quota (they did, 8x, when only finished
                calls were counted). When nothing is left: EDQUOT.
  syscalls/s    a token bucket per group (rate per second, ``burst`` deep),
                checked in the kernel's dispatch before the syscall's
                handler. Over the rate: EAGAIN at once, never a wait.
                proc.exit is exempt (an agent can always end); after it the
                kernel refuses every call of that process.
  storage bytes per owner (agent app): the storage manager's
                ``usage_bytes(owner)`` plus the bytes a write or a rollback
                adds, checked on the storage thread that runs the writes one
                by one; over the quota: EDQUOT. Bytes as charged by
                kernel/storage/cost.py: data, names, rows and index entries of
                every kept version and record.

0 means unlimited. Thread-safety: one lock guards the buckets and the LLM
ledger (dispatch runs on the loop, admission on the engine thread, storage
checks on the storage thread).
"""

from __future__ import annotations

import threading
import time

from kernel.protocol import messages
from kernel.protocol.messages import EDQUOT
from kernel.syscall import SyscallFailure

EDQUOT = EDQUOT
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
        self.llm_tokens = int(config.access.quota_llm_tokens)
        self.syscalls_per_s = float(config.access.quota_syscalls_per_s)
        self.burst = int(config.access.quota_syscall_burst)
        self.storage_bytes = int(config.access.quota_storage_bytes)
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}  # group -> its syscall rate bucket
        self._llm_used: dict[str, int] = {}  # group -> tokens of its ended calls
        self._llm_reserved: dict[str, int] = {}  # group -> tokens reserved by its admitted, unfinished calls
        self.throttled: dict[int, int] = {}  # pid -> syscalls refused for rate

    def describe(self) -> dict:
        return {"llm_tokens": self.llm_tokens, "syscalls_per_s": self.syscalls_per_s,
                "syscall_burst": self.burst, "storage_bytes": self.storage_bytes, "per": "privilege group"}

    # -- LLM tokens ---------------------------------------------------------------------
    def llm_used(self, group: str) -> int:
        with self._lock:
            return self._llm_used.get(group, 0)

    def _spent(self, group: str, pid: int) -> SyscallFailure:
        used, held = self._llm_used.get(group, 0), self._llm_reserved.get(group, 0)
        return SyscallFailure(EDQUOT, f"LLM token quota of group {group!r} is spent: {used} tokens used"
                                      f"{f' and {held} reserved by calls in flight' if held else ''} of "
                                      f"{self.llm_tokens} (--quota_llm_tokens); pid {pid} was refused")

    def llm_check(self, group: str, pid: int) -> None:
        """Loop thread, at the syscall: EDQUOT at once when nothing is left."""
        if not self.llm_tokens:
            return
        with self._lock:
            if self._llm_used.get(group, 0) + self._llm_reserved.get(group, 0) >= self.llm_tokens:
                raise self._spent(group, pid)

    def llm_admit(self, group: str, pid: int, prompt_tokens: int, max_new: int) -> int:
        """Reserve prompt_tokens + the granted max_new (returned, >= 1); EDQUOT when they do not fit."""
        if not self.llm_tokens:
            return max_new
        with self._lock:
            left = self.llm_tokens - self._llm_used.get(group, 0) - self._llm_reserved.get(group, 0)
            if left < prompt_tokens + 1:
                err = self._spent(group, pid) if left <= 0 else SyscallFailure(
                    EDQUOT, f"a prompt of {prompt_tokens} tokens does not fit in the {left} tokens left of "
                            f"group {group!r}'s LLM quota (--quota_llm_tokens {self.llm_tokens})")
                raise err
            grant = min(max_new, left - prompt_tokens)
            self._llm_reserved[group] = self._llm_reserved.get(group, 0) + prompt_tokens + grant
            return grant

    def llm_settle(self, group: str, reserved: int, used: int) -> None:
        """A call ended: release its reservation, charge what it really used."""
        with self._lock:
            self._llm_reserved[group] = self._llm_reserved.get(group, 0) - reserved
            self._llm_used[group] = self._llm_used.get(group, 0) + used

    # -- syscall rate -------------------------------------------------------------------
    def admit_syscall(self, pcb, name: str) -> bool:
        """True if the call may proceed; False when the group is over its rate (the caller answers EAGAIN)."""
        if not self.syscalls_per_s or name in EXEMPT:
            return True
        with self._lock:
            b = self._buckets.get(pcb.group)
            if b is None:
                b = self._buckets[pcb.group] = TokenBucket(self.syscalls_per_s, self.burst)
            if b.take():
                return True
            self.throttled[pcb.pid] = self.throttled.get(pcb.pid, 0) + 1
            return False

    def rate_error(self, pcb) -> SyscallFailure:
        return SyscallFailure(messages.EAGAIN, f"syscall rate quota exceeded: group {pcb.group!r} may make "
                                               f"{self.syscalls_per_s:g} syscalls per second (burst {self.burst}); "
                                               "try again later")

    def check_storage(self, owner: str, used: int, add_bytes: int) -> None:
        if self.storage_bytes and used + add_bytes > self.storage_bytes:
            raise SyscallFailure(EDQUOT, f"storage quota exceeded: {owner} would hold {used + add_bytes} bytes "
                                         "(data, names and per-row overhead of every kept version and record), "
                                         f"its quota is {self.storage_bytes} (--quota_storage_bytes)")

    def forget(self, pid: int) -> None:
        with self._lock:
            self.throttled.pop(pid, None)
