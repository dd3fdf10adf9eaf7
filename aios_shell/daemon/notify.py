"""What a daemon under systemd tells it: sd_notify(3) and the journal's line format, with the stdlib.

``Notifier.from_env()`` takes ``$NOTIFY_SOCKET`` out of the environment (so
the kernel and agents, which inherit it, cannot speak for the daemon: with
``NotifyAccess=main`` systemd would refuse them anyway) and sends datagrams
to it: ``READY=1`` once the socket serves (a ``Type=notify`` unit is active
from that moment, not when the process started), ``STOPPING=1`` when the
shutdown begins, ``STATUS=...`` for ``systemctl status``. Outside systemd it
does nothing.

``under_journal(stream)``: is ``stream`` connected to journald
(``$JOURNAL_STREAM`` names its device and inode)? Then the daemon writes
lines without a timestamp (the journal stamps each line itself) and with a
``<N>`` syslog priority prefix, so ``journalctl -p warning`` filters them.
"""

from __future__ import annotations

import logging
import os
import socket

SYSLOG_PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}  # sd-daemon(3) prefixes


class Notifier:
    def __init__(self, address: str | None):
        self.address = address  # None: not under systemd (or not Type=notify)

    @classmethod
    def from_env(cls) -> "Notifier":
        addr = os.environ.pop("NOTIFY_SOCKET", None)
        if not addr or not (addr.startswith("/") or addr.startswith("@")):
            return cls(None)
        return cls("\0" + addr[1:] if addr.startswith("@") else addr)  # "@": the abstract namespace

    def send(self, **fields: object) -> bool:
        """``send(READY=1, STATUS="serving")``; False when there is no one to tell or it failed."""
        if self.address is None:
            return False
        msg = "\n".join(f"{k}={v}" for k, v in fields.items()).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(msg, self.address)
            return True
        except OSError:
            return False  # systemd went away or refuses: the daemon serves either way


def under_journal(stream) -> bool:
    """True when ``stream`` is the journal stream systemd gave this service (``$JOURNAL_STREAM``
    is ``DEVICE:INODE`` of it; a redirected stderr no longer matches)."""
    dev_ino = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in dev_ino.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class JournalFormatter(logging.Formatter):
    """``<6>INFO [1234 aios.daemon] serving on ...``: no timestamp (journald adds its own)."""

    def __init__(self):
        super().__init__("%(levelname)s [%(process)d %(name)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prio = SYSLOG_PRIORITY.get(record.levelname, 6)
        return "\n".join(f"<{prio}>{line}" for line in super().format(record).splitlines() or [""])
