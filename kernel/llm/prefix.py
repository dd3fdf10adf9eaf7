"""PrefixCache: K/V of tokens the engine already computed, kept for later calls.

Agents are programs: an agent's next llm.chat starts with its previous call's
prompt and reply, and one app's agents share a system prompt. When a call
finishes (or is preempted and its KV would be dropped) the engine inserts its
tokens and their K/V here; a new call looks up the longest cached prefix of
its tokens and prefills only the rest.

Why a radix tree over token ids, not hashed fixed-size blocks (vLLM):

- the batch keeps every row's K/V as one contiguous, right-aligned run of
  columns, not in pages, so blocks would buy no zero-copy sharing here: a hit
  is copied into the new row's buffer either way;
- a tree matches to the exact token (a block hash only to the last whole
  block), and each shared span (the system prompt) is stored once, however
  many agents' histories continue it;
- the tree is small (one node per distinct span: tens to hundreds), so LRU
  over its leaves is a scan, not a data structure.

Node invariants: ``tokens`` is the edge label (>= 1 id); ``kv[l]`` is layer
l's (k, v), each (1, kv_heads, len(tokens), head_dim), contiguous and owned
by the node (split halves are cloned, so ``nbytes`` is what freeing the node
returns). A node's children start with distinct ids. ``owners`` are the pids
whose calls inserted or used the node; a parent's owners include its
children's.

Retention (program-aware, as in Continuum/Autellix): an agent's entries stay
while the agent is alive, tool waits included, subject only to the byte
budget; when the kernel says a pid ended (``release_pid``), every node no
live agent owns is freed at once. Under budget pressure the least recently
used leaf goes first, and leaves whose owners have all ended (requests made
outside the kernel, with no exit) before any leaf of a live agent. Owned by
the engine thread (no lock); ``nbytes`` is read by stats() as a plain int.
"""

from __future__ import annotations

import itertools

import torch

from kernel.llm.kvcache import kv_shape


class Node:
    __slots__ = ("tokens", "kv", "children", "parent", "owners", "used", "nbytes")

    def __init__(self, tokens: tuple, kv: list, parent: "Node | None", owners: set, used: int):
        self.tokens = tokens
        self.kv = kv
        self.children: dict[int, Node] = {}
        self.parent = parent
        self.owners = set(owners)
        self.used = used
        self.nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)


class PrefixCache:
    def __init__(self, budget_bytes: int):
        self.budget_bytes = max(0, int(budget_bytes))
        self.root = Node((), [], None, set(), 0)
        self.nbytes = 0
        self.nodes = 0
        self._clock = itertools.count(1)  # LRU order: larger = more recently used
        self.live: set[int] = set()  # pids seen and not yet released
        self.evicted_bytes = 0

    # -- lookup ---------------------------------------------------------------------
    def match(self, ids: list[int], pid: int | None, limit: int | None = None) -> list[tuple[Node, int]]:
        """Longest cached prefix of ``ids[:limit]``: [(node, tokens taken from its head)], in order.

        Marks the path used, and ``pid`` one of its owners (it keeps the path alive).
        """
        limit = len(ids) if limit is None else min(limit, len(ids))
        path, node, pos, t = [], self.root, 0, next(self._clock)
        while pos < limit:
            child = node.children.get(ids[pos])
            if child is None:
                break
            n = _common(child.tokens, ids, pos, limit)
            path.append((child, n))
            child.used = t
            if pid is not None:
                self._own(child, pid)
            pos += n
            if n < len(child.tokens):
                break
            node = child
        return path

    @staticmethod
    def copy_into(path: list[tuple[Node, int]], layers) -> int:
        """Write the matched K/V into ``layers`` (per layer (k_buf, v_buf), each (1, H, >=hit, D)),
        columns [0, hit); returns hit (tokens written)."""
        pos = 0
        for node, n in path:
            for (kb, vb), (k, v) in zip(layers, node.kv):
                kb[:, :, pos:pos + n] = k[:, :, :n]
                vb[:, :, pos:pos + n] = v[:, :, :n]
            pos += n
        return pos

    # -- insertion ------------------------------------------------------------------
    def insert(self, ids: list[int], layers, pid: int | None) -> int:
        """Cache ``ids`` with their K/V ``layers`` (per layer (k, v), each (1, H, len(ids), D), any
        storage: the new part is cloned). Returns the tokens newly stored."""
        if not ids or self.budget_bytes <= 0:
            return 0
        node, pos, t = self.root, 0, next(self._clock)
        while pos < len(ids):
            child = node.children.get(ids[pos])
            if child is None:
                break
            n = _common(child.tokens, ids, pos, len(ids))
            if n < len(child.tokens):
                child = self._split(child, n)
            child.used = t
            if pid is not None:
                self._own(child, pid)
            node, pos = child, pos + n
        if pos == len(ids):
            return 0
        rest = len(ids) - pos
        per_token = sum(2 * k.shape[1] * k.shape[3] * k.element_size() for k, _ in layers)
        if rest * per_token > self.budget_bytes:
            return 0  # would evict everything and still not fit
        kv = [(k[:, :, pos:].clone(), v[:, :, pos:].clone()) for k, v in layers]
        leaf = Node(tuple(ids[pos:]), kv, node, {pid} if pid is not None else set(), t)
        node.children[ids[pos]] = leaf
        self.nbytes += leaf.nbytes
        self.nodes += 1
        if pid is not None:
            self.live.add(pid)
        self._evict(keep=leaf)
        return rest

    def _split(self, node: Node, n: int) -> Node:
        """Cut ``node`` after its first n tokens; returns the new head (the parent of the tail)."""
        head_kv = [(k[:, :, :n].clone(), v[:, :, :n].clone()) for k, v in node.kv]
        tail_kv = [(k[:, :, n:].clone(), v[:, :, n:].clone()) for k, v in node.kv]
        head = Node(node.tokens[:n], head_kv, node.parent, node.owners, node.used)
        node.parent.children[node.tokens[0]] = head
        old = node.nbytes
        node.tokens, node.kv, node.parent = node.tokens[n:], tail_kv, head
        node.nbytes = old - head.nbytes
        head.children[node.tokens[0]] = node
        self.nodes += 1
        return head

    # -- retention ------------------------------------------------------------------
    def _own(self, node: Node, pid: int) -> None:
        while node is not self.root and pid not in node.owners:
            node.owners.add(pid)
            node = node.parent
        self.live.add(pid)

    def release_pid(self, pid: int) -> int:
        """``pid`` ended: free every node no live agent owns. Returns bytes freed."""
        self.live.discard(pid)
        freed = 0
        stack = [self.root]
        while stack:
            node = stack.pop()
            for tok, child in list(node.children.items()):
                if pid in child.owners:
                    child.owners.discard(pid)
                    if not child.owners:
                        freed += self._drop(child)
                        continue
                    stack.append(child)
        return freed

    def _drop(self, node: Node) -> int:
        """Remove ``node`` and its subtree; returns bytes freed."""
        del node.parent.children[node.tokens[0]]
        freed, stack = 0, [node]
        while stack:
            n = stack.pop()
            freed += n.nbytes
            self.nodes -= 1
            stack.extend(n.children.values())
            n.kv = []
        self.nbytes -= freed
        return freed

    def _evict(self, keep: Node | None = None) -> None:
        """LRU over leaves until within budget; leaves no live agent owns go first; never ``keep``."""
        while self.nbytes > self.budget_bytes:
            leaves = [n for n in self._walk() if not n.children and n is not keep]
            if not leaves:
                return
            victim = min(leaves, key=lambda n: (bool(n.owners & self.live), n.used))
            self.evicted_bytes += victim.nbytes
            self._drop(victim)

    def _walk(self):
        stack = list(self.root.children.values())
        while stack:
            n = stack.pop()
            yield n
            stack.extend(n.children.values())

    def clear(self) -> None:
        for child in list(self.root.children.values()):
            self._drop(child)


def _common(tokens: tuple, ids: list[int], pos: int, limit: int) -> int:
    """How many leading ``tokens`` equal ids[pos:limit]."""
    n = min(len(tokens), limit - pos)
    i = 0
    while i < n and tokens[i] == ids[pos + i]:
        i += 1
    return i


def kv_bytes_per_token(config, dtype: torch.dtype) -> int:
    """K/V bytes one token of one sequence takes with ``config`` (all layers, K and V)."""
    heads, head_dim = kv_shape(config)
    size = torch.empty((), dtype=dtype).element_size()
    return 2 * config.num_hidden_layers * heads * head_dim * size
