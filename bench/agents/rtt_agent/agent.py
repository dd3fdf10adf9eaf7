import os
import socket
import time

from agent_apps.sdk import proc


def connect_times(n: int) -> list[float]:
    """TCP connects to the agent's own endpoint (in the Landlock fallback each goes through the kernel's
    connect() check, kernel/confine/notify.py)."""
    url = os.environ.get("OPENAI_BASE_URL", "")
    if not url:
        return []
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            out.append(time.perf_counter() - t0)
            s.sendall(b"GET /v1/models HTTP/1.0\r\n\r\n")  # answered 401: the server accepts before the next
            while s.recv(4096):
                pass
    return out


class RttAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        n = int(task)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            proc.info()
            times.append(time.perf_counter() - t0)
        # Current RSS (ru_maxrss would count the kernel's pages from before exec).
        try:
            with open("/proc/self/status") as f:
                rss_kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except OSError:  # confined without a private /proc: Landlock hides the host's
            import resource
            rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"rtt_s": times, "rss_kib": rss_kib, "connect_s": connect_times(min(n, 100))}
