"""Workspace file tools: read_file, list_files, write_file, delete_file.

Every path is relative to the calling agent's workspace
(``<data_dir>/workspaces/<Agent>/``) and checked by tools.confine: absolute
paths, ``..`` and symlinks are refused. Writes are atomic (a temporary file
in the same directory, then a link or rename into place) and bounded by the
workspace cap (``ctx.workspace_max_bytes``).

Side effects: write_file creating a file or appending is WRITES; replacing an
existing file is an IRREVERSIBLE overwrite (the user confirms it), and so is
delete_file. ``ctx.approved`` is the class the call was admitted under: a
create admitted as WRITES fails with EEXIST rather than replace a file that
appeared in the meantime.
"""

from __future__ import annotations

import os
import secrets
import stat

from kernel.protocol.messages import EDQUOT, EEXIST, EINVAL, ENOENT, ENOTEMPTY, EPERM
from tools import confine
from tools.base import IRREVERSIBLE, READ_ONLY, WRITES, Tool, ToolError, obj_schema

PATH = {"type": "string", "minLength": 1, "maxLength": 1024}
MAX_READ = 1 << 20
MAX_WRITE = 1 << 20
MAX_LIST = 500


def _split(path: str) -> tuple[list[str], str]:
    comps = confine.parts(path)
    if not comps:
        raise ToolError(EINVAL, f"{path!r} names the workspace itself, not a file")
    return comps[:-1], comps[-1]


class ReadFile(Tool):
    name = "read_file"
    keywords = ("read", "file", "written", "contents", "content", "says", "open", "txt", "csv", "json", "md")
    description = "Read a text file from your workspace. Args: path (relative), max_bytes (optional)."
    schema = obj_schema(["path"], path=PATH, max_bytes={"type": "integer", "minimum": 1, "maximum": MAX_READ})
    side_effect = READ_ONLY
    parallel = 8
    timeout_s = 5.0

    def run(self, args, ctx):
        dirs, name = _split(args["path"])
        limit = args.get("max_bytes", 64 * 1024)
        with confine.walk_to(ctx.workspace, dirs) as dfd:
            fd = confine.open_file(dfd, name)
            try:
                size = os.fstat(fd).st_size
                data = os.read(fd, limit)
            finally:
                os.close(fd)
        return {"path": args["path"], "size": size, "truncated": size > len(data),
                "content": data.decode("utf-8", errors="replace")}


class ListFiles(Tool):
    name = "list_files"
    keywords = ("list", "files", "folder", "directory", "workspace", "ls")
    description = "List files in your workspace (or a folder of it). Args: path (optional, default '.')."
    schema = obj_schema([], path={**PATH, "minLength": 0}, recursive={"type": "boolean"})
    side_effect = READ_ONLY
    parallel = 8
    timeout_s = 5.0

    def run(self, args, ctx):
        comps = confine.parts(args.get("path", "") or ".")
        entries = []
        with confine.walk_to(ctx.workspace, comps) as dfd:
            if args.get("recursive"):
                for root, dirnames, files, rfd in os.fwalk(dir_fd=dfd):
                    for n in sorted(dirnames + files):
                        entries.append(self._entry(rfd, n, os.path.normpath(os.path.join(root, n))))
                        if len(entries) >= MAX_LIST:
                            break
                    if len(entries) >= MAX_LIST:
                        break
            else:
                for n in sorted(os.listdir(dfd))[:MAX_LIST]:
                    entries.append(self._entry(dfd, n, n))
        return {"path": args.get("path", "."), "entries": entries, "truncated": len(entries) >= MAX_LIST}

    @staticmethod
    def _entry(dfd, name, shown):
        st = confine.lstat(dfd, name)
        kind = ("dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode)
                else "link" if stat.S_ISLNK(st.st_mode) else "other") if st else "gone"
        return {"name": shown, "type": kind, "size": st.st_size if st and kind == "file" else None}


class WriteFile(Tool):
    name = "write_file"
    keywords = ("write", "save", "create", "append", "store", "record")
    description = ("Write a text file in your workspace. Args: path (relative), content, append (optional). "
                   "Replacing an existing file asks for confirmation.")
    schema = obj_schema(["path", "content"], path=PATH, content={"type": "string", "maxLength": MAX_WRITE},
                        append={"type": "boolean"})
    side_effect = WRITES
    parallel = 4
    timeout_s = 5.0

    def effect(self, args, ctx):
        if args.get("append"):
            return WRITES
        try:
            dirs, name = _split(args["path"])
            with confine.walk_to(ctx.workspace, dirs) as dfd:
                return IRREVERSIBLE if confine.lstat(dfd, name) is not None else WRITES
        except ToolError:
            return WRITES  # run() reports the real problem

    def run(self, args, ctx):
        dirs, name = _split(args["path"])
        data = args["content"].encode()
        with confine.walk_to(ctx.workspace, dirs, create=True) as dfd:
            old = confine.lstat(dfd, name)
            if old is not None and not stat.S_ISREG(old.st_mode):
                raise ToolError(EPERM, f"{args['path']!r} exists and is not a regular file")
            if ctx.workspace_max_bytes:
                used = confine.tree_bytes(ctx.workspace) - (old.st_size if old and not args.get("append") else 0)
                if used + len(data) > ctx.workspace_max_bytes:
                    raise ToolError(EDQUOT, f"workspace would hold {used + len(data)} bytes; "
                                              f"its cap is {ctx.workspace_max_bytes}")
            if args.get("append"):
                fd = confine.open_file(dfd, name, os.O_WRONLY | os.O_APPEND) if old else None
                if fd is None:
                    self._place(dfd, name, data, replace=False)
                else:
                    try:
                        os.write(fd, data)
                    finally:
                        os.close(fd)
            else:
                self._place(dfd, name, data, replace=ctx.approved == IRREVERSIBLE)
        return {"path": args["path"], "bytes": len(data), "appended": bool(args.get("append")),
                "replaced": bool(old) and not args.get("append")}

    @staticmethod
    def _place(dfd: int, name: str, data: bytes, replace: bool) -> None:
        tmp = f".{name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            if replace:
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)  # replaces a link itself, never its target
            else:
                try:
                    os.link(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)  # fails if it exists
                except FileExistsError:
                    raise ToolError(EEXIST, f"{name!r} appeared meanwhile; call again to confirm replacing it") from None
        finally:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except FileNotFoundError:
                pass


class DeleteFile(Tool):
    name = "delete_file"
    keywords = ("delete", "remove", "erase")
    description = "Delete a file (or an empty folder) in your workspace. Asks for confirmation."
    schema = obj_schema(["path"], path=PATH)
    side_effect = IRREVERSIBLE
    parallel = 4
    timeout_s = 5.0

    def run(self, args, ctx):
        dirs, name = _split(args["path"])
        with confine.walk_to(ctx.workspace, dirs) as dfd:
            st = confine.lstat(dfd, name)
            if st is None:
                raise ToolError(ENOENT, f"{args['path']!r} does not exist")
            if stat.S_ISDIR(st.st_mode):
                try:
                    os.rmdir(name, dir_fd=dfd)
                except OSError:
                    raise ToolError(ENOTEMPTY, f"{args['path']!r} is a folder that is not empty") from None
            else:
                os.unlink(name, dir_fd=dfd)  # a link is removed itself, never its target
        return {"path": args["path"], "deleted": True}


TOOLS = [ReadFile(), ListFiles(), WriteFile(), DeleteFile()]
