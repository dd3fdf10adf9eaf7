"""The kernel's catalog of installed agent apps, found by convention: ``agent_apps/<folder>/config.json``.

Each config names the agent (``"name": "MathAgent"``), describes it, lists
its steps and tools; ``agent.py`` in the same folder defines a class of the
same name. More folders of agent apps can be listed in ``AIOS_AGENT_PATH``
(colon-separated, searched after agent_apps/). The kernel reads it at each
spawn and hands it to the front through the ``apps`` control op (the shell's
``agents`` and its completion show the kernel's apps, a daemon's included).
Light module: a front with no kernel yet (``aios agents``, ``aios run``'s
check before it boots one, main.py's demo list) reads it too. An app's record
is kernel/protocol/profile.py's AgentApp, sent to the agent in its boot frame.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from kernel.protocol.profile import AgentApp, validate_command

ROOT = Path(__file__).resolve().parents[1] / "agent_apps"  # the bundled apps


def roots() -> list[Path]:
    # a relative entry means the folder it names from here, not from an agent's workspace
    extra = [Path(os.path.abspath(p)) for p in os.environ.get("AIOS_AGENT_PATH", "").split(os.pathsep) if p]
    return [ROOT, *extra]


@dataclass(frozen=True)
class BrokenApp:
    """An app folder whose profile cannot be used: ``agents`` lists it, the kernel warns at boot."""
    folder: str  # the app's folder name, e.g. math_agent
    path: str  # its config.json
    error: str  # why, one line: "line 3, column 5: Expecting ',' delimiter"


def discover() -> dict[str, AgentApp]:
    return scan()[0]


def broken() -> list[BrokenApp]:
    """App folders whose config.json cannot be read or is not a usable profile (one entry each)."""
    return scan()[1]


def scan() -> tuple[dict[str, AgentApp], list[BrokenApp]]:
    """(installed apps by name, broken app folders); agent_apps/ wins over extra paths."""
    apps: dict[str, AgentApp] = {}
    bad: list[BrokenApp] = []
    for root in roots():
        found, errors = _scan(root)
        for name, app in found.items():
            apps.setdefault(name, app)
        bad += errors
    return apps, bad


def catalog() -> dict:
    """The ``apps`` control op's answer, JSON: {"apps": [{name, description, steps, tools, path}],
    "broken": [{folder, path, error}]}, read now (what a spawn would find)."""
    found, broken = scan()
    return {"apps": [{"name": app.name, "description": app.description, "steps": len(app.steps),
                      "tools": list(app.tools), "path": app.path} for _, app in sorted(found.items())],
            "broken": [{"folder": b.folder, "path": b.path, "error": b.error} for b in broken]}


def _why(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"line {e.lineno}, column {e.colno}: {e.msg}"
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text ({e.reason} at byte {e.start})"
    return getattr(e, "strerror", None) or str(e)


def _scan(root: Path) -> tuple[dict[str, AgentApp], list[BrokenApp]]:
    apps: dict[str, AgentApp] = {}
    bad: list[BrokenApp] = []
    prefix = "agent_apps" if root == ROOT else f"aios_ext_{abs(hash(str(root)))}"
    for cfg in sorted(root.glob("*/config.json")):
        def broken_app(why: str) -> None:  # a broken profile hides only that agent, and says why
            bad.append(BrokenApp(cfg.parent.name, str(cfg), why))
        try:
            data = json.loads(cfg.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as e:
            broken_app(_why(e))
            continue
        if not isinstance(data, dict):
            broken_app(f"expected a JSON object, found {type(data).__name__}")
            continue
        if not (cfg.parent / "agent.py").exists():
            why = _command_error(data)
            if why:
                broken_app(why)
                continue
        name = data.get("name") or cfg.parent.name
        desc = data.get("description", "")
        if isinstance(desc, list):
            desc = " ".join(desc)
        apps[name] = AgentApp(name=name, module=f"{prefix}.{cfg.parent.name}.agent",
                              path=str(cfg.parent / ("agent.py" if (cfg.parent / "agent.py").exists()
                                                     else "config.json")), description=desc,
                              steps=list(data.get("steps", [])), tools=list(data.get("tools", [])), config=data)
    return apps, bad


def _command_error(data: dict) -> str | None:
    """Why a profile without agent.py cannot run, or None: it needs a good ``"command"``
    (agent_apps/command.py); a bad command hides the app."""
    if "command" not in data:
        return "no agent.py next to it and no \"command\""
    try:
        validate_command(data["command"])
    except ValueError as e:
        return str(e)
    return None


def not_found(name: str) -> str:
    """Why no agent is named ``name``, in one line (the kernel's ESRCH for a spawn): its own broken
    profile if it has one, else the nearest installed name (did you mean), then the installed ones."""
    apps, bad = scan()
    names = sorted(apps)

    def key(word: str) -> str:  # "Broken_Agent", "brokenagent", "broken" -> "broken"
        return "".join(c for c in word.lower() if c.isalnum()).removesuffix("agent")
    mine = [b for b in bad if key(b.folder) == key(name)]
    near = closest(name)
    hint = f"; {mine[0].path} cannot be read ({mine[0].error})" if mine else \
        f"; did you mean {near!r}?" if near else ""
    known = ", ".join(names[:8]) + (f" and {len(names) - 8} more; `agents` lists them" if len(names) > 8 else "")
    return f"no agent named {name!r}{hint} (installed: {known or 'none'})"


def closest(name: str) -> str | None:
    """The installed agent whose name is nearest ``name`` (did you mean), or None."""
    import difflib

    lower = {n.lower(): n for n in discover()}
    best = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
    return lower[best[0]] if best else None


def find(name: str) -> AgentApp | None:
    """Look an agent up by name, case-insensitively (``mathagent`` finds MathAgent)."""
    apps = discover()
    if name in apps:
        return apps[name]
    low = {k.lower(): v for k, v in apps.items()}
    return low.get(name.lower())
