"""The int8 model cache: made once from the float32 copy, loaded without float32 weights.

Conversion (``write_int8``, a few seconds, once per model and cache version):
kernel.llm.quant.quantize_state: every linear layer int8 per output row, the
output projection untied from the embedding. No calibration: activations keep
~16 bits at run time (quant.Int8Linear), and SmoothQuant, which moves
activation outliers into the weights, then costs accuracy (top-1 agreement
with float32 0.983 without it, 0.976 with alpha 0.5, two halves on every
linear; docs/llm-engine.md).

Load (``load_int8``): the model is built on the meta device (no float32
weights are ever allocated), its linears and embedding are replaced by int8
modules from the cache, and the rest (norms) is assigned from it. fbgemm's
packed weights are made here (~0.6 s for SmolLM2-135M), on a second thread
while transformers' modeling modules import (~1.5 s) where the process may
use two CPUs (quant.PackAhead).

Cache directory: config.json (``tie_word_embeddings`` false), generation
config, tokenizer, ``model.safetensors`` (the layout in quant.py's docstring)
and ``quantization.json`` (scheme, source) written last, so a
directory without it is not a cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

MARKER = "quantization.json"


def is_int8_cache(path: Path) -> bool:
    return (path / MARKER).exists() and (path / "model.safetensors").exists()


@contextlib.contextmanager
def staged(target: Path):
    """Yield an empty folder beside ``target`` to write into, then rename it to ``target`` (first one wins)."""
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:  # an error or Ctrl-C while writing: no half-written folder is left
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.rename(tmp, target)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)


def write_int8(source: Path, target: Path) -> Path:
    """Make the int8 cache at ``target`` from the float32 copy at ``source`` (atomic rename)."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kernel.llm import quant

    tok = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    if model.config.tie_word_embeddings:  # untie: lm_head is quantized on its own
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    tensors = quant.quantize_state(model)
    model.config.tie_word_embeddings = False
    with staged(target) as tmp:
        model.config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt", "aios": "int8"})
        (tmp / MARKER).write_text(json.dumps({
            "weights": "int8", "scheme": "symmetric int8 per output row; activations per row at run time in "
            "two int8 halves (fbgemm dynamic linear)", "source": str(source)}, indent=1) + "\n")
    return target


def load_int8(path: Path):
    """(model, tokenizer) from an int8 cache, in eval mode, on the CPU."""
    return _load_packed(Path(path), "int8")


def load_fp16(path: Path):
    """(model, tokenizer) from the float32 cache with float16 linear layers (``--weights fp16``), in
    eval mode, on the CPU. As for int8, no float32 linear weight is materialized outside the file's
    mapping, and the rest (embedding, norms) is read as copies, so no view of the mapping outlives
    the load (one would keep every page the packing read resident)."""
    return _load_packed(Path(path), "fp16")


def _load_packed(path: Path, weights: str):
    """The model built on the meta device while fbgemm packs the cache's linears on a thread of its
    own (quant.PackAhead, quant.HalfAhead: beside the import of transformers, where the process may
    use two CPUs), then the packed layers and the rest of the cache put in (quant.apply, apply_fp16)."""
    import torch
    from safetensors import safe_open

    from kernel.llm import quant
    from kernel.llm.model import quiet_bars

    ahead_of, apply = (quant.PackAhead, quant.apply) if weights == "int8" else (quant.HalfAhead, quant.apply_fp16)
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        ahead = ahead_of(f) if _cpus() > 1 else None
        try:
            quiet_bars()
            from transformers import AutoConfig, AutoModelForCausalLM

            config = AutoConfig.from_pretrained(path)
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        except BaseException:
            if ahead:
                ahead.cancel()
            raise
        apply(model, _Lazy(f), ahead.take() if ahead else None)
    from transformers import AutoTokenizer, GenerationConfig

    try:
        model.generation_config = GenerationConfig.from_pretrained(path)
    except OSError:
        pass
    model.eval()
    from kernel.llm.kvcache import release_heap

    release_heap()  # the pages freed while packing (int8: ~130 MiB)
    return model, AutoTokenizer.from_pretrained(path)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Lazy:
    """The cache's tensors read one at a time (quant.apply pops them as it packs)."""

    def __init__(self, f):
        self.f, self.left = f, set(f.keys())

    def pop(self, key: str, *default):
        if key not in self.left:
            if default:
                return default[0]
            raise KeyError(key)
        self.left.discard(key)
        return self.f.get_tensor(key)

    def keys(self) -> set[str]:
        return set(self.f.keys())

    def get(self, key: str):
        """``key``'s tensor (a view of the file's mapping), left to be read again (a tied weight's)."""
        return self.f.get_tensor(key)

    def drop(self, key: str) -> None:
        """Leave ``key`` unread (its layer was packed ahead)."""
        self.left.discard(key)

    def rest(self) -> dict:
        """What was not popped (the norms), as copies: a tensor safetensors reads is a view of the file's
        mapping, and one view kept alive kept every page read from the file resident (130 MiB)."""
        return {k: self.f.get_tensor(k).clone() for k in sorted(self.left)}


