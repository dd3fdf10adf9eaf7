"""One kernel under ``--confine strict`` for the whole hostile-agent suite.

Its environment carries a fake API key (the env attack looks for it), its data folder holds a
victim app's workspace secret and a storage record, and every hostile app gets a JSON task
naming what an attacker would aim at (``Target.task()``).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from aios_shell.client import KernelClient
from conftest import ROOT, EventLog, start_kernel

SECRET = "sk-aios-test-secret-0123456789"
HOSTILE = ROOT / "tests" / "security" / "agents"  # visible to this kernel only
VICTIM_SECRET = "the victim's private notes"
MARK_BYTES = b"HOSTILE-FORGED-7f3a"  # what hostile agents write where they should not


@dataclass
class Target:
    client: object
    events: object
    data_dir: str
    log_dir: str
    layers: tuple = ("namespaces", "landlock", "seccomp", "rlimits")  # what every agent of this kernel must run under

    def task(self, **extra) -> str:
        audit = sorted(glob.glob(os.path.join(self.log_dir, "audit-*.log")))
        return json.dumps({"data_dir": self.data_dir, "log_dir": self.log_dir, "root": str(ROOT),
                           "kernel_pid": self.client.pid, "front_pid": os.getpid(),
                           "audit_path": audit[-1] if audit else os.path.join(self.log_dir, "audit.log"), **extra})

    def attack(self, agent: str, timeout: float = 60, **extra) -> list[dict]:
        snap = self.client.wait(self.client.spawn(agent, self.task(**extra)), timeout=timeout)
        assert snap["state"] == "done", snap
        assert snap["confinement"] == "+".join(self.layers), snap["confinement"]
        return snap["result"]


def start_hostile_kernel(tmp: Path, **overrides) -> tuple[KernelClient, EventLog]:
    """``start_kernel`` with the hostile apps added to that kernel's agent path (this process's is left as it was)."""
    saved = os.environ.get("AIOS_AGENT_PATH")
    os.environ["AIOS_AGENT_PATH"] = os.pathsep.join([saved or "", str(HOSTILE)])
    try:
        return start_kernel(tmp, **overrides)
    finally:
        if saved is None:
            os.environ.pop("AIOS_AGENT_PATH", None)
        else:
            os.environ["AIOS_AGENT_PATH"] = saved


def failed_clearly(tried: list[dict], *, allow: tuple = ()) -> None:
    """Every attempt not named in ``allow`` failed, with an error that names the failure."""
    for t in tried:
        if t["what"] in allow:
            continue
        assert t["ok"] is False, f"attack succeeded: {t}"
        assert ":" in t["error"] and len(t["error"]) > 12, f"unclear error: {t}"


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def running(client, pid: int, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        snap = client.info(pid)
        if snap["state"] not in ("new", "llm-queued"):
            return snap
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} never started")


@pytest.fixture(scope="session")
def target(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secure")
    saved = {k: os.environ.get(k) for k in ("AIOS_TEST_SECRET_KEY", "AIOS_AGENT_PATH")}
    os.environ["AIOS_TEST_SECRET_KEY"] = SECRET  # the kernel inherits it; no agent may see it
    os.environ["AIOS_AGENT_PATH"] = os.pathsep.join([saved["AIOS_AGENT_PATH"] or "", str(HOSTILE)])
    try:
        client, events = start_kernel(tmp, confine="strict")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    data_dir, log_dir = str(tmp / "data"), str(tmp / "logs")
    ws = Path(data_dir, "workspaces", "VictimAgent")
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "secret.txt").write_text(VICTIM_SECRET)
    yield Target(client, events, data_dir, log_dir)
    client.stop()


@pytest.fixture(scope="session")
def fallback(tmp_path_factory):
    """One kernel under ``--confine landlock``: the fallback ``auto`` picks where bubblewrap cannot create a
    user namespace (Ubuntu 24.04+), forced on purpose. Agents see the host's directory tree there, so the
    attacks name real host paths; Landlock, seccomp and the kernel's connect() check must still refuse them."""
    tmp = tmp_path_factory.mktemp("landlock")
    client, events = start_hostile_kernel(tmp, confine="landlock")
    ws = Path(tmp, "data", "workspaces", "VictimAgent")
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "secret.txt").write_text(VICTIM_SECRET)
    yield Target(client, events, str(tmp / "data"), str(tmp / "logs"), layers=("landlock", "seccomp", "rlimits"))
    client.stop()
