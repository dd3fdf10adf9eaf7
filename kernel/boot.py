"""The kernel process's entry point: ``kernel_main`` runs in the process the front starts.

The front's side (starting this process and talking to it) is aios_shell/client.py. The heavy
modules (torch, the model) are imported only after ``_private`` has made the kernel's files private
and the process undumpable.
"""

from __future__ import annotations

import os
import signal


def kernel_main(config, conn, env: dict | None = None) -> None:
    """Entry point of the kernel process; ``env`` (from the model preflight) is set before any import."""
    os.environ.update(env or {})
    os.setpgrp()  # out of the terminal's foreground group: Ctrl-C in the shell is the shell's
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG: front died -> clean stop
    except (OSError, AttributeError):
        pass
    _private(config)
    import logging

    from kernel.kernel import Kernel
    from kernel.logs import setup_kernel_logging

    kernel = Kernel(config, conn)
    setup_kernel_logging(config, kernel.event)
    try:
        kernel.serve()
    finally:
        logging.shutdown()  # flush file handlers
        conn.close()
        if not kernel.engine.ready.is_set():
            _exit_while_loading()


def _exit_while_loading() -> None:
    """The kernel stopped (Ctrl-C, stop, SIGTERM) while the model converts or loads: leave now.

    The engine thread is inside torch/transformers and cannot be interrupted; waiting for it took 5-10 s,
    and an interpreter exit under a running torch thread ends in ``terminate called without an active
    exception``. So: drop this process's half-written model cache (``<cache>.tmp<pid>``, kernel/llm/model.py
    and convert.py rename a finished one into place, so no other cache is ever partial) and _exit."""
    import shutil

    from kernel.config import cache_dir

    for tmp in (cache_dir() / "models").glob(f"*.tmp{os.getpid()}"):
        shutil.rmtree(tmp, ignore_errors=True)
    os._exit(0)


def _private(config) -> None:
    """The kernel's files are its own: umask 077, data and log folders 0700, and the process is not
    dumpable (no ptrace or /proc/<pid>/mem by processes of the same user, agents included)."""
    os.umask(0o077)
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    except (OSError, AttributeError):
        pass
    for path in (config.data_dir, config.logs.dir):
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.chmod(path, 0o700)
