"""Copy bias: a string argument of a tool call leans toward the words the conversation wrote.

A 135M model writing a call's string argument often writes an entity of its own where the user
wrote one to copy: ``"New York"`` for "Great Smoky Mountains National Park", ``"UK"`` for "Great
Britain", ``"Yellowstone"`` for "Yellowstone National Park". Pointer-generator networks (See et
al., 2017) learn to mix copying into generation; a frozen model can only be nudged, so inside a
string value of a call's arguments the local engine adds ``BIAS`` (nats) to the logits of the
tokens that continue a span of the source (the user's and the tools' turns):

- at the value's first character, the tokens that begin a word of the source (not a number);
- after that, while the value so far occurs in the source (ignoring case), the tokens that
  continue one of those occurrences, in the source's own case ("Yellowstone" goes on with
  " National"); past the end of a word, not into a word that ends the span (``ENDS_SPAN``: a
  conjunction, a preposition, a verb, a possessive: "copper and aluminum" is two values, "Sacher in
  Vienna" a hotel and a city);
- once the value is not in the source (the model paraphrases: "Homo sapiens" for "human"), nothing.

It is a bias, not a constraint: the grammar's mask still decides what may be written, and a value
the model prefers strongly enough (a unit's abbreviation, a date it reformats) is still written.
The bias depends only on the row's own tokens and the request, so greedy decoding stays
deterministic and preemption resumes exactly. ``bench/bfcl.py`` measures what it changes
(docs/benchmarks.md).

Hostile input: the source is capped (``MAX_SOURCE`` characters, its last ones), and so are the
positions looked at per step (``MAX_STARTS``, ``MAX_HITS``) and the continuation length
(``MAX_CONT``): a 1 MB message, or a value that occurs everywhere, costs at most about a
millisecond per token.
"""

from __future__ import annotations

import functools
import re

BIAS = 3.0  # nats added to each token that continues the source (BFCL: 6 lost 7 cases of 146 for 2 gained)
MAX_SOURCE = 16_384  # characters of the source looked at (the conversation's last ones)
MAX_STARTS = 256  # word starts offered for a value's first token (the source's last ones)
MAX_HITS = 32  # occurrences of the value so far that are continued (the source's last ones)
MAX_CONT = 16  # characters of a continuation matched against tokens (longer than any token here)
MAX_VALUE = 256  # a value longer than this is not copied further
CALL_OPEN = "<tool_call>"
NEXT_WORD = re.compile(r"\W*?(\w+)")
# words that end the span a value was copied from, not continue it ("copper and aluminum", "Sacher in Vienna",
# "Madrid's")
ENDS_SPAN = frozenset("s and or nor but as if so because since please in at on from to into with by for "
                      "that which who whose than then while when where is are was were be been has have had "
                      "will would can could should".split())


@functools.lru_cache(maxsize=4)
def token_table(tok) -> tuple[tuple[str, ...], dict[str, tuple[int, ...]]]:
    """(the text of each token id, the ids of each text) for ``tok``; about 0.3 s once per tokenizer."""
    texts = tuple(tok.batch_decode([[i] for i in range(len(tok))]))
    by_text: dict[str, list[int]] = {}
    special = set(getattr(tok, "all_special_ids", []) or [])
    for i, t in enumerate(texts):
        if t and i not in special and "\ufffd" not in t:
            by_text.setdefault(t, []).append(i)
    return texts, {t: tuple(ids) for t, ids in by_text.items()}


def source_text(messages: list[dict]) -> str:
    """What a value may be copied from: the user's and the tools' turns (not the system prompt)."""
    parts = [m["content"] for m in messages
             if m.get("role") in ("user", "tool") and isinstance(m.get("content"), str)]
    return "\n".join(parts)[-MAX_SOURCE:]


class _Scan:
    """Where a tool-call reply is, character by character: inside which string, of which depth."""

    def __init__(self):
        self.opened = False  # past "<tool_call>"
        self.head = ""  # the reply's text until then (only its tail is kept)
        self.stack: list[str] = []  # "[" and "{" of the open containers
        self.in_str = False
        self.is_key = False
        self.expect_key = False
        self.esc = False
        self.value: list[str] = []  # the current string's characters so far

    def feed(self, text: str) -> None:
        if not self.opened:
            self.head = (self.head + text)[-64:]
            at = self.head.find(CALL_OPEN)
            if at < 0:
                return
            self.opened = True
            text = self.head[at + len(CALL_OPEN):]
        for ch in text:
            if self.in_str:
                if self.esc:
                    self.esc = False
                    self.value.append("\\" + ch)
                elif ch == "\\":
                    self.esc = True
                elif ch == '"':
                    self.in_str = False
                    if self.is_key:
                        self.expect_key = False
                else:
                    self.value.append(ch)
            elif ch == '"':
                self.in_str, self.value = True, []
                self.is_key = bool(self.stack) and self.stack[-1] == "{" and self.expect_key
            elif ch in "[{":
                self.stack.append(ch)
                self.expect_key = ch == "{"
            elif ch in "]}":
                if self.stack:
                    self.stack.pop()
                self.expect_key = False
            elif ch == ",":
                self.expect_key = bool(self.stack) and self.stack[-1] == "{"

    def in_argument(self) -> str | None:
        """The string value being written inside a call's arguments (depth 3 or more), or None."""
        if not (self.in_str and not self.is_key and not self.esc and len(self.stack) >= 3):
            return None
        if any(len(c) > 1 for c in self.value) or len(self.value) > MAX_VALUE:
            return None  # an escape: the value's text is not the source's
        return "".join(self.value)


class Copier:
    """The copy bias of one constrained sequence (lives on its logitmask.Matcher, so it travels
    with the sequence through preemption). Engine thread only after construction."""

    def __init__(self, source: str, table: tuple[tuple[str, ...], dict[str, tuple[int, ...]]]):
        self.source = source
        self.lower = _lower(source)
        self.texts, self.by_text = table
        # a value begins at a word, not at a number: a number the user wrote is a number argument's
        # (kernel.llm.ground), and "17" is no unit for "What is 17 * 23?"
        # the newest MAX_STARTS of them: in a long conversation the last turns are what a call is about
        self.starts = [i for i, c in enumerate(source)
                       if c.isalpha() and (i == 0 or not source[i - 1].isalnum())][-MAX_STARTS:]
        self.fed: list[int] = []
        self.scan = _Scan()

    def _sync(self, generated: list[int]) -> None:
        n = len(self.fed)
        if generated[:n] != self.fed:  # rolled back (never in the engine's own order): rescan
            self.fed, self.scan, n = [], _Scan(), 0
        for t in generated[n:]:
            self.scan.feed(self.texts[t] if 0 <= t < len(self.texts) else "")
            self.fed.append(t)

    def tokens(self, generated: list[int]) -> dict[int, float]:
        """The ids to favour for the next token, after ``generated`` (the row's tokens so far), and by how much."""
        self._sync(generated)
        value = self.scan.in_argument()
        if value is None or not self.source:
            return {}
        if not value:
            at = self.starts
        else:
            low, at = _lower(value), []
            i = self.lower.rfind(low)  # the newest MAX_HITS occurrences, overlapping ones included
            while i >= 0 and len(at) < MAX_HITS:
                at.append(i + len(low))
                i = self.lower.rfind(low, 0, i + len(low) - 1)
        out: dict[int, float] = {}
        for p in at:
            cont = self.source[p:p + MAX_CONT]
            if value and value[-1].isalnum() and cont[:1] and not cont[0].isalnum() and _ends_span(cont):
                continue  # past the end of a word, into one that is not the value's
            for k in range(1, len(cont) + 1):
                for t in self.by_text.get(cont[:k], ()):
                    out[t] = BIAS
        return out


def _lower(text: str) -> str:
    """text in lower case, each character keeping its position ("İ", which lowers to two, stays)."""
    low = text.lower()
    return low if len(low) == len(text) else "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _ends_span(cont: str) -> bool:
    """Whether the source, after a word's end, goes on into a word that ends the span (ENDS_SPAN) or "&"."""
    nxt = NEXT_WORD.match(cont)
    return cont.lstrip().startswith("&") or bool(nxt) and nxt.group(1).lower() in ENDS_SPAN
