"""Helpers shared by the benchmarks: percentiles, timing, integer flags, a kernel for one block."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def pct(xs: list[float], q: float) -> float:
    """The q-quantile of xs (nearest rank, no interpolation)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def timed_ms(fn: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` calls of fn, one after another."""
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ms.append(1000 * (time.perf_counter() - t0))
    return ms


def int_flags(p: argparse.ArgumentParser, *, underscores: bool = False, **defaults: int) -> None:
    """Adds ``--name`` of type int with its default, in the order given (underscores as dashes unless told)."""
    for name, default in defaults.items():
        p.add_argument(f"--{name if underscores else name.replace('_', '-')}", type=int, default=default)


@contextmanager
def started_kernel(**cfg) -> Iterator:
    """A KernelClient on a fresh temporary data and log dir, ready (SystemExit if not); stopped after the block."""
    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig

    with tempfile.TemporaryDirectory() as tmp:
        client = KernelClient(KernelConfig.from_flags(data_dir=f"{tmp}/data", log_dir=f"{tmp}/logs", **cfg))
        try:
            if not client.ready.wait(300) or client.ready_info.get("load_error"):
                raise SystemExit(f"kernel did not start: {client.ready_info}")
            yield client
        finally:
            client.stop()


def agent_results(client, pids: list[int], what: str, timeout: float) -> tuple[list[dict], list[dict]]:
    """Waits for every pid: their snapshots and results (JSON text decoded); SystemExit naming ``what`` if one failed."""
    snaps = [client.wait(pid, timeout=timeout) for pid in pids]
    bad = [s for s in snaps if s["state"] != "done"]
    if bad:
        raise SystemExit(f"{what} failed: {bad[0]['error']}")
    return snaps, [s["result"] if isinstance(s["result"], dict) else json.loads(s["result"]) for s in snaps]
