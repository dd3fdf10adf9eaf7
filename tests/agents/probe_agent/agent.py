import os
import sys
import time

from agent_apps.sdk import proc


class ProbeAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        heavy = sorted(m for m in ("torch", "transformers", "accelerate", "numpy") if m in sys.modules)
        info = proc.info()
        time.sleep(float(task or 0))
        return {"os_pid": os.getpid(), "ppid": os.getppid(), "heavy_modules": heavy,
                "state_seen": info["state"], "pgid": os.getpgid(0)}
