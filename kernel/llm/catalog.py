"""Model names -> backend specs, from kernel/llm/models.json and the user's files.

Light module (no torch, no HTTP client): the front and ``kernel.llm.check``
import it. Lookup order for ``--llm_name NAME``:

1. ``models`` entries, built-in first, then ``~/.config/aios/models.json``
   (``$XDG_CONFIG_HOME``), then the file named by ``$AIOS_MODELS``; a later
   file's entry replaces an earlier one of the same name.
2. ``PREFIX:MODEL`` with a ``prefixes`` entry (``openai:gpt-4o-mini``,
   ``vllm:Qwen/Qwen2.5-7B-Instruct``, ``ollama:llama3.2``, ``gemini:gemini-2.5-flash``,
   ``hf:HuggingFaceTB/SmolLM2-360M-Instruct``).
3. Anything else is a Hugging Face hub id or a local path (``hf_local``).

Base URL precedence for remote backends: ``--llm_base_url`` > the entry's
``base_url_env`` variable (e.g. ``OPENAI_BASE_URL``) > the entry's ``base_url``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlparse

BUILTIN = Path(__file__).with_name("models.json")
BACKENDS = ("hf_local", "openai_compat", "gemini")
RESUME_MODES = (None, "continue_final_message")
OPENAI_HOST = "api.openai.com"


class ModelConfigError(ValueError):
    """A models file or an --llm_name that cannot be used; the message is one line."""


@dataclass
class ModelSpec:
    name: str  # what the user typed (--llm_name)
    backend: str  # one of BACKENDS
    model: str  # the id the backend knows (hub id, API model name)
    base_url: str | None = None
    base_url_env: str | None = None
    api_key_env: str | None = None
    key_required: bool | None = None  # None: required only for api.openai.com and gemini
    max_concurrency: int = 4  # calls in flight at once against this backend
    timeout_s: float = 60.0  # connect/read timeout of one HTTP request (gap between stream chunks)
    max_retries: int = 3  # extra tries on 429, 5xx, timeouts and connection errors
    backoff_s: float = 0.5  # first retry delay; doubles each try (a Retry-After header wins, capped)
    resume: str | None = None  # "continue_final_message": the server continues a partial assistant turn
    headers: dict = field(default_factory=dict)
    note: str = ""

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ModelConfigError(f"model {self.name!r}: backend must be one of {', '.join(BACKENDS)}, "
                                   f"not {self.backend!r}")
        if self.resume not in RESUME_MODES:
            raise ModelConfigError(f"model {self.name!r}: resume must be continue_final_message or null")
        if self.max_concurrency < 1 or self.timeout_s <= 0 or self.max_retries < 0 or self.backoff_s < 0:
            raise ModelConfigError(f"model {self.name!r}: max_concurrency >= 1, timeout_s > 0, "
                                   "max_retries >= 0 and backoff_s >= 0 are required")
        if self.key_required is None:
            host = urlparse(self.base_url or "").hostname or ""
            self.key_required = self.backend == "gemini" or host == OPENAI_HOST

    @property
    def remote(self) -> bool:
        return self.backend != "hf_local"

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def describe(self) -> str:
        where = f" at {self.base_url}" if self.base_url else ""
        return f"{self.name} ({self.backend} {self.model}{where})"


def model_files() -> list[Path]:
    """The models files that exist, lowest precedence first."""
    user = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "aios" / "models.json"
    extra = os.environ.get("AIOS_MODELS")
    return [BUILTIN] + ([user] if user.exists() else []) + ([Path(extra)] if extra else [])


def load_tables() -> tuple[dict, dict]:
    """Merged (models, prefixes) tables of every models file."""
    models: dict = {}
    prefixes: dict = {}
    for path in model_files():
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelConfigError(f"models file {path} (from $AIOS_MODELS) does not exist") from None
        except (OSError, ValueError) as e:
            raise ModelConfigError(f"cannot read models file {path}: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict) \
                or not isinstance(data.get("prefixes", {}), dict):
            raise ModelConfigError(f"models file {path}: expected {{\"models\": {{...}}, \"prefixes\": {{...}}}}")
        models.update(data.get("models", {}))
        prefixes.update(data.get("prefixes", {}))
    return models, prefixes


def _spec(name: str, entry: dict, **defaults) -> ModelSpec:
    if not isinstance(entry, dict):
        raise ModelConfigError(f"model {name!r}: entry must be an object")
    known = {f.name for f in fields(ModelSpec)} - {"name"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ModelConfigError(f"model {name!r}: unknown field(s) {', '.join(unknown)}")
    args = {**defaults, **entry}
    if "backend" not in args:
        raise ModelConfigError(f"model {name!r}: no backend given")
    try:
        return ModelSpec(name=name, **args)
    except TypeError as e:
        raise ModelConfigError(f"model {name!r}: {e}") from None


def resolve(llm_name: str, base_url: str | None = None) -> ModelSpec:
    """``--llm_name`` (and ``--llm_base_url``) -> ModelSpec. Raises ModelConfigError."""
    if not llm_name or not llm_name.strip():
        raise ModelConfigError("--llm_name is empty")
    models, prefixes = load_tables()
    if llm_name in models:
        spec = _spec(llm_name, models[llm_name], model=llm_name)
    elif ":" in llm_name and llm_name.split(":", 1)[0] in prefixes:
        prefix, model = llm_name.split(":", 1)
        if not model:
            raise ModelConfigError(f"--llm_name {llm_name!r}: give a model after '{prefix}:'")
        spec = _spec(llm_name, prefixes[prefix], model=model)
    else:
        spec = ModelSpec(name=llm_name, backend="hf_local", model=llm_name)
    if spec.remote:
        url = base_url or (os.environ.get(spec.base_url_env) if spec.base_url_env else None) or spec.base_url
        if spec.backend == "openai_compat" and not url:
            raise ModelConfigError(f"model {llm_name!r} has no base_url: give --llm_base_url")
        if url != spec.base_url:
            spec.base_url = url
            spec.key_required = None
            spec.__post_init__()  # key_required follows the URL actually used
    elif base_url:
        raise ModelConfigError(f"--llm_base_url is for remote models; {llm_name!r} is a local ({spec.backend}) model")
    return spec


def names() -> list[str]:
    """Every configured model name (for help text and completion)."""
    models, _ = load_tables()
    return sorted(models)
