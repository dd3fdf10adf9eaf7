"""One long prompt beside an agent making short calls: chunked prefill on vs off.

Usage::

    python bench/long_prompt.py [--prompt-tokens 7500] [--chunk 64] [--short-tokens 4] [--json]

For each setting, in this one invocation (a fresh kernel each, prefix cache
off so both pay the whole prompt): ``--prefill_chunk 0`` (whole prompts, the
old behaviour) and ``--prefill_chunk C``. Agents are released together by a
gate process: LLMBenchAgent makes one call with a prompt of about N tokens
(max_new_tokens 4); ShortCallsAgent makes short calls (``--short-tokens``
new tokens) one after another until the long one has ended. The front
samples the kernel's RSS every 50 ms.

Prints, per setting: the short calls' count, max and mean turnaround, the
long call's turnaround, and the kernel's RSS growth (peak during the run
minus the RSS before it), then the ratios. ``--json`` prints one object:
{"prompt_tokens", "chunk", "off": {...}, "on": {...}}, each with
short_calls, short_max_turnaround_s, short_mean_turnaround_s,
long_turnaround_s, rss_growth_mib.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AIOS_AGENT_PATH"] = os.pathsep.join(
    p for p in [str(ROOT / "bench" / "agents"), os.environ.get("AIOS_AGENT_PATH", "")] if p)

from bench.throughput import wait_sleeping  # noqa: E402

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def long_prompt(tokens: int) -> str:
    """A log of about ``tokens`` tokens of this model's tokenizer (~10.7 tokens per line), then a question."""
    lines = [f"{i:05d} {WORDS[i % 26]} {WORDS[(i * 7) % 26]} ok" for i in range(max(1, tokens * 10 // 107))]
    return "Here is a service log.\n" + "\n".join(lines) + "\nIn one word, did the service fail?"


def run_setting(chunk: int, args) -> dict:
    import psutil

    from aios_shell.client import KernelClient
    from kernel.config import KernelConfig

    with tempfile.TemporaryDirectory() as tmp:
        k = KernelClient(KernelConfig.from_flags(prefill_chunk=chunk, prefix_cache="off", max_new_tokens=16,
                                      llm_threads=args.llm_threads, log_dir=f"{tmp}/logs", data_dir=f"{tmp}/data",
                                      scheduler_log_mode="file", agent_log_mode="file", mem_search="bm25"))
        try:
            if not k.ready.wait(300) or k.ready_info.get("load_error"):
                raise RuntimeError(f"model did not load: {k.ready_info.get('load_error')}")
            gate = k.spawn("LLMBenchAgent", json.dumps({"sleep": True}))
            warm = k.spawn("LLMBenchAgent", json.dumps({"prompt": "Hi", "calls": 1, "max_new_tokens": 2,
                                                        "gate": None}))
            k.wait(warm, timeout=300)  # the engine's first forward pass is not part of the measure
            longp = k.spawn("LLMBenchAgent", json.dumps({"prompt": long_prompt(args.prompt_tokens), "calls": 1,
                                                         "max_new_tokens": 4, "gate": gate}))
            short = k.spawn("ShortCallsAgent", json.dumps({"gate": gate, "watch": longp,
                                                           "max_new_tokens": args.short_tokens}))
            wait_sleeping(k, [longp, short])
            kproc = psutil.Process(k.pid)
            before = kproc.memory_info().rss
            peak = [before]
            stop = threading.Event()

            def sample():
                while not stop.wait(0.05):
                    peak[0] = max(peak[0], kproc.memory_info().rss)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            k.kill(gate)
            long_snap = k.wait(longp, timeout=3600)
            short_snap = k.wait(short, timeout=3600)
            stop.set()
            sampler.join()
        finally:
            k.stop()
    for s in (long_snap, short_snap):
        if s["state"] != "done":
            raise RuntimeError(f"chunk {chunk}: {s['agent']} {s['state']}: {s.get('error')}")
    turns = [c["turnaround_s"] for c in short_snap["result"]]
    lc = long_snap["result"][0]
    return {"short_calls": len(turns), "short_max_turnaround_s": round(max(turns), 2),
            "short_mean_turnaround_s": round(statistics.mean(turns), 2),
            "long_turnaround_s": round(lc["turnaround_s"], 2), "long_tokens_in": lc["tokens_in"],
            "long_text": lc["text"], "rss_growth_mib": round((peak[0] - before) / 2**20, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="a long prompt beside short calls: chunked prefill on vs off")
    p.add_argument("--prompt-tokens", type=int, default=7500)
    p.add_argument("--chunk", type=int, default=64, help="--prefill_chunk of the 'on' run")
    p.add_argument("--short-tokens", type=int, default=4)
    p.add_argument("--llm-threads", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    off = run_setting(0, args)
    on = run_setting(args.chunk, args)
    if args.json:
        print(json.dumps({"prompt_tokens": on["long_tokens_in"], "chunk": args.chunk, "off": off, "on": on}))
        return 0
    print(f"long prompt: {on['long_tokens_in']} tokens; short calls of {args.short_tokens} tokens beside it")
    print(f"{'':28}{'chunk off':>12}{f'chunk {args.chunk}':>12}")
    for key, label in (("short_calls", "short calls made"), ("short_max_turnaround_s", "short max turnaround s"),
                       ("short_mean_turnaround_s", "short mean turnaround s"),
                       ("long_turnaround_s", "long call turnaround s"), ("rss_growth_mib", "kernel RSS growth MiB")):
        print(f"{label:28}{off[key]:>12}{on[key]:>12}")
    print(f"same long answer: {off['long_text'] == on['long_text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
