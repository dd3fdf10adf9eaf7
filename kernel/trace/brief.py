"""Arguments and results in brief: what a span keeps of a call (bounded, private by default).

A span never holds what an agent sent: only a one-line summary of at most
TRACE_ARGS_MAX characters, built when the call arrives. Identifiers are
shown as they are (a record ``name``, a tool ``name``, an ``agent``, a
``pid``, numbers and flags); content (prompts, ``task``, ``data``, memory
``content``, a ``query``, a tool's ``args``, a ``result``) is shown as its
size and a keyed hash, ``<1.2 KB #3fa1c2>``, unless the kernel runs with
``--trace-content`` (the GenAI conventions make message content opt-in),
when a preview of at most TRACE_TEXT_MAX characters is kept instead.

The hash is BLAKE2b keyed with a secret drawn at boot: two calls with the
same content show the same hash within one kernel run, and nobody can test
a guess of the content against a hash offline.
"""

from __future__ import annotations

import hashlib
import json
import os

from kernel.param import TRACE_ARGS_MAX, TRACE_TEXT_MAX

_KEY = os.urandom(16)  # this kernel run's hash key (never written anywhere)

# Arguments shown as they are: identifiers and numbers, never content.
IDENT = frozenset({"name", "agent", "pid", "version", "owner", "prefix", "group", "kind", "role", "mode",
                   "encoding", "status", "priority", "timeout", "k", "limit", "last", "max_new_tokens",
                   "temperature", "top_p", "seed", "tool_choice"})
IDENT_MAX = 64  # characters of one identifier shown


def digest(data: str | bytes) -> str:
    """6 hex digits of the keyed hash of ``data``."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=3, key=_KEY).hexdigest()


def size_text(n: int) -> str:
    """``512 B``, ``1.2 KB``, ``3.4 MB`` (decimal units, like ls -h --si)."""
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} KB"
    return f"{n / 1_000_000:.1f} MB"


def cut(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks the cut)."""
    short = text[:limit] if len(text) > limit else text
    if not short.isprintable():
        short = "".join(c if c.isprintable() else " " for c in short)
    return short if len(text) <= limit else short[:limit - 1] + "…"


def _encoded(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(type(value))


def content(value, with_content: bool) -> str:
    """A content value: ``<size #hash>``, or a quoted preview with ``with_content``."""
    text = _encoded(value)
    if with_content:
        return json.dumps(cut(text, TRACE_TEXT_MAX), ensure_ascii=False)
    n = len(text.encode("utf-8", "surrogatepass"))
    return f"<{size_text(n)} #{digest(text)}>" if n else "<empty>"


def _ident(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(cut(value, IDENT_MAX), ensure_ascii=False)
    return content(value, False)  # a structure where an identifier was expected: never shown


def _messages(msgs, with_content: bool) -> str:
    """llm.chat messages: how many and how big; with content, the last one's preview."""
    if not isinstance(msgs, list):
        return content(msgs, with_content)
    text = "".join(str(m.get("content", "")) for m in msgs if isinstance(m, dict))
    if with_content and msgs and isinstance(msgs[-1], dict):
        return f"{len(msgs)} msgs, last {content(msgs[-1].get('content', ''), True)}"
    return f"{len(msgs)} msgs <{size_text(len(text.encode('utf-8', 'surrogatepass')))} #{digest(text)}>"


def args(name: str, a: dict, with_content: bool) -> str:
    """The arguments of syscall ``name`` in brief (at most TRACE_ARGS_MAX characters)."""
    parts = []
    for key, value in a.items():
        if key == "messages":
            parts.append(_messages(value, with_content))
        elif key in ("tools", "stop") and isinstance(value, list):
            parts.append(f"{key}={len(value)}")
        elif key == "args" and isinstance(value, dict) and not with_content:  # tool arguments: names, sizes
            inner = ", ".join(f"{cut(str(k), IDENT_MAX)}={content(v, False)}" for k, v in list(value.items())[:8])
            parts.append(f"args={{{inner}{', …' if len(value) > 8 else ''}}}")
        elif key in IDENT:
            parts.append(f"{key}={_ident(value)}")
        else:
            parts.append(f"{cut(str(key), IDENT_MAX)}={content(value, with_content)}")
        if sum(map(len, parts)) > TRACE_ARGS_MAX:
            break
    return cut(", ".join(parts), TRACE_ARGS_MAX)
