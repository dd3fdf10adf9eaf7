"""The AIOS kernel. Light on import: the front and agents import parts of it
(messages, channel, config, boot) and must never pull in torch."""

__version__ = "0.1.0"

from kernel.config import KernelConfig  # noqa: E402

__all__ = ["KernelConfig", "__version__"]
