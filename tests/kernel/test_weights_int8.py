"""int8 weights (the CPU default; ``--weights int8``): the cache, batch invariance, agreement with float32.

The engine's greedy-equality tests (test_engine*.py, test_constrained.py) run
in both modes through the ``weights`` fixture; this file checks what makes
them hold in int8: a linear layer's row does not depend on the other rows
(per-row activation grids, exact integer products), the activation grid we
emulate is fbgemm's, and the whole model gives a row bit-identical logits
alone or left-padded in a batch, prefilled whole or decoded token by token
(float64 attention). The reference test reports agreement with float32 and
fails below a floor.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch

from kernel.config import EMBEDDED_MODEL, KernelConfig
from kernel.llm import agreement, convert, quant
from kernel.llm import model as model_mod
from kernel.llm.threads import default_threads
from test_engine import chat, run, shared_model  # noqa: F401  (fixture)
from toolspecs import CALC, CONVERT, FMT, PERSON, TOOL_SCHEMAS

TOP1_FLOOR = 0.95  # measured 0.983 (AVX-512 VNNI, two 8-bit halves); 7-bit halves (AVX2) lose a little
FIRST_DIV_FLOOR = 15.0  # mean index of the first differing greedy token; measured 26.6


@pytest.fixture(scope="module")
def int8_model():
    return model_mod.load(EMBEDDED_MODEL, weights="int8")  # lru-cached by shared_model


def test_the_int8_cache_holds_int8_weights_and_loads_without_float32_copies(int8_model):
    path = model_mod.embedded_cache_path("int8")
    assert convert.is_int8_cache(path) and path != model_mod.embedded_cache_path("fp32")
    meta = json.loads((path / convert.MARKER).read_text())
    assert meta["weights"] == "int8" and "two int8 halves" in meta["scheme"]
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        assert f.get_tensor("lm_head.weight").dtype == torch.int8  # the output projection, untied
        assert f.get_tensor("model.embed_tokens.weight").dtype == torch.int8
        assert f.get_tensor("model.layers.0.mlp.down_proj.weight").dtype == torch.int8
        assert f.get_tensor("model.layers.0.mlp.down_proj.weight_scale").dtype == torch.float32
    linears = [k for k in keys if k.endswith("_proj.weight")]
    assert len(linears) == 30 * 7
    model, _ = int8_model
    assert model_mod.weights_of(model) == "int8" and not model.config.tie_word_embeddings
    assert not any(type(m) is torch.nn.Linear for m in model.modules())  # every linear is int8
    assert isinstance(model.lm_head, quant.Int8Linear)
    assert model.lm_head.halves == 2 and model.model.layers[0].self_attn.o_proj.halves == 1  # quant.ONE_HALF
    assert quant.weight_bytes(model) < 0.35 * 538e6  # float32: 538 MB


def test_the_loaded_model_keeps_no_view_of_the_cache_file(int8_model):
    """safetensors reads tensors as views of the file's mapping; one view kept (a norm, the embedding)
    kept the mapping and every page read from it resident: 130 MiB of RSS beside the packed weights."""
    model, _ = int8_model
    name = str(model_mod.embedded_cache_path("int8") / "model.safetensors")
    spans = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith(name):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                spans.append((lo, hi))
    held = [n for n, t in [*model.named_parameters(), *model.named_buffers()]
            if any(lo <= t.data_ptr() < hi for lo, hi in spans)]
    assert not held, held[:5]


def test_a_rows_result_does_not_depend_on_the_other_rows(int8_model):
    """Per-row activation grids: the same row alone, in a batch, beside an outlier row: bit-identical."""
    model, _ = int8_model
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 576, generator=g)
    x[1] *= 1000  # an outlier row coarsens nobody else's grid
    x[2] *= 1e-3
    x[3] = 0
    layers = [model.lm_head, model.model.layers[0].mlp.gate_proj, model.model.layers[0].self_attn.k_proj]
    with torch.inference_mode():
        for lin in layers:
            together = lin(x)
            for i in range(len(x)):
                assert torch.equal(lin(x[i:i + 1])[0], together[i])
            assert torch.equal(lin(x[None])[0], together)  # (B, T, in) as (B*T, in)


def test_fused_siblings_match_separate_linears():
    """q/k/v as one packed GEMM give exactly what three Int8Linears give."""
    g = torch.Generator().manual_seed(1)
    ws = [torch.randn(n, 64, generator=g) * 0.05 for n in (64, 16, 16)]
    parts = [quant.quantize_rows(w) for w in ws]
    fused = quant.Fused(quant.Int8Linear(torch.cat([q for q, _ in parts]), torch.cat([s for _, s in parts])),
                        [16 * 4, 16, 16])
    slices = [quant.Int8Slice(fused, i) for i in range(3)]
    x = torch.randn(5, 64, generator=g)
    with torch.inference_mode():
        for sl, (q, s) in zip(slices, parts):
            assert torch.equal(sl(x), quant.Int8Linear(q, s)(x))


def test_layers_packed_ahead_are_used_only_where_they_are_the_models_layer():
    """The load packs the cache's linears on a thread of its own while transformers imports
    (quant.PackAhead): every layer it makes is the one apply() would pack in line (bit-identical
    output) and apply() uses each of them; one that is not the model's layer (a wrong guess) is packed
    again, and a load that fails first cancels the packing and frees the reader."""
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    path = model_mod.embedded_cache_path("int8")
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        packed = quant.PackAhead(f).take()
        assert len(packed) == 30 * 4 + 1  # q/k/v and gate/up fused, o_proj, down_proj, lm_head; no embedding
        x = torch.randn(3, 1536, generator=torch.Generator().manual_seed(4))
        with torch.inference_mode():
            for names in [("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                           "model.layers.0.self_attn.v_proj"), ("model.layers.7.self_attn.o_proj",),
                          ("model.layers.29.mlp.down_proj",), ("lm_head",)]:
                ahead = packed[names]
                inline = quant._packed(convert._Lazy(f), list(names), pop=True)
                assert ahead.halves == inline.halves and ahead is not inline
                xi = x[:, :ahead.in_features]
                assert torch.equal(ahead(xi), inline(xi)), names

        config = AutoConfig.from_pretrained(path)
        wrong = ("model.layers.3.self_attn.o_proj",)
        q, s = quant.quantize_rows(torch.randn(576, 576))
        packed[wrong] = quant.Int8Linear(q, s, halves=2)  # o_proj runs on one half: not this model's layer
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        quant.apply(model, convert._Lazy(f), packed)
        layers = {names: (model.get_submodule(names[0]).fused.lin if len(names) > 1
                          else model.get_submodule(names[0])) for names in packed}
        assert all(layers[n] is lin for n, lin in packed.items() if n != wrong)
        assert layers[wrong] is not packed[wrong] and layers[wrong].halves == 1

        ahead = quant.PackAhead(f)
        ahead.cancel()  # returns once the thread is done with the reader
        assert not ahead._thread.is_alive()


def agreement_with_float32(model, label: str) -> dict:
    """kernel.llm.agreement of ``model`` against the float32 one, on as many threads as the engine runs."""
    ref, tok = model_mod.load(EMBEDDED_MODEL, weights="fp32")
    threads = torch.get_num_threads()
    torch.set_num_threads(default_threads())  # as the engine runs (2 threads on a busy 2-core box crawl)
    try:
        a = agreement.compare(ref, model, tok)
    finally:
        torch.set_num_threads(threads)
    print(f"{label} vs float32:", json.dumps(a))
    return a


def test_int8_agrees_with_float32_above_the_floor(int8_model):
    """The reference: 12 fixed prompts, greedy float32 continuations (48 tokens at most)."""
    a = agreement_with_float32(int8_model[0], "int8")
    assert a["top1_agreement"] >= TOP1_FLOOR, a
    assert a["first_divergence_mean"] >= FIRST_DIV_FLOOR, a


@pytest.mark.parametrize("reduce_range", [False, True])
def test_the_activation_grid_is_fbgemms(reduce_range, monkeypatch):
    """on_grid rounds as fbgemm's dynamic quantization does (8-bit here; 7-bit on AVX2-only CPUs):
    an identity weight returns each input as fbgemm quantized it."""
    levels = 127 if reduce_range else 255
    monkeypatch.setattr(quant, "REDUCE_RANGE", reduce_range)
    monkeypatch.setattr(quant, "LEVELS", levels)
    monkeypatch.setattr(quant, "STEP", 2.0 / levels)
    monkeypatch.setattr(quant, "TOP", levels // 2 * 2.0 / levels)
    q, scale = quant.quantize_rows(torch.eye(64))
    lin = quant.Int8Linear(q, scale)
    x = (torch.rand(16, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1) * quant.TOP
    x[0, :2] = torch.tensor([quant.TOP, -quant.TOP])
    x = torch.cat([x, lin.guard])
    y = torch.ops.quantized.linear_dynamic(x, lin._packed, reduce_range)
    assert (y[:-1] - quant.on_grid(x[:-1])).abs().max() < 1e-6
    # two halves: what the first rounding lost comes back through the second row
    big = torch.randn(8, 64, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        err = (lin(big) - big).abs().max() / big.abs().max()
    assert err < (2.0 / levels) ** 2, err  # one 8-bit half alone: about 2 / levels


def test_a_rows_logits_are_bit_identical_whatever_the_batch_chunks_or_decode(int8_model):
    """The invariant behind every greedy-equality test in int8: alone vs left-padded beside other
    prompts, whole prefill vs prefill then token-by-token decode. float32 attention differs by ~1e-7
    here, which int8 rounding grew to 1-2 logits (docs/llm-engine.md); float64 attention: 0."""
    from transformers import DynamicCache

    model, tok = int8_model
    ids = [tok(p)["input_ids"] for p in ("What is the capital of France? Answer in one word.",
                                         "Write a haiku about the sea, the wind and the boats that go far away.",
                                         "2+2=", "List three colors:")]
    width = max(map(len, ids))
    batch = torch.full((len(ids), width), tok.pad_token_id)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        batch[i, width - len(x):], mask[i, width - len(x):] = torch.tensor(x), 1
    with torch.inference_mode():
        padded = model(batch, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)).logits[:, -1]
        for i, x in enumerate(ids):
            alone = model(torch.tensor([x])).logits[0, -1]
            assert torch.equal(alone, padded[i]), (i, float((alone - padded[i]).abs().max()))
        x = ids[1]
        cache = DynamicCache(config=model.config)
        model(torch.tensor([x[:-3]]), past_key_values=cache)
        for j in range(len(x) - 3, len(x)):
            step = model(torch.tensor([[x[j]]]), past_key_values=cache, position_ids=torch.tensor([[j]])).logits[0, -1]
        assert torch.equal(step, model(torch.tensor([x])).logits[0, -1])
        assert cache.layers[0].keys.dtype == torch.float64


def test_int8_grammar_rows_in_a_mixed_batch():
    """Per-row grammar masks over int8 logits: valid JSON and valid tool calls beside free text."""
    reqs = [chat("Describe a person who lives in a European city, as JSON.", 2, max_new=64, response_format=FMT),
            chat("What is the capital of France?", 0, max_new=24),
            chat("What is 17 * 23?", 3, max_new=64, tools=[CALC, CONVERT], tool_choice="required")]
    out, st = run(reqs, scheduler="fifo", weights="int8")
    assert all(err is None for _, err in out), out
    jsonschema.validate(json.loads(out[0][0]["text"]), PERSON)
    (call,) = out[2][0]["tool_calls"]
    assert call["name"] in TOOL_SCHEMAS
    jsonschema.validate(call["arguments"], TOOL_SCHEMAS[call["name"]])
    assert st["batch_occupancy"] > 1


def test_weights_flag_is_validated():
    assert KernelConfig.from_flags(weights="int8").llm.weights == "int8"
    with pytest.raises(ValueError):
        KernelConfig.from_flags(weights="int4")
    with pytest.raises(ValueError):
        KernelConfig.from_flags(weights="int8", eval_device="cuda")
    assert model_mod.resolve_weights("auto", "cuda") == "native"
    no_vnni = model_mod.DEFAULT_CPU_NO_VNNI if quant.fp16_available() else "fp32"
    assert model_mod.resolve_weights("auto", "cpu") == (no_vnni if quant.REDUCE_RANGE else model_mod.DEFAULT_CPU)
