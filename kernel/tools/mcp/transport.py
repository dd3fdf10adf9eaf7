"""A stdio transport for the SDK's client, with the limits an untrusted server needs.

Like mcp.client.stdio.stdio_client (newline-delimited JSON-RPC over the server's stdin and
stdout), but:
  - a line longer than MAX_MESSAGE ends the connection instead of growing a buffer without bound;
  - more than MAX_BAD_LINES unparsable lines end it (the SDK would log each one);
  - the server runs under launch.py in its own process group, which dies with the kernel;
  - its stderr goes to <log_dir>/mcp-<server>-<stamp>.log, capped at STDERR_LOG_MAX; the tail is
    kept for error messages ("exited with code 1: ModuleNotFoundError: ...");
  - closing it always ends the whole group: stdin closed, STOP_GRACE seconds, then SIGTERM to
    the launcher (which SIGKILLs the group) and SIGKILL of the group; shielded from cancellation.

``ended`` is set when the connection is over (EOF, a violation, or ``end(reason)``); ``reason``
says why. Runs on the hub's thread only.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import mcp_types
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage

from kernel import param
from kernel.tools.mcp import config as C

log = logging.getLogger("aios.tools.mcp")
LAUNCH = str(Path(__file__).with_name("launch.py"))


class StdioTransport:
    def __init__(self, spec: C.ServerSpec, stderr_path: str):
        self.spec = spec
        self.stderr_path = stderr_path
        self.ended = anyio.Event()
        self.reason = ""
        self.pid: int | None = None  # the launcher's pid = the group's id
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=8)
        self._proc = None
        self._tg = None
        self._eof = False

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()

    async def __aenter__(self):
        spec = self.spec
        env = get_default_environment() | spec.env
        self._proc = await anyio.open_process(
            [sys.executable, "-I", "-S", LAUNCH, str(os.getpid()), spec.command, *spec.args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=spec.cwd, env=env,
            start_new_session=True)
        self.pid = self._proc.pid
        self._read_w, self._read_r = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        self._write_w, self._write_r = anyio.create_memory_object_stream[SessionMessage](0)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._reader)
        self._tg.start_soon(self._writer)
        self._tg.start_soon(self._stderr)
        return self._read_r, self._write_w

    async def __aexit__(self, *exc) -> None:
        if self._eof and not self.ended.is_set():
            self.end(await self._exit_reason())
        self.end("closed by the kernel")
        with anyio.CancelScope(shield=True):
            await self._stop_process()
        self._tg.cancel_scope.cancel()
        for s in (self._read_w, self._read_r, self._write_w, self._write_r):
            s.close()
        await self._tg.__aexit__(None, None, None)

    # -- pipes ---------------------------------------------------------------------------
    async def _reader(self) -> None:
        buf, bad = bytearray(), 0
        try:
            async with self._read_w:
                while True:
                    try:
                        chunk = await self._proc.stdout.receive(65536)
                    except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                        self._eof = True  # before the session hears of it: __aexit__ then reports the exit
                        break
                    buf += chunk
                    while (nl := buf.find(b"\n")) >= 0:
                        line, buf = bytes(buf[:nl]), buf[nl + 1:]
                        if len(line) > param.MCP_MAX_MESSAGE:
                            return self.end(f"sent a message of more than {param.MCP_MAX_MESSAGE} bytes")
                        if not line.strip():
                            continue
                        try:
                            msg = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                        except ValueError as e:
                            bad += 1
                            if bad == 1:
                                log.warning("mcp: %s wrote a line that is not JSON-RPC: %.200s", self.spec.name, e)
                            if bad > param.MCP_MAX_BAD_LINES:
                                return self.end(f"wrote more than {param.MCP_MAX_BAD_LINES} lines that are not JSON-RPC")
                            continue
                        try:
                            await self._read_w.send(SessionMessage(msg))
                        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                            return
                    if len(buf) > param.MCP_MAX_MESSAGE:
                        return self.end(f"sent a message of more than {param.MCP_MAX_MESSAGE} bytes")
        finally:
            if not self.ended.is_set():
                self.end(await self._exit_reason())

    async def _exit_reason(self) -> str:
        with anyio.move_on_after(1.0), anyio.CancelScope(shield=True):
            while self._proc.returncode is None:
                await anyio.sleep(0.02)
        code = self._proc.returncode
        what = "closed its stdout" if code is None else f"exited with code {code}"
        tail = " | ".join(self.stderr_tail)
        return f"{what}: {tail[-300:]}" if tail else what

    async def _writer(self) -> None:
        try:
            async with self._write_r:
                async for m in self._write_r:
                    data = m.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await self._proc.stdin.send(data.encode())
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            self.end("its stdin closed")

    async def _stderr(self) -> None:
        written, noted = 0, False
        with open(self.stderr_path, "ab") as f:
            while True:
                try:
                    chunk = await self._proc.stderr.receive(65536)
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                    return
                for line in chunk.decode(errors="replace").splitlines():
                    if line.strip():
                        self.stderr_tail.append(line.strip()[:200])
                if written < param.MCP_STDERR_LOG_MAX:
                    f.write(chunk[:param.MCP_STDERR_LOG_MAX - written])
                    f.flush()
                    written += len(chunk)
                elif not noted:
                    noted = True
                    log.warning("mcp: %s: stderr past %d bytes is dropped", self.spec.name, param.MCP_STDERR_LOG_MAX)

    # -- stopping ------------------------------------------------------------------------
    async def _stop_process(self) -> None:
        p = self._proc
        try:
            await p.stdin.aclose()
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        with anyio.move_on_after(param.MCP_STOP_GRACE):
            while p.returncode is None:
                await anyio.sleep(0.02)
        if p.returncode is None:
            _signal(p.pid, signal.SIGTERM)  # the launcher SIGKILLs its group
            with anyio.move_on_after(1.0):
                while p.returncode is None:
                    await anyio.sleep(0.02)
        _killpg(p.pid)  # whatever is left of the group: the server, its children, a stuck launcher
        with anyio.move_on_after(2.0):
            await p.wait()
        for s in (p.stdout, p.stderr):
            try:
                await s.aclose()
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
