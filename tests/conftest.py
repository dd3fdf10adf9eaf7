"""Shared fixtures, and the test tiers.

Tiers, by folder and marker (``pytest -m unit`` runs one):

    tests/unit/      unit      pure functions and objects: no model, no kernel process (seconds)
    tests/kernel/    kernel    a kernel process or the engine in this one, driven through its API
    tests/e2e/       e2e       the programs a user runs (main.py, simulator.py, the shell in a pty)
    tests/security/  security  hostile agents, tools, servers and clients

Kernel-tier tests share one kernel (and one loaded model) where they can; the
ones that must kill or restart a kernel start their own with ``start_kernel``.
pytest.ini puts the project root and tests/ (the helper modules) on sys.path.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from aios_shell.client import KernelClient
from kernel.config import KernelConfig

ROOT = Path(__file__).resolve().parent.parent
TIERS = ("unit", "kernel", "e2e", "security")


def pytest_configure(config):
    # The test agents (tests/agents/) and test tools (sleep, hang: tests/tools/) are found through these;
    # every kernel the tests start inherits them.
    os.environ["AIOS_AGENT_PATH"] = str(ROOT / "tests" / "agents")
    os.environ["AIOS_TOOL_PATH"] = str(ROOT / "tests" / "tools")
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # A suite started in the background by a non-interactive shell (`pytest &` in a script) inherits SIGINT
        # ignored (POSIX), and every process it starts would inherit that too: the tests that press Ctrl-C or
        # send SIGINT would then wait forever. A handler of our own is reset to the default in each child at exec.
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    """Each test gets its folder's tier as a marker; a test outside the tier folders is an error."""
    for item in items:
        tier = Path(str(item.path)).relative_to(ROOT / "tests").parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/{{{','.join(TIERS)}}}/")
        item.add_marker(getattr(pytest.mark, tier))


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
    client = KernelClient(KernelConfig.from_flags(**cfg), on_event=events)
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
