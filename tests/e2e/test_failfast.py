"""Fail fast on a bad model: an unknown --llm_name with no network is one error line and a non-zero exit.

Every mode runs as a real program: main.py, the shell in a pty, a batch
run, --daemon. "No network" is made two ways, so the test means the same
on any machine: HF_HUB_OFFLINE=1, and a hub endpoint nobody listens on
(HF_ENDPOINT=http://127.0.0.1:9). The bound is generous (the machine is
shared); transformers' retries took 49 s before. Also: the name check itself
(aios_shell/preflight.py) for local, configured, cached and remote names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from aios_shell import preflight as pf

ROOT = Path(__file__).resolve().parents[2]
BAD = "no-such-org/no-such-model-xyz"
HINT = "python -m kernel.llm.check --list"
OFFLINE = ({"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "",
                                       "HTTPS_PROXY": "", "https_proxy": ""})


def env_for(tmp: Path, extra: dict) -> dict:
    return dict(os.environ, XDG_STATE_HOME=str(tmp / "state"), XDG_RUNTIME_DIR=str(tmp / "run"),
                HF_HOME=str(tmp / "hf"), PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", **extra)


def common(tmp: Path) -> list[str]:
    return ["--llm_name", BAD, "--log_dir", str(tmp / "logs"), "--data_dir", str(tmp / "data")]


def check_one_line(out: str) -> None:
    lines = [ln for ln in out.splitlines() if ln.strip() and "booting kernel" not in ln]
    assert len(lines) == 1, out
    assert "error:" in lines[0] and BAD in lines[0] and HINT in lines[0], out
    assert "Traceback" not in out and "Retrying" not in out


@pytest.mark.parametrize("extra", OFFLINE, ids=["HF_HUB_OFFLINE", "unreachable-hub"])
@pytest.mark.parametrize("mode", ["main", "batch", "script", "daemon", "daemon-foreground"])
def test_unknown_model_fails_fast_in_every_mode(tmp_path, mode, extra):
    script = tmp_path / "jobs.aios"
    script.write_text("ps\n")
    args = {"main": ["main.py"], "batch": ["simulator.py", "--json"], "script": ["simulator.py", "--script", str(script)],
            "daemon": ["simulator.py", "--daemon"],
            "daemon-foreground": ["simulator.py", "--daemon", "--foreground"]}[mode]
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, *args, *common(tmp_path)], cwd=str(ROOT), env=env_for(tmp_path, extra),
                       input="ps\n", capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert r.returncode != 0, (r.stdout, r.stderr)
    check_one_line(r.stdout + r.stderr)
    assert took < 10, f"{took:.1f}s"
    assert not list((tmp_path / "run").glob("aios/aios.sock"))


def test_unknown_model_fails_fast_in_the_interactive_shell(tmp_path):
    t0 = time.monotonic()
    child = pexpect.spawn(sys.executable, [str(ROOT / "simulator.py"), *common(tmp_path)], cwd=str(ROOT),
                          env=env_for(tmp_path, OFFLINE[1]), encoding="utf-8", timeout=60, dimensions=(50, 400))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and time.monotonic() - t0 < 10
    check_one_line(child.before)


def test_preflight_names(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert pf.preflight("smollm2-135m-instruct") == {"HF_HUB_OFFLINE": "1"}  # embedded: never the network
    assert pf.preflight("gpt-4") == {}  # remote: RemoteEngine checks it at kernel start
    folder = tmp_path / "mymodel"
    folder.mkdir()
    with pytest.raises(pf.PreflightError, match="has no config.json"):
        pf.preflight(str(folder))
    (folder / "config.json").write_text("{}")
    assert pf.preflight(str(folder)) == {"HF_HUB_OFFLINE": "1"}
    with pytest.raises(pf.PreflightError, match=r"model 'gemma-2b-it' \(google/gemma-2b-it\) is not in the "
                                                r"Hugging Face cache, and HF_HUB_OFFLINE is set"):
        pf.preflight("gemma-2b-it")  # a configured name whose weights are not here
    with pytest.raises(pf.PreflightError, match="not a Hugging Face id"):
        pf.preflight("../a/b/c")
    with pytest.raises(pf.PreflightError, match="--llm_name is empty"):
        pf.preflight(" ")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    t0 = time.monotonic()
    assert not pf.hub_reachable()
    assert time.monotonic() - t0 <= pf.HUB_PROBE_S + 1


@pytest.mark.parametrize("mode", ["daemon", "script"])
def test_a_remote_model_that_fails_to_load_fails_the_run(tmp_path, mode):
    """Not a name problem (the kernel finds out at start): still one line and status 1, nothing left running."""
    script = tmp_path / "jobs.aios"
    script.write_text("ps\n")
    args = ["--daemon"] if mode == "daemon" else ["--script", str(script)]
    r = subprocess.run([sys.executable, str(ROOT / "simulator.py"), *args, "--llm_name", "openai:nothing",
                        "--llm_base_url", "http://127.0.0.1:9/v1", "--log_dir", str(tmp_path / "logs"),
                        "--data_dir", str(tmp_path / "data")], cwd=str(ROOT), env=env_for(tmp_path, {}),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "cannot reach http://127.0.0.1:9/v1" in r.stderr and "Traceback" not in r.stderr
    if mode == "daemon":
        assert r.stderr.count("\n") == 1 and r.stdout == ""
        assert list((tmp_path / "run" / "aios").iterdir()) == []  # no socket, no pid file
        assert "not serving" in "".join(p.read_text() for p in (tmp_path / "logs").glob("daemon-*.log"))
