"""seccomp: the system calls an agent may not make, as a small classic-BPF program (agent side).

Why hand-written BPF: the filter is about forty checks; a binding (libseccomp
through pyseccomp) would add a C library the sandbox must bind and a package to
install for what is one table below, which a reviewer can read whole. The
assembler (``_Prog``) only emits forward jumps within one syscall's block.

What it refuses, in every confined mode (bubblewrap or the Landlock fallback),
for the agent and every process it starts (a filter is inherited and can never
be removed):
- ``socket()`` of every family but TCP over IPv4/IPv6 (for its own endpoint):
  no unix sockets (so no ``connect()`` to the user's tmux, D-Bus, ssh-agent,
  docker or AIOS daemon sockets), no UDP, raw, packet or netlink sockets.
  ``socketpair(AF_UNIX)`` stays (Python's asyncio and multiprocessing use it).
  An app whose profile asks for network (and the kernel allows it) may also
  open UDP and netlink sockets; unix sockets stay refused for it too.
- ``connect()``, in the fallback without a network namespace, goes to the
  kernel's supervisor (SECCOMP_RET_USER_NOTIF, kernel/confine/notify.py), which
  lets through only 127.0.0.1 (or ::1) on the agent's endpoint port: Landlock
  matches the port on every address, so alone it would let the agent reach any
  host listening on that port number.
- TCP Fast Open (``sendto``/``sendmsg`` with MSG_FASTOPEN connects without
  ``connect()``), ``listen()``, io_uring (its operations bypass seccomp).
- Setting a setuid or setgid bit (chmod family, creating a file with one).
- ptrace, reading or writing another process's memory, taking its fds
  (``pidfd_getfd``): a command agent cannot reach into its runtime.
- New namespaces (``unshare``, ``setns``, namespace flags of ``clone``;
  ``clone3`` answers ENOSYS so libc falls back to ``clone``), mounts, BPF,
  perf events, userfaultfd, keyrings, modules, kexec, ``open_by_handle_at``.
- Any other ABI than the native one (x32, i386 on x86_64): killed.

Refusals answer EPERM (ENOSYS where libc must fall back), so a program sees
``Operation not permitted`` and goes on. Stdlib only (ctypes).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# -- syscall numbers per architecture (asm/unistd_64.h; asm-generic for aarch64) ------------------
_X86_64 = dict(socket=41, connect=42, sendto=44, sendmsg=46, listen=50, socketpair=53, clone=56,
               ptrace=101, chmod=90, fchmod=91, open=2, creat=85, mknod=133, openat=257, mknodat=259,
               fchmodat=268, openat2=437, fchmodat2=452, process_vm_readv=310, process_vm_writev=311,
               pidfd_getfd=438, unshare=272, setns=308, clone3=435, io_uring_setup=425, io_uring_enter=426,
               io_uring_register=427, bpf=321, perf_event_open=298, userfaultfd=323, keyctl=250, add_key=248,
               request_key=249, kexec_load=246, kexec_file_load=320, init_module=175, finit_module=313,
               delete_module=176, open_by_handle_at=304, sendmmsg=307, mount=165, umount2=166, pivot_root=155,
               swapon=167, swapoff=168, reboot=169, acct=163, fsopen=430, fsmount=432, move_mount=429,
               open_tree=428)
_AARCH64 = dict(socket=198, connect=203, sendto=206, sendmsg=211, listen=201, socketpair=199, clone=220,
                ptrace=117, fchmod=52, mknodat=33, openat=56, fchmodat=53, openat2=437, fchmodat2=452,
                process_vm_readv=270, process_vm_writev=271, pidfd_getfd=438, unshare=97, setns=268, clone3=435,
                io_uring_setup=425, io_uring_enter=426, io_uring_register=427, bpf=280, perf_event_open=241,
                userfaultfd=282, keyctl=219, add_key=217, request_key=218, kexec_load=104, kexec_file_load=294,
                init_module=105, finit_module=273, delete_module=106, open_by_handle_at=265, sendmmsg=269,
                mount=40, umount2=39, pivot_root=41, swapon=224, swapoff=225, reboot=142, acct=89, fsopen=430,
                fsmount=432, move_mount=429, open_tree=428)
ARCHES = {"x86_64": (0xC000003E, _X86_64), "aarch64": (0xC00000B7, _AARCH64)}  # AUDIT_ARCH_*
X32_BIT = 0x40000000  # x86_64: syscall numbers of the x32 ABI

AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
SOCK_STREAM, SOCK_TYPE_MASK = 1, 0xF  # the type argument also carries SOCK_NONBLOCK | SOCK_CLOEXEC
IPPROTO_TCP = 6
MSG_FASTOPEN = 0x20000000
O_CREAT, O_TMPFILE = 0o100, 0o20000000
SETID_BITS = 0o6000  # S_ISUID | S_ISGID
CLONE_NS = 0x7E020080  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME

RET_KILL_PROCESS, RET_ERRNO, RET_USER_NOTIF, RET_ALLOW = 0x80000000, 0x00050000, 0x7FC00000, 0x7FFF0000
EPERM = RET_ERRNO | errno.EPERM
ENOSYS = RET_ERRNO | errno.ENOSYS

SECCOMP_SET_MODE_FILTER, SECCOMP_GET_NOTIF_SIZES = 1, 3
FLAG_TSYNC, FLAG_NEW_LISTENER, FLAG_TSYNC_ESRCH = 1, 8, 16
_NR_SECCOMP = {"x86_64": 317, "aarch64": 277}

# classic BPF opcodes
_LD_W_ABS, _ALU_AND_K, _RET_K = 0x20, 0x54, 0x06
_JEQ_K, _JGE_K, _JSET_K = 0x15, 0x35, 0x45
_OFF_NR, _OFF_ARCH = 0, 4


def _arg(i: int) -> int:
    """Offset of the low 32 bits of argument i in struct seccomp_data (little-endian)."""
    return 16 + 8 * i


class _Prog:
    """Straight-line BPF with forward jumps inside one block (offsets < 256)."""

    def __init__(self):
        self.ins: list[tuple[int, int, int, int]] = []

    def stmt(self, code: int, k: int) -> None:
        self.ins.append((code, 0, 0, k))

    def block(self, nr: int, clauses: list[tuple[list, int]], default: int) -> None:
        """if nr == NR: the first clause whose conditions all hold returns its action, else ``default``.

        A condition is (arg, op, mask, value): op "eq": (arg & mask) == value; "ne": (arg & mask) != value;
        "any": arg & mask != 0.
        """
        body: list[tuple[int, int, int, int]] = []
        for conds, action in clauses:
            code: list = []
            for arg, op, mask, value in conds:
                code.append((_LD_W_ABS, 0, 0, _arg(arg)))
                if op == "any":
                    code.append(("jset", mask))
                else:
                    if mask != 0xFFFFFFFF:
                        code.append((_ALU_AND_K, 0, 0, mask))
                    code.append(("jeq" if op == "eq" else "jne", value))
            code.append((_RET_K, 0, 0, action))
            n = len(code)
            for i, c in enumerate(code):  # a failed condition skips to the next clause (past this ret)
                if c[0] == "jset":
                    code[i] = (_JSET_K, 0, n - i - 1, c[1])
                elif c[0] == "jeq":
                    code[i] = (_JEQ_K, 0, n - i - 1, c[1])
                elif c[0] == "jne":
                    code[i] = (_JEQ_K, n - i - 1, 0, c[1])
            body += code
        body.append((_RET_K, 0, 0, default))
        if len(body) > 255:
            raise ValueError("seccomp block too long for a BPF jump")
        self.stmt(_LD_W_ABS, _OFF_NR)
        self.ins.append((_JEQ_K, 0, len(body), nr))
        self.ins += body

    def pack(self):
        class SockFilter(ctypes.Structure):
            _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                        ("k", ctypes.c_uint32)]

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]

        arr = (SockFilter * len(self.ins))(*[SockFilter(*i) for i in self.ins])
        return SockFprog(len(self.ins), arr), arr


def supported() -> str:
    """'' when this machine can take the filter, else why not (one line)."""
    if platform.machine() not in ARCHES:
        return f"no syscall table for {platform.machine()} in agent_apps/confine/seccomp.py"
    try:
        with open("/proc/self/status") as f:
            if "Seccomp:" not in f.read():
                return "this Linux kernel has no seccomp (CONFIG_SECCOMP)"
    except OSError as e:
        return f"cannot read /proc/self/status: {e.strerror}"
    return ""


def program(network: bool, endpoint: bool, supervise_connect: bool) -> _Prog:
    """The filter. network: the profile's network was allowed; endpoint: TCP for the agent's own endpoint;
    supervise_connect: connect() goes to the kernel's supervisor (the fallback without a network namespace)."""
    audit_arch, nr = ARCHES[platform.machine()]
    p = _Prog()
    p.stmt(_LD_W_ABS, _OFF_ARCH)
    p.ins.append((_JEQ_K, 1, 0, audit_arch))
    p.stmt(_RET_K, RET_KILL_PROCESS)
    if platform.machine() == "x86_64":
        p.stmt(_LD_W_ABS, _OFF_NR)
        p.ins.append((_JGE_K, 0, 1, X32_BIT))
        p.stmt(_RET_K, RET_KILL_PROCESS)
    # socket(domain, type, protocol): unix never; TCP only unless the profile's network was allowed
    tcp = [(0, "ne", 0xFFFFFFFF, AF_INET), (0, "ne", 0xFFFFFFFF, AF_INET6)]
    sock: list = [([(0, "eq", 0xFFFFFFFF, AF_UNIX)], EPERM)]
    if network:
        sock += [([(0, "ne", 0xFFFFFFFF, AF_INET), (0, "ne", 0xFFFFFFFF, AF_INET6),
                   (0, "ne", 0xFFFFFFFF, AF_NETLINK)], EPERM)]
    elif endpoint:
        sock += [(tcp, EPERM),
                 ([(1, "ne", SOCK_TYPE_MASK, SOCK_STREAM)], EPERM),
                 ([(2, "ne", 0xFFFFFFFF, 0), (2, "ne", 0xFFFFFFFF, IPPROTO_TCP)], EPERM)]
    else:
        sock += [([], EPERM)]
    p.block(nr["socket"], sock, RET_ALLOW)
    p.block(nr["socketpair"], [([(0, "ne", 0xFFFFFFFF, AF_UNIX)], EPERM)], RET_ALLOW)
    if supervise_connect and not network:
        p.block(nr["connect"], [], RET_USER_NOTIF)
    if not network:
        p.block(nr["sendto"], [([(3, "any", MSG_FASTOPEN, 0)], EPERM)], RET_ALLOW)
        p.block(nr["sendmsg"], [([(2, "any", MSG_FASTOPEN, 0)], EPERM)], RET_ALLOW)
        p.block(nr["sendmmsg"], [([(3, "any", MSG_FASTOPEN, 0)], EPERM)], RET_ALLOW)
    p.block(nr["listen"], [], EPERM)
    # no setuid/setgid bit, set or created
    setid = lambda arg: ([(arg, "any", SETID_BITS, 0)], EPERM)  # noqa: E731
    created = lambda flags, mode: ([(flags, "any", O_CREAT | O_TMPFILE, 0), (mode, "any", SETID_BITS, 0)], EPERM)  # noqa: E731
    for name, clause in (("chmod", setid(1)), ("fchmod", setid(1)), ("fchmodat", setid(2)),
                         ("fchmodat2", setid(2)), ("creat", setid(1)), ("mknod", setid(1)),
                         ("mknodat", setid(2)), ("open", created(1, 2)), ("openat", created(2, 3))):
        if name in nr:
            p.block(nr[name], [clause], RET_ALLOW)
    p.block(nr["openat2"], [], ENOSYS)  # its mode is behind a pointer; libc falls back to openat
    p.block(nr["clone"], [([(0, "any", CLONE_NS, 0)], EPERM)], RET_ALLOW)
    p.block(nr["clone3"], [], ENOSYS)  # flags behind a pointer; glibc falls back to clone
    for name in ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "unshare", "setns",
                 "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open", "userfaultfd",
                 "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module",
                 "finit_module", "delete_module", "open_by_handle_at", "mount", "umount2", "pivot_root",
                 "swapon", "swapoff", "reboot", "acct", "fsopen", "fsmount", "move_mount", "open_tree"):
        p.block(nr[name], [], EPERM)
    p.stmt(_RET_K, RET_ALLOW)
    return p


def install(network: bool, endpoint: bool, supervise_connect: bool) -> int | None:
    """Load the filter on every thread of this process (TSYNC); returns the listener fd of connect()
    notifications when supervise_connect, else None. Needs PR_SET_NO_NEW_PRIVS (inside.apply sets it)."""
    prog, keep = program(network, endpoint, supervise_connect).pack()
    libc = ctypes.CDLL(None, use_errno=True)
    flags = FLAG_TSYNC
    if supervise_connect and not network:
        flags |= FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH
    r = libc.syscall(_NR_SECCOMP[platform.machine()], SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog))
    del keep
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"seccomp filter refused: {errno.errorcode.get(e, e)}")
    if r > 0 and not flags & FLAG_NEW_LISTENER:
        raise OSError(errno.ESRCH, f"seccomp: thread {r} could not take the filter")
    return r if flags & FLAG_NEW_LISTENER else None


def notif_sizes() -> tuple[int, int, int]:
    """(sizeof seccomp_notif, seccomp_notif_resp, seccomp_data) as this Linux kernel has them."""
    buf = ctypes.create_string_buffer(6)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_NR_SECCOMP[platform.machine()], SECCOMP_GET_NOTIF_SIZES, 0, buf) < 0:
        e = ctypes.get_errno()
        raise OSError(e, "seccomp: no user notifications on this kernel")
    return struct.unpack("3H", buf.raw)
