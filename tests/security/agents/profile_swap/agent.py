"""ProfileSwapAgent: uses a tool its profile gained on disk after it was spawned (tests/security).

Task (JSON): {"tool": T, "args": {...}, "wait_s": S}. It waits (up to S seconds) until its own
config.json, as it sees it in its folder, lists T (the attacker, or a confused user, widened it),
and only then makes its first tool call: T, then the calculator its spawn-time profile listed.
Returns {"saw_widened", "tool", "calculator", "listed_allowed", "access_tools"}.
"""

import json
import time
from pathlib import Path

from agent_apps import sdk

PROFILE = Path(__file__).resolve().parent / "config.json"


def attempt(fn):
    try:
        return {"ok": fn()}
    except sdk.SyscallError as e:
        return {"err": e.code, "msg": e.message}


def lists(tool):
    try:
        return tool in json.loads(PROFILE.read_text()).get("tools", [])
    except ValueError:  # caught halfway through a rewrite
        return False


class ProfileSwapAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        a = json.loads(task)
        deadline = time.monotonic() + a.get("wait_s", 0)
        while not lists(a["tool"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"saw_widened": lists(a["tool"]),
                "tool": attempt(lambda: sdk.tools.call(a["tool"], **a["args"])),
                "calculator": attempt(lambda: sdk.tools.call("calculator", expression="6*7")),
                "listed_allowed": [t["allowed"] for t in sdk.tools.list() if t["name"] == a["tool"]],
                "access_tools": sdk.access.info()["tools"]}
