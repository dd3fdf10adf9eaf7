"""SetuidAgent: makes setuid/setgid files in its workspace (tests/security/test_resource_watch.py).

A copy of ``id`` made setuid-root (``chmod 4755``), a setgid one (``chmod 2755``), and a file created
with mode 06755 by open() itself. Each attempt is recorded ({"what", "ok", "error"}; a seccomp filter may
refuse the chmod). Task: {"then_sleep": seconds} to stay alive meanwhile.
"""

import json
import os
import runpy
import shutil
import stat
import time
from pathlib import Path

_lib = runpy.run_path(str(Path(__file__).resolve().parent.parent / "_lib" / "hostile.py"))


class SetuidAgent(_lib["InWorkspace"]):
    def run(self, task):
        a = self.task_args(task)
        tried = []

        def attempt(what, fn):
            try:
                fn()
                mode = os.stat(what).st_mode
                tried.append({"what": what, "ok": bool(mode & (stat.S_ISUID | stat.S_ISGID)), "mode": oct(mode)})
            except OSError as e:
                tried.append({"what": what, "ok": False, "error": f"{type(e).__name__}: {e}"})

        src = shutil.which("id") or "/usr/bin/id"
        attempt("id-suid", lambda: (shutil.copyfile(src, "id-suid"), os.chmod("id-suid", 0o4755)))
        attempt("id-sgid", lambda: (shutil.copyfile(src, "id-sgid"), os.chmod("id-sgid", 0o2755)))
        os.makedirs("sub", exist_ok=True)
        attempt("sub/created-06755", lambda: os.close(os.open("sub/created-06755", os.O_CREAT | os.O_WRONLY, 0o6755)))
        print(json.dumps(tried), flush=True)
        time.sleep(a.get("then_sleep", 0))
        return tried
