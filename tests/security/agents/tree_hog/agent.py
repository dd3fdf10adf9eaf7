"""TreeHogAgent: forks children that each touch MB MiB (tests/security/test_resource_watch.py).

RLIMIT_AS is per process: each child stays under the app's 512 MiB limit, together they pass it. The
children start one after the other: each writes ``child-<i>.start`` (the time it begins to touch its
memory, and its pid) and ``child-<i>.done`` to the workspace, then waits to be killed; so does the agent.
Task: {"mb": [250, 150, 100]} (MiB each child touches).
"""

import os
import runpy
import time
from pathlib import Path

_lib = runpy.run_path(str(Path(__file__).resolve().parent.parent / "_lib" / "hostile.py"))


def _stamp(name):
    with open(name, "w") as f:
        f.write(f"{time.time()!r} {os.getpid()}")  # the pid is the host's without a pid namespace


class TreeHogAgent(_lib["InWorkspace"]):
    def run(self, task):
        a = self.task_args(task)
        for i in range(len(a["mb"])):
            r, w = os.pipe()
            if os.fork() == 0:
                try:
                    _stamp(f"child-{i}.start")
                    blob = b"\x01" * (a["mb"][i] << 20)  # written, so resident
                    _stamp(f"child-{i}.done")
                    os.write(w, b"x")
                    time.sleep(120)
                    del blob
                finally:
                    os._exit(0)
            os.close(w)
            os.read(r, 1)  # the next child starts when this one holds its memory (or died)
            os.close(r)
        time.sleep(120)
        return "still alive"
