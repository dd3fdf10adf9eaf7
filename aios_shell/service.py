"""``aios serve``, ``aios stop``, ``aios status``: the daemon's life, as systemctl shows a unit's.

    $ aios serve
    AIOS daemon pid 4242 serving on /run/user/1000/aios/aios.sock (kernel pid 4250, model ...); logs in ...
    $ aios status
    AIOS daemon: running, pid 4242, up 3m 12s
      model:    smollm2-135m-instruct (ready)
      ...
    $ aios stop
    stopped the AIOS daemon (pid 4242): its kernel and agents are gone

``serve`` starts the daemon detached and returns once it serves (the daemon
itself is ``serve --foreground``: what systemd runs, see docs/cli.md);
``stop`` returns only once the daemon's process is gone, which it leaves only
after its kernel has reaped every agent, so ``aios stop && aios serve``
works; with no daemon it says so and succeeds (as ``systemctl stop``).
``status`` exits 3 when no daemon runs (as ``systemctl status``).
"""

from __future__ import annotations

import argparse
import os
import sys

from aios_shell.cli import Failed, arg, attach, config_from, print_json, quiet, socket_path, verb

NOT_RUNNING = 3  # systemctl status: "program is not running" (LSB)


@verb("serve", "[--foreground]", "start the daemon: a kernel in the background that every aios command uses",
      arg("--foreground", action="store_true", help="serve in this process, logging to stderr too (what a "
          "systemd unit runs: it tells systemd when the socket serves, Type=notify)"),
      arg("--ready-fd", type=int, help=argparse.SUPPRESS),  # set by a detached start for its child
      where="serve")
def serve(args) -> int:
    from aios_shell.daemon import run

    config = config_from(args)
    sock = socket_path(args)
    if args.foreground:
        return run.serve(config, sock, ready_fd=args.ready_fd, prog="aios serve")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the child imports this same code
    os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    return run.start_detached([sys.executable, "-m", "aios_shell", "serve", *args.argv], config, sock,
                              prog="aios serve", attach="aios (or aios run AGENT TASK, aios ps)")


@verb("stop", "[--timeout S]", "stop the daemon, its kernel and every agent; returns once they are gone",
      arg("--timeout", type=float, default=60.0, metavar="S", help="give up waiting after S seconds (exit 1; "
          "the daemon goes on stopping)"))
def stop(args) -> int:
    from aios_shell.client import KernelError

    client = attach(args)
    if client is None:
        print(f"no AIOS daemon was running (socket {socket_path(args)})")
        return 0
    pid = client.hello.get("daemon_pid")
    try:
        try:
            live = (client.stats() or {}).get("agents_live", "?")
        except KernelError:
            live = "?"  # a kernel that does not answer: stop it all the same
        if not quiet(args):
            print(f"stopping the AIOS daemon (pid {pid}) and {live} running agent(s)…", file=sys.stderr)
        client.shutdown(wait_s=args.timeout)
    except KernelError as e:
        raise Failed(e.message) from None
    finally:
        client.stop()
    print(f"stopped the AIOS daemon (pid {pid}): its kernel and agents are gone")
    return 0


def fmt_uptime(s) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    s = int(s)
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s % 60}s" if m else f"{s}s"


@verb("status", "[-o json]", "is the daemon running: pid, model, policy, uptime, agents, socket, logs "
      "(exit 3: not running)",
      arg("-o", "--output", choices=("text", "json"), default="text", help="text, or json (one object)"))
def status(args) -> int:
    from aios_shell.client import KernelError

    client = attach(args)
    if client is None:
        if args.output == "json":
            print_json({"running": False, "socket": socket_path(args)})
        else:
            print(f"AIOS daemon: not running (socket {socket_path(args)}; start one: aios serve)")
        return NOT_RUNNING
    try:
        h, st = client.hello, client.stats() or {}
    except KernelError as e:
        raise Failed(e.message) from None
    finally:
        client.stop()
    rec = {"running": True, "pid": h.get("daemon_pid"), "kernel_pid": h.get("kernel_pid"), "model": h.get("model"),
           "model_state": "failed" if st.get("load_error") else "ready" if st.get("loaded") else "loading",
           "policy": h.get("scheduler"), "uptime_s": round(st["uptime_s"], 1) if "uptime_s" in st else None,
           "agents_running": st.get("agents_live"), "agents_total": st.get("agents_total"),
           "clients": max(0, (h.get("clients") or 1) - 1), "socket": h.get("socket"), "log_dir": h.get("log_dir"),
           "daemon_log": h.get("daemon_log")}
    if args.output == "json":
        print_json(rec)
        return 0
    print(f"AIOS daemon: running, pid {rec['pid']}, up {fmt_uptime(rec['uptime_s'])}\n"
          f"  model:    {rec['model']} ({rec['model_state']})\n"
          f"  policy:   {rec['policy']}\n"
          f"  agents:   {rec['agents_running']} running, {rec['agents_total']} in all\n"
          f"  kernel:   pid {rec['kernel_pid']}\n"
          f"  clients:  {rec['clients']} attached besides this one\n"
          f"  socket:   {rec['socket']}\n"
          f"  logs:     {rec['log_dir']}/ (this run: {os.path.basename(rec['daemon_log'] or '-')})")
    return 0
