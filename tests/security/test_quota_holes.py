"""A hostile agent (tests/agents/quota_abuser) against quotas, process limits and the table's filters.

Each test is an attack that worked before: pipelined llm.chat calls overshooting the token quota,
fs.rollback adding bytes past the storage quota, spawned children starting with a fresh quota and
without a cap, proc.exit(ok) followed by more work, and proc.wait reading another group's result.
"""

from __future__ import annotations

import json
import time

import psutil
import pytest

from conftest import start_kernel

TOKENS = 300


@pytest.fixture(scope="module")
def k(tmp_path_factory):
    client, _ = start_kernel(tmp_path_factory.mktemp("quota"), quota_llm_tokens=TOKENS, quota_storage_bytes=20_000,
                             max_children=3, max_agents=6, kill_grace_s=1.0,
                             max_agents_per_app=6, max_agents_per_tree=6)  # the caps under test here
    yield client
    client.stop()


def run(k, ops, timeout=120) -> dict:
    return k.wait(k.spawn("QuotaAbuser", json.dumps({"ops": ops})), timeout=timeout)


def test_pipelined_calls_cannot_overshoot_the_app_token_quota(k):
    snap = run(k, [{"pipelined_chat": {"n": 8, "max_new_tokens": 60}}])
    assert snap["state"] == "done", snap["error"]
    [replies] = snap["result"]
    assert any(r.get("err") == "EDQUOT" for r in replies), replies
    assert sum(r.get("tokens", 0) for r in replies) <= TOKENS  # was 795 under a 100-token quota
    assert snap["tokens_in"] + snap["tokens_out"] <= TOKENS
    # The quota is the app's: a new process of it, and a child it spawns, share what is left.
    again = run(k, [{"pipelined_chat": {"n": 4, "max_new_tokens": 60}},
                    {"spawn": {"n": 1, "task": {"ops": [{"pipelined_chat": {"n": 1, "max_new_tokens": 5}}]}}}])
    assert again["result"][0][-1]["err"] == "EDQUOT" and "quota" in again["result"][0][-1]["msg"]
    child = k.wait(again["result"][1][0]["ok"], timeout=60)
    assert child["result"][0][0]["err"] == "EDQUOT"
    used = [snap["tokens_in"] + snap["tokens_out"] for snap in (snap, again, child)]
    assert sum(used) <= TOKENS, used
    assert k.request("access", timeout=5)["quotas"]["per"] == "privilege group"


def test_rollback_is_charged_to_the_storage_quota(k):
    snap = run(k, [{"rollback_loop": {"size": 8000, "n": 5}}])
    [out] = snap["result"]
    assert "ok" in out["first"]
    assert out["rollbacks"] == ["ok", "EDQUOT", "EDQUOT", "EDQUOT", "EDQUOT"]  # was 5 x ok: 48 KB under 20 KB


def test_children_and_agents_are_capped(k):
    parent = k.spawn("QuotaAbuser", json.dumps({"ops": [{"spawn": {"n": 5, "task": {"ops": [{"sleep": 30}]}}}]}))
    deadline = time.time() + 60
    while time.time() < deadline and k.info(parent)["state"] not in ("done", "failed"):
        time.sleep(0.05)
    snap = k.wait(parent, timeout=60)
    spawned = snap["result"][0]
    assert [("ok" if "ok" in r else r["err"]) for r in spawned] == ["ok", "ok", "ok", "EAGAIN", "EAGAIN"]
    assert "--max_children" in spawned[3]["msg"]
    live = [s for s in k.ps(all=False)]
    extra = []
    with pytest.raises(Exception) as refused:
        for _ in range(10):
            extra.append(k.spawn("SleepyAgent", "30"))
    assert len(live) + len(extra) == 6 and "--max_agents" in str(refused.value)
    for pid in [r["ok"] for r in spawned[:3]] + extra:
        k.kill(pid)
        k.wait(pid, timeout=30)


def test_a_process_that_reports_its_exit_and_stays_is_refused_then_killed(k):
    pid = k.spawn("QuotaAbuser", json.dumps({"ops": [{"exit_then_stay": {}}]}))
    os_pid = None
    deadline = time.time() + 60
    while time.time() < deadline:
        snap = k.info(pid)
        os_pid = snap["os_pid"]
        if snap["syscalls"].get("proc.exit"):
            break
        time.sleep(0.02)
    if snap["state"] not in ("done", "failed", "killed"):
        assert snap["state"] != "done"  # not shown as done while its OS process still runs
    final = k.wait(pid, timeout=30)
    assert final["state"] == "killed" and final["exit_signal"] == 9 and final["exit"] == "SIGKILL", final
    assert "after proc.exit" in final["error"], final
    assert final["syscalls"].get("<refused>", 0) >= 3, final  # every call after proc.exit was refused
    try:  # SIGKILLed with its sandbox: the kernel reaps bwrap at once, the agent's teardown may take a moment more
        _, alive = psutil.wait_procs([psutil.Process(os_pid)], timeout=10)
    except psutil.NoSuchProcess:
        alive = []
    assert not alive or alive[0].status() == psutil.STATUS_ZOMBIE, alive
    logs = k.logs(pid)["lines"]
    assert any("after exit:" in line and "ESRCH" in line for line in logs), logs


def test_proc_wait_is_filtered_like_proc_info(k):
    secret = k.spawn("EchoAgent", "the secret plan")
    k.wait(secret, timeout=60)
    snap = run(k, [{"peek": secret}, {"spawn_wait": {"agent": "EchoAgent", "task": "for my parent"}}])
    peek, child = snap["result"]
    for view in (peek["info"]["ok"], peek["wait"]["ok"]):  # proc.wait returned the task and result before
        assert view["pid"] == secret and view["state"] == "done"
        assert "result" not in view and "task" not in view and "secret" not in json.dumps(view)
    assert child["ok"]["result"] == "for my parent"  # a parent still reads its own child (another app)
