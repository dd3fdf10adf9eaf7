"""MCP tools through the kernel (--mcp_config): a server written with the SDK in this repo
(tests/mcp/servers/notes_server.py) and the published reference server mcp-server-time
(from PyPI), driven by real agent processes.

One kernel for this module (its own: the shared one has no MCP servers), with the real model.
"""

from __future__ import annotations

import json
import time

import psutil
import pytest

from aios_shell.preflight import PreflightError, preflight_config
from conftest import start_kernel
from kernel.config import KernelConfig
from kernel.tools.mcp import config as mcpconf
from mcp_util import audit, gone, notes, run_script, server_procs, time_server, write_config


@pytest.fixture(scope="module")
def mk(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mcp")
    (tmp / "notes").mkdir()
    cfg = write_config(tmp / "mcp.json", {"notes": notes(tmp / "notes"), "time": time_server(),
                                          "broken": notes(tmp / "notes", env={"CRASH_ON_START": "1"})})
    client, events = start_kernel(tmp, mcp_config=cfg)
    client.tmp = tmp
    yield client
    client.stop()


# -- the config file (no kernel) ------------------------------------------------------------
@pytest.mark.parametrize("text, fault", [
    ("{", "not valid JSON"), ("[]", '"mcpServers" object'), ('{"mcpServers": []}', '"mcpServers" object'),
    ('{"mcpServers": {"a__b": {"command": "x"}}}', "no '__'"),
    ('{"mcpServers": {"a": {"args": []}}}', '"command" must be'),
    ('{"mcpServers": {"a": {"command": "x", "args": "-v"}}}', '"args" must be'),
    ('{"mcpServers": {"a": {"command": "x", "env": {"A": 1}}}}', '"env" must map'),
    ('{"mcpServers": {"a": {"command": "x", "timeout_s": -1}}}', '"timeout_s"'),
])
def test_bad_config_is_refused_clearly(tmp_path, text, fault):
    path = tmp_path / "mcp.json"
    path.write_text(text)
    with pytest.raises(PreflightError, match="--mcp_config") as e:  # in the front, before a kernel starts
        preflight_config(KernelConfig.from_flags(mcp_config=str(path), data_dir=str(tmp_path)))
    assert fault in str(e.value)


def test_config_format(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "local": {"command": "./bin/srv", "args": ["-x"], "env": {"K": "v"}, "cwd": "work"},
        "onpath": {"command": "uvx", "args": ["mcp-server-time"]},
        "remote": {"url": "https://example.com/mcp"}, "off": {"command": "x", "disabled": True}}}))
    specs = {s.name: s for s in mcpconf.load(str(path))}
    assert sorted(specs) == ["local", "onpath"]  # the url entry and the disabled one are skipped
    assert specs["local"].command == str(tmp_path / "bin" / "srv") and specs["local"].cwd == str(tmp_path / "work")
    assert specs["onpath"].command == "uvx" and specs["local"].env == {"K": "v"}
    with pytest.raises(ValueError, match="cannot read"):
        mcpconf.load(str(tmp_path / "missing.json"))


# -- listing ----------------------------------------------------------------------------------
def test_tools_are_listed_with_schemas_and_side_effects(mk):
    (listed,) = run_script(mk, [{"sys": "tool.list"}])
    tools = {t["name"]: t for t in listed["ok"]}
    assert {"mcp__notes__add", "mcp__notes__write_note", "mcp__notes__delete_note", "mcp__time__convert_time",
            "mcp__time__get_current_time", "calculator"} <= set(tools)
    assert not any(n.startswith("mcp__broken__") for n in tools)  # a server that never starts lists nothing
    assert tools["mcp__notes__add"]["schema"]["required"] == ["a", "b"]
    assert tools["mcp__time__convert_time"]["schema"]["properties"]["time"]["type"] == "string"
    assert tools["mcp__notes__add"]["side_effect"] == "read_only"  # readOnlyHint
    assert tools["mcp__time__convert_time"]["side_effect"] == "read_only"
    assert tools["mcp__notes__delete_note"]["side_effect"] == "irreversible"  # destructiveHint
    assert tools["mcp__notes__write_note"]["side_effect"] == "irreversible"  # no annotations: not read-only
    shell_view = {t["name"]: t for t in mk.request("tools", timeout=10)}  # the shell's `tools` command
    assert shell_view["mcp__time__convert_time"]["server"] == "time"


# -- calls ------------------------------------------------------------------------------------
def test_calls_to_both_servers(mk):
    add, conv, bad_tz, bad_args, unknown = run_script(mk, [
        {"tool": "mcp__notes__add", "args": {"a": 2, "b": 3.5}},
        {"tool": "mcp__time__convert_time",
         "args": {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}},
        {"tool": "mcp__time__convert_time",
         "args": {"source_timezone": "Mars/Olympus", "time": "12:00", "target_timezone": "UTC"}},
        {"tool": "mcp__notes__add", "args": {"a": "two", "b": 3}},
        {"tool": "mcp__notes__nope", "args": {}}])
    assert add["ok"]["structured"] == {"result": 5.5} and add["ok"]["text"] == "5.5"
    assert conv["ok"]["structured"]["target"]["datetime"].endswith("T21:00:00+09:00")
    assert bad_tz["err"] == "EIO" and "Mars/Olympus" in bad_tz["msg"]  # the server's isError, with its text
    assert bad_args["err"] == "EINVAL" and "(at a)" in bad_args["msg"]  # checked by the kernel, as for built-ins
    assert unknown["err"] == "ENOENT" and "has no tool 'nope'" in unknown["msg"]
    tools = {t["name"]: t for t in mk.request("tools", timeout=10)}
    assert tools["mcp__notes__add"]["calls"] >= 1 and tools["mcp__time__convert_time"]["errors"] >= 1


def test_profile_grants_one_tool_or_a_whole_server(mk):
    add_only = run_script(mk, [{"tool": "mcp__notes__add", "args": {"a": 1, "b": 1}},
                               {"tool": "mcp__notes__whoami"},
                               {"tool": "mcp__time__get_current_time", "args": {"timezone": "UTC"}},
                               {"sys": "tool.list"}], agent="McpAddAgent")
    assert add_only[0]["ok"]["structured"] == {"result": 2.0}
    assert add_only[1]["err"] == "EPERM" and "lists mcp__notes__add" in add_only[1]["msg"]
    assert add_only[2]["err"] == "EPERM"
    allowed = {t["name"] for t in add_only[3]["ok"] if t["allowed"]}
    assert allowed == {"mcp__notes__add"}
    time_all = run_script(mk, [{"tool": "mcp__time__get_current_time", "args": {"timezone": "Europe/Paris"}},
                               {"tool": "mcp__notes__add", "args": {"a": 1, "b": 1}},
                               {"sys": "tool.list"}], agent="McpTimeAgent")
    assert time_all[0]["ok"]["structured"]["timezone"] == "Europe/Paris"
    assert time_all[1]["err"] == "EPERM"
    assert {t["name"] for t in time_all[2]["ok"] if t["allowed"]} == {"mcp__time__convert_time",
                                                                      "mcp__time__get_current_time"}
    denials = [a for a in audit(mk) if a["kind"] == "deny" and a["agent"] in ("McpAddAgent", "McpTimeAgent")]
    assert {a["resource"] for a in denials} == {"tool mcp__notes__whoami", "tool mcp__time__get_current_time",
                                                "tool mcp__notes__add"}


def test_destructive_and_unmarked_tools_need_confirmation(mk):
    (mk.tmp / "notes" / "keep").write_text("precious")
    write, delete = run_script(mk, [{"tool": "mcp__notes__write_note", "args": {"note": "new", "text": "x"}},
                                    {"tool": "mcp__notes__delete_note", "args": {"note": "keep"}}])
    assert write["err"] == "EPERM" and "not confirmed (--confirm_policy deny)" in write["msg"]
    assert delete["err"] == "EPERM"
    assert not (mk.tmp / "notes" / "new").exists() and (mk.tmp / "notes" / "keep").read_text() == "precious"
    asked = [a for a in audit(mk) if a["kind"] == "confirm" and "mcp__notes__" in a.get("resource", "")]
    assert {a["resource"] for a in asked} == {"tool mcp__notes__write_note", "tool mcp__notes__delete_note"}
    assert all(a["allow"] is False and a["by"] == "policy" for a in asked)
    assert "note='keep'" in next(a["detail"] for a in asked if a["resource"].endswith("delete_note"))


def test_agent_app_uses_an_mcp_tool_and_the_model(mk):
    pid = mk.spawn("McpAgent", "America/New_York 09:30 Europe/London")
    snap = mk.wait(pid, timeout=120)
    assert snap["state"] == "done", snap["error"]
    out = snap["result"]
    assert out["tool"] == "mcp__time__convert_time" and out["target"].startswith(out["target"][:10])
    assert "T14:30:00+00:00" in out["target"] or "T13:30:00+00:00" in out["target"]  # UTC+0 or BST, by date
    assert out["sentence"].strip()  # the model phrased it
    assert snap["tokens_out"] > 0


# -- failures -----------------------------------------------------------------------------------
def test_crash_mid_call_then_restart(mk):
    before, crash, after = run_script(mk, [{"tool": "mcp__notes__whoami"}, {"tool": "mcp__notes__crash"},
                                           {"tool": "mcp__notes__whoami"}])
    assert crash["err"] == "EIO" and "ended during the call (exited with code 3)" in crash["msg"]
    old, new = json.loads(before["ok"]["text"])["pid"], json.loads(after["ok"]["text"])["pid"]
    assert old != new and not still_alive(old)
    assert run_script(mk, [{"tool": "mcp__time__get_current_time", "args": {"timezone": "UTC"}}])[0].get("ok")


def still_alive(pid: int) -> bool:
    """Is ``pid`` still running (not a zombie) 10 s from now?"""
    try:
        return bool(gone([psutil.Process(pid)], within=10))
    except psutil.NoSuchProcess:
        return False


def test_timeouts_and_a_hung_server(mk):
    pid0 = json.loads(run_script(mk, [{"tool": "mcp__notes__whoami"}])[0]["ok"]["text"])["pid"]
    slow, add = run_script(mk, [{"tool": "mcp__notes__sleep", "args": {"seconds": 30}, "timeout": 1},
                                {"tool": "mcp__notes__add", "args": {"a": 1, "b": 2}}])
    assert slow["err"] == "ETIMEDOUT" and slow["t1"] - slow["t0"] < 10
    assert add["ok"]["structured"] == {"result": 3.0}  # a slow call is not a hang: same server
    # block() stalls the whole server: the call times out, the server misses the ping and is restarted
    # (a call sent to the hung server meanwhile fails with the reason; the next one reaches the new server)
    hung, stuck, again = run_script(mk, [{"tool": "mcp__notes__block", "args": {"seconds": 120}, "timeout": 1},
                                         {"tool": "mcp__notes__whoami", "timeout": 30},
                                         {"tool": "mcp__notes__whoami", "timeout": 30}])
    assert hung["err"] == "ETIMEDOUT"
    assert stuck["err"] == "EIO" and "did not answer a ping within 5s" in stuck["msg"]
    assert again.get("ok"), again
    assert json.loads(again["ok"]["text"])["pid"] not in (pid0,)
    assert not still_alive(pid0)


def test_crash_loop_is_bounded(mk):
    out = run_script(mk, [{"tool": "mcp__broken__add", "args": {"a": 1, "b": 1}}])[0]
    assert out["err"] == "EIO" and "MCP server broken is" in out["msg"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = run_script(mk, [{"tool": "mcp__broken__add", "args": {"a": 1, "b": 1}}])[0]
        if "is failed" in out["msg"]:
            break
        time.sleep(0.2)  # polling the condition above
    assert "MCP server broken is failed" in out["msg"] and "crashing on purpose" in out["msg"]
    assert run_script(mk, [{"tool": "mcp__notes__add", "args": {"a": 1, "b": 1}}])[0].get("ok")  # others go on


def test_kernel_stop_leaves_no_server_process(tmp_path):
    (tmp_path / "notes").mkdir()
    cfg = write_config(tmp_path / "mcp.json", {"notes": notes(tmp_path / "notes"), "time": time_server()})
    client, _ = start_kernel(tmp_path, mcp_config=cfg)
    try:
        run_script(client, [{"tool": "mcp__notes__whoami"}, {"tool": "mcp__time__get_current_time",
                                                             "args": {"timezone": "UTC"}}])
        procs = server_procs(client.pid)
        assert len(procs) >= 4, [p.cmdline() for p in procs]  # a launcher and a server each
    finally:
        client.stop()
    assert gone(procs) == []


def test_the_user_is_asked_before_a_destructive_mcp_tool(tmp_path):
    """Interactive shell mode: the question reaches the user; yes runs the tool, no does not."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep").write_text("precious")
    cfg = write_config(tmp_path / "mcp.json", {"notes": notes(tmp_path / "notes")})
    client, events = start_kernel(tmp_path, mcp_config=cfg, interactive_confirm=True, confirm_timeout_s=60)
    try:
        pid = client.spawn("ToolAgent", json.dumps([
            {"tool": "mcp__notes__write_note", "args": {"note": "new", "text": "hello"}},
            {"tool": "mcp__notes__delete_note", "args": {"note": "keep"}}]))
        asked = []
        deadline = time.time() + 60
        while len(asked) < 2 and time.time() < deadline:
            for ev in list(events.events):
                if ev.get("event") == "confirm" and ev["pid"] == pid and ev not in asked:
                    asked.append(ev)
                    client.request("confirm", timeout=5, cid=ev["cid"], allow=len(asked) == 1)
            time.sleep(0.05)
        snap = client.wait(pid, timeout=60)
    finally:
        client.stop()
    assert [e["action"] for e in asked] == ["tool.call tool mcp__notes__write_note",
                                            "tool.call tool mcp__notes__delete_note"]
    assert "note='keep'" in asked[1]["detail"]
    write, delete = snap["result"]
    assert write["ok"]["text"] == "written" and (tmp_path / "notes" / "new").read_text() == "hello"
    assert delete["err"] == "EPERM" and "the user said no" in delete["msg"]
    assert (tmp_path / "notes" / "keep").read_text() == "precious"
