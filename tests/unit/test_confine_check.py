"""--confine-check: the report of kernel/confine/doctor.py, as a user runs it (a real probe, no kernel)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

from kernel.confine import doctor


def check(*flags: str) -> tuple[int, str]:
    r = subprocess.run([sys.executable, str(ROOT / "simulator.py"), *flags], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    return r.returncode, r.stdout


def test_the_report_names_every_layer_and_exits_by_what_holds():
    code, out = check("--confine-check", "json")
    r = json.loads(out)
    assert list(r["layers"]) == ["namespaces", "landlock", "seccomp", "rlimits"]
    assert code == (0 if all(st["holds"] for st in r["layers"].values()) else 1)
    assert all(st["why"] for st in r["layers"].values())  # a reason, held or not
    code, text = check("--confine-check")
    assert text.startswith("AIOS confinement on this machine") and f"runs agents under {r['agents_run_under']}" in text


def test_the_forced_fallback_says_what_it_gives_up():
    code, out = check("--confine", "landlock", "--confine-check", "json")
    r = json.loads(out)
    assert code == 1 and r["mode"] == "landlock"
    assert not r["layers"]["namespaces"]["holds"] and "--confine landlock" in r["layers"]["namespaces"]["why"]
    assert r["agents_run_under"].startswith("landlock+")


def test_the_apparmor_profile_lets_bwrap_make_user_namespaces():
    assert "profile bwrap /usr/bin/bwrap" in doctor.APPARMOR_PROFILE and "userns," in doctor.APPARMOR_PROFILE
    assert doctor.apparmor_hint().endswith(doctor.APPARMOR_PROFILE)


def test_a_bubblewrap_too_old_for_the_sandbox_is_named_as_such(tmp_path, monkeypatch):
    """bubblewrap before 0.8 (Ubuntu 22.04 ships 0.6) lacks --disable-userns: say so, not "cannot create
    namespaces"; agents and the shell tool then fall back the same way (one probe, one builder)."""
    from kernel.confine import probe
    from tools import shell

    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: Unknown option --disable-userns' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{'/usr/bin:/bin'}")
    probe._bwrap.cache_clear()
    shell._bwrap.cache_clear()
    try:
        path, why = probe._bwrap()
        assert path is None and "too old" in why and "0.8 or later" in why and str(fake) in why
        assert shell.backend() != "bwrap"
    finally:
        probe._bwrap.cache_clear()
        shell._bwrap.cache_clear()
