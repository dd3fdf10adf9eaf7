"""Writes ~900 KB syscall frames in a loop without reading replies in between.

Each frame is a proc.info with a junk argument (answered EINVAL); the agent
reads the replies only every few frames, so its pipe is nearly always full
and a SIGKILL almost surely lands in the middle of a frame.
"""

from agent_apps import sdk
from kernel.protocol import messages
from kernel.protocol.channel import read_frame, write_frame


class FloodAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        conn = sdk._conn
        sdk.proc.info()
        junk = "j" * 900_000
        i = 0
        while True:
            for _ in range(4):
                i += 1
                write_frame(conn.tx_fd, messages.syscall(i, conn.pid, "proc.info", {"junk": junk}))
            for _ in range(4):
                read_frame(conn.rx_fd)
