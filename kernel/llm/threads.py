"""How many torch threads the local engine uses (light module: no torch).

Default: every CPU this process may use but one, at least one. The kernel
shares the machine with its own event loop, the agent processes and the
shell; torch's OpenMP threads spin at every barrier, and when one of them
is descheduled the whole forward pass waits for it. Measured on a 2-core
machine with other load: two threads decoded 2.5-14 tok/s, one thread
24-79 tok/s (batch 1-16). On an idle machine two threads are faster
(about 1.4x at batch 16): pass ``--llm_threads 2`` on a dedicated box.
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
