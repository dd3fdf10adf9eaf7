"""A hostile framework agent and its OpenAI endpoint (issue 15), under the strict kernel: malformed and
hostile HTTP gets a 4xx and the endpoint keeps working, a request without the agent's key is 401, the
network beside the endpoint stays closed, and the command holds no channel to the kernel. With
``--confine off`` (no network namespace) a local process that is not the agent gets 401."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

from conftest import start_kernel
from secure_kernel import failed_clearly, target  # noqa: F401 (fixture)

EXPECTED = {
    "garbage request line": 400, "no key": 401, "wrong key": 401, "key of another shape": 401,
    "huge content-length": 413, "non-numeric content-length": 411, "chunked body": 411, "not json": 400,
    "json array": 400, "deeply nested json": 400, "empty messages": 400, "bad role": 400, "image part": 400,
    "negative max_tokens": 400, "over the channel frame": 413, "unknown route": 404, "header flood": 431,
    "long request line": 414,
}


def _listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    got, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            try:
                got.append(srv.accept())
            except (socket.timeout, OSError):
                pass
    threading.Thread(target=watch, daemon=True).start()
    return srv, got, stop


def test_hostile_http_and_network_beside_the_endpoint(target):
    srv, got, stop = _listener()
    try:
        pid = target.client.spawn("EndpointAbuser", json.dumps({"tcp_port": srv.getsockname()[1]}))
        snap = target.client.wait(pid, timeout=180)
    finally:
        stop.set()
        srv.close()
    assert snap["state"] == "done", snap["error"]
    assert "namespaces" in snap["confinement"] and "landlock" in snap["confinement"]
    out = json.loads(snap["result"])
    wrong = {case: got_ for case, got_ in out["http"].items()
             if not (got_.startswith("HTTP/1.") and f" {EXPECTED[case]} " in got_ + " ")}
    assert not wrong and len(out["http"]) == len(EXPECTED), wrong
    assert " 200 " in out["after"], out["after"]  # a good request after all of them, with a stalled one open
    failed_clearly(out["net"])
    assert got == []  # nothing reached the host's listener
    assert out["channel_fds"] == []  # the command cannot speak the kernel's protocol: no pipe to it
    assert snap["syscalls"]["llm.chat"] >= 1  # the good request, as a syscall of this agent


def test_endpoint_needs_the_agents_key_without_confinement(tmp_path):
    client, events = start_kernel(tmp_path, confine="off")
    try:
        pid = client.spawn("EndpointInfoAgent", "60")
        deadline = time.time() + 60
        while time.time() < deadline and not any(t.startswith("endpoint ") for t in events.outputs(pid)):
            time.sleep(0.1)
        _, base, key = next(t for t in events.outputs(pid) if t.startswith("endpoint ")).split()
        assert base.startswith("http://127.0.0.1:") and key.startswith("aios-") and len(key) > 40
        for headers in ({}, {"Authorization": "Bearer sk-guess"}, {"Authorization": key}):
            req = urllib.request.Request(base + "/models", headers=headers)
            try:
                urllib.request.urlopen(req, timeout=30)
                raise AssertionError(f"reached the endpoint with {headers}")
            except urllib.error.HTTPError as e:
                assert e.code == 401
                assert json.loads(e.read())["error"]["code"] == "invalid_api_key"
        ok = urllib.request.urlopen(urllib.request.Request(base + "/models", headers={
            "Authorization": f"Bearer {key}"}), timeout=30)
        assert json.loads(ok.read())["data"][0]["object"] == "model"
        client.kill(pid)
    finally:
        client.stop()

