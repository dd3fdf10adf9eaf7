"""int8 (and float16) against float32 weights of the embedded model, side by side in one run.

Usage::

    python bench/weights.py [--modes fp32,int8[,fp16]] [--agents 16] [--calls 2] [--max-new-tokens 64]
                            [--decode-tokens 128] [--prompt-tokens 1000] [--llm-threads 0]
                            [--skip-agents] [--skip-agreement] [--ctranslate2]

Prints one JSON object::

    {"machine": {...}, "fp32": {...}, "int8": {...}, "int8_vs_fp32": {...}, "agreement": {...},
     "ctranslate2": {...} | null}

(with ``fp16`` in ``--modes``: also "fp16", "fp16_vs_fp32" and "agreement_fp16").

Per mode (``--weights``), each in a fresh spawned process that loads the
engine (kernel.llm.engine.Engine, no kernel process, default config):

    load_time_s          the engine's own load time (from load() to ready; caches already made)
    decode_b1_tok_s      one greedy call alone: (tokens - 1) / (its time - a 1-token call's time)
    prefill_tok_s        one call with a ~prompt_tokens prompt and max_new_tokens 1 (chunked
                         prefill, as the kernel runs it): prompt tokens / seconds
    engine_b16_tok_s     bench/throughput.py's ``--agents`` prompts submitted at once to the
                         engine (``--max-new-tokens`` each): tokens out / seconds
    engine_rss_mib       that process's RSS after the calls above (before the batch below)

then bench/throughput.py's workload through a real kernel (``--agents`` agent
processes x ``--calls`` calls x ``--max-new-tokens`` tokens, fifo):
``agents_tok_s``, ``kernel_rss_mib`` (the kernel process right after the run)
and ``kernel_rss_idle_mib`` (the same, once the engine has been idle long
enough to give the heap its batches freed back to the OS). The
agreement figures come from kernel.llm.agreement (int8 against float32, 12
prompts, greedy; ``agreement_fp16`` the same for float16). ``--ctranslate2`` adds CTranslate2 (int8, converted from
the float32 cache) at batch 1 and 16 where the package imports.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = os.pathsep.join(
    p for p in [str(ROOT / "bench" / "agents"), os.environ.get("AIOS_AGENT_PATH", "")] if p)

LONG_TEXT = ("The lighthouse keeper wrote in his log every evening: the colour of the sea, the ships that "
             "passed, the birds that rested on the rail and the letters he never sent. ")


def _call(engine, text: str, max_new: int, pid: int) -> tuple[dict, float]:
    """One greedy llm.chat through ``engine``; (result, wall seconds)."""
    import threading

    from kernel.llm.request import LLMRequest, SamplingParams

    done, out = threading.Event(), {}

    def on_done(req, res, err):
        out["res"], out["err"] = res, err
        done.set()
    req = LLMRequest(pid=pid, req_id=pid, messages=[{"role": "user", "content": text}],
                     sampling=SamplingParams(max_new_tokens=max_new), on_done=on_done)
    t0 = time.perf_counter()
    engine.submit(req)
    done.wait()
    if out["err"] is not None:
        raise RuntimeError(f"llm call failed: {out['err']}")
    return out["res"], time.perf_counter() - t0


def measure_engine(weights: str, threads: int, decode_tokens: int, prompt_tokens: int, prompts: list[str],
                   max_new: int) -> dict:
    """In a spawned process: load time, batch-1 decode, batch-N decode and prefill rates, RSS."""
    import psutil

    from kernel.config import KernelConfig
    from kernel.llm.engine import Engine

    e = Engine(KernelConfig.from_flags(weights=weights, llm_threads=threads, max_new_tokens=max(decode_tokens, 1),
                            prefix_cache="off"))
    e.start()
    e.ready.wait()
    if e.load_error:
        raise RuntimeError(e.load_error)
    try:
        story = "Write a long, detailed story about a lighthouse keeper who travels the world."
        _call(e, "Hi", 4, 1)  # warm-up: first-call allocations
        one, t1 = _call(e, story, 1, 2)
        full, tn = _call(e, story, decode_tokens, 3)
        words = LONG_TEXT.split()
        n = max(1, prompt_tokens * len(words) // len(e.tok(LONG_TEXT)["input_ids"]))
        text = " ".join(words[i % len(words)] for i in range(n)) + "\nSummarize the log in one line."
        pre, tp = _call(e, text, 1, 4)
        rss = psutil.Process().memory_info().rss  # before the batch: the figure earlier runs reported
        batch = _batch(e, prompts, max_new)
        return {"weights": e.weights, "threads": e.threads, "load_time_s": round(e.load_time_s, 3),
                "decode_b1_tokens": full["tokens_out"],
                "decode_b1_tok_s": round((full["tokens_out"] - 1) / max(tn - t1, 1e-9), 2),
                f"engine_b{len(prompts)}_tok_s": batch,
                "prefill_prompt_tokens": pre["tokens_in"], "prefill_tok_s": round(pre["tokens_in"] / tp, 1),
                "engine_rss_mib": round(rss / 2**20, 1)}
    finally:
        e.stop()


def _batch(engine, prompts: list[str], max_new: int) -> float:
    """All of ``prompts`` submitted at once (greedy, ``max_new`` tokens each): tokens out per second."""
    import threading

    from kernel.llm.request import LLMRequest, SamplingParams

    left, tokens, lock = threading.Semaphore(0), [], threading.Lock()

    def on_done(req, res, err):
        with lock:
            tokens.append(res["tokens_out"] if err is None else 0)
        left.release()
    t0 = time.perf_counter()
    for i, text in enumerate(prompts):
        engine.submit(LLMRequest(pid=1000 + i, req_id=1000 + i, messages=[{"role": "user", "content": text}],
                                 sampling=SamplingParams(max_new_tokens=max_new), on_done=on_done))
    for _ in prompts:
        left.acquire()
    return round(sum(tokens) / (time.perf_counter() - t0), 1)


def measure_agreement(tokens: int, weights: str = "int8") -> dict:
    """In a spawned process: kernel.llm.agreement of ``weights`` (int8, fp16) against float32."""
    import torch

    from kernel.config import EMBEDDED_MODEL
    from kernel.llm import agreement
    from kernel.llm import model as model_mod
    from kernel.llm.threads import default_threads

    torch.set_num_threads(default_threads())
    ref, tok = model_mod.load(EMBEDDED_MODEL, weights="fp32")
    q, _ = model_mod.load(EMBEDDED_MODEL, weights=weights)
    return agreement.compare(ref, q, tok, tokens=tokens)


def measure_ctranslate2(prompts: list[str], max_new: int, threads: int) -> dict:
    """In a spawned process: CTranslate2 int8 at batch 1 and at batch len(prompts), greedy."""
    try:
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
    except ImportError as e:
        return {"available": False, "why": f"{e}"}
    import tempfile

    from transformers import AutoTokenizer

    from kernel.llm import model as model_mod

    src = model_mod.prepare_embedded()
    tok = AutoTokenizer.from_pretrained(src)
    with tempfile.TemporaryDirectory() as tmp:
        out = TransformersConverter(str(src)).convert(f"{tmp}/ct2", quantization="int8")
        gen = ctranslate2.Generator(out, device="cpu", compute_type="int8", intra_threads=threads)
        enc = [tok.convert_ids_to_tokens(tok.apply_chat_template([{"role": "user", "content": p}],
                                                                  add_generation_prompt=True)["input_ids"])
               for p in prompts]
        res = {"available": True, "version": ctranslate2.__version__, "threads": threads}
        for name, batch in (("b1", enc[:1]), (f"b{len(enc)}", enc)):
            t0 = time.perf_counter()
            r = gen.generate_batch(batch, max_length=max_new, sampling_topk=1, include_prompt_in_result=False,
                                   end_token=tok.eos_token)
            dt = time.perf_counter() - t0
            res[f"{name}_tok_s"] = round(sum(len(x.sequences_ids[0]) for x in r) / dt, 1)
        return res


def _spawned(fn, *args):
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main(argv=None) -> int:
    from bench import throughput
    from bench.common import int_flags
    from kernel.llm.engine import IDLE_RELEASE_S
    from kernel.llm.threads import default_threads

    p = argparse.ArgumentParser(description="int8 against float32 weights, side by side")
    p.add_argument("--modes", default="fp32,int8", help="comma-separated --weights values")
    p.add_argument("--agents", type=int, default=16)
    p.add_argument("--calls", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--decode-tokens", type=int, default=128)
    p.add_argument("--prompt-tokens", type=int, default=1000)
    p.add_argument("--llm-threads", type=int, default=0, help="torch threads (0: the kernel's default)")
    int_flags(p, max_batch=16, rr_quantum=16, agreement_tokens=48)
    p.add_argument("--skip-agents", action="store_true", help="no 16-agent kernel runs")
    p.add_argument("--skip-agreement", action="store_true")
    p.add_argument("--ctranslate2", action="store_true", help="add CTranslate2 where it imports")
    args = p.parse_args(argv)
    threads = args.llm_threads or default_threads()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    out: dict = {"machine": {"cpus": len(os.sched_getaffinity(0)), "loadavg_start": os.getloadavg()[0],
                             "threads": threads, "cpu": _cpu_name()}}
    prompts = throughput.make_prompts(args.agents)
    for mode in modes:
        print(f"{mode}: engine ...", file=sys.stderr, flush=True)
        r = _spawned(measure_engine, mode, threads, args.decode_tokens, args.prompt_tokens, prompts,
                     args.max_new_tokens)
        if not args.skip_agents:
            print(f"{mode}: {args.agents} agents ...", file=sys.stderr, flush=True)
            a = throughput.run_policy("fifo", prompts, args, threads, idle_rss_s=IDLE_RELEASE_S + 1.5, weights=mode)
            r.update({"agents_tok_s": round(a["tok_s"], 1), "agents_tok_per_cpu_s": round(a["tok_per_cpu_s"], 1),
                      "kernel_rss_mib": round(a["rss_bytes"] / 2**20, 1),
                      "kernel_rss_idle_mib": round(a["rss_idle_bytes"] / 2**20, 1),
                      "kernel_load_time_s": a["load_time_s"] and round(a["load_time_s"], 3)})
        out[mode] = r
    for mode in [m for m in ("int8", "fp16") if m in out and "fp32" in out]:
        f, q = out["fp32"], out[mode]
        ratio = {k: round(q[k] / f[k], 2) for k in f if k.endswith("_tok_s") and f[k] and k in q}
        for k in ("engine_rss_mib", "kernel_rss_mib", "kernel_rss_idle_mib"):
            if k in f:
                ratio[k.replace("_mib", "_saved_mib")] = round(f[k] - q[k], 1)
        out[f"{mode}_vs_fp32"] = ratio
    if not args.skip_agreement:
        print("agreement ...", file=sys.stderr, flush=True)
        out["agreement"] = _spawned(measure_agreement, args.agreement_tokens)
        if "fp16" in modes:
            out["agreement_fp16"] = _spawned(measure_agreement, args.agreement_tokens, "fp16")
    out["ctranslate2"] = (_spawned(measure_ctranslate2, prompts, args.max_new_tokens, threads)
                          if args.ctranslate2 else None)
    out["machine"]["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(out))
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


if __name__ == "__main__":
    sys.exit(main())
