"""int8 (and float16) weights for the local engine on a CPU: the one module that touches torch's
quantized kernels. float16 (``--weights fp16``, Fp16Linear) is at the end; the rest is int8.

Scheme: every ``nn.Linear`` (the output projection included) holds int8 weights,
symmetric per output channel (``w ≈ q * scale[row]``, q in [-127, 127]), and
runs as fbgemm's dynamic int8 linear (Int8Linear). Activations are quantized
per row and in two halves: a row x is scaled by its largest magnitude to just
inside [-1, 1], rounded to fbgemm's 8-bit grid (7-bit on CPUs without AVX-512
VNNI, where AVX2 adds pairs of u8*s8 products in int16 and 8 bits could
saturate it), and what that rounding lost is stretched back onto the grid and
quantized as a second row of the same GEMM. So activations keep ~16 bits for one read of the weights (o_proj,
whose input is attention's output, keeps one half: ONE_HALF); the result is
float32. Siblings that read the same input (q/k/v, gate/up) share
one packed GEMM (Fused). The token embedding is int8 per row too (a lookup
de-quantizes the rows it reads). Norms and rotary tables stay float32.

Attention runs in float64 (``exact_attention``; K/V are projected to and
cached in float64) so that the whole model is batch-invariant: a row's
logits are bit-identical alone or padded in a batch, prefilled whole or in
chunks or decoded token by token. float32 attention sums in an order that
depends on padding and chunking (~1e-7); int8 activation rounding turns that
into different tokens (1-2 logits over 30 layers). In float64 the same sums
differ by ~1e-16, which rounds away when the result is cast back to float32.

Agreement with float32 (kernel.llm.agreement, 12 prompts, teacher-forced top-1):
one 8-bit half 0.911 (0.951 with SmoothQuant, alpha 0.5), two halves 0.983
(SmoothQuant then hurts: 0.976), two halves but o_proj on one 0.986 (the
scheme here), int8 weights with float32 activations 0.986.

Why this kernel: measured here on SmolLM2-135M's layer shapes (one thread, 30
layers, best of 5), float32 / fbgemm dynamic int8 / oneDNN qlinear with
Python-side activation quantization took 19.8 / 6.9 / 22.8 ms at batch 1 and
62.7 / 15.4 / 37.6 ms at batch 16 (issue 25 has ``torch._int_mm`` and
``_weight_int8pack_mm``, both slower still). torchao's CPU int8 path goes
through ``_int_mm``.

Deprecation: fbgemm's packed weights are built from a quantized tensor
(``torch._make_per_channel_quantized_tensor``), and PyTorch marks quantized
tensor creation deprecated (pytorch/pytorch#184982); ``linear_prepack`` and
``linear_dynamic`` themselves are plain ATen ops. That call lives in
``_pack`` only, its warning silenced by its own words below; the model cache keeps plain
int8 tensors and float32 scales (safetensors), so a replacement kernel needs
a new ``_pack``/``Int8Linear.forward`` and no new cache.

Cache layout (``quantize_state``): for each linear or embedding ``<name>``,
``<name>.weight`` (int8, (out, in)) and ``<name>.weight_scale`` (float32,
(out,)); every other tensor as it was. The output projection gets its own
entry (``lm_head.weight``) even where the model ties it to the embedding.
"""

from __future__ import annotations

import threading
import warnings

import torch
from torch import nn

SCALE = ".weight_scale"  # suffix of a quantized weight's per-row scales in the cache
QMAX = 127  # symmetric int8: -128 is never used, so q and -q are both representable


def _reduce_range() -> bool:
    """7-bit activations unless the CPU has AVX-512 VNNI (int32 accumulation; what torch's x86 qconfig does)."""
    try:
        return not torch.cpu._is_vnni_supported()
    except AttributeError:
        return True


REDUCE_RANGE = _reduce_range()


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w (out, in) float -> (q int8 (out, in), scale float32 (out,)), w ≈ q * scale[:, None]."""
    w = w.detach().float()
    scale = (w.abs().amax(dim=1) / QMAX).clamp(min=1e-12)
    q = torch.clamp(torch.round(w / scale[:, None]), -QMAX, QMAX).to(torch.int8)
    return q, scale


def _pack(q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None):
    """fbgemm's packed weight for q (out, in) int8 with per-row scales (the deprecated call: see above)."""
    zero = torch.zeros(q.shape[0], dtype=torch.long)
    qt = torch._make_per_channel_quantized_tensor(q.contiguous(), scale.double(), zero, 0)
    return torch.ops.quantized.linear_prepack(qt, bias)


# _pack's deprecation notice, silenced for the process by its own words (warnings.catch_warnings()
# around the call is not thread-safe, and PackAhead packs on a thread of its own).
warnings.filterwarnings("ignore", category=UserWarning,
                        message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor")


# fbgemm's activation grid once the guard row pins a tensor's range to [-1, 1]: multiples of STEP
# (checked against fbgemm in tests/kernel/test_weights_int8.py). Rows are scaled to at most TOP, a
# level inside the range, so no value sits at the range's ends, where fbgemm's float rounding of
# 1 / STEP decides which level ±1 takes.
LEVELS = 127 if REDUCE_RANGE else 255
STEP = 2.0 / LEVELS
TOP = (LEVELS // 2) * STEP


def on_grid(x: torch.Tensor) -> torch.Tensor:
    """x (|x| <= TOP) rounded to the value fbgemm's dynamic quantization gives it."""
    return torch.round(x / STEP) * STEP


class Int8Linear(nn.Module):
    """nn.Linear with int8 weights: float32 in and out, int8 products.

    Activations are quantized per row (each token on its own grid), in two halves.
    Every row x is scaled by c = TOP / max|x| (hi = c x, |hi| <= TOP); fbgemm
    rounds hi to its grid; ``lo`` is what that rounding loses, stretched by
    2 TOP / STEP (back to |lo| <= TOP), and goes through the same GEMM as an
    extra row: y = (W hi + STEP / (2 TOP) * W lo) / c. A guard row holding +1
    and -1 pins fbgemm's per-tensor grid to exactly [-1, 1] whatever the other
    rows hold, so a row's
    result never depends on the other rows of its batch (integer products are
    exact) and one row's outlier coarsens nobody else's grid. Together with
    exact_attention the whole model is batch-invariant.

    Holds fbgemm's packed weight (which keeps the int8 weight it packed, for unpacking).
    """

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None, halves: int = 2):
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.halves = halves  # 1: the first half only (ONE_HALF layers)
        self._packed = _pack(q, scale, None)
        self.register_buffer("guard", _guard(self.in_features), persistent=False)  # (1, in)
        # its own copy: a tensor read from a safetensors file is a view of the file's mapping, which
        # would stay mapped (and resident) for as long as the view lives
        self.bias = None if bias is None else nn.Parameter(bias.detach().float().clone(), requires_grad=False)
        self.nbytes = q.numel() + 4 * scale.numel()
        self.out_dtype = torch.float32  # float64 for K/V projections (see exact_attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        shape = x.shape
        x = x.reshape(-1, self.in_features).float()  # (N, in)
        n = x.shape[0]
        a = x.abs().amax(dim=1, keepdim=True).clamp_(min=1e-30).div_(TOP)  # (N, 1): 1 / c
        m = self.halves * n
        rows = x.new_empty((m + 1, self.in_features))  # hi, lo, guard: one GEMM, no concatenation
        hi = torch.div(x, a, out=rows[:n])
        if self.halves == 2:  # lo = (hi - on_grid(hi)) * 2 TOP / STEP
            lo = torch.div(hi, STEP, out=rows[n:m])
            lo.sub_(torch.round(lo)).mul_(2 * TOP)
        rows[m:] = self.guard
        y = torch.ops.quantized.linear_dynamic(rows, self._packed, REDUCE_RANGE)
        if self.halves == 2:
            y = y[n:m].mul_(STEP / (2 * TOP)).add_(y[:n]).mul_(a)  # (N, out)
        else:
            y = y[:n].mul_(a)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(self.out_dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


def _guard(n: int) -> torch.Tensor:
    g = torch.zeros(1, n)
    g[0, 0], g[0, -1] = 1.0, -1.0
    return g


class Fused:
    """One Int8Linear for sibling linears that read the same input (q/k/v, gate/up): one GEMM.

    Each member (an Int8Slice) asks for its columns with the input it got; the
    first one computes the whole product and keeps it until every member has
    taken its part. Matched by identity (``x is state.x``, a strong reference,
    so an id is never reused); per-row activation quantization makes the
    result column for column what separate GEMMs give. The kept product is
    per thread: the engine's tool decision (kernel.llm.relevance) runs the
    model on the llm-grammar thread while the engine decodes (with one shared
    product, each thread recomputed what the other had just replaced: right
    answers under the GIL, by the order of bytecodes, and wasted GEMMs).
    """

    def __init__(self, lin: Int8Linear, widths: list[int]):
        self.lin, self.widths = lin, widths
        self._state = threading.local()  # .x, .parts, .left: the product being taken apart

    def take(self, x: torch.Tensor, i: int) -> torch.Tensor:
        st = self._state
        if getattr(st, "parts", None) is None or x is not st.x:
            st.x, st.parts, st.left = x, self.lin(x).split(self.widths, dim=-1), len(self.widths)
        part = st.parts[i]
        st.left -= 1
        if st.left <= 0:
            st.x = st.parts = None
        return part


class Int8Slice(nn.Module):
    """One member of a Fused group: behaves as the nn.Linear it replaced."""

    def __init__(self, fused: Fused, i: int):
        super().__init__()
        self.fused, self.i = fused, i
        self.out_features, self.in_features = fused.widths[i], fused.lin.in_features
        self.nbytes = fused.lin.nbytes if i == 0 else 0  # counted once, by the first member
        self.out_dtype = torch.float32  # float64 for K/V projections (see exact_attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fused.take(x, self.i).to(self.out_dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8, fused part {self.i}"


FUSE = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))  # siblings that share their input
# Linears whose input keeps enough with one 8-bit half: attention's output (measured: top-1 agreement
# with float32 0.983 with o_proj on one half or two; every other layer loses 0.02-0.05 on one half).
ONE_HALF = ("o_proj",)


def _halves(name: str) -> int:
    return 1 if name.rpartition(".")[2] in ONE_HALF else 2


class Int8Embedding(nn.Module):
    """nn.Embedding with int8 rows and a float32 scale per row; a lookup de-quantizes what it reads."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, padding_idx: int | None = None):
        super().__init__()
        # copies of their own, as Int8Linear's bias: never views of a mapped file
        self.register_buffer("qweight", q.clone(memory_format=torch.contiguous_format), persistent=False)  # (V, D)
        self.register_buffer("scale", scale.float().clone(memory_format=torch.contiguous_format),
                             persistent=False)  # (V,)
        self.padding_idx = padding_idx
        self.num_embeddings, self.embedding_dim = q.shape
        self.nbytes = q.numel() + 4 * scale.numel()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (...) -> (..., D) float32
        return self.qweight[ids].float() * self.scale[ids].unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8 per-row"


def _targets(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every plain nn.Linear and nn.Embedding, in model order."""
    return [(n, m) for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Embedding)]


def quantize_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The int8 cache's tensors for a float model (see the module docstring for the layout)."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    done = set()
    for name, mod in _targets(model):
        q, scale = quantize_rows(mod.weight)
        out[f"{name}.weight"], out[f"{name}{SCALE}"] = q, scale
        done.add(f"{name}.weight")
    for k, v in state.items():
        if k not in done and k not in out:
            out[k] = v.clone()  # clone: a tied weight shares storage, which safetensors refuses
    return out


def apply(model: nn.Module, tensors, packed: dict | None = None) -> nn.Module:
    """Swap ``model``'s linears and embeddings for int8 ones built from ``tensors``; load the rest.

    ``tensors``: a dict, or anything with ``pop(key[, default])`` and ``rest()`` (convert's lazy
    reader: each tensor is read when it is packed, so the int8 copies never all sit in memory).

    ``model`` may live on the meta device (no float32 weights allocated); every
    tensor it keeps comes from ``tensors`` or is rebuilt (rotary tables).
    Output projection and embedding become separate modules (untied); the
    siblings in FUSE share one packed GEMM. ``packed``: Int8Linears made ahead
    (PackAhead.take(), by names of the cache), each used only where it is what
    this model's layer needs.
    """
    targets = dict(_targets(model))
    packed = dict(packed or {})
    for group in _groups(targets, lambda n: type(targets.get(n)) is nn.Linear and targets[n].bias is None):
        widths = [targets[n].out_features for n in group]
        lin = _ready(packed, group, tensors, targets[group[0]].in_features, sum(widths), False, 2)
        if lin is None:
            lin = _packed(tensors, group, pop=True)
        fused = Fused(lin, widths)
        for i, name in enumerate(group):
            _set(model, name, Int8Slice(fused, i))
            del targets[name]
    for name, mod in targets.items():
        if isinstance(mod, nn.Linear):
            new = _ready(packed, [name], tensors, mod.in_features, mod.out_features, mod.bias is not None,
                         _halves(name)) or _packed(tensors, [name], pop=True)
        else:
            q, scale = tensors.pop(f"{name}.weight"), tensors.pop(f"{name}{SCALE}")
            new = Int8Embedding(q, scale, mod.padding_idx)
        _set(model, name, new)
    if hasattr(model.config, "tie_word_embeddings"):
        model.config.tie_word_embeddings = False  # nothing may re-tie lm_head to the int8 embedding
    use_exact_attention(model)
    rest = tensors.rest() if hasattr(tensors, "rest") else tensors  # what was not popped (norms)
    missing, unexpected = model.load_state_dict(rest, strict=False, assign=True)
    if unexpected:
        raise ValueError(f"unexpected tensors in the int8 cache: {unexpected[:5]}")
    _rebuild_meta(model)
    return model


def _groups(names, fusable) -> list[list[str]]:
    """Sibling linears to fuse: the members of a FUSE tuple under one parent, each ``fusable(name)``."""
    out = []
    for parent in sorted({n.rpartition(".")[0] for n in names}):
        for siblings in FUSE:
            full = [f"{parent}.{n}" if parent else n for n in siblings]
            if all(fusable(f) for f in full):
                out.append(full)
    return out


def _packed(tensors, names: list[str], pop: bool) -> Int8Linear:
    """One Int8Linear for the linears ``names`` of ``tensors`` (several: fused, bias-free)."""
    take = tensors.pop if pop else tensors.get_tensor
    qs = [take(f"{n}.weight") for n in names]
    scales = [take(f"{n}{SCALE}") for n in names]
    if len(names) > 1:
        return Int8Linear(torch.cat(qs), torch.cat(scales))
    bias = tensors.pop(f"{names[0]}.bias", None) if pop else _get(tensors, f"{names[0]}.bias")
    return Int8Linear(qs[0], scales[0], bias, halves=_halves(names[0]))


def _get(reader, key: str):
    return reader.get_tensor(key) if key in set(reader.keys()) else None


def _ready(packed: dict, names: list[str], tensors, in_features: int, out_features: int, bias: bool,
           halves: int) -> Int8Linear | None:
    """The Int8Linear made ahead for ``names`` if it is the layer the model needs; its tensors are then
    dropped from ``tensors`` unread."""
    lin = packed.pop(tuple(names), None)
    if lin is None or (lin.in_features, lin.out_features, lin.bias is not None, lin.halves) != (
            in_features, out_features, bias, halves):
        return None
    drop = getattr(tensors, "drop", None) or (lambda key: tensors.pop(key, None))
    for n in names:
        for key in (f"{n}.weight", f"{n}{SCALE}", f"{n}.bias"):
            drop(key)
    return lin


class _Ahead:
    """A thread that packs a cache's layers while the loader imports transformers and builds the
    model (PackAhead for int8, HalfAhead for float16). ``reader`` (safetensors' ``safe_open``:
    ``keys()``, ``get_tensor()``, ``get_slice()``) belongs to this thread until take() or cancel()
    returns. A fault stops the packing silently: the apply step packs what is missing, and reports
    the same fault there."""

    thread_name = "pack"

    def __init__(self, reader):
        self._reader, self._packed, self._stop = reader, {}, threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=self.thread_name, daemon=True)
        self._thread.start()

    def _guarded(self) -> None:
        try:
            self._run()
        except Exception:
            return

    def _run(self) -> None:
        raise NotImplementedError

    def take(self) -> dict:
        """Wait for the packing; the layers made, by name (see the subclass)."""
        self._thread.join()
        return self._packed

    def cancel(self) -> None:
        """Stop after the layer being packed (the load failed); the reader is free again on return."""
        self._stop.set()
        self._thread.join()


class PackAhead(_Ahead):
    """fbgemm's packing of an int8 cache's linears, on a thread of its own while the loader imports
    transformers and builds the model.

    Loading the int8 model costs two things of about the same size that need nothing of each other:
    importing transformers' modeling modules (Python, about 1.5 s here) and packing the weights for
    fbgemm (C++, about 0.6 s). With a second CPU they overlap. Which cache entries are linears, and
    which are fused, is read from the cache's names alone (a weight with a scale, not an embedding;
    siblings of FUSE); apply() uses a packed layer only where it is what the model built needs, and
    packs any other itself, so a wrong guess costs time, never a wrong layer. take(): the
    Int8Linears made, by tuple of names.
    """

    thread_name = "int8-pack"

    def _run(self) -> None:
        keys = set(self._reader.keys())
        names = {k[:-len(".weight")] for k in keys
                 if k.endswith(".weight") and k[:-len(".weight")] + SCALE in keys
                 and "embed" not in k[:-len(".weight")].rpartition(".")[2]}
        groups = _groups(names, lambda n: n in names and f"{n}.bias" not in keys)
        fused = {n for g in groups for n in g}
        for group in groups + [[n] for n in sorted(names - fused)]:
            if self._stop.is_set():
                return
            self._packed[tuple(group)] = _packed(self._reader, group, pop=False)


def _set(model: nn.Module, name: str, mod: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, mod)


def _rebuild_meta(model: nn.Module) -> None:
    """Recreate modules whose non-persistent buffers (rotary inv_freq) are still on the meta device."""
    for name, mod in list(model.named_modules()):
        if any(b.is_meta for b in mod.buffers(recurse=False)) and "rotary" in type(mod).__name__.lower():
            _set(model, name, type(mod)(config=model.config))
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"the int8 cache does not cover {left[:5]}")


def quantize_in_place(model: nn.Module) -> nn.Module:
    """Quantize a loaded float model's linear layers (a hub model on a CPU; no cache of its own).

    Only nn.Linear: a model's embedding may be a subclass with its own scaling (Gemma), left as is.
    """
    for name, mod in [(n, m) for n, m in model.named_modules() if type(m) is nn.Linear]:
        q, scale = quantize_rows(mod.weight)
        _set(model, name, Int8Linear(q, scale, mod.bias, halves=_halves(name)))
    if hasattr(model.config, "tie_word_embeddings"):
        model.config.tie_word_embeddings = False
    use_exact_attention(model)
    return model


class Fp16Linear(nn.Module):
    """nn.Linear with float16 weights: float32 in and out, float32 products (``--weights fp16``).

    fbgemm's fp16 GEMM keeps the weight packed as float16 and widens it to float32 inside the
    kernel (F16C on AVX2), so each decode step reads half the bytes of float32 while activations
    and sums stay float32: no activation rounding, hence none of int8's 7-bit trouble on CPUs
    without AVX-512 VNNI. Rows are as batch-invariant as float32's own GEMM (not bit-exact:
    ~1e-5 on a layer's outputs of ~10, float32's ~4e-6), so the model keeps float32 attention.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        w = weight.detach().float().contiguous()
        b = None if bias is None else bias.detach().float().clone()
        self._packed = torch.ops.quantized.linear_prepack_fp16(w, b)
        self.bias = None  # in the packed weight
        self.nbytes = 2 * w.numel() + (0 if b is None else 4 * b.numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        shape = x.shape
        y = torch.ops.quantized.linear_dynamic_fp16(x.reshape(-1, self.in_features).float(), self._packed)
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, float16 weights"


def fp16_available() -> bool:
    """Whether this torch has fbgemm's fp16 GEMM (x86 builds do; ARM builds may not)."""
    return "fbgemm" in torch.backends.quantized.supported_engines


def half_in_place(model: nn.Module) -> nn.Module:
    """Every nn.Linear of a loaded float32 model (the output projection included) -> Fp16Linear.

    Packed at each load from the float32 weights (no cache of its own: the float32 cache is the
    source). The token embedding stays float32 (a lookup reads one row per token); where the
    model ties the output projection to it, the projection gets its own float16 copy.
    """
    if not fp16_available():
        raise ValueError("--weights fp16 needs fbgemm (x86 builds of torch); use --weights fp32")
    from concurrent.futures import ThreadPoolExecutor

    from kernel.llm.threads import available_cpus

    linears = [(n, m) for n, m in model.named_modules() if type(m) is nn.Linear]
    # fbgemm packs in C++ without the GIL: two threads take the load's packing from 1.56 to 1.07 s here
    with ThreadPoolExecutor(max_workers=min(2, available_cpus()),
                            thread_name_prefix="fp16-pack") as pool:
        packed = list(pool.map(lambda nm: Fp16Linear(nm[1].weight, nm[1].bias), linears))
    for (name, _), new in zip(linears, packed):
        _set(model, name, new)
    # What is left (embedding, norms) as copies: a tensor read from a safetensors file is a view of
    # its mapping, which would keep every page the packing read resident (390 MiB more RSS than float32)
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            t.data = t.data.clone()
    if hasattr(model.config, "tie_word_embeddings"):
        model.config.tie_word_embeddings = False  # nothing may re-tie lm_head to the embedding
    return model


class HalfAhead(_Ahead):
    """fbgemm's float16 packing of a float32 checkpoint's linear weights, on a thread of its own while
    the loader imports transformers and builds the model (what PackAhead does for int8).

    Which tensors are linears is guessed from the file alone: every 2-D ``<name>.weight`` without a
    bias, not an embedding or a norm; and, where the file has no ``lm_head.weight`` (a tied output
    projection), the token embedding as ``lm_head``. Each layer made records the key it was packed
    from, and apply_fp16 uses it only where that is the model's own weight for the layer: a wrong
    guess costs time, never a wrong layer. take(): {layer name: (the key it was packed from,
    Fp16Linear)}.
    """

    thread_name = "fp16-pack"

    def _run(self) -> None:
        keys = set(self._reader.keys())
        jobs = [(k[:-len(".weight")], k) for k in sorted(keys) if k.endswith(".weight")
                and f"{k[:-len('.weight')]}.bias" not in keys and "embed" not in k and "norm" not in k
                and len(self._reader.get_slice(k).get_shape()) == 2]
        embed = [k for k in sorted(keys) if k.endswith("embed_tokens.weight")]
        if "lm_head.weight" not in keys and len(embed) == 1:
            jobs.insert(0, ("lm_head", embed[0]))  # the largest: first
        for name, key in jobs:
            if self._stop.is_set():
                return
            self._packed[name] = (key, Fp16Linear(self._reader.get_tensor(key)))


def apply_fp16(model: nn.Module, tensors, packed: dict | None = None) -> nn.Module:
    """Swap ``model``'s linears for Fp16Linears built from ``tensors`` (convert's lazy reader of a
    float32 checkpoint) and load the rest (as copies); ``model`` may live on the meta device.

    ``packed``: HalfAhead.take(), each layer used only where it was packed from the model's own weight
    for it (a tied output projection's is the embedding's) with the layer's shape; any other is packed
    here. The output projection is untied from the embedding, which stays float32.
    """
    if not fp16_available():
        raise ValueError("--weights fp16 needs fbgemm (x86 builds of torch); use --weights fp32")
    packed = dict(packed or {})
    keys = set(tensors.keys())
    embedding = model.get_input_embeddings()
    embed_name = next(n for n, m in model.named_modules() if m is embedding)
    out = model.get_output_embeddings()
    for name, mod in [(n, m) for n, m in model.named_modules() if type(m) is nn.Linear]:
        key = f"{name}.weight"
        if key not in keys and mod is out and out.weight is embedding.weight:
            key = f"{embed_name}.weight"  # tied: the embedding's rows are the projection's weight
        ready = packed.pop(name, None)
        if (ready is not None and ready[0] == key and mod.bias is None
                and (ready[1].in_features, ready[1].out_features) == (mod.in_features, mod.out_features)):
            new = ready[1]
            if key != f"{embed_name}.weight":
                tensors.drop(key)
        else:
            weight = tensors.get(key) if key == f"{embed_name}.weight" else tensors.pop(key)
            new = Fp16Linear(weight, tensors.pop(f"{name}.bias", None))
        _set(model, name, new)
    if hasattr(model.config, "tie_word_embeddings"):
        model.config.tie_word_embeddings = False  # nothing may re-tie lm_head to the embedding
    missing, unexpected = model.load_state_dict(tensors.rest(), strict=False, assign=True)
    if unexpected:
        raise ValueError(f"unexpected tensors in the float32 cache: {unexpected[:5]}")
    _rebuild_meta(model)
    return model


ATTENTION = "aios_exact"  # the attention implementation name int8 models run with


def exact_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                    **kwargs):
    """transformers' attention interface, computed in float64; returns (B, T, H, D) float32.

    key/value arrive float64 (projected so and cached so: casting a float32 cache every step
    cost 3-6x the attention itself, measured at batch 16 and 100-1000 cached tokens; a float64
    cache costs 1.3-1.5x float32 attention and twice the KV bytes). The mask is transformers'
    SDPA mask (registered with the name), so padded rows and causal prefill behave as with SDPA.
    """
    if kwargs.get("softcap") is not None or kwargs.get("s_aux") is not None:
        raise ValueError("int8 weights: this model's attention (logit softcap or sinks) is not supported; "
                         "use --weights fp32")
    mask = attention_mask
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(torch.float64)
    causal = query.shape[2] > 1 and mask is None and (is_causal if is_causal is not None
                                                       else getattr(module, "is_causal", True))
    out = nn.functional.scaled_dot_product_attention(
        query.to(torch.float64), key.to(torch.float64), value.to(torch.float64), attn_mask=mask,
        scale=scaling, is_causal=causal, enable_gqa=key.shape[1] != query.shape[1])
    return out.to(query.dtype).transpose(1, 2).contiguous(), None


def use_exact_attention(model: nn.Module) -> None:
    """Run ``model``'s attention with exact_attention: K/V projections emit float64, so the KV
    cache is float64 (``model.kv_dtype``, which the engine sizes its caches by)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, exact_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    model.set_attn_implementation(ATTENTION)
    for mod in model.modules():
        for name in ("k_proj", "v_proj"):
            proj = getattr(mod, name, None)
            if isinstance(proj, (Int8Linear, Int8Slice)):
                proj.out_dtype = torch.float64
    model.kv_dtype = torch.float64


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights as held (int8 modules: their int8 values and scales)."""
    n = 0
    for m in model.modules():
        n += getattr(m, "nbytes", 0) if isinstance(m, (Int8Linear, Int8Slice, Int8Embedding, Fp16Linear)) else 0
        if not isinstance(m, (Int8Linear, Int8Embedding, Fp16Linear)):
            n += sum(t.numel() * t.element_size() for t in m.parameters(recurse=False))
    return n
