"""Shared fixtures: one kernel (and one loaded model) for every test that can share it.

Tests that must kill or restart a kernel start their own with ``start_kernel``.
The test agents in tests/agents/ are visible through AIOS_AGENT_PATH, the
test tools in tests/tools/ through AIOS_TOOL_PATH.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "tests" / "agents")
os.environ["AIOS_TOOL_PATH"] = str(ROOT / "tests" / "tools")  # test tools (sleep, hang) beside tools/

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    # A suite started in the background by a non-interactive shell (`pytest &` in a script, CI) inherits SIGINT
    # ignored (POSIX), and every process it starts would inherit that too: the tests that press Ctrl-C or send
    # SIGINT would then wait forever. A handler of our own is reset to the default in each child at exec.
    signal.signal(signal.SIGINT, signal.default_int_handler)

from kernel.boot import KernelClient  # noqa: E402
from kernel.config import KernelConfig  # noqa: E402


class EventLog:
    """Collects kernel events (thread-safe enough for appends and reads)."""

    def __init__(self):
        self.events: list[dict] = []

    def __call__(self, ev: dict) -> None:
        self.events.append(ev)

    def outputs(self, pid: int) -> list[str]:
        return [e["text"] for e in list(self.events) if e.get("event") == "output" and e.get("pid") == pid]


def start_kernel(tmp: Path, **overrides) -> tuple[KernelClient, EventLog]:
    cfg = dict(max_new_tokens=64, log_dir=str(tmp / "logs"), data_dir=str(tmp / "data"), kill_grace_s=1.0)
    cfg.update(overrides)
    events = EventLog()
    client = KernelClient(KernelConfig(**cfg), on_event=events)
    assert client.ready.wait(120), "model did not load"
    assert not client.ready_info.get("load_error"), client.ready_info
    return client, events


@pytest.fixture(scope="session")
def kernel_env(tmp_path_factory):
    client, events = start_kernel(tmp_path_factory.mktemp("kernel"))
    yield client, events
    client.stop()


@pytest.fixture(scope="session")
def kernel(kernel_env):
    return kernel_env[0]


@pytest.fixture(scope="session")
def kernel_events(kernel_env):
    return kernel_env[1]
