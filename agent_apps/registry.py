"""Installed agent apps, found by convention: ``agent_apps/<folder>/config.json``.

Each config names the agent (``"name": "MathAgent"``), describes it, lists
its steps and tools; ``agent.py`` in the same folder defines a class of the
same name. Light module: the shell and the kernel both read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class AgentApp:
    name: str
    module: str  # importable module holding the class, e.g. agent_apps.math_agent.agent
    description: str
    steps: list = field(default_factory=list)
    tools: list = field(default_factory=list)
    config: dict = field(default_factory=dict)


def discover(root: Path = ROOT) -> dict[str, AgentApp]:
    apps: dict[str, AgentApp] = {}
    for cfg in sorted(root.glob("*/config.json")):
        if not (cfg.parent / "agent.py").exists():
            continue
        try:
            data = json.loads(cfg.read_text())
        except ValueError:
            continue  # a broken profile hides only that agent
        name = data.get("name") or cfg.parent.name
        desc = data.get("description", "")
        if isinstance(desc, list):
            desc = " ".join(desc)
        apps[name] = AgentApp(name=name, module=f"agent_apps.{cfg.parent.name}.agent", description=desc,
                              steps=list(data.get("steps", [])), tools=list(data.get("tools", [])), config=data)
    return apps


def find(name: str) -> AgentApp | None:
    """Look an agent up by name, case-insensitively (``mathagent`` finds MathAgent)."""
    apps = discover()
    if name in apps:
        return apps[name]
    low = {k.lower(): v for k, v in apps.items()}
    return low.get(name.lower())
