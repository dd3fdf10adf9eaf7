"""The ceiling for bench/throughput.py: the model's own batched decode loop.

No kernel, no agents, no scheduling: the prompts left-padded into static
batches of ``max_batch``, one prefill, then one forward pass per token over
a transformers DynamicCache with greedy argmax, until every row has hit EOS
or ``max_new_tokens``. Rows that finished early keep their slot (a static
batch), and only tokens up to and including each row's EOS count.

Imports torch, so bench/throughput.py (a front process, torch-free) runs
``measure`` in a spawned child process. Usage on its own::

    python bench/raw_decode.py --agents 16 --calls 2 --max-new-tokens 64
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure(llm_name: str, prompts: list[str], calls: int, max_new: int, max_batch: int, threads: int,
            weights: str = "auto") -> dict:
    """Decode every prompt ``calls`` times; returns tokens, seconds and the texts of the first round."""
    import torch
    from transformers import DynamicCache

    from kernel.llm import model as model_mod

    torch.set_num_threads(threads)
    model, tok = model_mod.load(llm_name, weights=weights)
    eos = {tok.eos_token_id, *([model.generation_config.eos_token_id]
                               if isinstance(model.generation_config.eos_token_id, int)
                               else model.generation_config.eos_token_id or [])}
    enc = [list(tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True)["input_ids"])
           for p in prompts]

    @torch.inference_mode()
    def run(batch: list[list[int]]) -> list[list[int]]:
        B, L = len(batch), max(map(len, batch))
        ids = torch.full((B, L), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((B, L), dtype=torch.long)
        for i, x in enumerate(batch):
            ids[i, L - len(x):] = torch.tensor(x)
            mask[i, L - len(x):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True,
                    logits_to_keep=1)
        nxt = out.logits[:, -1].argmax(-1)
        outs = [[t] for t in nxt.tolist()]
        live = [t not in eos for t in nxt.tolist()]
        for _ in range(max_new - 1):
            if not any(live):
                break
            mask = torch.cat([mask, mask.new_ones((B, 1))], dim=1)
            pos = pos[:, -1:] + 1
            out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos, past_key_values=cache,
                        use_cache=True)
            nxt = out.logits[:, -1].argmax(-1)
            for i, t in enumerate(nxt.tolist()):
                if live[i]:
                    outs[i].append(t)
                    live[i] = t not in eos
        return outs

    run(enc[:1])  # warm-up (first-call allocations), not timed
    tokens = 0
    texts: list[str] = []
    t0, cpu0 = time.perf_counter(), time.process_time()
    for k in range(calls):
        for b in range(0, len(enc), max_batch):
            outs = run(enc[b:b + max_batch])
            tokens += sum(map(len, outs))
            if k == 0:
                texts += [tok.decode(o, skip_special_tokens=True) for o in outs]
    wall, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    return {"tokens": tokens, "wall_s": wall, "tok_s": tokens / wall, "cpu_s": cpu_s,
            "tok_per_cpu_s": tokens / cpu_s, "texts": texts}


def main() -> int:
    import argparse

    from bench.common import int_flags
    from bench.throughput import make_prompts

    p = argparse.ArgumentParser(description="raw batched decode loop (the throughput ceiling)")
    int_flags(p, agents=16, calls=2, max_new_tokens=64, max_batch=16, llm_threads=0)
    a = p.parse_args()
    from kernel.config import EMBEDDED_MODEL
    from kernel.llm.threads import default_threads

    r = measure(EMBEDDED_MODEL, make_prompts(a.agents), a.calls, a.max_new_tokens, a.max_batch,
                a.llm_threads or default_threads())
    print(f"raw batched: {r['tokens']} tokens in {r['wall_s']:.2f}s = {r['tok_s']:.1f} tok/s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
