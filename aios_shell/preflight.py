"""Fail fast on a model that cannot be found, or an MCP config file that cannot be used: checked in the
front (the shell, main.py, the daemon), before the kernel boots.

Light module (no torch, no transformers). ``preflight_config(config)`` checks both and returns the
environment the kernel should start with; ``preflight(llm_name, base_url)`` checks the model alone.
Either raises PreflightError, whose message is one line (for a model, ending in the hint
``python -m kernel.llm.check --list``).

A local (hf_local) model is found without the network when it is the
embedded model, a folder, or in the Hugging Face cache. Anything else needs
the hub: when the hub cannot be reached (no route, no DNS, or
``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` set) the name is refused here in
at most HUB_PROBE_S seconds, instead of transformers' retries (49 s, each
line printed twice). When the model is local, or the hub unreachable, the
kernel gets ``HF_HUB_OFFLINE=1`` so transformers never tries the network.
Remote backends (openai:..., gemini-pro) are checked by the kernel itself at
start (RemoteEngine), with their own one-line errors.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from urllib.parse import urlparse

from kernel.protocol.messages import EINVAL, ENOENT

HUB_PROBE_S = 1.5  # longest wait for a TCP connection to the hub (DNS included)
HINT = "python -m kernel.llm.check --list lists the configured names"
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


class PreflightError(Exception):
    """The model or a config file cannot be used; the message is one line. ``code``: the errno name."""

    def __init__(self, message: str, code: str = ENOENT):
        super().__init__(message)
        self.code = code


def check_files(config) -> None:
    """The files the config names, read as the kernel will read them: its --mcp_config (the kernel's tool
    manager loads it again at boot; here a bad file is one line before any kernel starts). ValueError."""
    if config.tools.mcp_config:
        from kernel.tools.mcp.config import load

        try:
            load(config.tools.mcp_config)
        except ValueError as e:
            raise ValueError(f"--mcp_config: {e}") from None


def preflight_config(config) -> dict[str, str]:
    """preflight() of the config's model, then check_files(config)."""
    env = preflight(config.llm.name, config.llm.base_url)
    try:
        check_files(config)
    except ValueError as e:
        raise PreflightError(str(e), EINVAL) from None
    return env


def _offline_forced() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


def hub_reachable(timeout: float = HUB_PROBE_S) -> bool:
    """Can a TCP connection reach the hub (or the HTTPS proxy) within ``timeout`` s? DNS counted."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if not host:
        return False
    ok = threading.Event()

    def probe():  # getaddrinfo has no timeout of its own: the thread is abandoned if it hangs
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.set()
        except OSError:
            pass

    t = threading.Thread(target=probe, name="hub-probe", daemon=True)
    t.start()
    t.join(timeout)
    return ok.is_set()


def _in_hf_cache(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return False
    try:
        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except Exception:  # a malformed id
        return False


def did_you_mean(llm_name: str) -> str:
    """`` (did you mean 'smollm2-135m-instruct'?)`` for a name close to a configured one, else ""."""
    import difflib

    from kernel.llm import catalog

    try:
        known = catalog.names()
    except catalog.ModelConfigError:
        return ""
    lower = {n.lower(): n for n in known}
    best = difflib.get_close_matches(llm_name.lower(), list(lower), n=1, cutoff=0.6)
    return f" (did you mean {lower[best[0]]!r}?)" if best else ""


def preflight(llm_name: str, base_url: str | None = None) -> dict[str, str]:
    """Environment for the kernel process ({} or {"HF_HUB_OFFLINE": "1"}); raises PreflightError."""
    from kernel.config import EMBEDDED_MODEL
    from kernel.llm import catalog

    try:
        spec = catalog.resolve(llm_name, base_url)
    except catalog.ModelConfigError as e:
        raise PreflightError(f"{e}; {HINT}") from None
    if spec.remote:
        return {}
    offline = {"HF_HUB_OFFLINE": "1"}
    if spec.model == EMBEDDED_MODEL:
        return offline
    if os.path.isdir(spec.model):
        if not os.path.exists(os.path.join(spec.model, "config.json")):
            raise PreflightError(f"model {llm_name!r}: {spec.model} has no config.json, so it is not a "
                                 f"transformers model folder; {HINT}")
        return offline
    if not HUB_ID.match(spec.model):  # a missing folder, or a name the hub cannot hold
        raise PreflightError(f"unknown model {llm_name!r}{did_you_mean(llm_name)}: not a configured name, not a "
                             f"folder, and not a Hugging Face id; {HINT}")
    if _in_hf_cache(spec.model):
        return {} if not _offline_forced() and hub_reachable() else offline
    if spec.model != llm_name:  # a configured name whose hub id is not cached
        what = f"model {llm_name!r} ({spec.model}) is not in the Hugging Face cache"
    else:
        what = (f"unknown model {llm_name!r}{did_you_mean(llm_name)}: not a configured name, not a folder, "
                "not in the Hugging Face cache")
    if _offline_forced():
        raise PreflightError(f"{what}, and HF_HUB_OFFLINE is set; {HINT}")
    if not hub_reachable():
        raise PreflightError(f"{what}, and the hub cannot be reached (offline); {HINT}")
    return {}
