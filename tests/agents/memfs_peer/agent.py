"""MemFsAgent's code under another app name (a different storage owner)."""

import runpy
from pathlib import Path

_impl = runpy.run_path(str(Path(__file__).resolve().parent.parent / "memfs_agent" / "agent.py"))


class MemFsPeer(_impl["MemFsAgent"]):
    pass
