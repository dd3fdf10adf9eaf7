"""README.md's tour and its 15-line agent, run as a new user would run them (issue 22: transcripts that
cannot drift).

Every ```console block of the README is a sequence of ``$ command`` lines, each followed by lines it prints.
The test runs each command with the installed ``aios`` in a fresh home (its own XDG folders, socket and
logs; the model cache is shared through a symlink), in order, and checks that every line the README shows
appears in what the command printed (stdout or stderr), after numbers are masked (pids,
times, token counts and paths differ between runs; words, answers' shape and columns must not). The
README's GreeterAgent is written to a folder exactly as printed and run as the README says.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

README = ROOT / "README.md"
AIOS = ROOT / ".venv" / "bin" / "aios"


def blocks(kind: str) -> list[str]:
    text = README.read_text()
    return re.findall(rf"```{kind}\n(.*?)```", text, re.S)


def steps(block: str) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out and line.strip():
            out[-1][1].append(line)
    return out


def mask(line: str) -> str:
    """Numbers, paths and runs of spaces don't count: pids, times, token counts, home folders, column widths."""
    line = re.sub(r"(/[\w.+-]+)+/?", "<path>", line)
    line = re.sub(r"\d+(\.\d+)?", "<n>", line)
    return re.sub(r"\s+", " ", line).strip()


def missing_from(shown: list[str], printed: str) -> list[str]:
    """The shown lines that ``printed`` (stdout and stderr, masked) lacks. Order is not compared: the two
    streams arrive separately."""
    got = {mask(x) for x in printed.splitlines()}
    return [line for line in shown if mask(line) not in got]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    run = home / "run"
    run.mkdir(mode=0o700)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aios"
    env = {"PATH": f"{AIOS.parent}:/usr/bin:/bin", "HOME": str(home), "XDG_RUNTIME_DIR": str(run),
           "LANG": "C.UTF-8", "AIOS_AGENT_PATH": os.environ.get("AIOS_AGENT_PATH", "")}
    if cache.is_dir():  # the converted model: a new user converts it once; the test need not
        (home / ".cache").mkdir()
        (home / ".cache" / "aios").symlink_to(cache)
    yield home, env
    subprocess.run([str(AIOS), "stop"], env=env, capture_output=True, timeout=120)


def test_the_tour_prints_what_the_readme_shows(home):
    home_dir, env = home
    tour = [s for b in blocks("console") for s in steps(b)]
    assert len(tour) >= 7, "the README's tour lost its commands"
    for command, shown in tour:
        argv = shlex.split(command)
        assert argv[0] == "aios", command
        r = subprocess.run([str(AIOS), *argv[1:]], env=env, cwd=home_dir, capture_output=True, text=True,
                           timeout=600)
        printed = r.stdout + r.stderr
        assert r.returncode == 0, f"$ {command}\n{printed}"
        missing = missing_from(shown, printed)
        assert not missing, f"$ {command}: the README shows lines this run did not print:\n" + \
            "\n".join(missing) + f"\n--- printed:\n{printed}"


def test_the_readme_agent_runs_as_written(home, tmp_path):
    home_dir, env = home
    text = README.read_text()
    part = text[text.index("`myagents/greeter/config.json`"):]
    folder = tmp_path / "myagents" / "greeter"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(re.search(r"```json\n(.*?)```", part, re.S)[1])
    (folder / "agent.py").write_text(re.search(r"```python\n(.*?)```", part, re.S)[1])
    line = re.search(r"```bash\n(AIOS_AGENT_PATH=.*?)\n```", part, re.S)[1]
    assert line.startswith("AIOS_AGENT_PATH=myagents aios run --standalone GreeterAgent"), line
    argv = shlex.split(line.split(" ", 1)[1])
    r = subprocess.run([str(AIOS), *argv[1:]], env={**env, "AIOS_AGENT_PATH": "myagents"}, cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("(Ada has 3 letters.)"), r.stdout
