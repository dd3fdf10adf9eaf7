"""BM25 keyword ranking over one process's memory blocks (Okapi BM25, k1=1.2, b=0.75).

The index keeps postings for every block, resident or evicted, so a search
sees evicted blocks without reading them back; only the hits it returns are
swapped in. Terms: lower-cased Unicode word characters (``\\w+``); no
stemming, no stop list (IDF already discounts common words).
"""

from __future__ import annotations

import math
import re
from collections import Counter

TOKEN = re.compile(r"\w+")
K1 = 1.2
B = 0.75


def terms(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


class BM25Index:
    def __init__(self):
        self.postings: dict[str, dict[int, int]] = {}  # term -> {doc id: term frequency}
        self.doc_terms: dict[int, tuple[str, ...]] = {}  # doc id -> its distinct terms (for removal)
        self.lengths: dict[int, int] = {}  # doc id -> number of terms
        self.total = 0  # sum of lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, doc: int, text: str) -> None:
        words = terms(text)
        tf = Counter(words)
        for t, n in tf.items():
            self.postings.setdefault(t, {})[doc] = n
        self.doc_terms[doc] = tuple(tf)
        self.lengths[doc] = len(words)
        self.total += len(words)

    def remove(self, doc: int) -> None:
        for t in self.doc_terms.pop(doc, ()):
            p = self.postings.get(t)
            if p is not None:
                p.pop(doc, None)
                if not p:
                    del self.postings[t]
        self.total -= self.lengths.pop(doc, 0)

    def search(self, query: str, allowed=None) -> list[tuple[int, float]]:
        """(doc, score) with score > 0, best first (ties: older doc first). ``allowed``: doc filter."""
        n = len(self.lengths)
        if not n:
            return []
        avg = self.total / n or 1.0
        scores: dict[int, float] = {}
        for t in set(terms(query)):
            p = self.postings.get(t)
            if not p:
                continue
            idf = math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))
            for doc, tf in p.items():
                if allowed is not None and not allowed(doc):
                    continue
                norm = tf + K1 * (1 - B + B * self.lengths[doc] / avg)
                scores[doc] = scores.get(doc, 0.0) + idf * tf * (K1 + 1) / norm
        return sorted(scores.items(), key=lambda ds: (-ds[1], ds[0]))
