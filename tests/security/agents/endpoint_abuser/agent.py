"""EndpointAbuser: what a hostile framework agent would try with its OpenAI endpoint (tests/security).

Prints one JSON object: {"http": {case: status line}, "after": status of a good request after all of
them, "net": [{what, ok, error}], "channel_fds": [fds that look like the kernel's pipes]}.
"""

import json
import os
import socket
import stat
import sys
from urllib.parse import urlparse

args = json.loads(sys.argv[-1])
base = urlparse(os.environ["OPENAI_BASE_URL"])
HOST, PORT, KEY = base.hostname, base.port, os.environ["OPENAI_API_KEY"]


def raw(data: bytes, timeout: float = 30) -> str:
    """Send bytes, return the status line of the answer ('' if the server just closed)."""
    with socket.create_connection((HOST, PORT), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\r\n", 1)[0].decode("latin-1")


def post(body: bytes, key: str | None = KEY, extra: bytes = b"", length: bytes | None = None) -> str:
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if key is not None:
        head += b"Authorization: Bearer " + key.encode() + b"\r\n"
    head += b"Content-Length: " + (length if length is not None else str(len(body)).encode()) + b"\r\n"
    return raw(head + extra + b"\r\n" + body)


def chat(**over) -> bytes:
    return json.dumps({"model": "gpt-4o", "max_tokens": 4,
                       "messages": [{"role": "user", "content": "hi"}], **over}).encode()


http = {}
http["garbage request line"] = raw(b"\x00\xffGARBAGE\r\n\r\n")
http["no key"] = post(chat(), key=None)
http["wrong key"] = post(chat(), key="sk-guessed")
http["key of another shape"] = post(chat(), key=KEY + "x")
http["huge content-length"] = post(b"{}", length=b"999999999999")
http["non-numeric content-length"] = post(b"{}", length=b"abc")
http["chunked body"] = raw(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
                           + b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
http["not json"] = post(b"{not json")
http["json array"] = post(b"[]")
http["deeply nested json"] = post(b"[" * 200_000 + b"]" * 200_000)
http["empty messages"] = post(chat(messages=[]))
http["bad role"] = post(chat(messages=[{"role": "root", "content": "x"}]))
http["image part"] = post(chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]))
http["negative max_tokens"] = post(chat(max_tokens=-5))
http["over the channel frame"] = post(chat(messages=[{"role": "user", "content": "a" * (2 << 20)}]))
http["unknown route"] = raw(b"GET /admin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n\r\n")
http["header flood"] = raw(b"GET /v1/models HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(300)) + b"\r\n")
http["long request line"] = raw(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
stalled = socket.create_connection((HOST, PORT))
stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n")  # and never more
after = post(chat())
stalled.close()

net = []
for what, addr in ((f"tcp connect host 127.0.0.1:{args['tcp_port']}", ("127.0.0.1", args["tcp_port"])),
                   ("tcp connect 1.1.1.1:53", ("1.1.1.1", 53)),
                   (f"tcp connect 1.1.1.1 on the endpoint's port {PORT}", ("1.1.1.1", PORT))):
    try:
        socket.create_connection(addr, timeout=3).close()
        net.append({"what": what, "ok": True, "error": ""})
    except OSError as e:
        net.append({"what": what, "ok": False, "error": f"{type(e).__name__}: {e}"})

channel_fds = []
for fd in range(3, 256):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            channel_fds.append(fd)
    except OSError:
        pass
print(json.dumps({"http": http, "after": after, "net": net, "channel_fds": channel_fds}))
