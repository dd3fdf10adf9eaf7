"""A hostile agent: each op of its JSON task tries one way around a quota or a limit.

Ops (the task is {"ops": [...]}; returns one outcome per op):
  {"pipelined_chat": {"n": N, "max_new_tokens": M}}  N llm.chat frames sent before reading any reply
  {"rollback_loop": {"size": S, "n": N}}             write S bytes, overwrite with 1 byte, roll back N times
  {"spawn": {"n": N, "task": ..., "agent": A}}       N proc.spawn of A (default QuotaAbuser, task JSON-encoded
                                                     unless a string); -> pids or error codes
  {"sleep": S}                                       stay alive S seconds
  {"spawn_wait": {"agent": A, "task": T}}            spawn A, then proc.wait its pid; -> the snapshot
  {"wait_all": [pid, ...]}                           proc.wait each; -> snapshots
  {"peek": pid}                                      proc.info and proc.wait of pid
  {"exit_then_stay": {}}                             proc.exit(ok), then more syscalls, then spin forever
"""

import json
import time

from agent_apps import sdk
from kernel.protocol import messages
from kernel.protocol.channel import read_frame, write_frame


def attempt(fn):
    try:
        return {"ok": fn()}
    except sdk.SyscallError as e:
        return {"err": e.code, "msg": e.message}


def pipelined_chat(n, max_new_tokens):
    conn = sdk._conn
    with conn._lock:
        ids = []
        for i in range(n):
            req_id = next(conn._ids)
            ids.append(req_id)
            args = {"messages": [{"role": "user", "content": f"Count from 1 to 50, call {i}."}],
                    "max_new_tokens": max_new_tokens}
            write_frame(conn.tx_fd, messages.syscall(req_id, conn.pid, "llm.chat", args))
        got = {}
        while len(got) < n:
            r = messages.decode_reply(read_frame(conn.rx_fd))
            got[r["id"]] = r
    out = []
    for i in ids:
        r = got[i]
        out.append({"tokens": r["result"]["tokens_in"] + r["result"]["tokens_out"]} if r.get("ok")
                   else {"err": r["error"]["code"], "msg": r["error"]["message"]})
    return out


class QuotaAbuser:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        out = []
        for op in json.loads(task)["ops"]:
            (kind, arg), = op.items()
            if kind == "pipelined_chat":
                out.append(pipelined_chat(arg["n"], arg["max_new_tokens"]))
            elif kind == "rollback_loop":
                first = attempt(lambda: sdk.fs.write("hoard", "x" * arg["size"]))
                attempt(lambda: sdk.fs.write("hoard", "y"))
                rolls = [attempt(lambda: sdk.fs.rollback("hoard", 1)) for _ in range(arg["n"])]
                out.append({"first": first, "rollbacks": [("ok" if "ok" in r else r["err"]) for r in rolls]})
            elif kind == "spawn":
                task = arg["task"] if isinstance(arg["task"], str) else json.dumps(arg["task"])
                out.append([attempt(lambda: sdk.proc.spawn(arg.get("agent", "QuotaAbuser"), task))
                            for _ in range(arg["n"])])
            elif kind == "spawn_wait":
                out.append(attempt(lambda: sdk.proc.wait(sdk.proc.spawn(arg["agent"], arg["task"]))))
            elif kind == "sleep":
                time.sleep(arg)
                out.append("slept")
            elif kind == "wait_all":
                out.append([attempt(lambda pid=pid: sdk.proc.wait(pid)) for pid in arg])
            elif kind == "peek":
                out.append({"info": attempt(lambda: sdk.proc.info(arg)), "wait": attempt(lambda: sdk.proc.wait(arg))})
            elif kind == "exit_then_stay":
                sdk.proc.exit(result="pretending to be done", status="ok")
                print("after exit:", json.dumps([attempt(lambda: sdk.proc.info()) for _ in range(3)]), flush=True)
                while True:
                    time.sleep(0.01)
        return out
