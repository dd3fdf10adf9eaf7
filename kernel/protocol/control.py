"""The control ops a front (shell, batch runner, main.py, a daemon client) sends the kernel: names and
argument schemas, one table, and the one check of them.

The kernel (kernel/control.py) pairs each name with its handler and checks a request's arguments
here before the handler runs; the daemon (aios_shell/daemon/conn.py) runs the same check on a
client's frame before it reaches the kernel. An agent's proc.spawn takes the same SPAWN_ARGS.

  spawn     {agent, task, priority?, restart_max?}   start an agent; its pid
  kill/wait/info/logs {pid}                         a process's end, table entry, output
  ps        {all?}  stats {}  tools {}              process rows, kernel counters, installed tools
  apps      {}                                      the kernel's agent apps, and the broken app folders
  confirm   {cid, allow}                            answer a pending confirmation (the shell's y/N)
  access    {}  setgroup {agent, group}             access policy; move an app into a group
  trace     {pid?, follow?}  untrace {pid}          spans of calls (kernel/trace)
  stop      {}                                      stop the kernel (the front that started it only)
"""

from __future__ import annotations

import json

import jsonschema

from kernel.protocol.limits import MAX_TASK, PRIORITY_RANGE

INT = {"type": "integer", "minimum": -(2**31) + 1, "maximum": 2**31 - 1}  # pids, cids: what a C int holds
PID_ARG = {"required": ["pid"], "properties": {"pid": INT}}  # any other: ESRCH
NO_ARGS: dict = {"properties": {}}
# What a spawn names, the one schema of both ways in: an agent's proc.spawn and the front's spawn op.
# A task of only blanks is refused by Kernel.spawn, where both paths meet.
SPAWN_ARGS = {"agent": {"type": "string", "minLength": 1, "maxLength": 128},
              "task": {"type": "string", "minLength": 1, "maxLength": MAX_TASK},
              "priority": {"type": "integer", "minimum": PRIORITY_RANGE[0], "maximum": PRIORITY_RANGE[1]}}

SCHEMAS: dict[str, dict] = {
    "spawn": {"required": ["agent", "task"],
              "properties": {**SPAWN_ARGS, "restart_max": {**INT, "type": ["integer", "null"]}}},
    "kill": PID_ARG,
    "wait": PID_ARG,
    "ps": {"properties": {"all": {"type": "boolean"}}},
    "info": PID_ARG,
    "logs": PID_ARG,
    "stats": NO_ARGS,
    "tools": NO_ARGS,
    "apps": NO_ARGS,
    "stop": NO_ARGS,
    "confirm": {"required": ["cid", "allow"], "properties": {"cid": INT, "allow": {"type": "boolean"}}},
    "access": NO_ARGS,
    "setgroup": {"required": ["agent", "group"],
                 "properties": {"agent": {"type": "string", "minLength": 1}, "group": {"type": "string"}}},
    "trace": {"properties": {"pid": INT, "follow": {"type": "boolean"}}},
    "untrace": PID_ARG,
}
CLIENT_OPS = frozenset(SCHEMAS) - {"stop"}  # what a daemon client may send: all but the kernel's own stop


def validator(props: dict):
    """A checked Draft 2020-12 validator of an object with exactly ``props``' properties."""
    schema = {"type": "object", "additionalProperties": False, **props}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


VALIDATORS = {name: validator(props) for name, props in SCHEMAS.items()}
ECHO_MAX = 200  # characters of a refused value an error message repeats


def schema_error(name: str, check, args: dict) -> str | None:
    """Why ``args`` do not fit the validator ``check``, as "<name>: <reason> (at <path>)", or None.

    The one wording of every schema refusal (syscalls and control ops alike). A value too long is
    measured, not repeated (a 300 KB task came back whole in its own error); others are cut.
    """
    err = jsonschema.exceptions.best_match(check.iter_errors(args))
    if err is None:
        return None
    if err.validator in ("maxLength", "maxItems", "maxProperties") and hasattr(err.instance, "__len__"):
        unit = "characters" if err.validator == "maxLength" else "items"
        why = f"a value of {len(err.instance):,} {unit} is too long (the limit is {err.validator_value:,})"
    elif len(err.message) > ECHO_MAX:
        why = err.message[:ECHO_MAX - 40] + " … " + err.message[-37:]
    else:
        why = err.message
    where = "/".join(str(p) for p in err.absolute_path)
    return f"{name}: {why}" + (f" (at {where})" if where else "")


def encode(obj: dict) -> bytes:
    """One message between a front and its kernel as UTF-8 JSON (values JSON cannot hold become strings).

    Sent with multiprocessing's ``send_bytes``, whose frame is a 4-byte big-endian length and the bytes:
    the same framing as an agent's pipes (kernel/protocol/channel.py) and the daemon's socket
    (aios_shell/daemon/frames.py), and never pickle.
    """
    return json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8")


def decode(data: bytes) -> dict:
    """The message ``encode`` made; ValueError if ``data`` is not a JSON object."""
    obj = json.loads(data.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError(f"a control message must be a JSON object, not {type(obj).__name__}")
    return obj


def check(name: str, args: dict) -> str | None:
    """Why ``args`` do not fit control op ``name``'s schema, or None (``name`` must be in SCHEMAS)."""
    return schema_error(name, VALIDATORS[name], args)
