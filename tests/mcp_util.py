"""Helpers for the MCP and tool tests: config files, the kernel's server processes, script runs, the audit log."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
NOTES_SERVER = str(ROOT / "tests" / "mcp" / "servers" / "notes_server.py")
EVIL_SERVER = str(ROOT / "tests" / "security" / "mcp_evil_server.py")
TIME_SERVER = str(Path(sys.executable).parent / "mcp-server-time")  # the published reference server (PyPI)


def write_config(path: Path, servers: dict) -> str:
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


def notes(notes_dir: Path, **extra) -> dict:
    return {"command": sys.executable, "args": [NOTES_SERVER], "env": {"NOTES_DIR": str(notes_dir)}, **extra}


def time_server() -> dict:
    return {"command": TIME_SERVER, "args": ["--local-timezone", "UTC"]}


def evil(mode: str, **extra) -> dict:
    return {"command": sys.executable, "args": [EVIL_SERVER, mode], **extra}


def server_procs(kernel_pid: int) -> list[psutil.Process]:
    """Every process under the kernel that belongs to an MCP server (launchers and servers)."""
    try:
        kids = psutil.Process(kernel_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in kids:
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if "launch.py" in cmd or "notes_server" in cmd or "mcp-server-time" in cmd or "mcp_evil_server" in cmd:
            out.append(p)
    return out


def gone(procs: list[psutil.Process], within: float = 15.0) -> list[psutil.Process]:
    """The processes still alive (not zombies) after ``within`` seconds."""
    deadline = time.monotonic() + within
    alive = procs
    while alive and time.monotonic() < deadline:
        _, alive = psutil.wait_procs(alive, timeout=0.5)
        alive = [p for p in alive if _alive(p)]
    return alive


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run_script(kernel, steps, agent="ToolAgent", timeout=120):
    """Run a ToolAgent script (a JSON list of steps) to its end and return its result."""
    pid = kernel.spawn(agent, json.dumps(steps))
    snap = kernel.wait(pid, timeout=timeout)
    assert snap["state"] == "done", snap["error"]
    return snap["result"]


def audit(kernel) -> list[dict]:
    """The kernel's audit log, one dict a line ([] before anything was audited)."""
    path = kernel.request("access", timeout=5)["audit_log"]
    try:
        with open(path) as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []
