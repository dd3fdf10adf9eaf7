"""``trace`` through the real programs: a daemon's clients (``simulator.py --connect -c`` and ``aios
trace``) and a batch run with ``--timeline FILE``.

Proves: the one-shot client and the ``aios`` verb replay a finished agent's calls through the
daemon (the same dispatcher as the REPL); a batch run writes the timeline of its agents once they
have ended, and says where.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from daemon_helpers import ROOT, SIM, env_for, start_daemon, stop_daemon

SCRIPT = [{"tool": "calculator", "args": {"expression": "6*7"}}, {"sys": "no.such.call"}]


def test_a_daemon_client_and_the_aios_verb_trace_an_agent(tmp_path):
    d = start_daemon(tmp_path)
    try:
        r = d.client("-c", f"run ToolAgent: {json.dumps(SCRIPT)}")
        assert r.returncode == 0, r.stderr
        pid = int(re.search(r"as pid (\d+)", r.stdout).group(1))
        assert d.client("-c", f"wait {pid}").returncode == 0
        r = d.client("-c", f"trace -a {pid}")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].endswith(f"+++ spawned ToolAgent (pid {pid}) +++")
        assert 'tool.call(name="calculator"' in lines[1]
        assert "no.such.call() = -1 ENOSYS" in lines[2] and lines[-1].endswith("+++ exited: done, status 0 +++")
        r = subprocess.run([sys.executable, "-m", "aios_shell", "trace", str(pid), "-o", "json", "--socket",
                            str(d.sock)], cwd=str(ROOT), env=env_for(tmp_path), capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert [json.loads(x)["name"] for x in r.stdout.splitlines()] == ["tool.call", "no.such.call", "proc.exit",
                                                                          "agent"]
        r = d.client("-c", "trace -a 99999")
        assert r.returncode == 1 and "no trace of pid 99999" in r.stderr
    finally:
        stop_daemon(d)


def test_a_batch_run_writes_its_timeline(tmp_path):
    script = tmp_path / "jobs.aios"
    script.write_text(f"run ToolAgent: {json.dumps(SCRIPT)}\nrun EchoAgent: hello\n")
    page = tmp_path / "run.html"
    r = subprocess.run([sys.executable, SIM, "--script", str(script), "--timeline", str(page), "--log_dir",
                        str(tmp_path / "logs"), "--data_dir", str(tmp_path / "data"), "--max_new_tokens", "4"],
                       cwd=str(tmp_path), env=env_for(tmp_path), capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert f"timeline of 2 process(es), 4 call(s): {page}" in r.stderr
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "ToolAgent  pid 1" in html and "EchoAgent  pid 2" in html
