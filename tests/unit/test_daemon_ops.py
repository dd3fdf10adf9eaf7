"""The daemon checks a client's request with the kernel's own control-op schemas (one table)."""

from __future__ import annotations

import pytest

from aios_shell.daemon.conn import RequestError, check_args
from kernel import control
from kernel.protocol.limits import MAX_TASK
from kernel.process.syscalls import SYSCALLS


def test_the_daemon_serves_every_control_op_but_stop_and_nothing_else():
    assert control.CLIENT_OPS == set(control.OPS) - {"stop"}
    for op in ("stop", "shutdown_kernel", "x" * 100):
        with pytest.raises(RequestError) as e:
            check_args(op, {"op": op, "id": 1})
        assert e.value.code == "ENOSYS"


@pytest.mark.parametrize("frame", [
    {"op": "kill", "pid": 2**31}, {"op": "kill", "pid": "1"}, {"op": "kill"},
    {"op": "spawn", "agent": "EchoAgent", "task": "x", "priority": 10**40},
    {"op": "spawn", "agent": "EchoAgent", "task": "x", "priority": 21},
    {"op": "spawn", "agent": "EchoAgent", "task": "x" * (MAX_TASK + 1)},
    {"op": "spawn", "agent": "EchoAgent", "task": ""},
    {"op": "spawn", "agent": "", "task": "x"}, {"op": "confirm", "cid": 1, "allow": 1},
    {"op": "ps", "all": "yes"}, {"op": "stats", "verbose": True},
])
def test_arguments_the_kernel_would_refuse_are_refused_at_the_socket(frame):
    with pytest.raises(RequestError) as e:
        check_args(frame["op"], {**frame, "id": 7})
    assert e.value.code == "EINVAL" and e.value.message.startswith(frame["op"] + ":")
    assert control.check(control.OPS[frame["op"]], {k: v for k, v in frame.items() if k != "op"}) is not None


def test_good_arguments_pass_unchanged():
    frame = {"op": "spawn", "id": 3, "agent": "EchoAgent", "task": "hi", "priority": -20, "restart_max": None}
    assert check_args("spawn", frame) == {"agent": "EchoAgent", "task": "hi", "priority": -20, "restart_max": None}
    assert check_args("kill", {"op": "kill", "id": 4, "pid": 2**31 - 1}) == {"pid": 2**31 - 1}


def test_a_spawn_is_checked_by_one_schema_whether_the_front_or_an_agent_asks():
    """task and priority: the same bounds from the shell, main.py or the daemon (control op spawn) as from an
    agent's proc.spawn (was: any C int and any length from the front, -20..20 and 100,000 chars from agents)."""
    front = control.OPS["spawn"].validator.schema["properties"]
    agent = next(spec for spec in SYSCALLS.specs if spec.name == "proc.spawn").schema["properties"]
    assert {k: front[k] for k in ("agent", "task", "priority")} == agent
    assert agent["priority"] == {"type": "integer", "minimum": -20, "maximum": 20}


def test_a_refused_long_value_is_measured_not_echoed():
    """The same wording for a syscall and a control op; a 300 KB task is not sent back in its own error."""
    from kernel.protocol.control import schema_error

    op = control.OPS["spawn"]
    why = control.check(op, {"agent": "EchoAgent", "task": "x" * 300_000})
    assert why == "spawn: a value of 300,000 characters is too long (the limit is 200,000) (at task)"
    assert why == schema_error("spawn", op.validator, {"agent": "EchoAgent", "task": "x" * 300_000})
    odd = control.check(op, {"agent": "EchoAgent", "task": "x", "priority": "y" * 10_000})
    assert odd.startswith("spawn: 'yyy") and len(odd) < 300 and odd.endswith("(at priority)")


def test_the_front_and_its_kernel_exchange_json_not_pickle():
    """The front's pipe to its kernel carries JSON objects (multiprocessing frames them with a 4-byte length, as
    the agents' pipes and the daemon's socket are framed); a value JSON cannot hold becomes a string."""
    import pickle

    from kernel.protocol import control as wire

    data = wire.encode({"op": "ps", "id": 1, "all": True, "when": wire})
    assert data.startswith(b'{"op": "ps"') and wire.decode(data)["when"].startswith("<module")
    for bad in (b"[1, 2]", pickle.dumps({"op": "ps"}), b"\xff"):
        with pytest.raises((ValueError, UnicodeDecodeError)):
            wire.decode(bad)
