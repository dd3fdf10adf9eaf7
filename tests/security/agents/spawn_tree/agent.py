"""SpawnTreeAgent: a self-spawning app trying to take every agent slot (tests/security).

Task (JSON): {"fanout": N, "depth": D, "hold": S, "agent": A}. Each process tries N proc.spawn calls
of A (default itself) with depth D - 1 (none at depth 0), then stays alive S seconds so every slot it
got stays taken. Returns one outcome per try: {"pid": P} or {"err": code, "msg": message}.
"""

import json
import time

from agent_apps import sdk


class SpawnTreeAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        a = json.loads(task)
        tried = []
        if a["depth"] > 0:
            child = json.dumps({**a, "depth": a["depth"] - 1})
            for _ in range(a["fanout"]):
                try:
                    tried.append({"pid": sdk.proc.spawn(a.get("agent", "SpawnTreeAgent"), child)})
                except sdk.SyscallError as e:
                    tried.append({"err": e.code, "msg": e.message})
        sdk.log("spawned", json.dumps(tried))
        time.sleep(a["hold"])
        return tried
