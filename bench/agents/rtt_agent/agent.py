import time

from agent_apps.sdk import proc


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
        return {"rtt_s": times, "rss_kib": rss_kib}
