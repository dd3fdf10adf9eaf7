"""Command-line conventions shared by main.py, simulator.py and the kernel's flags.

- Every flag is kebab-case (``--llm-name``); the snake_case spelling
  (``--llm_name``) is accepted too, with the same dest. ``--help`` shows
  only the kebab-case one.
- Help shows each kernel flag's default, read from KernelConfig (never
  repeated by hand): ``FlagGroup.add_argument`` appends it.
- ``--version`` prints ``AIOS <version>``.

Light module: no torch, imported by every front.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any, Callable

from kernel import __version__

HIDDEN_DEFAULT = object()  # marker: a field whose default is not worth printing


def spellings(flag: str) -> list[str]:
    """``--llm_name`` or ``--llm-name`` -> ["--llm-name", "--llm_name"] (kebab first, shown in help)."""
    if not flag.startswith("--"):
        return [flag]
    kebab = "--" + flag[2:].replace("_", "-")
    snake = "--" + flag[2:].replace("-", "_")
    return [kebab] if kebab == snake else [kebab, snake]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows one spelling per flag (the first: kebab-case); the snake_case alias stays accepted."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        strings = action.option_strings
        if len(strings) > 1 and any("_" in s for s in strings):
            shown = [s for s in strings if "_" not in s]
            action = argparse.Action(shown, action.dest, nargs=action.nargs, metavar=action.metavar,
                                     help=action.help, choices=action.choices)
        return super()._format_action_invocation(action)

    def _split_lines(self, text: str, width: int) -> list[str]:
        """argparse's wrapping, but at spaces only: a default path is never split at a hyphen
        (a user named aios-ci read ``/home/aios- ci/.local/state/aios/logs``)."""
        return textwrap.wrap(self._whitespace_matcher.sub(" ", text).strip(), width, break_on_hyphens=False)


class FlagGroup:
    """An argparse argument group that accepts both spellings and shows defaults from ``defaults``.

    ``defaults(dest)`` returns the config default, or HIDDEN_DEFAULT to print none.
    argparse's own default stays None, so ``KernelConfig.from_args`` keeps only
    what the user gave and the dataclass stays the one source of defaults.
    """

    def __init__(self, group, defaults: Callable[[str], Any]):
        self.group = group
        self.defaults = defaults

    def add_argument(self, *flags: str, help: str = "", **kw) -> argparse.Action:
        names = [s for f in flags for s in spellings(f)]
        dest = kw.get("dest") or names[0].lstrip("-").replace("-", "_")
        kw.setdefault("dest", dest)
        default = self.defaults(dest)
        if default is not HIDDEN_DEFAULT and "default" not in kw:
            shown = "off" if default is False else ("none" if default in (None, "") else default)
            help = f"{help} (default: {shown})" if help else f"default: {shown}"
        return self.group.add_argument(*names, help=help.replace("%", "%%"), **kw)


def add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"AIOS {__version__}")


def add_verbosity(group) -> None:
    """-q/-v: what the console shows. Default: agent output, results, warnings and errors."""
    group.add_argument("-q", "--quiet", action="store_const", dest="verbosity", const=-1,
                       help="results only: no agent output or notices (errors and warnings still show)")
    group.add_argument("-v", "--verbose", action="count", dest="verbosity",
                       help="also the kernel's INFO records (-vv: DEBUG too)")
