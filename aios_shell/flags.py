"""Command-line conventions of every front (main.py, simulator.py, the aios command), and the kernel's flags.

- The kernel's flags are made from its config records (kernel/config.py): each field
  declared with help is a flag, in its record's --help group, its type from the field's
  annotation and the default shown from the field (never repeated by hand).
- Every flag is kebab-case (``--llm-name``); the snake_case spelling
  (``--llm_name``) is accepted too, with the same dest. ``--help`` shows
  only the kebab-case one.
- ``--version`` prints ``AIOS <version>``.

Light module: no torch, imported by every front.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from typing import Any, Callable

import kernel
from kernel import __version__
from kernel.config import field_default, flag_fields

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
    what the user gave and the config records stay the one source of defaults.
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


def config_from_args(args):
    """The KernelConfig of the parsed flags, and the files it names checked (ValueError: a usage error)."""
    from aios_shell.preflight import check_files
    from kernel.config import KernelConfig

    config = KernelConfig.from_args(args)
    check_files(config)
    return config


def kernel_default(dest: str):
    """The config's default for a kernel flag (HIDDEN_DEFAULT for a dest that is not a setting)."""
    try:
        return field_default(dest)
    except KeyError:
        return HIDDEN_DEFAULT


def _argparse_kind(f) -> dict:
    """type= (or a store_const action for bools) from the field's annotation (a string here)."""
    if f.type == "bool":
        return {"action": "store_const", "const": True}
    for word, typ in (("int", int), ("float", float)):
        if f.type.split(" | ")[0] == word:
            return {"type": typ}
    return {}


class _ConfineCheck(argparse.Action):
    """``--confine-check``: kernel/confine/doctor.py's report, then exit (like --version). It runs as a
    child, so the front never loads the confinement code."""

    def __call__(self, parser, namespace, values, option_string=None):
        argv = [sys.executable, "-m", "kernel.confine.doctor", values or "text"]
        if getattr(namespace, "confine", None) == "landlock":
            argv.append("--no-bwrap")
        root = os.path.dirname(os.path.dirname(os.path.abspath(kernel.__file__)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
        sys.stdout.flush()
        parser.exit(subprocess.call(argv, env=env))


def add_kernel_args(parser) -> None:
    """The kernel's command-line flags, one --help group per config record (fronts add "shell" after)."""
    add_version(parser)
    flags = list(flag_fields())
    groups = {name: FlagGroup(parser.add_argument_group(name), kernel_default)
              for name in dict.fromkeys(group for _, _, group in flags)}
    for key, f, group in flags:
        groups[group].add_argument(f"--{key}", help=f.metadata["help"],
                                   **{**_argparse_kind(f), **f.metadata["argparse"]})
    groups["confinement"].add_argument(
        "--confine_check", nargs="?", const="text", choices=("text", "json"), action=_ConfineCheck,
        help="print which confinement layers hold on this machine and why not (json: as one object), then exit: "
             "0 when every layer holds, 1 when one is missing")
