"""MCP tools benchmark: what a call of an MCP server's tool costs next to a built-in tool.

Usage::

    python bench/mcp_calls.py [--calls 100]

Prints, measured in this one run (a real kernel with tests/mcp/servers/notes_server.py and the
published mcp-server-time, one ToolAgent process making the calls one after another):
  round trip   p50/p99 of calculator (built-in, worker thread), mcp__notes__add (SDK test
               server) and mcp__time__get_current_time (reference server), seen by the agent
  start        kernel boot to the servers' tools listed (tool.list answered), and the time a
               crashed server takes to answer again (crash -> next whoami)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ["AIOS_AGENT_PATH"] = str(ROOT / "tests" / "agents")

from mcp_util import notes, time_server, write_config  # noqa: E402

from aios_shell.client import KernelClient  # noqa: E402
from bench.common import pct  # noqa: E402
from kernel.config import KernelConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aios-bench-mcp-"))
    (tmp / "notes").mkdir()
    cfg = write_config(tmp / "mcp.json", {"notes": notes(tmp / "notes"), "time": time_server()})
    t0 = time.monotonic()
    client = KernelClient(KernelConfig.from_flags(log_dir=str(tmp / "logs"), data_dir=str(tmp / "data"), mcp_config=cfg,
                                       max_new_tokens=16), on_event=lambda e: None)
    try:
        first = client.wait(client.spawn("ToolAgent", json.dumps([{"sys": "tool.list", "quiet": True}])), timeout=120)
        listed_s = time.monotonic() - t0
        calls = {"calculator": {"expression": "2+3"}, "mcp__notes__add": {"a": 2, "b": 3},
                 "mcp__time__get_current_time": {"timezone": "UTC"}}
        steps = [{"tool": name, "args": args, "quiet": True} for _ in range(a.calls) for name, args in calls.items()]
        steps += [{"tool": "mcp__notes__crash"}, {"tool": "mcp__notes__whoami", "timeout": 60}]
        snap = client.wait(client.spawn("ToolAgent", json.dumps(steps)), timeout=600)
        assert first["state"] == "done" and snap["state"] == "done", (first["error"], snap["error"])
        out = snap["result"]
        print(f"MCP tools, {a.calls} calls each, one agent, sequential (ms, agent's view)")
        print(f"{'tool':<32}{'p50':>8}{'p99':>8}{'mean':>8}")
        for i, name in enumerate(calls):
            xs = [(r["t1"] - r["t0"]) * 1e3 for r in out[i:3 * a.calls:3]]
            assert all(r.get("ok") for r in out[i:3 * a.calls:3])
            print(f"{name:<32}{pct(xs, 0.5):>8.2f}{pct(xs, 0.99):>8.2f}{statistics.mean(xs):>8.2f}")
        crash, again = out[-2], out[-1]
        print(f"kernel start -> MCP tools listed: {listed_s:.2f} s")
        print(f"crash mid-call -> answered again by the restarted server: {again['t1'] - crash['t1']:.2f} s "
              f"({'ok' if again.get('ok') else again})")
    finally:
        client.stop()


if __name__ == "__main__":
    main()
