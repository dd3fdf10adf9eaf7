"""Installed agent apps, found by convention: ``agent_apps/<folder>/config.json``.

Each config names the agent (``"name": "MathAgent"``), describes it, lists
its steps and tools; ``agent.py`` in the same folder defines a class of the
same name. More folders of agent apps can be listed in ``AIOS_AGENT_PATH``
(colon-separated, searched after agent_apps/). Light module: the shell and
the kernel both read it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class AgentApp:
    name: str
    module: str  # module name the class is loaded as, e.g. agent_apps.math_agent.agent
    path: str  # the agent.py file
    description: str
    steps: list = field(default_factory=list)
    tools: list = field(default_factory=list)
    config: dict = field(default_factory=dict)


def roots() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("AIOS_AGENT_PATH", "").split(os.pathsep) if p]
    return [ROOT, *extra]


def discover() -> dict[str, AgentApp]:
    apps: dict[str, AgentApp] = {}
    for root in roots():
        for name, app in _scan(root).items():
            apps.setdefault(name, app)  # agent_apps/ wins over extra paths
    return apps


def _scan(root: Path) -> dict[str, AgentApp]:
    apps: dict[str, AgentApp] = {}
    prefix = "agent_apps" if root == ROOT else f"aios_ext_{abs(hash(str(root)))}"
    for cfg in sorted(root.glob("*/config.json")):
        try:
            data = json.loads(cfg.read_text())
        except ValueError:
            continue  # a broken profile hides only that agent
        if not isinstance(data, dict):
            continue
        if not (cfg.parent / "agent.py").exists() and not _command_ok(data):
            continue
        name = data.get("name") or cfg.parent.name
        desc = data.get("description", "")
        if isinstance(desc, list):
            desc = " ".join(desc)
        apps[name] = AgentApp(name=name, module=f"{prefix}.{cfg.parent.name}.agent",
                              path=str(cfg.parent / ("agent.py" if (cfg.parent / "agent.py").exists()
                                                     else "config.json")), description=desc,
                              steps=list(data.get("steps", [])), tools=list(data.get("tools", [])), config=data)
    return apps


def _command_ok(data: dict) -> bool:
    """A profile with ``"command"`` (agent_apps/command.py) needs no agent.py; a bad command hides the app."""
    if "command" not in data:
        return False
    from agent_apps import command

    try:
        command.validate(data["command"])
    except ValueError:
        return False
    return True


def find(name: str) -> AgentApp | None:
    """Look an agent up by name, case-insensitively (``mathagent`` finds MathAgent)."""
    apps = discover()
    if name in apps:
        return apps[name]
    low = {k.lower(): v for k, v in apps.items()}
    return low.get(name.lower())


def load_class(app: AgentApp) -> type:
    """Import the app's agent.py and return its class (named like the app)."""
    if app.module.startswith("agent_apps."):
        mod = importlib.import_module(app.module)
    else:
        spec = importlib.util.spec_from_file_location(app.module, app.path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[app.module] = mod
        spec.loader.exec_module(mod)
    cls = getattr(mod, app.name, None)
    if cls is None:
        raise LookupError(f"{app.path} defines no class named {app.name}")
    return cls
