"""PrivilegeKeeperAgent: root's powers and setuid files (tests/security, issue 24)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("hostile", Path(__file__).resolve().parent.parent / "_lib" / "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


class PrivilegeKeeperAgent(hostile.Hostile):
    attack = "privileges"
