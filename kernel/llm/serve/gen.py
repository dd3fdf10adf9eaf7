"""Token-by-token generation for kernel.llm.serve (one sequence at a time).

A plain KV-cached decode loop over a transformers causal LM: prefill the
prompt, then one forward pass per token. Greedy when temperature == 0 (the
same tokens as ``model.generate(do_sample=False)``), else temperature/top-p
sampling from a generator seeded per request (kernel.llm.sampler.pick, the engine's own). ``Generator.lock`` serialises
generations: one model, one sequence at a time (this server is a test and
demo reference, not a batching server). ``constraint`` compiles an OpenAI-shaped
response_format/tools request into a matcher that ``stream`` applies to every
token, as the kernel's engine does (kernel.llm.constrain, kernel.llm.logitmask).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable, Iterator

import torch
from transformers import DynamicCache

from kernel.llm import model as model_mod
from kernel.llm import sampler


@dataclass
class Piece:
    text: str  # new text of this token ("" while a multi-byte character is incomplete)
    token: int


class Generator:
    def __init__(self, llm_name: str, device: str = "cpu"):
        self.model, self.tok = model_mod.load(llm_name, device)
        eos = self.model.generation_config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [eos]) | {self.tok.eos_token_id}
        self.lock = threading.Lock()  # held for a whole generation
        self._grammars = None

    def constraint(self, response_format=None, tools=None, tool_choice=None, messages: list[dict] | None = None):
        """A Matcher for the request, or None; raises constrain.ConstraintError (answer 400). With
        ``tools``, the engine's tool decision and grounding (kernel.llm.relevance) on ``messages``."""
        from kernel.llm import constrain, relevance
        from kernel.llm.logitmask import Matcher

        constrain.check_schemas(response_format, tools, tool_choice)
        allow, facts = None, {}
        if tools and messages:
            allow, facts, _ = relevance.plan(self.model, self.tok, messages, tools, tool_choice)
        text, names = constrain.grammar(response_format, tools, tool_choice, allow, **facts)
        if text is None:
            return None
        if self._grammars is None:
            self._grammars = constrain.Compiler(lambda: constrain.lltokenizer(self.tok))
        return Matcher(self._grammars.matcher(text), bool(names), self._grammars.vocab)

    def encode(self, messages: list[dict], continue_final: bool = False) -> list[int]:
        """Prompt ids. ``continue_final``: the last (assistant) message is left open to be continued."""
        if continue_final and messages and messages[-1]["role"] == "assistant":
            prefix = self.encode(messages[:-1])
            return prefix + self.tok.encode(messages[-1]["content"], add_special_tokens=False)
        enc = self.tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        return list(enc["input_ids"])

    def stream(self, ids: list[int], max_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
               seed: int | None = None, stop: list[str] | None = None,
               gone: Callable[[], bool] = lambda: False, info: dict | None = None,
               matcher=None) -> Iterator[Piece]:
        """Yield one Piece per generated token; ends on EOS, a stop string, max_tokens or ``gone()``.

        ``info`` (if given) gets "finish" ("stop" | "length" | "cancelled") and
        "completion_tokens". Stop strings are cut from the text and the piece
        that completed one is shortened.
        """
        stop = stop or []
        info = {} if info is None else info
        info.update(finish="length", completion_tokens=0)
        gen = torch.Generator(device=self.model.device).manual_seed(seed if seed is not None else 0)
        out: list[int] = []
        text = ""
        with self.lock, torch.inference_mode():
            cache = DynamicCache()
            inp = torch.tensor([ids], device=self.model.device)
            for _ in range(max_tokens):
                if gone():
                    info["finish"] = "cancelled"
                    return
                logits = self.model(input_ids=inp, past_key_values=cache, use_cache=True).logits[0, -1]
                if matcher is not None:
                    from kernel.llm import logitmask

                    logitmask.apply(logits[None], [SimpleNamespace(matcher=matcher, generated=out)])
                token = sampler.pick(logits, temperature, top_p, gen)
                if matcher is not None:
                    matcher.advance(token)
                if token in self.eos:  # counted, as vLLM and model.generate count it
                    info["finish"] = "stop"
                    info["completion_tokens"] = len(out) + 1
                    return
                out.append(token)
                info["completion_tokens"] = len(out)
                full = self.tok.decode(out, skip_special_tokens=True)
                piece = "" if full.endswith("\ufffd") else full[len(text):]
                text += piece
                hits = [i for i in (text.find(s) for s in stop) if i >= 0]
                if hits:
                    cut = min(hits)
                    yield Piece(piece[: max(0, len(piece) - (len(text) - cut))], token)
                    info["finish"] = "stop"
                    return
                yield Piece(piece, token)
                if matcher is not None and (matcher.done or matcher.error):
                    info["finish"] = "stop"
                    return
                inp = torch.tensor([[token]], device=self.model.device)
