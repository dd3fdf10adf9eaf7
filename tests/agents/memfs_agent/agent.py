"""Runs a script of syscalls given as the task and returns what each one answered.

Task: JSON {"ops": [op, ...]}; an op is one of
  {"call": "fs.write", "args": {...}}   -> {"ok": result} or {"error": code, "message": ...}
        optional "fill": {"data": ["x", 600000]} sets args["data"] = "x" * 600000
  {"spawn_wait": {"agent": "MemFsPeer", "task": {...}}}
        start another agent (the JSON string "$PARENT" anywhere in its task
        becomes this process's pid, a number), wait for it, -> {"ok": its result}
  {"chat": {"content": ..., "max_new_tokens": N, "system": ...}}  -> sdk mem.chat, {"ok": reply}
  {"mem_fill": {"n": N, "size": S}}  -> mem.add notes payload(0..N-1, S), {"ok": [ids]}
  {"writeloop": {"ack_path": ..., "n": N, "size": S, "names": K}}
        write records w0..w{K-1} round robin, N times; after each acknowledged
        write append "i name version sha256" to ack_path and print "ACK i".
"""

import hashlib
import json

from agent_apps import sdk


def payload(i: int, size: int) -> str:
    """Deterministic content of write i: its checksum can be recomputed by the test."""
    seed = hashlib.sha256(str(i).encode()).hexdigest()
    return (f"write {i}:" + seed * (size // 64 + 1))[:size]


class MemFsAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        out = []
        for op in json.loads(task)["ops"]:
            try:
                out.append({"ok": self.step(op)})
            except sdk.SyscallError as e:
                out.append({"error": e.code, "message": e.message})
        return out

    def step(self, op):
        if "call" in op:
            args = dict(op.get("args", {}))
            for key, (unit, times) in op.get("fill", {}).items():
                args[key] = unit * times
            return sdk.syscall(op["call"], **args)
        if "spawn_wait" in op:
            spec = op["spawn_wait"]
            me = str(sdk.getpid())
            task = json.dumps(spec["task"]).replace('"$PARENT"', me).replace("$PARENT", me)
            child = sdk.proc.spawn(spec["agent"], task)
            return sdk.proc.wait(child)["result"]
        if "chat" in op:
            c = op["chat"]
            return sdk.mem.chat(c["content"], max_new_tokens=c.get("max_new_tokens", 8), system=c.get("system"))
        if "mem_fill" in op:
            return [sdk.mem.note(payload(i, op["mem_fill"]["size"])) for i in range(op["mem_fill"]["n"])]
        if "writeloop" in op:
            return self.writeloop(**op["writeloop"])
        raise ValueError(f"unknown op {op}")

    def writeloop(self, ack_path, n, size, names):
        with open(ack_path, "a", buffering=1) as acks:
            for i in range(n):
                name = f"w{i % names}"
                info = sdk.fs.write(name, payload(i, size))
                acks.write(f"{i} {name} {info['version']} {info['sha256']}\n")  # in the page cache once written
                print(f"ACK {i}", flush=True)
        return n
