"""MCP servers are untrusted: what they list and answer, and how they die, cannot hurt the
kernel (tests/security/mcp_evil_server.py). Black-box: real kernel, real server processes."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from conftest import start_kernel
from mcp_util import evil, gone, notes, run_script, server_procs, write_config


@pytest.fixture(scope="module")
def ek(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mcp_evil")
    (tmp / "notes").mkdir()
    cfg = write_config(tmp / "mcp.json", {
        "bad": evil("badtools"), "many": evil("manytools"), "rude": evil("flood"),
        "mute": evil("mute", start_timeout_s=3),
        "malformed": evil("malformed"), "fine": notes(tmp / "notes")})
    client, _ = start_kernel(tmp, mcp_config=cfg)
    yield client
    client.stop()


def listing(kernel) -> dict:
    return {t["name"]: t for t in run_script(kernel, [{"sys": "tool.list"}])[0]["ok"]}


def family_kernel(tmp_path):
    """A kernel of its own whose one MCP server, ``fam``, is the evil server in its ``family`` mode."""
    client, _ = start_kernel(tmp_path, mcp_config=write_config(tmp_path / "mcp.json", {"fam": evil("family")}))
    return client


def spawn_family(client) -> tuple[int, list[psutil.Process]]:
    """Have ``fam`` start a grandchild: the server's pid, and every MCP server process plus that grandchild."""
    out = run_script(client, [{"tool": "mcp__fam__spawn"}])[0]
    server_pid, grandchild = map(int, out["ok"]["text"].split())
    return server_pid, server_procs(client.pid) + [psutil.Process(grandchild)]


def test_bad_names_and_schemas_are_not_exposed(ek):
    tools = listing(ek)
    bad = sorted(n for n in tools if n.startswith("mcp__bad__"))
    assert bad == ["mcp__bad__ok"]  # odd names, non-object/invalid/deep/huge/regex/remote-ref schemas: dropped
    desc = tools["mcp__bad__ok"]["description"]
    assert "\x1b" not in desc and "\u202e" not in desc and "\x00" not in desc and "fine" in desc
    many = [n for n in tools if n.startswith("mcp__many__")]
    assert len(many) == 256  # capped
    assert not any(n.startswith("mcp__mute__") for n in tools)


def test_a_listing_outside_the_protocol_keeps_the_server_down(ek):
    out = run_script(ek, [{"tool": "mcp__malformed__ok", "timeout": 30}])[0]
    assert out["err"] == "EIO" and "MCP server malformed is" in out["msg"] and "ValidationError" in out["msg"]
    assert not any(n.startswith("mcp__malformed__") for n in listing(ek))


def test_untrusted_pattern_cannot_stall_the_kernel(ek):
    t0 = time.monotonic()
    out, calc = run_script(ek, [{"tool": "mcp__bad__ok", "args": {"s": "a" * 40 + "!"}},
                                {"tool": "calculator", "args": {"expression": "6*7"}}])
    assert out.get("ok") == {"text": "ok"} and calc["ok"]["value"] == 42
    assert time.monotonic() - t0 < 60  # a backtracking regex in the kernel would take hours


def test_flood_without_newline_ends_the_connection(ek):
    flood, after = run_script(ek, [{"tool": "mcp__rude__flood"}, {"tool": "mcp__rude__ok", "timeout": 30}])
    assert flood.get("err") == "EIO" and "more than 8388608 bytes" in flood["msg"], flood
    assert after.get("ok") == {"text": "ok"}  # restarted
    assert psutil.Process(ek.pid).memory_info().rss < 2 << 30


def test_garbage_lines_and_oversized_results(ek):
    garbage, big, after = run_script(ek, [{"tool": "mcp__rude__garbage"}, {"tool": "mcp__rude__big", "timeout": 30},
                                          {"tool": "mcp__rude__ok", "timeout": 30}])
    assert garbage["err"] == "EIO" and "not JSON-RPC" in garbage["msg"]
    assert big["err"] == "E2BIG"
    assert after.get("ok") == {"text": "ok"}


def test_a_server_that_never_answers(ek):
    out = run_script(ek, [{"tool": "mcp__mute__anything", "timeout": 5}])[0]
    assert out["err"] == "EIO" and "did not start" in out["msg"] and "within 3s" in out["msg"]
    assert run_script(ek, [{"tool": "mcp__fine__add", "args": {"a": 1, "b": 2}}])[0]["ok"]["structured"] == {"result": 3.0}


def test_kernel_killed_takes_every_server_process_along(tmp_path):
    """SIGKILL of the kernel: the launcher's PDEATHSIG kills each server's whole group, grandchildren
    and a server that ignores SIGTERM and the end of stdin included."""
    client = family_kernel(tmp_path)
    try:
        server_pid, procs = spawn_family(client)
        assert server_pid in {p.pid for p in procs}
        os.kill(client.pid, signal.SIGKILL)
        assert gone(procs) == [], [p.cmdline() for p in procs]
    finally:
        client.stop(timeout=5)


def test_kernel_stop_ends_a_server_that_ignores_signals(tmp_path):
    client = family_kernel(tmp_path)
    try:
        _, procs = spawn_family(client)
    finally:
        client.stop()
    assert gone(procs) == []
