"""EnvThiefAgent: reads API keys from its and the kernel's environment (tests/security)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("hostile", Path(__file__).resolve().parent.parent / "_lib" / "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


class EnvThiefAgent(hostile.Hostile):
    attack = "env"
