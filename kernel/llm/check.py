"""Check that a model can be used, the way the kernel checks it at start.

Usage::

    python -m kernel.llm.check --llm_name gpt-4
    python -m kernel.llm.check --llm_name openai:llama3 --llm_base_url http://localhost:8000/v1
    python -m kernel.llm.check --list

Prints ``ok: NAME (BACKEND MODEL at URL)`` and exits 0, or one line
``error: ...`` (missing key, unreachable server, refused key, unknown model)
and exits 1. Remote models are checked exactly as RemoteEngine does at
kernel start (same backend ``check()``); a local model is only looked up
(embedded cache, a path, or the Hugging Face cache), not loaded.
"""

from __future__ import annotations

import argparse
import os
import sys

from kernel.config import EMBEDDED_MODEL


def check(llm_name: str, base_url: str | None = None) -> str:
    """Returns the description of a usable model; raises CheckFailed with one line."""
    from kernel.llm import catalog

    try:
        spec = catalog.resolve(llm_name, base_url)
    except catalog.ModelConfigError as e:
        raise CheckFailed(str(e)) from None
    if spec.remote:
        from kernel.llm import backends

        try:
            backends.load(spec).check()
        except backends.BackendError as e:
            raise CheckFailed(f"model {llm_name}: {e.message}") from None
        return spec.describe()
    _check_local(spec)
    return spec.describe()


class CheckFailed(Exception):
    pass


def _check_local(spec) -> None:
    if spec.model == EMBEDDED_MODEL:
        from kernel.llm import model as model_mod

        if (model_mod.embedded_cache_path() / "model.safetensors").exists():
            return
        try:
            model_mod.embedded_gguf()  # converted on first kernel start
        except model_mod.ModelNotFound as e:
            raise CheckFailed(str(e)) from None
        return
    if os.path.isdir(spec.model):
        if not os.path.exists(os.path.join(spec.model, "config.json")):
            raise CheckFailed(f"{spec.model} has no config.json: not a transformers model folder")
        return
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return
    if not isinstance(try_to_load_from_cache(spec.model, "config.json"), str):
        raise CheckFailed(f"model {spec.name}: {spec.model} is not in the local Hugging Face cache "
                          "(download it first: hf download " + spec.model + ")")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--llm_name", default=EMBEDDED_MODEL)
    p.add_argument("--llm_base_url")
    p.add_argument("--list", action="store_true", help="list the configured model names and exit")
    args = p.parse_args(argv)
    if args.list:
        from kernel.llm import catalog

        tables = catalog.load_tables()
        for name in sorted(tables[0]):
            entry = tables[0][name]
            print(f"{name:24} {entry.get('backend', '?'):14} {entry.get('model', name)}")
        print("prefixes: " + ", ".join(f"{k}:<model>" for k in sorted(tables[1])))
        return 0
    try:
        print(f"ok: {check(args.llm_name, args.llm_base_url)}")
        return 0
    except CheckFailed as e:
        print(f"error: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
