"""A real ``python -m kernel.llm.serve`` process for backend tests, and helpers around it.

``llm_server`` (session fixture) starts one server on a free 127.0.0.1 port
with --test-hooks, serving the embedded model; both the OpenAI and the Gemini
backend tests talk to it. ``remote_kernel(tmp, entry, **config)`` starts a
kernel whose model is a models-file entry (written to a temp file named by
$AIOS_MODELS, which the spawned kernel inherits).
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
import zlib
from pathlib import Path

import pytest
from conftest import ROOT, EventLog

from aios_shell.client import KernelClient
from kernel.config import EMBEDDED_MODEL, KernelConfig
from kernel.protocol.limits import MAX_TASK

START_TIMEOUT_S = 120


def _die_with_parent() -> None:
    """In the server's child, before exec: SIGTERM when the test process dies, even killed mid-run
    (its fixture teardown never runs then), so no model server outlives the suite."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class Server:
    def __init__(self):
        # stderr goes to a file: a pipe nobody reads fills up over a session (a traceback per dropped client)
        # and the server then blocks in its next write
        self.errors = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "kernel.llm.serve", "--port", "0", "--test-hooks"],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=self.errors, text=True,
                                     preexec_fn=_die_with_parent)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(START_TIMEOUT_S)  # blocks until the ready line (or EOF if it died)
        line = self.proc.stdout.readline() if ready else ""
        sel.close()
        if not line.startswith("serving "):
            self.proc.kill()
            self.proc.wait(5)
            self.errors.seek(0)
            raise RuntimeError(f"kernel.llm.serve did not start: {line!r} {self.errors.read()[-2000:]}")
        threading.Thread(target=self.proc.stdout.read, name="serve-stdout", daemon=True).start()  # drained too
        self.base_url = line.split(" on ", 1)[1].strip()  # http://127.0.0.1:PORT/v1
        self.root_url = self.base_url[: -len("/v1")]
        self.model = EMBEDDED_MODEL

    def admin(self, op: str, **body) -> dict:
        data = None if op == "stats" else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.root_url}/admin/{op}", data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.errors.close()


@pytest.fixture(scope="session")
def llm_server():
    server = Server()
    yield server
    server.stop()


@pytest.fixture
def hooks(llm_server):
    """The server with clean stats and no injected faults, before and after the test."""
    llm_server.admin("reset")
    yield llm_server
    llm_server.admin("reset")


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remote_kernel(tmp: Path, name: str, entry: dict, env: dict | None = None,
                  **overrides) -> tuple[KernelClient, EventLog]:
    """A kernel whose --llm_name is ``name``, defined by ``entry`` in a temp models file.

    Does not require the model to be usable: the caller checks ready_info.
    """
    models = tmp / f"models-{name}.json"
    models.write_text(json.dumps({"models": {name: entry}}))
    cfg = dict(llm_name=name, max_new_tokens=64, log_dir=str(tmp / "logs"), data_dir=str(tmp / "data"),
               kill_grace_s=1.0)
    cfg.update(overrides)
    saved = dict(os.environ)
    os.environ["AIOS_MODELS"] = str(models)  # the spawned kernel copies the environment at start
    for k, v in (env or {}).items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        events = EventLog()
        client = KernelClient(KernelConfig.from_flags(**cfg), on_event=events)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert client.ready.wait(60), "the remote engine's check did not finish"
    return client, events


def task_of(obj) -> str:
    """A test agent's JSON task; one longer than a task may be (MAX_TASK) goes compressed, as "zlib:" + base64
    (LLMCallAgent and RawAgent unpack it), so an attack payload bigger than a task still reaches the kernel."""
    text = json.dumps(obj)
    if len(text) <= MAX_TASK:
        return text
    return "zlib:" + base64.b64encode(zlib.compress(text.encode(), 9)).decode()


def call(kernel: KernelClient, prompt: str, max_new_tokens: int = 12, timeout: float = 120, **extra) -> dict:
    """Run LLMCallAgent once; returns its result (the llm.chat record or {"error": ...})."""
    pid = kernel.spawn("LLMCallAgent", task_of({"prompt": prompt, "max_new_tokens": max_new_tokens, **extra}))
    snap = kernel.wait(pid, timeout=timeout)
    assert snap["state"] == "done", snap
    return snap["result"]
