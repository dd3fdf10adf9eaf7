"""DiskHogAgent: writes files into its workspace (tests/security/test_resource_watch.py).

Task: {"files": [bytes, ...], "then_sleep": seconds}. Each file is written in 1 MiB chunks as fast as
the disk takes them; the result lists each file's outcome ("ok" or the error). The agent then waits
``then_sleep`` seconds (to be caught while still running) and returns the outcomes.
"""

import runpy
import time
from pathlib import Path

_lib = runpy.run_path(str(Path(__file__).resolve().parent.parent / "_lib" / "hostile.py"))

CHUNK = 1 << 20


class DiskHogAgent(_lib["InWorkspace"]):
    def run(self, task):
        a = self.task_args(task)
        out = []
        for i, size in enumerate(a.get("files", [])):
            try:
                with open(f"blob-{i}.bin", "wb") as f:
                    left = size
                    while left > 0:
                        left -= f.write(b"\x02" * min(CHUNK, left))
                out.append("ok")
            except OSError as e:
                out.append(f"{type(e).__name__}: {e}")
            print(f"file {i}: {out[-1]}", flush=True)
        time.sleep(a.get("then_sleep", 0))
        return out
