"""mem.* syscalls: an agent's working memory (see manager.py for budgets and eviction).

Memory is per process: ``pid`` names another live process whose memory the
caller may read (same privilege group); writes and clear act on the
caller's own memory only.
"""

from __future__ import annotations

from kernel.memory.block import KINDS
from kernel.memory.manager import MODES
from kernel.protocol import messages
from kernel.syscall import DEFERRED, PID, Entries, Reply, SyscallFailure

SYSCALLS = Entries("mem")

ROLE = {"enum": ["system", "user", "assistant", "tool"]}
KIND = {"enum": list(KINDS)}


@SYSCALLS.register("mem.add", {
    "required": ["content"],
    "properties": {"content": {"type": "string", "maxLength": 1 << 20}, "role": ROLE, "kind": KIND},
}, "add a block (a chat turn with `role`, or a note) to your working memory; returns its id")
def mem_add(kernel, ap, call):
    a = call.args
    kind = a.get("kind", "turn" if "role" in a else "note")
    if kind == "turn" and "role" not in a:
        raise SyscallFailure(messages.EINVAL, "mem.add: a turn needs a role (system, user, assistant or tool)")
    return kernel.memory.add(ap.pcb, a["content"], kind, a.get("role"))


@SYSCALLS.register("mem.get", {
    "properties": {"ids": {"type": "array", "maxItems": 1024, "items": {"type": "integer", "minimum": 1}},
                   "last": {"type": "integer", "minimum": 0, "maximum": 100_000},
                   "kind": KIND, "role": ROLE, "pid": PID},
}, "blocks by id, or the `last` N (default all) of a kind/role, oldest first; evicted ones come back")
def mem_get(kernel, ap, call):
    a = call.args
    return kernel.memory.get(ap.pcb, a.get("pid"), a.get("ids"), a.get("last"), a.get("kind"), a.get("role"))


@SYSCALLS.register("mem.search", {
    "required": ["query"],
    "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 10_000},
                   "k": {"type": "integer", "minimum": 1, "maximum": 100},
                   "kind": KIND, "pid": PID, "mode": {"enum": list(MODES)}},
}, "the k blocks that best match `query` (mode auto|bm25|semantic|hybrid); returns {mode, results}")
def mem_search(kernel, ap, call):
    a, pid = call.args, ap.pcb.pid
    mode = kernel.memory.resolve_mode(a.get("mode", "auto"))

    reply = Reply(kernel, pid, call.id)

    def done(results, error):  # now (bm25) or on the loop once the query is embedded
        reply.error(error) if error is not None else reply.ok({"mode": mode, "results": results})
    kernel.memory.search(ap.pcb, a["query"], done, a.get("k", 5), a.get("kind"), a.get("pid"), mode)
    return DEFERRED


@SYSCALLS.register("mem.clear", {"properties": {"kind": KIND}},
          "forget your memory blocks (of `kind`); returns {cleared, bytes}")
def mem_clear(kernel, ap, call):
    return kernel.memory.clear(ap.pcb, call.args.get("kind"))


@SYSCALLS.register("mem.stats", {"properties": {}}, "your working memory: blocks, resident and evicted bytes, budget")
def mem_stats(kernel, ap, call):
    return kernel.memory.usage(ap.pcb.pid)
