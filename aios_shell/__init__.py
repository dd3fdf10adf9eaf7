"""The AIOS shell: one command table driving the REPL (prompt_toolkit) and batch runs.

    from aios_shell import ShellContext, Repl, run_batch
    ctx = ShellContext(interactive=True, llm_name=config.llm_name)
    client = KernelClient(config, on_event=ctx.on_event); ctx.attach(client)
    Repl(ctx).run()            # or: run_batch(ctx, open("jobs.txt"), "jobs.txt")

simulator.py is the program that does this. Never imports torch.
"""

from aios_shell.batch import run_batch
from aios_shell.commands import Dispatcher
from aios_shell.context import ShellContext
from aios_shell.handlers import TABLE
from aios_shell.repl import Repl

__all__ = ["Dispatcher", "Repl", "ShellContext", "TABLE", "run_batch"]
