"""fs.* syscalls: persistent, versioned records of an agent app.

Records belong to the agent app (``pcb.name``), not to the process, so an
agent finds its records again on its next run. Data crosses the channel as a
string: UTF-8 text by default, or base64 for bytes (``encoding``).

Each handler checks access on the loop thread, queues the SQLite work on the
storage thread and returns DEFERRED; a Reply answers the call on the loop thread.
Reads of another app's records are checked against the record's group after
it is read (the group is stored with the record); a record another app does
not have reads as EPERM, not ENOENT, so names cannot be probed from outside
the group.

Confirmations (``guard.confirm``) are asked for what destroys data: fs.delete
always; an fs.write over an existing record only when it would prune the
oldest kept version (``storage_keep_versions``), or always with
``--storage_confirm_overwrite``. Any other overwrite keeps the old version
and can be undone with fs.rollback, so it is not irreversible.
"""

from __future__ import annotations

import base64
import binascii

from kernel.protocol import messages
from kernel.storage import cost, guard
from kernel.syscall import DEFERRED, Entries, Reply, SyscallFailure

SYSCALLS = Entries("fs")

NAME = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\x00-\\x1f\\x7f]+$"}
OWNER = {"type": "string", "minLength": 1, "maxLength": 128}
ENCODING = {"enum": ["utf-8", "base64"]}
VERSION = {"type": "integer", "minimum": 1, "maximum": 2**53}


def _charge(kernel, pcb):
    """The storage-quota check a write job runs on the storage thread (None without an access manager)."""
    access = getattr(kernel, "access", None)
    return None if access is None else (lambda nbytes: access.check_storage(pcb, pcb.name, nbytes))


def _resource(owner: str, name: str | None = None) -> str:
    return f"storage {owner}/{name}" if name is not None else f"storage of {owner}"


def _named(ap, call) -> tuple[str, str, str]:
    """(owner, name, resource) of a call on one record; ``owner`` is the caller's own app unless given."""
    owner, name = call.args.get("owner", ap.pcb.name), call.args["name"]
    return owner, name, _resource(owner, name)


def _settle(reply: Reply, then=lambda r: r):
    """A storage submit() callback (loop thread): answer with then(result), or with the job's error.
    ``then`` returns DEFERRED when it has handed ``reply`` to a confirmation."""
    def after(result, error):
        def value():
            if error is not None:
                raise error
            return then(result)
        reply.run(value, what="storage")
    return after


def _defer(kernel, ap, call, job, then=lambda r: r, reply: Reply | None = None):
    """Run job(db) on the storage thread; answer with then(result) on the loop thread."""
    kernel.storage.submit(job, _settle(reply or Reply(kernel, ap.pcb.pid, call.id), then))
    return DEFERRED


def _no_such(kernel, pcb, action, owner, resource, error):
    """Another app's missing record: EPERM unless the reader may read that app's storage at all."""
    if owner != pcb.name:
        guard.authorize(kernel, pcb, action, owner=owner, group="", resource=resource)
    raise error


def _encode(data: bytes, encoding: str, what: str) -> str:
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SyscallFailure(messages.EINVAL, f"{what} holds binary data: read it with encoding 'base64'") from None


def _public(info: dict) -> dict:
    return {k: v for k, v in info.items() if k not in ("data", "freed", "charged")}


def _check_name(name: str) -> None:
    """A record name is stored in UTF-8 in two rows and two indexes (cost.py): at most NAME_MAX_BYTES of it."""
    try:
        n = len(name.encode("utf-8"))
    except UnicodeEncodeError as e:  # a lone surrogate from JSON "\\ud800"
        raise SyscallFailure(messages.EINVAL, f"fs.write: name is not valid Unicode text: {e.reason}") from None
    if n > cost.NAME_MAX_BYTES:
        raise SyscallFailure(messages.EINVAL, f"fs.write: name is {n} bytes in UTF-8; at most "
                                              f"{cost.NAME_MAX_BYTES} (256 characters of ASCII, fewer of others)")


@SYSCALLS.register("fs.write", {
    "required": ["name", "data"],
    "properties": {"name": NAME, "data": {"type": "string"}, "encoding": ENCODING},
}, "store data as the next version of your record `name`; returns the version's info")
def fs_write(kernel, ap, call):
    pcb, sm, name = ap.pcb, kernel.storage, call.args["name"]
    text, enc = call.args["data"], call.args.get("encoding", "utf-8")
    _check_name(name)
    if enc == "base64":
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as e:
            raise SyscallFailure(messages.EINVAL, f"fs.write: data is not valid base64: {e}") from None
    else:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate from JSON "\\ud800"
            raise SyscallFailure(messages.EINVAL, f"fs.write: data is not valid Unicode text: {e.reason}; "
                                                  "send bytes with encoding 'base64'") from None
    if len(data) > sm.max_record_bytes:
        raise SyscallFailure(messages.E2BIG, f"fs.write: {len(data)} bytes exceed the {sm.max_record_bytes}-byte "
                                             "limit of one record (--storage_max_record_bytes)")
    resource = _resource(pcb.name, name)
    guard.authorize(kernel, pcb, "fs.write", owner=pcb.name, group=pcb.group, resource=resource, nbytes=len(data))

    def write_or_ask(db):
        cur = db.head(pcb.name, name)
        if cur is None:
            return sm.write_job(pcb.name, name, data, pcb.group, pcb.pid, 0, _charge(kernel, pcb))(db)
        if sm.confirm_overwrite or (sm.keep_versions and cur["kept"] >= sm.keep_versions):
            return cur  # this overwrite needs a confirmation first
        return sm.write_job(pcb.name, name, data, pcb.group, pcb.pid, cur["head"], _charge(kernel, pcb))(db)

    reply = Reply(kernel, pcb.pid, call.id)

    def then(res):
        if "version" in res:
            return _public(res)
        head = res["head"]
        what = ("the oldest kept version is pruned" if sm.keep_versions and res["kept"] >= sm.keep_versions
                else "older versions stay readable")

        def done(allowed, reason):
            if not allowed:
                return reply.fail(messages.EPERM, f"overwrite of {resource} was not confirmed: {reason}")
            sm.submit(sm.write_job(pcb.name, name, data, pcb.group, pcb.pid, head, _charge(kernel, pcb)),
                      _settle(reply, _public))
        guard.confirm(kernel, pcb, "fs.overwrite", resource,
                      f"write {len(data)} bytes over version {head} ({what})", done)
        return DEFERRED
    return _defer(kernel, ap, call, write_or_ask, then, reply)


@SYSCALLS.register("fs.read", {
    "required": ["name"],
    "properties": {"name": NAME, "version": VERSION, "owner": OWNER, "encoding": ENCODING},
}, "read your record (or `owner`'s, within a shared group), latest or `version`")
def fs_read(kernel, ap, call):
    pcb, a = ap.pcb, call.args
    owner, name, resource = _named(ap, call)

    def job(db):
        try:
            return db.read(owner, name, a.get("version"))
        except SyscallFailure as e:
            if e.code == messages.ENOENT:
                return e
            raise

    def then(rec):
        if isinstance(rec, SyscallFailure):
            _no_such(kernel, pcb, "fs.read", owner, resource, rec)
        guard.authorize(kernel, pcb, "fs.read", owner=owner, group=rec["group"], resource=resource)
        enc = a.get("encoding", "utf-8")
        return dict(_public(rec), data=_encode(rec["data"], enc, resource), encoding=enc)
    return _defer(kernel, ap, call, job, then)


@SYSCALLS.register("fs.list", {
    "properties": {"prefix": {"type": "string", "maxLength": 256}, "owner": OWNER,
                   "limit": {"type": "integer", "minimum": 1, "maximum": 10_000}},
}, "your records (or `owner`'s you may read) whose name starts with `prefix`")
def fs_list(kernel, ap, call):
    pcb, a = ap.pcb, call.args
    owner = a.get("owner", pcb.name)

    def then(rows):
        if owner == pcb.name:
            return rows
        allowed, denial = [], None
        for r in rows:
            try:
                guard.authorize(kernel, pcb, "fs.list", owner=owner, group=r["group"],
                                resource=_resource(owner, r["name"]))
                allowed.append(r)
            except SyscallFailure as e:
                denial = denial or e
        if not allowed:
            if denial is not None:
                raise SyscallFailure(denial.code, denial.message)
            guard.authorize(kernel, pcb, "fs.list", owner=owner, group="", resource=_resource(owner))
        return allowed
    return _defer(kernel, ap, call, lambda db: db.list(owner, a.get("prefix", ""), a.get("limit", 1000)), then)


@SYSCALLS.register("fs.versions", {
    "required": ["name"], "properties": {"name": NAME, "owner": OWNER},
}, "the versions kept of a record: version, size, sha256, created, op (write|rollback)")
def fs_versions(kernel, ap, call):
    pcb = ap.pcb
    owner, name, resource = _named(ap, call)

    def job(db):
        cur = db.head(owner, name)
        return None if cur is None else (cur["group"], db.versions(owner, name))

    def then(res):
        if res is None:
            _no_such(kernel, pcb, "fs.versions", owner, resource,
                     SyscallFailure(messages.ENOENT, f"{owner} has no record named {name!r}"))
        guard.authorize(kernel, pcb, "fs.versions", owner=owner, group=res[0], resource=resource)
        return res[1]
    return _defer(kernel, ap, call, job, then)


@SYSCALLS.register("fs.rollback", {
    "required": ["name", "version"], "properties": {"name": NAME, "version": VERSION},
}, "make an older version current again (stored as a new version; nothing is lost)")
def fs_rollback(kernel, ap, call):
    pcb, sm, a = ap.pcb, kernel.storage, call.args
    guard.authorize(kernel, pcb, "fs.rollback", owner=pcb.name, group=pcb.group,
                    resource=_resource(pcb.name, a["name"]))
    return _defer(kernel, ap, call, sm.rollback_job(pcb.name, a["name"], a["version"], pcb.group, pcb.pid,
                                                    _charge(kernel, pcb)), _public)


@SYSCALLS.register("fs.delete", {
    "required": ["name"], "properties": {"name": NAME},
}, "delete your record and all its versions (irreversible: needs confirmation)")
def fs_delete(kernel, ap, call):
    pcb, sm, name = ap.pcb, kernel.storage, call.args["name"]
    resource = _resource(pcb.name, name)
    guard.authorize(kernel, pcb, "fs.delete", owner=pcb.name, group=pcb.group, resource=resource)

    def job(db):
        cur = db.head(pcb.name, name)
        if cur is None:
            raise SyscallFailure(messages.ENOENT, f"{pcb.name} has no record named {name!r}")
        return cur["head"]

    reply = Reply(kernel, pcb.pid, call.id)

    def then(head):
        def done(allowed, reason):
            if not allowed:
                return reply.fail(messages.EPERM, f"delete of {resource} was not confirmed: {reason}")
            sm.submit(sm.delete_job(pcb.name, name, head), _settle(reply))
        guard.confirm(kernel, pcb, "fs.delete", resource, f"delete all {head} version(s), irreversibly", done)
        return DEFERRED
    return _defer(kernel, ap, call, job, then, reply)
