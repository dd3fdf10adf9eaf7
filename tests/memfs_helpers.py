"""Helpers for the memory and storage tests: run a MemFsAgent script and read its answers."""

from __future__ import annotations

import hashlib
import json
import uuid


def payload(i: int, size: int) -> str:
    """The content MemFsAgent writes for step i (same formula as tests/agents/memfs_agent/agent.py)."""
    seed = hashlib.sha256(str(i).encode()).hexdigest()
    return (f"write {i}:" + seed * (size // 64 + 1))[:size]


def unique(prefix: str) -> str:
    """A record name no other test (or earlier run on the shared kernel) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_ops(kernel, ops: list, agent: str = "MemFsAgent", timeout: float = 90) -> list:
    """Run the script in a fresh agent process; returns one {"ok": ...} or {"error", "message"} per op."""
    pid = kernel.spawn(agent, json.dumps({"ops": ops}))
    snap = kernel.wait(pid, timeout=timeout)
    assert snap["state"] == "done", snap.get("error")
    assert len(snap["result"]) == len(ops)
    return snap["result"]


def ok(answer: dict):
    assert "ok" in answer, answer
    return answer["ok"]


def err(answer: dict, code: str) -> str:
    assert answer.get("error") == code, answer
    return answer["message"]


def grouped(kernel, agent: str, group: str):
    """Context manager: put ``agent`` in ``group`` (access manager's setgroup), then back in its own."""
    class _Grouped:
        def __enter__(self):
            kernel.request("setgroup", timeout=10, agent=agent, group=group)

        def __exit__(self, *exc):
            kernel.request("setgroup", timeout=10, agent=agent, group=agent)
    return _Grouped()
