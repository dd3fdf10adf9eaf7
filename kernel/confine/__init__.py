"""Confinement of agent processes (issue 10): see probe.py for the layers.

Kernel side: probe.probe() (what the machine supports), sandbox.launch()
(start one agent confined). Agent side: inside.apply() (limits, no new
privileges, Landlock), imported by agent_apps/runtime.py inside the sandbox.
This package's __init__ stays import-free: the agent side binds and imports
only inside.py and landlock.py.
"""
