"""The inside of confinement: what an agent process does to itself, first thing, before any agent code
runs (inside.apply: resource limits, capabilities dropped, no new privileges, Landlock, the seccomp filter).

The kernel's side (what the machine supports, the plan, bubblewrap, the connect() supervisor) is
kernel/confine/; it asks this side what holds here by running ``python -m agent_apps.confine.check``
as a child, never by importing it. This package's __init__ stays import-free: the sandbox binds
inside.py, landlock.py and seccomp.py one by one.
"""
