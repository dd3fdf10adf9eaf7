"""Installed tools, found by convention: every module ``tools/<name>.py`` that
defines ``TOOLS = [...]`` (instances of tools.base.Tool). More folders can be
listed in ``AIOS_TOOL_PATH`` (colon-separated; each ``*.py`` file in them that
defines TOOLS is loaded, tools/ wins on a name clash).

Each tool is returned with the place it was loaded from (``origin``: a module
name or a file path) so a child process can load the same tool again.
Light module: imports no kernel code and no third-party packages.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pkgutil
import re
import sys
from pathlib import Path

from tools.base import SIDE_EFFECTS, Tool

log = logging.getLogger("aios.tools")
ROOT = Path(__file__).resolve().parent
NOT_TOOLS = {"base", "registry"}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _load_file(path: Path):
    modname = f"aios_tool_ext_{abs(hash(str(path)))}_{path.stem}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


def load_origin(origin: str):
    """Import the module a tool came from: ``tools.x`` or a file path."""
    if origin.endswith(".py"):
        return _load_file(Path(origin))
    return importlib.import_module(origin)


def _check(tool: Tool, origin: str) -> None:
    if not NAME_RE.match(tool.name or ""):
        raise ValueError(f"{origin}: bad tool name {tool.name!r}")
    if tool.side_effect not in SIDE_EFFECTS:
        raise ValueError(f"{origin}: {tool.name}: side_effect must be one of {SIDE_EFFECTS}")
    if tool.isolation not in ("thread", "process"):
        raise ValueError(f"{origin}: {tool.name}: isolation must be 'thread' or 'process'")
    if not (isinstance(tool.parallel, int) and tool.parallel >= 1):
        raise ValueError(f"{origin}: {tool.name}: parallel must be an integer >= 1")


def origins() -> list[str]:
    found = [f"tools.{m.name}" for m in pkgutil.iter_modules([str(ROOT)])
             if not m.name.startswith("_") and m.name not in NOT_TOOLS]
    for folder in os.environ.get("AIOS_TOOL_PATH", "").split(os.pathsep):
        if folder:
            found += [str(p) for p in sorted(Path(folder).glob("*.py")) if not p.name.startswith("_")]
    return found


def discover() -> dict[str, tuple[Tool, str]]:
    """name -> (tool, origin). A module that fails to load hides only its own tools (logged)."""
    out: dict[str, tuple[Tool, str]] = {}
    for origin in origins():
        try:
            mod = load_origin(origin)
            for tool in getattr(mod, "TOOLS", []):
                _check(tool, origin)
                out.setdefault(tool.name, (tool, origin))
        except Exception as e:  # a broken tool module must not stop the kernel
            log.warning("tools: cannot load %s: %s", origin, e)
    return out


def find(origin: str, name: str) -> Tool:
    for tool in getattr(load_origin(origin), "TOOLS", []):
        if tool.name == name:
            return tool
    raise LookupError(f"{origin} defines no tool {name!r}")
