"""Key bindings that cap what the prompt's input buffer accepts.

Without bracketed paste, a pasted line arrives as one key press per
character, and prompt_toolkit saves the whole text to the undo stack before
each one: a 100,000-character paste kept ~5e9 characters of undo history and
grew the shell from 33 MB to 4 GB. So:

- the buffer accepts at most ``limit`` characters (the dispatcher's MAX_LINE):
  keys past it are dropped, with one ``error:`` line per line typed;
- a bracketed paste that would pass the limit is refused whole (one error
  line), never cut silently;
- undo states are saved per key only while the line is short (UNDO_MAX):
  past it a long line is undone in one step, and the undo history stays
  under UNDO_MAX**2 / 2 characters.
"""

from __future__ import annotations

from typing import Callable

from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.keys import Keys

UNDO_MAX = 4096  # characters: per-key undo states are saved only below this line length


def line_cap_bindings(limit: int, error: Callable[[str], None]) -> KeyBindings:
    kb = KeyBindings()
    warned = {"on": False}  # one error per overlong line; reset once the line is short again

    def refuse(event, what: str) -> None:
        if not warned["on"]:
            warned["on"] = True
            error(f"{what}: the input line is limited to {limit} characters")

    @Condition
    def full() -> bool:
        from prompt_toolkit.application import get_app

        n = len(get_app().current_buffer.text)
        if n < limit:
            warned["on"] = False
        return n >= limit

    @kb.add(Keys.Any, filter=full)
    def _drop(event) -> None:
        refuse(event, "input dropped")

    def short_line(event) -> bool:
        return len(event.current_buffer.text) < UNDO_MAX and not event.is_repeat

    @kb.add(Keys.Any, filter=~full, save_before=short_line)
    def _insert(event) -> None:
        event.current_buffer.insert_text(event.data * event.arg)

    @kb.add(Keys.BracketedPaste)
    def _paste(event) -> None:
        data = event.data.replace("\r\n", "\n").replace("\r", "\n")
        buf = event.current_buffer
        if len(buf.text) + len(data) > limit:
            refuse(event, f"paste of {len(data)} characters refused")
            return
        buf.insert_text(data)

    return kb
