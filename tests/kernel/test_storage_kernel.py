"""fs.* syscalls through real agent processes: versions, rollback, bytes, caps, schema errors,
cross-agent access, confirmations."""

from __future__ import annotations

import base64

from memfs_helpers import err, grouped, ok, run_ops, unique

from kernel.protocol import messages


def test_versions_and_rollback_through_an_agent(kernel):
    name = unique("notes")
    w = lambda data: {"call": "fs.write", "args": {"name": name, "data": data}}  # noqa: E731
    res = run_ops(kernel, [
        w("alpha"), w("beta"),  # an overwrite that keeps the old version: no confirmation needed
        {"call": "fs.read", "args": {"name": name}},
        {"call": "fs.read", "args": {"name": name, "version": 1}},
        {"call": "fs.rollback", "args": {"name": name, "version": 1}},
        {"call": "fs.read", "args": {"name": name}},
        {"call": "fs.versions", "args": {"name": name}},
        {"call": "fs.list", "args": {"prefix": name}},
        {"call": "fs.read", "args": {"name": name, "version": 7}},
        {"call": "fs.rollback", "args": {"name": name, "version": 7}},
    ])
    assert [ok(r)["version"] for r in res[:2]] == [1, 2]
    assert ok(res[2])["data"] == "beta" and ok(res[2])["head"] == 2
    assert ok(res[3])["data"] == "alpha" and ok(res[3])["version"] == 1
    assert ok(res[4])["version"] == 3 and ok(res[4])["op"] == "rollback" and ok(res[4])["base"] == 1
    assert ok(res[5])["data"] == "alpha" and ok(res[5])["version"] == 3
    assert [(v["version"], v["op"]) for v in ok(res[6])] == [(1, "write"), (2, "write"), (3, "rollback")]
    assert ok(res[6])[0]["sha256"] == ok(res[6])[2]["sha256"]
    assert [(r["name"], r["version"], r["versions"]) for r in ok(res[7])] == [(name, 3, 3)]
    assert "no version 7" in err(res[8], messages.ENOENT)
    err(res[9], messages.ENOENT)
    # the record belongs to the app: a later process of it reads what an earlier one wrote
    later = run_ops(kernel, [{"call": "fs.read", "args": {"name": name}}])
    assert ok(later[0])["data"] == "alpha"


def test_bytes_round_trip_and_text_checks(kernel):
    name = unique("blob")
    blob = bytes(range(256))
    b64 = base64.b64encode(blob).decode()
    res = run_ops(kernel, [
        {"call": "fs.write", "args": {"name": name, "data": b64, "encoding": "base64"}},
        {"call": "fs.read", "args": {"name": name, "encoding": "base64"}},
        {"call": "fs.read", "args": {"name": name}},
        {"call": "fs.write", "args": {"name": name + "-t", "data": "héllo ✓"}},
        {"call": "fs.read", "args": {"name": name + "-t"}},
    ])
    assert ok(res[0])["size"] == 256
    assert base64.b64decode(ok(res[1])["data"]) == blob
    assert "base64" in err(res[2], messages.EINVAL)
    assert ok(res[3])["size"] == len("héllo ✓".encode())
    assert ok(res[4])["data"] == "héllo ✓"


def test_schema_errors_and_size_caps(kernel):
    bad = [
        {"call": "fs.write", "args": {"name": "x"}},  # no data
        {"call": "fs.write", "args": {"name": "", "data": "d"}},
        {"call": "fs.write", "args": {"name": "a\nb", "data": "d"}},  # control character
        {"call": "fs.write", "args": {"name": "x" * 257, "data": "d"}},
        {"call": "fs.write", "args": {"name": "x", "data": 5}},
        {"call": "fs.write", "args": {"name": "x", "data": "d", "owner": "EchoAgent"}},  # no writing elsewhere
        {"call": "fs.write", "args": {"name": "x", "data": "d", "encoding": "latin-1"}},
        {"call": "fs.write", "args": {"name": "x", "data": "not base64!", "encoding": "base64"}},
        {"call": "fs.read", "args": {"name": "x", "version": 0}},
        {"call": "fs.read", "args": {}},
        {"call": "fs.rollback", "args": {"name": "x"}},
        {"call": "fs.list", "args": {"limit": 0}},
        {"call": "fs.delete", "args": {"name": ["x"]}},
        {"call": "fs.versions", "args": {"name": "x", "version": 1}},
    ]
    res = run_ops(kernel, bad + [
        {"call": "fs.write", "args": {"name": unique("big")}, "fill": {"data": ["x", 600_000]}},
        {"call": "fs.write", "args": {"name": unique("max")}, "fill": {"data": ["y", 512 * 1024]}},
    ])
    for op, r in zip(bad, res):
        assert r.get("error") == messages.EINVAL, (op, r)
    assert "600000 bytes exceed the 524288-byte limit" in err(res[len(bad)], messages.E2BIG)
    assert ok(res[len(bad) + 1])["size"] == 512 * 1024  # exactly at the cap is fine


def test_cross_agent_reads_denied_unless_grouped(kernel):
    name = unique("shared")
    mine = run_ops(kernel, [{"call": "fs.write", "args": {"name": name, "data": "for the team"}}])
    ok(mine[0])
    probes = [
        {"call": "fs.read", "args": {"name": name, "owner": "MemFsAgent"}},
        {"call": "fs.list", "args": {"prefix": name, "owner": "MemFsAgent"}},
        {"call": "fs.versions", "args": {"name": name, "owner": "MemFsAgent"}},
        {"call": "fs.read", "args": {"name": unique("absent"), "owner": "MemFsAgent"}},
    ]
    denied = run_ops(kernel, probes, agent="MemFsPeer")
    for r in denied:
        assert "group" in err(r, messages.EPERM)  # a missing record of another app is EPERM too: no probing
    with grouped(kernel, "MemFsPeer", "MemFsAgent"):
        allowed = run_ops(kernel, probes + [
            {"call": "fs.write", "args": {"name": name, "data": "mine now?"}},
        ], agent="MemFsPeer")
    assert ok(allowed[0])["data"] == "for the team"
    assert [r["name"] for r in ok(allowed[1])] == [name]
    assert [v["version"] for v in ok(allowed[2])] == [1]
    err(allowed[3], messages.ENOENT)
    assert ok(allowed[4])["owner"] == "MemFsPeer"  # a peer writes into its own namespace only
    again = run_ops(kernel, probes[:1], agent="MemFsPeer")  # out of the group: denied again
    err(again[0], messages.EPERM)
    assert ok(run_ops(kernel, [{"call": "fs.read", "args": {"name": name}}])[0])["data"] == "for the team"


def test_delete_is_refused_without_confirmation(kernel):
    # The shared kernel runs without a user to ask and the default policy denies irreversible actions.
    name = unique("precious")
    res = run_ops(kernel, [
        {"call": "fs.write", "args": {"name": name, "data": "keep me"}},
        {"call": "fs.delete", "args": {"name": name}},
        {"call": "fs.read", "args": {"name": name}},
        {"call": "fs.delete", "args": {"name": unique("never-written")}},
    ])
    assert "not confirmed" in err(res[1], messages.EPERM)
    assert ok(res[2])["data"] == "keep me"
    err(res[3], messages.ENOENT)


def test_overwrite_that_would_prune_a_version_needs_confirmation(kernel):
    # 256 versions are kept (storage_keep_versions); the 257th write would drop version 1 for good.
    name = unique("full")
    res = run_ops(kernel, [{"call": "fs.write", "args": {"name": name, "data": f"v{i + 1}"}} for i in range(257)]
                  + [{"call": "fs.read", "args": {"name": name}}, {"call": "fs.read", "args": {"name": name, "version": 1}}])
    assert [ok(r)["version"] for r in res[:256]] == list(range(1, 257))
    assert "not confirmed" in err(res[256], messages.EPERM)
    assert ok(res[257])["data"] == "v256" and ok(res[258])["data"] == "v1"
