"""float16 weights (``--weights fp16``): fbgemm's fp16 GEMM, float32 activations and sums.

The model's linear layers (the output projection included) hold float16 packed
weights; the embedding, norms and attention stay float32. This file checks
what the mode is (every linear packed, half the bytes), that it follows float32
closely on the fixed reference prompts (a floor that fails the test), and that
the engine serves with it: the same greedy answer alone and in a batch, under
preemption (``rr``, quantum 2) as without.
"""

from __future__ import annotations


import pytest
import torch
from torch import nn

from kernel.config import EMBEDDED_MODEL, KernelConfig
from kernel.llm import quant
from kernel.llm import model as model_mod
from test_engine import chat, run, shared_model  # noqa: F401  (fixture)
from test_weights_int8 import agreement_with_float32

TOP1_FLOOR = 0.98  # float16 weights, float32 activations; measured 1.000 (int8's floor: 0.95)
FIRST_DIV_FLOOR = 30.0  # mean index of the first differing greedy token; measured 34.9, the continuations' lengths
IDENTICAL_FLOOR = 10  # of the 12 greedy continuations; measured 12 (int8 on AVX-512 VNNI: fewer)


@pytest.fixture(scope="module")
def fp16_model():
    return model_mod.load(EMBEDDED_MODEL, weights="fp16")  # lru-cached by shared_model


def test_every_linear_is_packed_as_float16_and_the_rest_stays_float32(fp16_model):
    model, _ = fp16_model
    ref, _ = model_mod.load(EMBEDDED_MODEL, weights="fp32")
    assert model_mod.weights_of(model) == "fp16" and model_mod.weights_of(ref) == "float32"
    assert not [n for n, m in model.named_modules() if type(m) is nn.Linear]  # none left float32
    linears = [m for m in model.modules() if isinstance(m, quant.Fp16Linear)]
    assert len(linears) == len([m for m in ref.modules() if type(m) is nn.Linear])
    assert isinstance(model.lm_head, quant.Fp16Linear)
    assert model.get_input_embeddings().weight.dtype == torch.float32
    ref_linear = sum(m.weight.numel() * 4 for m in ref.modules() if type(m) is nn.Linear)
    assert sum(m.nbytes for m in linears) == ref_linear // 2
    assert model.config.tie_word_embeddings is False


def test_layers_packed_ahead_are_used_only_where_they_are_the_models_layer():
    """The load packs the float32 cache's linears on a thread of its own while transformers imports
    (quant.HalfAhead): each layer it makes is used where it was packed from the model's own weight for
    that layer (the tied output projection's is the embedding's); a wrong guess is packed again from
    the right weight, and a load that fails first cancels the packing and frees the reader."""
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    from kernel.llm import convert

    path = model_mod.embedded_cache_path("fp32")
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        packed = quant.HalfAhead(f).take()
        assert len(packed) == 30 * 7 + 1 and packed["lm_head"][0] == "model.embed_tokens.weight"
        wrong = "model.layers.3.self_attn.o_proj"
        packed[wrong] = ("model.layers.4.self_attn.o_proj.weight", packed["model.layers.4.self_attn.o_proj"][1])
        kept = {n: lin for n, (_, lin) in packed.items() if n != wrong}
        config = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        quant.apply_fp16(model, convert._Lazy(f), packed)
        assert all(model.get_submodule(n) is lin for n, lin in kept.items())
        layer = model.get_submodule(wrong)
        assert isinstance(layer, quant.Fp16Linear) and layer is not packed[wrong][1]
        x = torch.randn(2, 576, generator=torch.Generator().manual_seed(3))
        with torch.inference_mode():
            assert torch.equal(layer(x), quant.Fp16Linear(f.get_tensor(f"{wrong}.weight"))(x))
        assert not [n for n, p in [*model.named_parameters(), *model.named_buffers()] if p.is_meta]

        ahead = quant.HalfAhead(f)
        ahead.cancel()  # returns once the thread is done with the reader
        assert not ahead._thread.is_alive()


def test_fp16_agrees_with_float32_above_the_floor(fp16_model):
    """The reference of test_weights_int8.py, with float16 weights: 12 prompts, teacher-forced top-1."""
    a = agreement_with_float32(fp16_model[0], "fp16")
    assert a["top1_agreement"] >= TOP1_FLOOR, a
    assert a["first_divergence_mean"] >= FIRST_DIV_FLOOR, a
    assert a["identical_greedy"] >= IDENTICAL_FLOOR, a


def test_the_engine_serves_fp16_alone_batched_and_preempted():
    prompts = ["What is the capital of France?", "List three colors.", "What is 2+2?"]
    alone = [run([chat(p, i, max_new=12)], weights="fp16")[0][0][0]["text"] for i, p in enumerate(prompts)]
    assert "Paris" in alone[0], alone
    results, st = run([chat(p, i, max_new=12) for i, p in enumerate(prompts)], weights="fp16",
                      scheduler="rr", max_batch=2, rr_quantum=2, kv_budget_mb=0)
    assert [r["text"] for r, _ in results] == alone
    assert st["weights"] == "fp16" and st["preemptions"] > 0


def test_fp16_is_for_the_cpu_and_validated():
    assert KernelConfig.from_flags(weights="fp16").llm.weights == "fp16"
    with pytest.raises(ValueError):
        KernelConfig.from_flags(weights="fp16", eval_device="cuda")
    with pytest.raises(ValueError):
        model_mod.resolve_weights("fp16", "cuda")
    assert model_mod.resolve_weights("fp16", "cpu") == "fp16"
