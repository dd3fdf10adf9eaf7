"""Generation for kernel.llm.serve: a thin client of the kernel's own batching engine (kernel/llm/engine.py).

Each HTTP request becomes one engine request (LLMRequest) with a pid of its own, so concurrent requests
are batched as agents' calls are, and decoded by the same code: the engine's sampler, prefix cache,
weights (``--weights``: int8 on a CPU by default, as the kernel's), and its constrained decoding
(response_format, tools, tool_choice, with the engine's tool decision). The engine hands each request's
new text to ``on_text`` as it decodes (stop strings cut as in the result); a client that goes away
cancels its request (``Generation.close``). This module adds no decode loop of its own.
"""

from __future__ import annotations

import itertools
import queue
from typing import Iterator

from kernel.llm import constrain
from kernel.llm.request import LLMRequest, SamplingParams

MAX_NEW = 1 << 15  # the engine's ceiling of new tokens per request: a request's max_tokens (and the context) bound it


class Generation:
    """One request in the engine. Iterate for the pieces of its text; once iterated to the end, ``result``
    (the engine's: text, tokens_in, tokens_out, finish_reason, tool_calls with tools) or ``error`` is set.
    ``close()`` cancels it if it is still running (the client went away)."""

    def __init__(self, engine, req: LLMRequest):
        self.engine, self.req = engine, req
        self.result: dict | None = None
        self.error: Exception | None = None
        self.done = False
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        req.on_text = self._events.put
        req.on_done = lambda r, result, error: self._events.put((result, error))

    def __iter__(self) -> Iterator[str]:
        while not self.done:
            item = self._events.get()
            if isinstance(item, tuple):
                self.result, self.error = item
                self.done = True
            elif not (self.req.tools and self.req.tool_choice != "none"):  # a tool call's text is not streamed
                yield item

    def first(self) -> str | None:
        """Wait for the first piece (returned) or the end (None; then ``error`` or ``result`` is set)."""
        for piece in self:
            return piece
        return None

    def close(self) -> None:
        if not self.done:
            self.engine.cancel_pid(self.req.pid)


class Generator:
    def __init__(self, llm_name: str, device: str = "cpu", weights: str = "auto"):
        from kernel.config import KernelConfig
        from kernel.llm.engine import Engine

        self.engine = Engine(KernelConfig.from_flags(llm_name=llm_name, eval_device=device, weights=weights,
                                                     max_new_tokens=MAX_NEW))
        self.engine.start()
        self.engine.ready.wait()
        if self.engine.load_error:
            self.engine.stop()
            raise RuntimeError(self.engine.load_error)
        self._pids = itertools.count(1)

    @staticmethod
    def check(response_format=None, tools=None, tool_choice=None) -> None:
        """constrain.ConstraintError (a ValueError: answer 400) for schemas the engine would refuse."""
        constrain.check_schemas(response_format, tools, tool_choice)

    def generate(self, messages: list[dict], max_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int | None = None, stop=(), continue_final: bool = False, response_format=None,
                 tools=None, tool_choice=None) -> Generation:
        pid = next(self._pids)
        req = LLMRequest(pid=pid, req_id=pid, messages=messages,
                         sampling=SamplingParams(max_new_tokens=max(1, int(max_tokens)), temperature=temperature,
                                                 top_p=top_p, stop=tuple(stop or ()), seed=seed),
                         response_format=response_format, tools=tools, tool_choice=tool_choice,
                         continue_final=continue_final)
        gen = Generation(self.engine, req)
        self.engine.submit(req)
        return gen

    def stop(self) -> None:
        self.engine.stop()
