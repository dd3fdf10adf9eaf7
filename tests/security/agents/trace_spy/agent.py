"""TraceSpy: what a hostile agent tries against the tracer (tests/security/test_trace_attacks.py).

Task: JSON {"victim": pid, "flood": N, "big": M}.
  spy    calls every syscall name a trace reader might have (trace, proc.trace, ...) for the victim's
         pid and its own, and proc.info / mem.search on the victim; returns each reply or error
  flood  N pipelined calls the kernel must trace without growing: unknown names of 100,000
         characters full of HTML and escapes, junk arguments (EINVAL), M of them carrying 600 KB
"""

import json

from agent_apps import sdk
from kernel.protocol import messages
from kernel.protocol.channel import read_frame, write_frame

NAMES = ["trace", "trace.get", "trace.read", "proc.trace", "sys.trace", "kernel.trace", "trace.follow"]


class TraceSpy:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        a = json.loads(task)
        out = {"spy": [], "flood": 0}
        victim, me = a["victim"], sdk.getpid()
        for name in NAMES:
            for pid in (victim, me):
                out["spy"].append(self.call(name, {"pid": pid}))
        out["spy"].append(self.call("proc.info", {"pid": victim}))
        out["spy"].append(self.call("mem.search", {"query": "launch", "pid": victim}))
        out["spy"].append(self.call("fs.read", {"name": "trace-secret.txt", "owner": "ToolAgent"}))
        conn = sdk._conn
        html = "<script>alert(1)</script>\x1b[2J\n" * 3000  # about 100,000 characters
        with conn._lock:
            for i in range(a["flood"]):
                req = 10_000 + i
                if i % 3 == 0:
                    frame = messages.syscall(req, conn.pid, html, {"x": 1})
                elif i % 3 == 1 and i < 3 * a["big"]:
                    frame = messages.syscall(req, conn.pid, "proc.info", {"junk": "j" * 600_000})
                else:
                    frame = messages.syscall(req, conn.pid, "proc.info", {"junk": i, "more": [html[:500]] * 20})
                write_frame(conn.tx_fd, frame)
                read_frame(conn.rx_fd)
                out["flood"] += 1
        return out

    @staticmethod
    def call(name, args):
        try:
            return {"name": name, "ok": True, "got": json.dumps(sdk.syscall(name, **args))[:4000]}
        except sdk.SyscallError as e:
            return {"name": name, "ok": False, "code": e.code, "message": e.message}
