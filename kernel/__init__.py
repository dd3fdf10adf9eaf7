"""The AIOS kernel. Light on import: the front and agents import parts of it
(messages, channel, config, boot) and must never pull in torch."""

from kernel.config import KernelConfig

__all__ = ["KernelConfig"]
