"""search_docs: keyword search over local text documents.

Searches the agent's workspace and the kernel's documents folders
(``ctx.docs_dirs``, from --docs_dir). Folders are walked with os.fwalk
without following symlinks; only regular text files are read (O_NONBLOCK,
NUL bytes mean binary), at most MAX_FILE bytes each and MAX_TOTAL bytes per
call, and the walk stops at the call's deadline, so a call is bounded.

Scoring: a line scores the number of distinct query words it contains (plus
a bonus for the whole phrase); ties keep file order.
"""

from __future__ import annotations

import os
import re
import stat

from kernel.protocol.messages import EINVAL
from tools import confine
from tools.base import READ_ONLY, Tool, ToolError, obj_schema

MAX_FILE = 1 << 20
MAX_TOTAL = 32 << 20
WORD = re.compile(r"[\w']+", re.UNICODE)


def _scan(label: str, root: str, words: set[str], phrase: str, ctx, budget: list[int], hits: list) -> None:
    if not os.path.isdir(root):
        return
    fd = confine.open_root(root)
    try:
        for dirpath, dirnames, files, dfd in os.fwalk(dir_fd=fd):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(files):
                if ctx.remaining() < 0.2 or budget[0] <= 0:
                    return
                st = confine.lstat(dfd, name)
                if st is None or not stat.S_ISREG(st.st_mode) or name.startswith("."):
                    continue
                try:
                    f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
                except OSError:
                    continue
                try:
                    data = os.read(f, min(MAX_FILE, budget[0]))
                finally:
                    os.close(f)
                budget[0] -= len(data)
                if b"\0" in data[:1024]:
                    continue
                rel = os.path.normpath(os.path.join(dirpath, name))
                for i, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                    low = line.lower()
                    score = len(words & set(WORD.findall(low))) + (1 if phrase in low else 0)
                    if score:
                        hits.append((-score, len(hits), f"{label}:{rel}", i, line.strip()[:300]))
    finally:
        os.close(fd)


class SearchDocs(Tool):
    name = "search_docs"
    keywords = ("search", "find", "documents", "docs", "notes", "mention", "mentions", "grep")
    description = ("Search text files in your workspace and the local documents folder for keywords. "
                   "Args: query, max_results (optional).")
    schema = obj_schema(["query"], query={"type": "string", "minLength": 1, "maxLength": 500},
                        scope={"enum": ["all", "workspace", "docs"]},
                        max_results={"type": "integer", "minimum": 1, "maximum": 50})
    side_effect = READ_ONLY
    parallel = 4
    timeout_s = 10.0

    def run(self, args, ctx):
        words = {w for w in WORD.findall(args["query"].lower()) if len(w) > 1}
        if not words:
            raise ToolError(EINVAL, "the query has no words to search for")
        scope = args.get("scope", "all")
        roots = []
        if scope in ("all", "workspace"):
            roots.append(("workspace", ctx.workspace))
        if scope in ("all", "docs"):
            roots += [(f"docs{i or ''}", d) for i, d in enumerate(ctx.docs_dirs)]
        hits: list = []
        budget = [MAX_TOTAL]
        for label, root in roots:
            _scan(label, root, words, args["query"].lower().strip(), ctx, budget, hits)
        hits.sort()
        n = args.get("max_results", 5)
        return {"query": args["query"], "results": [{"file": f, "line": ln, "text": t, "score": -s}
                                                     for s, _, f, ln, t in hits[:n]],
                "matches": len(hits), "complete": budget[0] > 0 and ctx.remaining() >= 0.2}


TOOLS = [SearchDocs()]
