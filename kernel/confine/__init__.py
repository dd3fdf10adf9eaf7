"""Confinement of agent processes, the kernel's side: see probe.py for the layers.

probe.probe() (what the machine supports), sandbox.launch() (start one agent
confined: bubblewrap, or the fallback), notify.py (connect() supervision in the
fallback), doctor.py (--confine-check). The agent's side (inside.apply: limits,
no new privileges, Landlock, seccomp) is agent_apps/confine/, which the agent
runtime imports inside the sandbox; the kernel never imports it.
"""
