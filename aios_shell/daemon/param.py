"""The daemon's fixed limits (aios_shell/daemon runs in the front, not the kernel; the kernel's are in
kernel/param.py). One line each; modules import them by name."""

MAX_CLIENT_FRAME = 1 << 20  # bytes: one request from a client (holds a task of kernel/protocol/limits.py MAX_TASK characters)
MAX_SERVER_FRAME = 64 << 20  # bytes: one reply or event from the daemon (ps of many agents, logs)
MAX_CLIENTS = 64  # connections at once; more are refused with an error frame
HELLO_TIMEOUT_S = 10.0  # a new connection's hello (with the key) must arrive within this, or it is closed
MAX_INFLIGHT = 32  # unanswered requests per client, `wait` aside: a flood queues little in the kernel
MAX_WAITS = 1024  # unanswered `wait`s per client (each costs the kernel one callback)
OUT_QUEUE = 4096  # frames queued for one client before it counts as stuck and is dropped
READY_WAIT_S = 900.0  # longest wait for the detached daemon to serve (a cold model conversion included)
