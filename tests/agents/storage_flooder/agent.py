"""A hostile agent: fills storage with what a quota of data bytes alone did not count.

Task: JSON {"ops": [...]}; returns one outcome per op:
  {"flood": {"n": N, "name_len": L, "prefix": P, "data": D}}
        fs.write N records named P + a counter, padded to L characters, each holding D (default "");
        -> {"ok": writes acknowledged, "errors": {code: count}, "first_error": {"i", "code", "msg"} | null}
  {"versions": {"name": NAME, "n": N, "data": D}}   N writes to one record, same outcome shape
  {"write": {"name": NAME, "data": D}}              one fs.write -> {"ok": info} or {"err", "msg"}
"""

import json

from agent_apps import sdk


def writes(calls):
    out = {"ok": 0, "errors": {}, "first_error": None}
    for i, (name, data) in enumerate(calls):
        try:
            sdk.fs.write(name, data)
            out["ok"] += 1
        except sdk.SyscallError as e:
            out["errors"][e.code] = out["errors"].get(e.code, 0) + 1
            out["first_error"] = out["first_error"] or {"i": i, "code": e.code, "msg": e.message}
    return out


class StorageFlooder:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        out = []
        for op in json.loads(task)["ops"]:
            (kind, a), = op.items()
            if kind == "flood":
                prefix, length = a.get("prefix", "f"), a.get("name_len", 256)
                names = (f"{prefix}{i:06d}".ljust(length, "x") for i in range(a["n"]))
                out.append(writes((name, a.get("data", "")) for name in names))
            elif kind == "versions":
                out.append(writes((a["name"], a.get("data", "")) for _ in range(a["n"])))
            elif kind == "write":
                try:
                    out.append({"ok": sdk.fs.write(a["name"], a.get("data", ""))})
                except sdk.SyscallError as e:
                    out.append({"err": e.code, "msg": e.message})
        return out
