"""Who may touch which memory or storage: the hook to the access manager.

Both managers ask here before serving a syscall. When the kernel has an
``access`` attribute (kernel/access/manager.py), it decides; without one the
built-in rule below applies (unit tests, a kernel built without it):

- an agent reads and writes its own: storage records of its app name, the
  working memory of its own pid;
- another agent may only READ them, and only from inside the same privilege
  group (a storage record carries the group of its last writer, working
  memory the group of its process);
- irreversible actions (delete, overwrite) are allowed.

The access manager's side (kernel/access/manager.py), loop thread::

    access.check(pcb, action, owner=..., resource=..., group=..., owner_pid=..., nbytes=...)
        raise SyscallFailure (EPERM; EDQUOT for the storage quota) to refuse.
        action: a key of VERBS (fs.read ... mem.clear); its last part says
        whether it is a read. owner: the app that owns the object; group: the
        group recorded on it; owner_pid: set for working memory (per
        process); nbytes: bytes a storage write adds.
    access.confirm(pcb, action, resource, detail, done)
        action: one of CONFIRMED; done(allowed: bool, reason: str) exactly
        once, on the loop thread, now or later.
"""

from __future__ import annotations

from typing import Callable

from kernel.protocol import messages
from kernel.syscall import SyscallFailure

# our action -> the access manager's verb
VERBS = {"fs.read": "read", "fs.versions": "read", "fs.list": "list", "mem.get": "get", "mem.search": "search",
         "fs.write": "write", "fs.rollback": "rollback", "fs.delete": "delete", "mem.add": "write",
         "mem.clear": "clear"}
READS = ("fs.read", "fs.versions", "fs.list", "mem.get", "mem.search")
CONFIRMED = ("fs.delete", "fs.overwrite")  # actions that go through confirm()


def is_own(pcb, owner: str, owner_pid: int | None) -> bool:
    return pcb.pid == owner_pid if owner_pid is not None else pcb.name == owner


def default_check(pcb, action: str, *, owner: str, group: str, resource: str,
                  owner_pid: int | None = None) -> None:
    """The built-in rule (see the module docstring); raises SyscallFailure(EPERM)."""
    if is_own(pcb, owner, owner_pid):
        return
    who = f"{pcb.name} (pid {pcb.pid}, group {pcb.group!r})"
    if action not in READS:
        raise SyscallFailure(messages.EPERM, f"{who} may not {VERBS[action]} {resource}: it belongs to {owner}")
    if group != pcb.group:
        in_group = f"agents in its privilege group {group!r}" if group else "agents in its privilege group"
        raise SyscallFailure(messages.EPERM, f"{who} may not read {resource}: only {owner} and {in_group} may")


def authorize(kernel, pcb, action: str, *, owner: str, group: str, resource: str,
              owner_pid: int | None = None, nbytes: int = 0) -> None:
    """Loop thread. Raise SyscallFailure unless ``pcb`` may do ``action`` (a key of VERBS).

    ``group``: the object's group for the built-in rule; ``nbytes``: bytes a
    storage write adds (the access manager checks them against the quota).
    """
    access = getattr(kernel, "access", None)
    if access is None:
        return default_check(pcb, action, owner=owner, group=group, resource=resource, owner_pid=owner_pid)
    access.check(pcb, action, owner=owner, resource=resource, group=group, owner_pid=owner_pid, nbytes=nbytes)


def confirm(kernel, pcb, action: str, resource: str, detail: str, done: Callable[[bool, str], None]) -> None:
    """Loop thread. Confirm an irreversible action (one of CONFIRMED); ``done(allowed, reason)``
    runs once on the loop thread, now or later. Allowed without an access manager."""
    access = getattr(kernel, "access", None)
    if access is None:
        return done(True, "allowed (no access manager)")
    access.confirm(pcb, action, resource, detail, done)
