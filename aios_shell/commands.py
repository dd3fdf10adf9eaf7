"""The one command table and its dispatcher (supervisorctl's ``onecmd``).

A ``Command`` names its handler, syntax, help and aliases, and says what its
arguments are (``args``: completion kinds, see completer.py). ``help``,
``help <cmd>`` and tab completion are generated from the table; the REPL and
the batch runner both call ``Dispatcher.onecmd(line)``.

Handlers take ``(ctx, arg)`` where ``arg`` is the rest of the line after the
command word(s), and report user errors by raising ``CommandError`` (one
line, the shell goes on). ``ExitShell`` asks the caller to leave.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from aios_shell.client import KernelError
from aios_shell.views import cut

MAX_LINE = 100_000  # characters; longer lines are refused, not sent to the kernel
SHOW_CHARS = 40  # how much of a bad word an error message echoes


class CommandError(Exception):
    """A user error: printed as one line, the shell goes on."""


class ExitShell(Exception):
    """Raised by `exit`: the REPL or the batch runner stops reading commands."""


@dataclass(frozen=True)
class Command:
    name: str
    syntax: str  # e.g. "kill <pid>..."
    help: str  # first line: the summary shown by `help`; the rest: detail for `help <cmd>`
    handler: Callable[..., None]
    aliases: tuple[str, ...] = ()  # may be several words: ("print agent",)
    args: tuple[str, ...] = ()  # completion kind per positional word: agent, pid, live_pid, command
    flags: tuple[str, ...] = ()  # options offered by completion, e.g. ("-a",)
    interactive_only: bool = False  # needs a terminal (top)

    @property
    def summary(self) -> str:
        return self.help.splitlines()[0] if self.help else ""


@dataclass
class CommandTable:
    commands: dict[str, Command] = field(default_factory=dict)  # name -> command, in help order
    _keys: dict[str, Command] = field(default_factory=dict)  # lowercased name or alias -> command

    def add(self, cmd: Command) -> Command:
        for key in (cmd.name, *cmd.aliases):
            k = " ".join(key.lower().split())
            if k in self._keys:
                raise ValueError(f"command word {key!r} is taken by {self._keys[k].name}")
            self._keys[k] = cmd
        self.commands[cmd.name] = cmd
        return cmd

    def command(self, name: str, syntax: str, help: str, **kw):
        """Decorator: ``@table.command("ps", "ps [-a]", "list agent processes")``."""
        def deco(fn):
            self.add(Command(name, syntax, help, fn, **kw))
            return fn
        return deco

    def words(self) -> list[str]:
        """Every name and alias, for completion."""
        return sorted(self._keys)

    def get(self, word: str) -> Command | None:
        return self._keys.get(" ".join(word.lower().split()))

    def parse(self, line: str) -> tuple[Command | None, str, str]:
        """Split ``line`` into (command, rest, first word); the longest (multi-word) alias wins."""
        words = line.split(None, 2)
        if len(words) >= 2:
            cmd = self._keys.get(f"{words[0].lower()} {words[1].lower()}")
            if cmd is not None:
                return cmd, words[2] if len(words) > 2 else "", words[0]
        head, _, rest = line.partition(" ")
        return self._keys.get(head.lower()), rest.strip(), head


class Dispatcher:
    """Runs one line at a time against a CommandTable; never lets a handler's error escape.

    Returns True when the command succeeded; a failure has been printed as one
    line through ``ctx.error``. ``ExitShell`` and ``KeyboardInterrupt`` pass
    through to the caller (the REPL or the batch runner decides what they mean).
    """

    def __init__(self, table: CommandTable, ctx):
        self.table = table
        self.ctx = ctx

    def onecmd(self, line: str) -> bool:
        if len(line) > MAX_LINE:
            self.ctx.error(f"line of {len(line)} characters is longer than the {MAX_LINE}-character limit")
            return False
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        cmd, arg, head = self.table.parse(line)
        if cmd is None:
            from aios_shell.suggest import hint

            self.ctx.error(f"unknown command {cut(head, SHOW_CHARS)!r}{hint(head, self.table.words())} "
                           "(type help for the list)")
            return False
        if cmd.interactive_only and not self.ctx.interactive:
            self.ctx.error(f"{cmd.name} needs an interactive terminal")
            return False
        try:
            cmd.handler(self.ctx, arg)
            return True
        except CommandError as e:
            self.ctx.error(f"{cmd.name}: {e}")
        except KernelError as e:
            self.ctx.error(f"{cmd.name}: {e.message}")
        except (ExitShell, KeyboardInterrupt):
            raise
        except Exception as e:  # a handler bug: one line, and the shell goes on
            self.ctx.error(f"{cmd.name}: internal error: {type(e).__name__}: {cut(e, 200)}")
        return False
