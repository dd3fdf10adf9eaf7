"""The int8 model cache: made once from the float32 copy, loaded without float32 weights.

Conversion (``write_int8``, a few seconds, once per model and cache version):

    1. calibrate  run a fixed set of chat prompts (CALIBRATION) through the
                  float32 model and record, for every linear layer, the largest
                  magnitude of each input channel
    2. smooth     SmoothQuant (Xiao et al. 2023, alpha 0.5): where a linear's input
                  comes straight from a scaled tensor (a norm's weight, or up_proj's
                  output rows for down_proj), divide that channel there by s and
                  multiply the linear's column by s. Exact in real arithmetic; it
                  moves activation outliers into the weights, where per-channel
                  int8 holds them. Measured (12 prompts, 48 greedy tokens each,
                  teacher-forced): top-1 agreement with float32 0.911 -> 0.951
    3. quantize   kernel.llm.quant.quantize_state: int8 per output row, the
                  output projection untied from the embedding

Load (``load_int8``): the model is built on the meta device (no float32
weights are ever allocated), its linears and embedding are replaced by int8
modules from the cache, and the rest (norms) is assigned from it; fbgemm's
packed weights are made here, ~0.3 s for SmolLM2-135M.

Cache directory: config.json (``tie_word_embeddings`` false), generation
config, tokenizer, ``model.safetensors`` (the layout in quant.py's docstring)
and ``quantization.json`` (scheme, calibration, source) written last, so a
directory without it is not a cache.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

MARKER = "quantization.json"
ALPHA = 0.5  # SmoothQuant migration strength: s = max|x|^a / max|w|^(1-a)
CALIBRATION = (  # chat prompts, none of them in the agreement test's prompt set
    "Tell me about the history of Rome.",
    "def fib(n):\n    # compute the n-th Fibonacci number",
    "Please call the weather tool for Paris and report the answer in JSON.",
    "What are the benefits of exercise? Answer in a list.",
    "Hello! How are you today?",
    "Solve: 12 * 7 - 5 = ?",
)
CALIBRATION_TOKENS = 32  # greedy tokens generated per calibration prompt (their inputs are recorded too)


def is_int8_cache(path: Path) -> bool:
    return (path / MARKER).exists() and (path / "model.safetensors").exists()


def calibrate(model, tok) -> dict:
    """{linear name: (in,) largest |input| per channel} over CALIBRATION."""
    import torch
    from torch import nn

    stats: dict = {}
    hooks = []
    for name, mod in model.named_modules():
        if type(mod) is nn.Linear:
            def hook(mod, inp, out, name=name):
                a = inp[0].detach().reshape(-1, inp[0].shape[-1]).abs().amax(0)
                stats[name] = torch.maximum(stats[name], a) if name in stats else a
            hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            for text in CALIBRATION:
                enc = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                              return_tensors="pt")
                ids = enc["input_ids"] if hasattr(enc, "keys") else enc
                model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=CALIBRATION_TOKENS,
                               do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    finally:
        for h in hooks:
            h.remove()
    return stats


def smooth(model, stats: dict, alpha: float = ALPHA) -> int:
    """SmoothQuant the decoder layers in place (Llama-style names); returns how many groups it scaled."""
    import torch

    n = 0
    with torch.no_grad():
        for name, mod in model.named_modules():
            attn, mlp = getattr(mod, "self_attn", None), getattr(mod, "mlp", None)
            groups = []
            if attn is not None and hasattr(mod, "input_layernorm") and hasattr(attn, "q_proj"):
                groups.append((f"{name}.self_attn.q_proj", [attn.q_proj, attn.k_proj, attn.v_proj],
                               mod.input_layernorm.weight, 0))
            if mlp is not None and hasattr(mod, "post_attention_layernorm") and hasattr(mlp, "gate_proj"):
                groups.append((f"{name}.mlp.gate_proj", [mlp.gate_proj, mlp.up_proj],
                               mod.post_attention_layernorm.weight, 0))
                groups.append((f"{name}.mlp.down_proj", [mlp.down_proj], mlp.up_proj.weight, 1))
            for key, lins, prev, axis in groups:
                if key not in stats or any(getattr(lin, "bias", None) is not None for lin in lins):
                    continue
                wmax = torch.stack([lin.weight.abs().amax(0) for lin in lins]).amax(0).clamp(min=1e-5)
                s = (stats[key].clamp(min=1e-5) ** alpha / wmax ** (1 - alpha)).clamp(min=1e-5)
                for lin in lins:
                    lin.weight.mul_(s[None, :])
                prev.div_(s[:, None] if axis else s)
                n += 1
    return n


def write_int8(source: Path, target: Path) -> Path:
    """Make the int8 cache at ``target`` from the float32 copy at ``source`` (atomic rename)."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kernel.llm import quant

    tok = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    if model.config.tie_word_embeddings:  # untie: smoothing and quantization treat lm_head on its own
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    groups = smooth(model, calibrate(model, tok))
    tensors = quant.quantize_state(model)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.config.tie_word_embeddings = False
    model.config.save_pretrained(tmp)
    model.generation_config.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt", "aios": "int8"})
    (tmp / MARKER).write_text(json.dumps({
        "weights": "int8", "scheme": "symmetric int8 per output row; activations int8 per row at run time "
        "(fbgemm dynamic linear)", "smoothquant_alpha": ALPHA, "smoothed_groups": groups,
        "calibration_prompts": len(CALIBRATION), "source": str(source)}, indent=1) + "\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(tmp, target)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_int8(path: Path):
    """(model, tokenizer) from an int8 cache, in eval mode, on the CPU."""
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from kernel.llm import quant

    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with safe_open(str(Path(path) / "model.safetensors"), "pt") as f:
        quant.apply(model, _Lazy(f))
    try:
        model.generation_config = GenerationConfig.from_pretrained(path)
    except OSError:
        pass
    model.eval()
    _trim()
    return model, AutoTokenizer.from_pretrained(path)


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

    def rest(self) -> dict:
        return {k: self.f.get_tensor(k) for k in sorted(self.left)}


def _trim() -> None:
    """Give the heap pages freed while packing back to the OS (glibc keeps them otherwise: ~130 MiB)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
