"""The AIOS kernel. Light on import: the front and agents import parts of it
(the protocol in kernel/protocol/, the limits in kernel/param.py, an agent
kernel/confine/ to confine itself) and must never pull in torch; importing
the package itself loads nothing else (the agent sandbox binds this file, not
the config)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
