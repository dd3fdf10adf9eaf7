"""A small HTTP GET client for the online tools (urllib; no extra dependency).

Errors become ToolErrors that say what failed and why: offline (DNS or
connection failure), HTTP status, bad payload. Bodies are capped at MAX_BODY
bytes. Runs inside a tool child process (the manager kills it at the call's
deadline; DNS lookups cannot be timed out otherwise).
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request

from kernel.protocol.messages import EIO, ETIMEDOUT
from tools.base import ToolError

MAX_BODY = 2 << 20
USER_AGENT = "AIOS-tools/1.0 (https://github.com/agiresearch/AIOS)"


def get(tool: str, url: str, params: dict | None = None, headers: dict | None = None, timeout: float = 10.0) -> bytes:
    if params:
        url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params)}"
    host = urllib.parse.urlsplit(url).netloc or url
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=max(0.5, timeout)) as r:
            body = r.read(MAX_BODY + 1)
    except urllib.error.HTTPError as e:
        raise ToolError(EIO, f"{tool}: {host} answered HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise ToolError(EIO, f"{tool}: cannot reach {host} ({e.reason}); are you offline?") from None
    except (socket.timeout, TimeoutError):
        raise ToolError(ETIMEDOUT, f"{tool}: {host} did not answer within {timeout:.0f}s") from None
    except OSError as e:
        raise ToolError(EIO, f"{tool}: cannot reach {host} ({e}); are you offline?") from None
    if len(body) > MAX_BODY:
        raise ToolError(EIO, f"{tool}: {host} sent more than {MAX_BODY} bytes")
    return body


def get_json(tool: str, url: str, params: dict | None = None, headers: dict | None = None,
             timeout: float = 10.0):
    body = get(tool, url, params, headers, timeout)
    try:
        return json.loads(body)
    except ValueError:
        raise ToolError(EIO, f"{tool}: the answer from {url.split('?')[0]} is not JSON") from None
