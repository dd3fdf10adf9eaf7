"""Sends hand-made frames straight down its channel, bypassing the SDK's checks.

Task: JSON list of frames; a frame is a string (sent as UTF-8 bytes) or
{"size": N} (N bytes of garbage). Returns the replies as decoded JSON.
A task longer than a task may be (kernel/protocol/limits.py MAX_TASK) comes as "zlib:" + base64 of it, compressed.
"""

import base64
import json
import zlib

from agent_apps import sdk
from kernel.protocol import messages
from kernel.protocol.channel import read_frame, write_frame


class RawAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        conn = sdk._conn
        replies = []
        if task.startswith("zlib:"):
            task = zlib.decompress(base64.b64decode(task[5:])).decode()
        for frame in json.loads(task):
            data = b"x" * frame["size"] if isinstance(frame, dict) else frame.replace('"$PID"', str(conn.pid)).encode()
            write_frame(conn.tx_fd, data)
            replies.append(messages.decode_reply(read_frame(conn.rx_fd)))
        replies.append(sdk.proc.info()["state"])  # the kernel still serves this process
        return replies
