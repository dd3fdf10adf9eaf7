"""The syscall table, assembled in one place (xv6's ``syscalls[]``).

Every call an agent can make is listed here, service by service; each
service module declares its own entries (name, argument schema, handler,
help) and registers nothing by being imported. ``kernel.syscall.validate``
looks calls up in ``TABLE``; the SDK's helpers cover exactly these names
(tests/unit/test_protocol.py checks it).
"""

from __future__ import annotations

from kernel.access.syscalls import SYSCALLS as ACCESS
from kernel.llm.syscalls import SYSCALLS as LLM
from kernel.memory.syscalls import SYSCALLS as MEMORY
from kernel.process.syscalls import SYSCALLS as PROCESS
from kernel.storage.syscalls import SYSCALLS as STORAGE
from kernel.syscall import assemble
from kernel.tools.syscalls import SYSCALLS as TOOLS

TABLE = assemble(
    LLM,      # llm.chat
    PROCESS,  # proc.info, proc.spawn, proc.wait, proc.exit
    MEMORY,   # mem.add, mem.get, mem.search, mem.clear, mem.stats
    STORAGE,  # fs.write, fs.read, fs.list, fs.versions, fs.rollback, fs.delete
    TOOLS,    # tool.list, tool.call
    ACCESS,   # access.info, access.setgroup
)
