"""How closely int8 weights follow float32: top-1 agreement and first divergence on fixed prompts.

Used by the reference test (tests/kernel/test_weights_int8.py, with a floor)
and bench/weights.py (reported). For each prompt the float32 model decodes
greedily (at most ``tokens``, until EOS); then

    top1        the other model, fed the same ids (teacher forcing), picks the
                same next token at each of those positions: matches / positions
    first_div   both models decode greedily on their own: the index of the
                first token where they differ (the continuation's length if none)
    identical   prompts whose greedy continuations are equal

Deterministic: greedy, no sampling, one process.
"""

from __future__ import annotations

PROMPTS = (
    "What is the capital of France?",
    "Write a python function that reverses a string.",
    "List three colors.",
    "Explain photosynthesis in one sentence.",
    "You are a helpful assistant. Use the calculator tool to compute 17*23.",
    "Summarize: The quick brown fox jumps over the lazy dog.",
    "Give me a JSON object with keys name and age.",
    "What is 2+2?",
    "Translate 'good morning' into French.",
    "Write a haiku about the sea.",
    "Name the largest planet in the solar system.",
    "How do I open a file in Python?",
)


def _ids(tok, text: str):
    enc = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                  return_tensors="pt")
    return enc["input_ids"] if hasattr(enc, "keys") else enc


def _greedy(model, ids, tokens: int, eos: set[int]) -> list[int]:
    import torch

    out, cache, x = [], None, ids
    for _ in range(tokens):
        r = model(input_ids=x, past_key_values=cache, use_cache=True)
        cache = r.past_key_values
        t = int(r.logits[0, -1].argmax())
        out.append(t)
        if t in eos:
            break
        x = torch.tensor([[t]])
    return out


def compare(ref, other, tok, prompts=PROMPTS, tokens: int = 48) -> dict:
    """Agreement of ``other`` with ``ref`` (two loaded models, same tokenizer); a plain dict."""
    import torch

    eos = {i for i in [tok.eos_token_id, *_as_list(ref.generation_config.eos_token_id)] if i is not None}
    matches = positions = identical = 0
    first = []
    with torch.inference_mode():
        for text in prompts:
            ids = _ids(tok, text)
            want = _greedy(ref, ids, tokens, eos)
            full = torch.cat([ids, torch.tensor([want[:-1]], dtype=torch.long)], dim=1) if len(want) > 1 else ids
            n = ids.shape[1]
            got = other(input_ids=full).logits[0, n - 1:].argmax(-1).tolist()
            matches += sum(a == b for a, b in zip(got, want))
            positions += len(want)
            mine = _greedy(other, ids, tokens, eos)
            d = next((i for i, (a, b) in enumerate(zip(want, mine)) if a != b), None)
            if d is None and len(want) != len(mine):
                d = min(len(want), len(mine))
            first.append(len(want) if d is None else d)
            identical += d is None
    return {"prompts": len(prompts), "max_tokens": tokens, "positions": positions,
            "top1_agreement": round(matches / max(positions, 1), 4), "first_divergence": first,
            "first_divergence_mean": round(sum(first) / len(first), 1), "identical_greedy": identical}


def _as_list(x):
    return x if isinstance(x, list) else [x]
