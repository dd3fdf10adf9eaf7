"""AccessManager: privilege groups, ownership, confirmations, quotas, audit.

Principals and groups. The principal that owns memory, storage and a tool
workspace is the agent app (its name, e.g. MathAgent), like a Unix user:
what a run stores is there for the next run of the same app. Every app has
one privilege group, by default its own name; the user (control op
``setgroup``) or the agent itself (syscall ``access.setgroup``, after a
confirmation) can move it into a shared group. Assignments persist in
``<data_dir>/access/groups.json``. A process's ``pcb.group`` is its app's
group, set at spawn and updated live.

  Why not one group per run ("<name>:<pid>")? Ownership is per app, so a
  per-run group would make two runs of one app strangers while they own the
  same data, and a grant would vanish at the end of the run it was made for.

Rule (``check``): the owner may do anything to its resources (for
per-process objects, working memory, the owner is that process); another
agent may only read them (read, list, search, get, versions; dotted names
like fs.read count by their last part), and only when both apps are in
the same group now. Everything else is EPERM plus an audit line. The
storage and memory managers call ``check`` through kernel/storage/guard.py.

Tools (``check_tool``): a process may call the tools its app's profile
listed when it was spawned (``pcb.tools``, set by the kernel at spawn from
the profile it launched); the profile on disk is never read again for a
running process, so editing it changes only later spawns.

Confirmations (``confirm``): irreversible actions (delete, overwrite, the
shell tool, changing privileges) are put to the user when the front runs
the interactive shell (``interactive_confirm``: event ``confirm`` -> control
op ``confirm``, a timeout denies); otherwise ``confirm_policy`` decides
(deny by default). The decision reaches ``done(allowed, reason)`` later on the
loop thread; nothing blocks. Every decision is an audit line.

Threads: ``confirm``, ``decide``, ``set_group`` and the pending table belong
to the loop thread. ``check`` may run on any thread (reads a dict, writes
the audit log under its own lock).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Callable

from kernel.access.audit import AuditLog
from kernel.access.quota import Quotas
from kernel.protocol import messages
from kernel.syscall import SyscallFailure

log = logging.getLogger("aios.access")
READ_ACTIONS = frozenset({"read", "list", "search", "get", "versions", "info"})
GROUP_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass
class Pending:
    cid: int
    pcb: object
    action: str
    resource: str
    detail: str
    done: Callable[[bool, str], None]


class AccessManager:
    def __init__(self, config):
        from kernel.logs import _stamp

        self.interactive = bool(config.access.interactive_confirm)
        self.policy = config.access.confirm_policy
        self.confirm_timeout_s = float(config.access.confirm_timeout_s)
        self.groups_path = os.path.join(os.path.abspath(config.data_dir), "access", "groups.json")
        self.audit = AuditLog(os.path.join(config.logs.dir, f"audit-{_stamp()}.log"),
                              max_bytes=config.logs.max_bytes, backups=config.logs.backups)
        self.quotas = Quotas(config)
        self.kernel = None
        self._groups: dict[str, str] = self._load_groups()  # agent app -> group (absent: its own name)
        self._pending: dict[int, Pending] = {}
        self._cids = itertools.count(1)

    # -- service hooks ---------------------------------------------------------------
    def start(self, kernel) -> None:
        self.kernel = kernel
        mode = "ask the user" if self.interactive else f"policy {self.policy}"
        try:
            self.audit.open()  # the path announced below exists from now on
        except OSError as e:
            log.warning("audit log %s cannot be created: %s", self.audit.path, e)
        log.info("access: confirmations: %s; quotas %s; audit log %s", mode, self.quotas.describe(), self.audit.path)

    def on_exit(self, pcb) -> None:
        for p in [p for p in self._pending.values() if p.pcb.pid == pcb.pid]:
            self.decide(p.cid, False, "agent-ended")
        self.quotas.forget(pcb.pid)

    def stop(self) -> None:
        for cid in list(self._pending):
            self.decide(cid, False, "kernel-stopping")
        self.audit.close()

    # -- groups -------------------------------------------------------------------------
    def _load_groups(self) -> dict[str, str]:
        try:
            with open(self.groups_path, encoding="utf-8") as f:
                data = json.load(f)
            return {str(k): str(v) for k, v in data.get("agents", {}).items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError) as e:
            log.warning("access: cannot read %s (%s); every agent is in its own group", self.groups_path, e)
            return {}

    def _save_groups(self) -> None:
        os.makedirs(os.path.dirname(self.groups_path), exist_ok=True)
        tmp = self.groups_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"agents": self._groups}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.groups_path)

    def group_of(self, agent: str) -> str:
        return self._groups.get(agent, agent)

    def members(self, group: str) -> list[str]:
        named = {a for a, g in self._groups.items() if g == group}
        if group not in self._groups:
            named.add(group)  # the app named like the group is in it unless it was moved elsewhere
        return sorted(named)

    def set_group(self, agent: str, group: str, by: str, pcb=None) -> None:
        """Loop thread: move an agent app (and its live processes) into ``group``."""
        if not GROUP_RE.match(group):
            raise SyscallFailure(messages.EINVAL, f"bad group name {group!r} (letters, digits, _ . : -, at most 64)")
        old = self.group_of(agent)
        if group == agent:
            self._groups.pop(agent, None)
        else:
            self._groups[agent] = group
        self._save_groups()
        if self.kernel is not None:
            for p in self.kernel.table.live():
                if p.name == agent:
                    with self.kernel.table.lock:
                        p.group = group
        self.audit.write("group", pcb, target=agent, old_group=old, new_group=group, by=by)
        log.info("access: %s moved from group %s to %s (by %s)", agent, old, group, by)

    # -- checks -------------------------------------------------------------------------
    @staticmethod
    def is_read(action: str) -> bool:
        """read, list, search, get, versions, info; also dotted: fs.read, mem.read, fs.list, fs.versions."""
        return action.rsplit(".", 1)[-1] in READ_ACTIONS

    def may(self, pcb, action: str, owner: str, owner_pid: int | None = None) -> bool:
        if (pcb.pid == owner_pid) if owner_pid is not None else (owner == pcb.name):
            return True
        return self.is_read(action) and self.group_of(owner) == self.group_of(pcb.name)

    def check(self, pcb, action: str, owner: str | None = None, resource: str | None = None, *,
              group: str | None = None, owner_pid: int | None = None, nbytes: int = 0) -> None:
        """Raise EPERM (and write an audit line) unless ``pcb`` may ``action`` ``owner``'s ``resource``.

        ``owner``: the agent app that owns the object; ``owner_pid``: set for per-process objects
        (working memory), which only that process may change. ``group`` (the group recorded on the
        object) is accepted but not used: the owner's *current* group decides, so moving an app out
        of a group revokes access to everything it stored. ``nbytes`` > 0 (a write) is also checked
        against the owner's storage quota (EDQUOT).
        """
        owner = owner or pcb.name
        resource = resource or f"data of {owner}"
        if not self.may(pcb, action, owner, owner_pid):
            if not self.is_read(action):
                why = f"it belongs to {owner}" + (f" (pid {owner_pid})" if owner_pid is not None else "")
            else:
                why = (f"{owner} is in group {self.group_of(owner)!r} and {pcb.name} in "
                       f"{self.group_of(pcb.name)!r}; only agents of one group read each other's data")
            self.deny(pcb, action, resource, why, owner=owner)
        if nbytes > 0 and action.startswith("fs."):
            self.check_storage(pcb, owner, nbytes)

    def deny(self, pcb, action: str, resource: str, why: str, **extra) -> None:
        """Audit and raise EPERM: '<agent> (pid N) may not <action> <resource>: <why>'."""
        self.audit.write("deny", pcb, action=action, resource=resource, reason=why, **extra)
        raise SyscallFailure(messages.EPERM, f"{pcb.name} (pid {pcb.pid}) may not {action} {resource}: {why}")

    @staticmethod
    def profile_tools(app) -> frozenset | None:
        """The tools an app's profile (config.json "tools") grants; None means any ("*"). Read once, at
        spawn, into ``pcb.tools``: a profile edited on disk later changes the next spawn, never a running
        process (the file is the app's, and the app's code may be hostile)."""
        listed = list(app.tools) if app is not None else []
        return None if "*" in listed else frozenset(str(t) for t in listed)

    @staticmethod
    def allowed_tools(pcb) -> frozenset | None:
        """Tools the agent's profile listed when it was spawned; None means any ("*")."""
        return pcb.tools

    def tool_allowed(self, pcb, name: str) -> bool:
        """Listed by name, or an MCP tool whose whole server is listed as ``mcp__<server>__*``."""
        allowed = self.allowed_tools(pcb)
        if allowed is None or name in allowed:
            return True
        server, sep, _ = name[5:].partition("__") if name.startswith("mcp__") else ("", "", "")
        return bool(sep and server) and f"mcp__{server}__*" in allowed

    def check_tool(self, pcb, name: str) -> None:
        allowed = self.allowed_tools(pcb)
        if not self.tool_allowed(pcb, name):
            self.deny(pcb, "call", f"tool {name}", f"its profile (config.json \"tools\", read at spawn) lists "
                                                   f"{', '.join(sorted(allowed)) or 'no tools'}")

    # -- confirmations (loop thread) ------------------------------------------------------
    def confirm(self, pcb, action: str, resource: str, detail: str, done: Callable[[bool, str], None]) -> None:
        """Ask for an irreversible action; ``done(allowed, reason)`` is called once, later, on the loop thread."""
        trace = getattr(self.kernel, "trace", None)
        if trace is not None:  # the call's span shows the question and its answer (kernel/trace)
            done = trace.on_confirm(pcb.pid, action, done)
        if not self.interactive:
            allow = self.policy == "allow"
            self.audit.write("confirm", pcb, action=action, resource=resource, detail=detail, allow=allow, by="policy")
            reason = f"--confirm_policy {self.policy}"
            self.kernel.post(lambda: done(allow, reason))
            return
        cid = next(self._cids)
        self._pending[cid] = Pending(cid, pcb, action, resource, detail, done)
        self.kernel.event(event="confirm", cid=cid, pid=pcb.pid, agent=pcb.name, action=f"{action} {resource}",
                          detail=detail, timeout_s=self.confirm_timeout_s)
        self.kernel.call_later(self.confirm_timeout_s, lambda: self.decide(cid, False, "timeout"))

    def decide(self, cid: int, allow: bool, by: str) -> bool:
        """Settle a pending confirmation; False if there is none with this cid (already decided)."""
        p = self._pending.pop(cid, None)
        if p is None:
            return False
        self.audit.write("confirm", p.pcb, action=p.action, resource=p.resource, detail=p.detail,
                         allow=bool(allow), by=by, cid=cid)
        self.kernel.event(event="confirm_done", cid=cid, pid=p.pcb.pid, allow=bool(allow), by=by)
        reason = {"user": "the user " + ("allowed it" if allow else "said no"),
                  "timeout": f"no answer within {self.confirm_timeout_s:g}s"}.get(by, by)
        try:
            p.done(bool(allow), reason)
        except Exception:
            log.exception("access: confirmation %d callback failed", cid)
        return True

    def pending(self) -> list[dict]:
        return [{"cid": p.cid, "pid": p.pcb.pid, "agent": p.pcb.name, "action": p.action, "resource": p.resource,
                 "detail": p.detail}
                for p in self._pending.values()]

    # -- quotas --------------------------------------------------------------------------
    def llm_check(self, pcb) -> None:
        """At llm.chat: EDQUOT (audited) when pcb's group has no LLM tokens left."""
        try:
            self.quotas.llm_check(pcb.group, pcb.pid)
        except SyscallFailure as e:
            self.audit.write("quota", pcb, quota="llm_tokens", reason=e.message)
            raise

    def llm_admit(self, pcb, group: str, prompt_tokens: int, max_new: int) -> int:
        """Engine thread, when it admits a call: reserve its tokens in ``group``'s quota; the granted
        max_new, or EDQUOT (audited)."""
        try:
            return self.quotas.llm_admit(group, pcb.pid, prompt_tokens, max_new)
        except SyscallFailure as e:
            self.audit.write("quota", pcb, quota="llm_tokens", reason=e.message)
            raise

    def admit_syscall(self, pcb, name: str) -> None:
        """Kernel dispatch hook: raises EAGAIN when pcb is over its syscall rate."""
        if self.quotas.admit_syscall(pcb, name):
            return
        if self.quotas.throttled[pcb.pid] == 1:  # one audit line when throttling starts, not one per call
            self.audit.write("quota", pcb, quota="syscalls_per_s", syscall=name)
        raise self.quotas.rate_error(pcb)

    def check_storage(self, pcb, owner: str, add_bytes: int) -> None:
        """For the storage manager before a write: EDQUOT if ``owner`` would exceed its quota."""
        if not self.quotas.storage_bytes:
            return
        storage = getattr(self.kernel, "storage", None)
        used = storage.usage_bytes(owner) if storage is not None else 0
        try:
            self.quotas.check_storage(owner, used, add_bytes)
        except SyscallFailure as e:
            self.audit.write("quota", pcb, quota="storage_bytes", owner=owner, reason=e.message)
            raise

    def describe(self) -> dict:
        return {"interactive_confirm": self.interactive, "confirm_policy": self.policy,
                "confirm_timeout_s": self.confirm_timeout_s, "audit_log": self.audit.path,
                "groups": dict(sorted(self._groups.items())), "pending": self.pending(),
                "quotas": self.quotas.describe()}
