"""The limits that cross a process boundary: every side of a wire checks or respects the same value.

The kernel's own limits are kernel/param.py; the front's daemon has aios_shell/daemon/param.py.
"""

MAX_FRAME = 1 << 20  # bytes: the largest agent message the kernel accepts
MAX_TASK = 200_000  # characters of an agent's task, however it is spawned (front or proc.spawn); fits a 1 MiB frame
PRIORITY_RANGE = (-20, 20)  # an agent's scheduling priority, however it is spawned (higher first)
