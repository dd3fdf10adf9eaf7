"""MemFsAgent's code under another app name (a different storage owner)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "memfs_agent_impl", Path(__file__).resolve().parent.parent / "memfs_agent" / "agent.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)


class MemFsPeer(_mod.MemFsAgent):
    pass
