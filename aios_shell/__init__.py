"""The front: the shell (one command table driving the REPL and batch runs), the kernel's client
(client.py) and the daemon (daemon/).

    from aios_shell import ShellContext, Repl, run_batch
    from aios_shell.client import KernelClient
    ctx = ShellContext(interactive=True, llm_name=config.llm.name)
    client = KernelClient(config, on_event=ctx.on_event); ctx.attach(client)
    Repl(ctx).run()            # or: run_batch(ctx, open("jobs.txt"), "jobs.txt")

simulator.py is the program that does this. Never imports torch. The names below are
imported on first use, so ``aios_shell.client`` and ``aios_shell.daemon`` do not load
prompt_toolkit.
"""

from __future__ import annotations

import importlib

_WHERE = {"Dispatcher": "aios_shell.commands", "Repl": "aios_shell.repl", "ShellContext": "aios_shell.context",
          "TABLE": "aios_shell.handlers", "run_batch": "aios_shell.batch"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'aios_shell' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
