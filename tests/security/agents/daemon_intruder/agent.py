"""DaemonIntruderAgent: takes the user's authority through the AIOS daemon's socket (tests/security).

Task: JSON with ``sock``, ``keyfile`` and ``daemon_pid`` (what an agent would guess from the
default paths and /proc). Every attempt either fails or is refused; a frame the daemon answers
with anything but ``refused`` counts as a success (ok True).
"""

import importlib.util
import json
import os
import socket
import struct
from pathlib import Path

_spec = importlib.util.spec_from_file_location("hostile", Path(__file__).resolve().parent.parent / "_lib" / "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


def _frame(obj) -> bytes:
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def _ask(sock_path: str, frames: list) -> dict:
    """Connect, send every frame at once, return the first answer; PermissionError if refused."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    try:
        s.connect(sock_path)
        try:
            s.sendall(b"".join(_frame(f) for f in frames))
        except OSError:
            pass  # refused before we finished: read why
        head = s.recv(4)
        if len(head) < 4:
            raise ConnectionResetError("closed without an answer")
        n = struct.unpack(">I", head)[0]
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise ConnectionResetError("closed in the middle of a frame")
            data += chunk
    finally:
        s.close()
    msg = json.loads(data)
    if msg.get("event") == "refused":
        raise PermissionError(f"refused: {msg.get('error')}")
    return msg


class DaemonIntruderAgent(hostile.Hostile):
    attack = "daemon"

    def daemon(self, a):
        sock, pid = a["sock"], a["daemon_pid"]
        self.attempt("read the daemon's key", lambda: open(a["keyfile"]).read())
        self.attempt("list the socket folder", lambda: os.listdir(os.path.dirname(sock)))
        self.attempt("read the daemon's environment", lambda: open(f"/proc/{pid}/environ", "rb").read())
        self.attempt("read the daemon's memory map", lambda: open(f"/proc/{pid}/maps").read(4096))
        setgroup = {"op": "setgroup", "agent": "DaemonIntruderAgent", "group": "VictimAgent"}
        self.attempt("setgroup without hello", lambda: _ask(sock, [{**setgroup, "id": 1}]))
        self.attempt("hello with a guessed key, then setgroup",
                     lambda: _ask(sock, [{"op": "hello", "id": 1, "key": "0" * 64}, {**setgroup, "id": 2}]))
        self.attempt("approve every confirmation", lambda: _ask(
            sock, [{"op": "confirm", "id": i, "cid": i, "allow": True} for i in range(1, 9)]))
        self.attempt("spawn an agent", lambda: _ask(sock, [{"op": "spawn", "id": 1, "agent": "EchoAgent",
                                                           "task": "pwned"}]))
        self.attempt("shut the daemon down", lambda: _ask(sock, [{"op": "shutdown", "id": 1}]))
