"""Tab completion generated from the command table.

First word: command names and aliases (multi-word ones too: ``print agent``),
each completed with a space after it (``ru`` -> ``run ``).
After a command: its ``args`` kinds
  agent     the kernel's agent apps (``run Ma`` -> ``run MathAgent: ``; its ``apps`` op, asked at
            most every CATALOG_TTL_S seconds, so a daemon's apps complete in an attached shell)
  live_pid  pids of processes still running (kill, wait; any number of them)
  pid       every pid this shell has seen (result, logs, info; one)
  command   command names (help)
and its ``flags``. Pids come from the shell's own records (spawn replies and
exit events), so completing never waits on the kernel.
"""

from __future__ import annotations

import time

from prompt_toolkit.completion import Completer, Completion

from aios_shell.client import KernelError
from aios_shell.commands import CommandTable

VALUE_FLAGS = ("--priority", "-p")  # options followed by a value word
CATALOG_TTL_S = 5.0  # seconds an answer of the kernel's apps op serves completion


def _positional(words: list[str]) -> list[str]:
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w in VALUE_FLAGS:
            skip = True
        elif not w.startswith("-"):
            out.append(w)
    return out


class ShellCompleter(Completer):
    def __init__(self, table: CommandTable, ctx, agents=None):
        self.table = table
        self.ctx = ctx
        self._agents = agents  # callable -> list of names; default: the kernel's apps
        self._names: tuple[float, list[str]] | None = None  # (when asked, the kernel's app names)

    def agent_names(self) -> list[str]:
        """The kernel's agent apps (its ``apps`` op, asked at most every CATALOG_TTL_S seconds)."""
        if self._agents is not None:
            return list(self._agents())
        now = time.monotonic()
        if self._names is None or now - self._names[0] > CATALOG_TTL_S:
            try:
                names = [a["name"] for a in self.ctx.client.apps()["apps"]]
            except (KernelError, AttributeError, KeyError, TypeError):
                names = self._names[1] if self._names else []
            self._names = (now, sorted(names))
        return self._names[1]

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor.lstrip()
        word = "" if not text or text[-1].isspace() else text.split()[-1]
        typed = text.split()[:-1] if word else text.split()  # complete words before the cursor's word
        if not typed or (len(typed) == 1 and self.table.get(typed[0]) is None):
            yield from self._command_words(typed, word)
            return
        cmd, rest, _ = self.table.parse(text)
        if cmd is None:
            return
        before = rest.split()[:-1] if word else rest.split()
        positional = _positional(before)
        if "agent" in cmd.args:
            yield from self._run_args(cmd, rest, before, positional, word)
            return
        for kind in cmd.args:
            if kind == "live_pid":
                yield from self._pids(self.ctx.live_pids(), before, word)
            elif kind == "pid" and not positional:
                yield from self._pids(self.ctx.known_pids(), before, word)
            elif kind == "command" and not positional:
                for name in self.table.commands:
                    if name.startswith(word.lower()):
                        yield Completion(name, start_position=-len(word))
        for flag in cmd.flags:
            if flag.startswith(word) and flag not in before:
                yield Completion(flag, start_position=-len(word))

    def _command_words(self, typed: list[str], word: str):
        prefix = " ".join([*(t.lower() for t in typed), word.lower()])
        for w in self.table.words():
            if not w.startswith(prefix):
                continue
            cmd = self.table.get(w)
            if typed:  # "print a" -> "agent "
                if w.count(" ") == len(typed):
                    yield Completion(w.split()[-1] + " ", start_position=-len(word), display=w.split()[-1])
            else:  # a space after the word, as bash does: "ru" Tab -> "run ", ready for its arguments
                yield Completion(w + " ", start_position=-len(word), display=w,
                                 display_meta=cmd.summary if cmd else "")

    def _run_args(self, cmd, rest: str, before: list[str], positional: list[str], word: str):
        if ":" in rest or positional:
            return  # the agent is named: the task is free text
        if before and before[-1] in VALUE_FLAGS:
            return  # a priority number
        if word.startswith("-"):
            for flag in cmd.flags:
                if flag.startswith(word) and flag not in before:
                    yield Completion(flag + " ", start_position=-len(word), display=flag)
            return
        for name in self.agent_names():
            if name.lower().startswith(word.lower()):
                yield Completion(name + ": ", start_position=-len(word), display=name)

    def _pids(self, pids: list[int], before: list[str], word: str):
        for pid in pids:
            s = str(pid)
            if s.startswith(word) and s not in before:
                yield Completion(s, start_position=-len(word), display_meta=self.ctx.seen.get(pid, ""))
