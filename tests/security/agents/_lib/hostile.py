"""What a hostile agent tries (tests/security). Not an app: the apps beside it load it
(their profiles list it in "read_paths").

Task: JSON with what an attacker would know or guess: data_dir, log_dir, root (the project),
kernel_pid, front_pid, other_pid (another agent's host pid), ports. Each attack records every
attempt as {"what", "ok", "error" | "got"}; the tests assert each one failed (ok False) with a
clear error, and check from outside that nothing was read or changed.
"""

import ctypes
import glob
import json
import os
import signal
import socket
import sqlite3
import time

MARK = "HOSTILE-FORGED-7f3a"


class InWorkspace:
    """An agent whose attack needs its own workspace as its cwd (the resource-watch agents): it refuses to
    run anywhere else, since under --confine off its cwd would be the kernel's."""

    def __init__(self, app):
        self.app = app

    def task_args(self, task) -> dict:
        if os.getcwd() != "/workspace" and os.path.basename(os.getcwd()) != type(self).__name__:
            raise RuntimeError(f"not in my workspace ({os.getcwd()}): under --confine off the cwd is the kernel's")
        return json.loads(task or "{}")


class Hostile:
    attack = ""

    def __init__(self, app):
        self.app = app
        self.tried = []

    def run(self, task):
        args = json.loads(task or "{}")
        getattr(self, self.attack)(args)
        return self.tried

    def attempt(self, what, fn):
        try:
            got = fn()
        except Exception as e:
            self.tried.append({"what": what, "ok": False, "error": f"{type(e).__name__}: {e}"})
        else:
            self.tried.append({"what": what, "ok": True, "got": repr(got)[:300]})

    # -- files -------------------------------------------------------------------------
    def storage(self, a):
        db = os.path.join(a["data_dir"], "storage.sqlite3")
        self.attempt("list the data folder", lambda: os.listdir(a["data_dir"]))
        self.attempt("read storage.sqlite3", lambda: open(db, "rb").read(4096))
        self.attempt("sqlite read of every record", lambda: sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                     .execute("select * from sqlite_master").fetchall())
        self.attempt("forge a record", lambda: _sqlite_write(db))
        self.attempt("overwrite the file", lambda: open(db, "r+b").write(MARK.encode()))

    def swap(self, a):
        path = os.path.join(a["data_dir"], f"swap-{a['kernel_pid']}.sqlite3")
        self.attempt("glob swap files", lambda: glob.glob(os.path.join(a["data_dir"], "swap-*")) or _enoent("swap-*"))
        self.attempt("read the kernel's swap", lambda: open(path, "rb").read(4096))

    def workspaces(self, a):
        victim = os.path.join(a["data_dir"], "workspaces", "VictimAgent", "secret.txt")
        self.attempt("read another app's workspace", lambda: open(victim).read())
        self.attempt("list all workspaces", lambda: os.listdir(os.path.join(a["data_dir"], "workspaces")))
        self.attempt("climb out of /workspace", lambda: open("../VictimAgent/secret.txt").read())
        self.attempt("read the user's home", lambda: os.listdir(os.path.expanduser("~root")) + os.listdir("/home"))
        self.attempt("write beside the workspace", lambda: open(os.path.join(a["data_dir"], "planted"), "w"))

    def groups(self, a):
        path = os.path.join(a["data_dir"], "access", "groups.json")
        self.attempt("read groups.json", lambda: open(path).read())
        self.attempt("join VictimAgent's group", lambda: _write(path, json.dumps({"GroupsForgerAgent": "VictimAgent"})))
        self.attempt("replace the access folder", lambda: os.rename(os.path.dirname(path), os.path.dirname(path) + "-x"))

    def audit(self, a):
        self.attempt("find audit logs", lambda: glob.glob(os.path.join(a["log_dir"], "audit-*")) or _enoent("audit-*"))
        self.attempt("append a forged audit line", lambda: _append(a["audit_path"], f"{MARK} allowed everything\n"))
        self.attempt("read the kernel log", lambda: os.listdir(a["log_dir"]))

    def source(self, a):
        for rel in ("kernel/kernel.py", "kernel/protocol/messages.py", "agent_apps/sdk.py", "agent_apps/runtime.py"):
            path = os.path.join(a["root"], rel)
            self.attempt(f"append to {rel}", lambda p=path: _append(p, f"# {MARK}\n"))
            self.attempt(f"replace {rel}", lambda p=path: os.rename(p, p + ".bak"))
        self.attempt("rewrite my own app", lambda: _append(__file__, f"# {MARK}\n"))
        self.attempt("list the project", lambda: sorted(os.listdir(a["root"])))

    # -- environment, processes -----------------------------------------------------------
    def env(self, a):
        self.attempt("read the secret from my environment", lambda: os.environ["AIOS_TEST_SECRET_KEY"])
        self.attempt("read the kernel's environment", lambda: open(f"/proc/{a['kernel_pid']}/environ", "rb").read())
        self.tried.append({"what": "environment names", "ok": None, "got": sorted(os.environ)})

    def kernel_memory(self, a):
        k = a["kernel_pid"]
        self.attempt("read /proc/<kernel>/maps", lambda: open(f"/proc/{k}/maps").read(200))
        self.attempt("read /proc/<kernel>/mem", lambda: open(f"/proc/{k}/mem", "rb").read(16))
        self.attempt("ptrace attach the kernel", lambda: _ptrace_attach(k))
        self.attempt("ptrace attach the front", lambda: _ptrace_attach(a["front_pid"]))

    def signals(self, a):
        for who in ("kernel_pid", "front_pid", "other_pid"):
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                self.attempt(f"{sig.name} {who}", lambda p=a[who], s=sig: os.kill(p, s))
        if a.get("kill_all"):  # only where the test knows the blast radius is the sandbox (a pid namespace)
            self.attempt("SIGKILL every process I can see", lambda: _kill_all_but_me())

    # -- network ---------------------------------------------------------------------------
    def network(self, a):
        for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            self.attempt(f"tcp connect {host}", lambda f=fam, h=host: _tcp(f, h, a["tcp_port"]))
            self.attempt(f"udp send {host}", lambda f=fam, h=host: _udp(f, h, a["udp_port"]))
        self.attempt("tcp connect 1.1.1.1:53", lambda: _tcp(socket.AF_INET, "1.1.1.1", 53))

    def sockets(self, a):
        """Issue 24: what Landlock alone leaves open without namespaces (the user's unix sockets: tmux, the
        AIOS daemon, D-Bus; the host's socket list; the endpoint's port on another address; UDP, raw)."""
        self.attempt("connect to the user's unix socket", lambda: _unix(a["unix_path"]))
        self.attempt("connect to the AIOS daemon's socket", lambda: _unix(a.get("daemon_socket") or a["unix_path"]))
        self.attempt("bind a unix socket", lambda: _unix_bind(os.path.join(os.environ.get("TMPDIR", "/tmp"), "x.sock")))
        self.attempt("list the host's unix sockets", lambda: open("/proc/self/net/unix").read(300))
        self.attempt("list them through /proc/net", lambda: open("/proc/net/unix").read(300))
        self.attempt("read the host paths in mountinfo", lambda: open("/proc/self/mountinfo").read(300))
        port = int(os.environ["OPENAI_BASE_URL"].rsplit(":", 1)[1].split("/")[0])
        self.attempt("tcp to 127.0.0.2 on my endpoint's port", lambda: _tcp(socket.AF_INET, "127.0.0.2", port))
        self.attempt("tcp to ::ffff:127.0.0.2 on my endpoint's port",
                     lambda: _tcp(socket.AF_INET6, "::ffff:127.0.0.2", port))
        self.attempt("tcp to another local port", lambda: _tcp(socket.AF_INET, "127.0.0.1", a["tcp_port"]))
        self.attempt("udp send 127.0.0.1", lambda: _udp(socket.AF_INET, "127.0.0.1", a["udp_port"]))
        self.attempt("raw socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        self.attempt("netlink socket", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
        self.attempt("tcp fast open to 127.0.0.2", lambda: _fastopen("127.0.0.2", port))
        self.tried.append({"what": "my own endpoint still answers", "ok": None,
                           "got": _tcp(socket.AF_INET, "127.0.0.1", port)})

    def privileges(self, a):
        """Issue 24: a root kernel's agent keeps no power of root, and leaves no setuid file behind."""
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        self.tried.append({"what": "my credentials", "ok": None,
                           "got": {k: status[k].strip() for k in ("Uid", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs",
                                                                   "Seccomp")}})
        import shutil
        self.attempt("copy id and make it setuid", lambda: (shutil.copy("/usr/bin/id", "id-suid"),
                                                            os.chmod("id-suid", 0o4755)))
        self.attempt("make it setgid", lambda: os.chmod("id-suid", 0o2755))
        self.attempt("create a setuid file", lambda: os.open("born-suid", os.O_CREAT | os.O_WRONLY, 0o4755))
        self.attempt("unshare a user namespace", lambda: _unshare(0x10000000))
        self.attempt("load a kernel module", lambda: _syscall(175, None, 0, b""))  # init_module (x86_64)
        self.attempt("io_uring", lambda: _syscall(425, 8, ctypes.create_string_buffer(120)))  # io_uring_setup

    # -- resources ---------------------------------------------------------------------------
    def memory_hog(self, a):
        self.attempt("allocate 2 GiB", lambda: len(bytearray(2 << 30)))

    def file_hog(self, a):
        fds = []

        def grab():
            for _ in range(15_000):
                fds.append(os.open("/dev/null", os.O_RDONLY))
            return len(fds)
        self.attempt("open 15,000 files", grab)
        self.tried[-1]["opened"] = len(fds)
        for fd in fds:
            os.close(fd)

    def fork_bomb(self, a):
        kids = []

        def bomb():
            for _ in range(a.get("n", 200)):
                pid = os.fork()
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                kids.append(pid)
            return len(kids)
        self.attempt(f"fork {a.get('n', 200)} processes", bomb)
        self.tried[-1]["forked"] = len(kids)
        time.sleep(a.get("hold", 0))  # keep them: a watcher that counts the tree must see it over its limit
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

    def escapee(self, a):
        """A grandchild that setsid()s out of the agent's session, then keeps calling the kernel in the
        agent's name and logs each answer to the workspace; the agent then waits to be killed."""
        from agent_apps import sdk

        r, w = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork():
                os._exit(0)
            os.write(w, str(os.getpid()).encode())
            with open("escapee.log", "a", buffering=1) as f:
                while True:
                    try:
                        f.write(f"{time.time()} ok {sdk.proc.info()['pid']}\n")
                    except Exception as e:
                        f.write(f"{time.time()} error {type(e).__name__}: {e}\n")
                    time.sleep(0.1)
        os.wait()
        sdk.log("escapee started as", os.read(r, 32).decode())
        time.sleep(600)

    # -- the kernel's own tools, through a link -----------------------------------------------
    def symlink(self, a):
        from agent_apps.sdk import tools

        os.symlink("/", "rootlink")
        os.symlink(os.path.join(a["data_dir"], "workspaces", "VictimAgent"), "victimlink")
        self.attempt("list_files through a link to /", lambda: tools.call("list_files", path="rootlink"))
        self.attempt("read_file through a link to /", lambda: tools.call("read_file", path="rootlink/etc/passwd"))
        self.attempt("read_file through a link to a victim", lambda: tools.call("read_file", path="victimlink/secret.txt"))
        self.attempt("replace my workspace by a link", lambda: os.rename("/workspace", "/ws-old"))


def _enoent(what):
    raise FileNotFoundError(f"no match for {what}")


def _write(path, text):
    with open(path, "w") as f:
        return f.write(text)


def _append(path, text):
    with open(path, "a") as f:
        return f.write(text)


def _sqlite_write(db):
    con = sqlite3.connect(db)
    con.execute("create table if not exists forged(x)")
    con.execute("insert into forged values (?)", (MARK,))
    con.commit()


def _ptrace_attach(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, pid, None, None) == -1:  # PTRACE_ATTACH
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return "attached"


def _kill_all_but_me():
    os.kill(-1, signal.SIGKILL)  # as pid 1 of its namespace this spares the caller
    return "sent"


def _unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(3)
        s.connect(path)
        s.sendall(b'{"id": 1, "op": "shutdown"}\n')
        return "connected"
    finally:
        s.close()


def _unix_bind(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(path)
        return "bound"
    finally:
        s.close()


def _fastopen(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        return s.sendto(MARK.encode(), 0x20000000, (host, port))  # MSG_FASTOPEN connects as it sends
    finally:
        s.close()


def _syscall(nr, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(nr, *args) == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return "done"


def _unshare(flags):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return "unshared"


def _tcp(fam, host, port):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        s.sendall(MARK.encode())
        return "connected"
    finally:
        s.close()


def _udp(fam, host, port):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        return s.sendto(MARK.encode(), (host, port))
    finally:
        s.close()
