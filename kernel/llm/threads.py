"""How many torch threads the local engine uses (light module: no torch).

Default: every CPU this process may use but one, at least one. The kernel
shares the machine with its own event loop, the agent processes and the
shell; torch's OpenMP threads spin at every barrier, and when one of them
is descheduled the whole forward pass waits for it. Measured with
bench/throughput.py (16 agents x 2 calls x 64 tokens) on a 2-core machine
shared with other work: 2 threads gave serial 5.7 tok/s and fifo 147 tok/s;
1 thread gave serial 22-25 tok/s and fifo 118-130 tok/s. Small forward
passes (one sequence) suffer most. The same with int8 weights (issue 25,
docs/llm-engine.md): 2 threads serial 11.5 and fifo 68 tok/s, 1 thread serial
31-33 and fifo 164-200 tok/s. On a dedicated machine more threads pay
off for large batches: pass ``--llm_threads N`` there.
"""

from __future__ import annotations

import os


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    return max(1, available_cpus() - 1)
