"""ToolAgent: runs a JSON script (the task) of syscalls and returns one outcome per step.

Steps:
  {"tool": name, "args": {...}, "timeout": s}   tool.call
  {"pipeline": [{"tool":..., "args":...}, ...]}  send every tool.call frame first, then read
                                                 the replies (calls in flight together); each
                                                 reply gets t (read) and sent (time.time())
  {"sys": name, "args": {...}}                   any syscall
  {"burst": n}                                   n proc.info calls as fast as possible
Outcome: {"ok": result, "t0", "t1"} or {"err": code, "msg": message, "t0", "t1"};
with "quiet": true in a tool/sys step, "ok" is just true (keeps big scripts' results small).
"""

import json
import time

from agent_apps import sdk
from kernel.protocol import messages
from kernel.protocol.channel import read_frame, write_frame


def outcome(fn, quiet=False):
    t0 = time.time()
    try:
        value = fn()
        return {"ok": True if quiet else value, "t0": t0, "t1": time.time()}
    except sdk.SyscallError as e:
        return {"err": e.code, "msg": e.message, "t0": t0, "t1": time.time()}


def pipeline(calls):
    conn = sdk._conn
    with conn._lock:
        sent = time.time()
        ids = []
        for c in calls:
            req_id = next(conn._ids)
            ids.append(req_id)
            args = {"name": c["tool"], "args": c.get("args", {}), **({"timeout": c["timeout"]} if "timeout" in c else {})}
            write_frame(conn.tx_fd, messages.syscall(req_id, conn.pid, "tool.call", args))
        got = {}
        while len(got) < len(ids):
            r = messages.decode_reply(read_frame(conn.rx_fd))
            got[r["id"]] = dict(r, t=time.time(), sent=sent)
    return [got[i] for i in ids]


class ToolAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        out = []
        for step in json.loads(task):
            if "tool" in step:
                out.append(outcome(lambda: sdk.tools.call(step["tool"], timeout=step.get("timeout"),
                                                          **step.get("args", {})), step.get("quiet")))
            elif "pipeline" in step:
                out.append(pipeline(step["pipeline"]))
            elif "sys" in step:
                out.append(outcome(lambda: sdk.syscall(step["sys"], **step.get("args", {})), step.get("quiet")))
            elif "burst" in step:
                codes = []
                for _ in range(step["burst"]):
                    r = outcome(lambda: sdk.proc.info()["pid"])
                    codes.append(r.get("err", "ok"))
                out.append(codes)
        return out
