"""The protocol every AIOS process shares: the front, the kernel and the agents import it.

  messages.py  the message records (syscall, log, reply), the error codes and CodedError
  channel.py   length-prefixed frames over an agent's pipes

Light modules (no torch, no transformers): an agent reads them inside its sandbox
(kernel/confine/sandbox.py lists the files it may read).
"""
