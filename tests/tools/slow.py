"""Test tools: sleep (thread, 2 at a time), sleep_solo (thread, 1 at a time), sleep_proc
(a child process, 4 at a time), hang (a child process that never ends).

Each returns when it ran (time.time() of its start and end) so tests can
measure how calls overlapped.
"""

import time

from tools.base import READ_ONLY, Tool, obj_schema

SECONDS = {"type": "number", "minimum": 0, "maximum": 30}


class Sleep(Tool):
    name = "sleep"
    description = "Test tool: sleep `seconds`, return start/end times. 2 may run at once."
    schema = obj_schema(["seconds"], seconds=SECONDS)
    side_effect = READ_ONLY
    parallel = 2
    timeout_s = 5.0

    def run(self, args, ctx):
        t0 = time.time()
        time.sleep(args["seconds"])
        return {"start": t0, "end": time.time()}


class SleepSolo(Sleep):
    name = "sleep_solo"
    description = "Test tool: like sleep, one at a time."
    parallel = 1


class Hang(Tool):
    name = "hang"
    description = "Test tool: never returns (runs in a child process the kernel must kill)."
    schema = obj_schema([], note={"type": "string"})
    side_effect = READ_ONLY
    parallel = 1
    timeout_s = 1.0
    isolation = "process"

    def run(self, args, ctx):
        while True:
            time.sleep(3600)


class SleepProc(Sleep):
    name = "sleep_proc"
    description = "Test tool: like sleep, in a child process, 4 at a time."
    parallel = 4
    isolation = "process"


TOOLS = [Sleep(), SleepSolo(), SleepProc(), Hang()]
