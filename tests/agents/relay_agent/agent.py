"""Relays raw frames from the test to the kernel, bypassing the SDK.

Task: JSON {"in": fifo, "out": fifo}. For each frame read from "in" (an
empty frame ends the run) it substitutes "$PID" with its own pid, writes it
to the kernel, then sends a proc.info marker with a known id and collects
every reply up to the marker's, and writes them back to "out" as one JSON
frame. So each fuzzed frame is answered, or provably dropped, before the next.
"""

import json

from agent_apps import sdk
from kernel.protocol import messages
from kernel.protocol.channel import read_frame, write_frame

MARK = 2**52


class RelayAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        paths = json.loads(task)
        conn = sdk._conn
        n = 0
        with open(paths["in"], "rb", buffering=0) as fin, open(paths["out"], "wb", buffering=0) as fout:
            while True:
                frame = read_frame(fin.fileno())
                if not frame:
                    return n
                n += 1
                write_frame(conn.tx_fd, frame.replace(b'"$PID"', str(conn.pid).encode()))
                write_frame(conn.tx_fd, messages.syscall(MARK + n, conn.pid, "proc.info", {}))
                replies = []
                while True:
                    reply = json.loads(read_frame(conn.rx_fd))
                    if reply.get("id") == MARK + n:
                        break
                    replies.append(reply)
                write_frame(fout.fileno(), json.dumps({"replies": replies, "marker": reply}).encode())
