"""Under ``--confine strict`` the bundled agents, their tools, memory and storage still work, and a
kernel that lacks a layer refuses to start agents instead of running them half-confined."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kernel import apps as registry
from kernel.config import KernelConfig
from kernel.confine import sandbox
from kernel.confine.probe import Layers, boot_report, probe
from secure_kernel import target  # noqa: F401 (fixture)

BUNDLED = ["MathAgent", "ReActAgent"]  # the two that use tools; the others differ only in prompts


def test_bundled_agents_run_confined(target):
    c = target.client
    pids = {name: c.spawn(name, registry.find(name).config["demo_task"]) for name in BUNDLED}
    snaps = {name: c.wait(pid, timeout=300) for name, pid in pids.items()}
    for name, snap in snaps.items():
        assert snap["state"] == "done", (name, snap["error"])
        assert snap["confinement"].startswith("namespaces+landlock+seccomp+rlimits"), snap["confinement"]
        assert snap["syscalls"].get("llm.chat", 0) >= 1, (name, snap["syscalls"])
    assert snaps["MathAgent"]["syscalls"]["tool.call"] == 1  # the calculator, run by the kernel
    info = c.info(pids["MathAgent"])
    assert info["confinement"] == snaps["MathAgent"]["confinement"]


def test_memory_storage_and_peers_work_confined(target):
    ops = [{"call": "fs.write", "args": {"name": "notes", "data": "kept"}},
           {"call": "fs.read", "args": {"name": "notes"}},
           {"call": "mem.add", "args": {"content": "a confined memory"}},
           {"call": "mem.search", "args": {"query": "confined"}},
           {"spawn_wait": {"agent": "MemFsPeer", "task": {"ops": [{"call": "fs.list", "args": {}}]}}}]
    snap = target.client.wait(target.client.spawn("MemFsAgent", json.dumps({"ops": ops})), timeout=120)
    assert snap["state"] == "done", snap["error"]
    out = snap["result"]
    assert all("ok" in o for o in out), out
    assert out[1]["ok"]["data"] == "kept"


def test_strict_refuses_when_a_layer_is_missing(tmp_path):
    cfg = KernelConfig.from_flags(confine="strict", data_dir=str(tmp_path / "data"), log_dir=str(tmp_path / "logs"))
    no_ns = Layers(bwrap=None, bwrap_why="bubblewrap is not installed", landlock_abi=probe().landlock_abi,
                   root=os.geteuid() == 0)
    app = registry.find("EchoAgent")
    (tmp_path / "ws").mkdir()
    with pytest.raises(sandbox.ConfineError, match="strict: missing namespaces"):
        sandbox.launch(cfg, no_ns, app, str(tmp_path / "ws"), [], None)
    lines = boot_report("strict", no_ns)
    assert any(level == "error" and "refuses to start agents" in text for level, text in lines)
    assert boot_report("off", no_ns)[0][0] == "warning"


def test_profile_limits_and_network_need_the_kernel(tmp_path):
    cfg = KernelConfig.from_flags(data_dir=str(tmp_path / "data"), log_dir=str(tmp_path / "logs"))
    assert sandbox.limits_for(cfg, {})["memory_bytes"] == 2 << 30
    assert sandbox.limits_for(cfg, {"limits": {"memory_mb": 4096, "processes": 128}})["processes"] == 128
    with pytest.raises(sandbox.ConfineError, match="positive integers"):
        sandbox.limits_for(cfg, {"limits": {"memory_mb": -1}})
    app = registry.AgentApp(name="Netty", module="x", path=str(tmp_path / "netty" / "agent.py"),
                            description="", config={"network": True})
    with pytest.raises(sandbox.ConfineError, match="--confine_allow_network"):
        sandbox.launch(cfg, probe(), app, str(tmp_path), [], None)
    escape = registry.AgentApp(name="Esc", module="x", path=str(tmp_path / "apps" / "esc" / "agent.py"),
                               description="", config={"read_paths": ["../../.."]})
    with pytest.raises(sandbox.ConfineError, match="leaves the folder of apps"):
        sandbox.app_paths(escape)


def test_a_workspace_replaced_by_a_link_is_refused(tmp_path):
    (tmp_path / "ws").symlink_to("/")
    with pytest.raises(sandbox.ConfineError, match="symlink"):
        sandbox.open_workspace(str(tmp_path / "ws"))


def test_an_app_folder_under_tmp_is_seen_inside_the_sandbox(tmp_path):
    """The agent's private /tmp must not hide what lives under the host's /tmp: an app folder there (and a
    project or virtualenv cloned there) is bound on top of it. Before, bwrap could not find the agent."""
    import shutil
    import tempfile

    from conftest import start_kernel

    apps = Path(tempfile.mkdtemp(prefix="aios-apps-", dir="/tmp"))
    try:
        (apps / "tmp_app").mkdir()
        (apps / "tmp_app" / "config.json").write_text('{"name": "TmpAppAgent", "description": "an app under /tmp"}')
        (apps / "tmp_app" / "agent.py").write_text(
            "import os\n\nclass TmpAppAgent:\n    def __init__(self, app):\n        self.app = app\n\n"
            "    def run(self, task):\n        return {'task': task, 'tmp': os.listdir('/tmp')}\n")
        saved = os.environ.get("AIOS_AGENT_PATH", "")
        os.environ["AIOS_AGENT_PATH"] = os.pathsep.join([saved, str(apps)])
        try:
            client, _ = start_kernel(tmp_path)
        finally:
            os.environ["AIOS_AGENT_PATH"] = saved
        try:
            snap = client.wait(client.spawn("TmpAppAgent", "hi"), timeout=120)
        finally:
            client.stop()
        assert snap["state"] == "done", snap["error"]
        assert snap["result"]["task"] == "hi" and "namespaces" in snap["confinement"], snap
        # its /tmp is still its own: of the host's /tmp it sees only what is bound for it (this folder, and
        # the project and virtualenv when they live there too)
        import sys
        bound = {apps.name} | {Path(p).parts[2] for p in (str(sandbox.ROOT), sys.prefix, os.path.realpath(sys.prefix))
                               if Path(p).parts[1:2] == ("tmp",) and len(Path(p).parts) > 2}
        assert apps.name in snap["result"]["tmp"] and set(snap["result"]["tmp"]) <= bound, snap["result"]
    finally:
        shutil.rmtree(apps)
