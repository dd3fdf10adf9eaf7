"""Did you mean: the closest known word to a mistyped one (commands, agents, models, flags, formats).

    >>> hint("rn", ["run", "ps", "result"])
    "; did you mean 'run'?"

Like git's and kubectl's: one suggestion, only when it is close (difflib's ratio >= CUTOFF, case
ignored), so a word that resembles nothing gets no guess. Light module (stdlib only).
"""

from __future__ import annotations

import argparse
import difflib
import re
from typing import Iterable

CUTOFF = 0.6  # difflib ratio: "MathAgnt" -> "MathAgent" (0.94), "rn" -> "run" (0.8), "xyz" -> nothing


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (case ignored), or None when none is close enough."""
    choices = [str(c) for c in choices]
    by_lower = {c.lower(): c for c in choices}
    if word.lower() in by_lower:
        return by_lower[word.lower()]
    best = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=CUTOFF)
    if not best:  # a prefix of exactly one choice is a good guess too ("Mat" -> "MathAgent")
        starts = [c for c in by_lower if len(word) >= 2 and c.startswith(word.lower())]
        best = starts if len(starts) == 1 else []
    return by_lower[best[0]] if best else None


def hint(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'run'?"`` or "" (to append to an error message)."""
    guess = suggest(word, choices)
    return f"; did you mean {guess!r}?" if guess is not None and guess != word else ""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, with a did-you-mean for an unknown flag (``--agnets`` -> ``--agents``)."""

    def error(self, message: str):
        m = re.match(r"unrecognized arguments: (.*)", message)
        if m:
            flags = [s for a in self._actions for s in a.option_strings]
            for word in m.group(1).split():
                guess = suggest(word.split("=", 1)[0], flags) if word.startswith("-") else None
                if guess:
                    message += f" (did you mean {guess}?)"
                    break
        super().error(message)
