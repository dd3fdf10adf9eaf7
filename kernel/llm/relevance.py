"""Whether an ``auto`` tool request calls a tool, and which one: the local engine decides.

Asked with ``tool_choice: "auto"``, the embedded 135M model almost never starts a call: the
probability of ``<tool_call>`` as its first token is about 0.01 whether a tool fits or not (BFCL
simple_python: 0 calls in 30). Deciding *whether* to call is half of tool use, so for a request
that ends with the user's turn the engine decides, with two rules any request can be held to:

1. **Grounding** (kernel.llm.ground): a tool whose required number arguments find no number in
   the conversation cannot be called ("What's the mass of an electron?" with
   ``calculate_current(voltage, resistance)``).
2. **Relevance** (channel scoring, as in noisy-channel classification with language models):
   for each tool, how likely the user's request is once the model has read the tool's name and
   description, per token of the request, against the same for a few generic tools::

       score(tool) = mean log p(request | "Tool <name>: <description>")
                     - max over baselines b of mean log p(request | "Tool <b>: <what b does>")

   A request a tool serves is predicted by its description ("Find the area of a triangle with a
   base of 10" after "calculate_triangle_area: Calculate the area of a triangle ..."); one it
   does not serve is predicted as well or better by a generic tool (``BASELINES``: reply, search
   the web, a calculator, the weather, send a message; one whose name shares a word with a real
   tool is left out, so it cannot veto that tool). The request calls a tool when the best score
   is above ``RELEVANCE_MIN`` (0: better than every baseline; no constant fitted to a benchmark),
   and only the tools within ``RELEVANCE_NEAR`` of the best may be called (with several tools,
   the one the request is about: BFCL multiple). Otherwise the reply is text.
3. **The words the request shares with a tool** (``shares``): of the tools within
   ``RELEVANCE_NEAR``, those whose name and description share the most with the request's words
   may be called (each shared word weighted by how few of the tools use it: inverse document
   frequency over the tools scored), and another only where it shares a word with the request
   that none of those does (a second thing asked: "the history of the tiger population, and the
   crop yield"). "Find the distance between New York City and Los Angeles" is
   ``geodistance_find`` ("Find the distance between two cities"), not
   ``timezones_get_difference`` ("Find the time difference between two cities"), which the 135M
   model wrote. Where no tool shares a word, the scores alone decide.
   ``python bench/bfcl.py --calibrate`` prints how the rule splits BFCL's cases (docs/llm.md).

The scores cost one forward pass over the request once per tool and per baseline (right-padded,
one batch, no KV kept): about the prefill of a prompt that long, on the ``llm-grammar`` thread
(not the engine's). After a tool's result, or with ``required``, a named tool or ``none``, the
model's own choice stands; ``--tool_decision model`` turns the decision off.
"""

from __future__ import annotations

import logging
import math
import time

from kernel.llm import ground

log = logging.getLogger("aios.engine")

RELEVANCE_MIN = 0.0  # a called tool explains the request better than every baseline tool (nats per token)
RELEVANCE_NEAR = 0.25  # tools within this of the best may be called
MAX_SCORED = 12  # tools scored at most (a forward pass of 17 rows); with more the model chooses
REQUEST_TOKENS = 160  # the request's last tokens that are scored
TOOL_TOKENS = 96  # the tool text's first tokens
BASELINES = (("reply", "Reply to the user."),  # tools that any request, or requests of common kinds, fit
             ("search_web", "Search the web for pages about a query."),
             ("calculator", "Evaluate an arithmetic expression."),
             ("get_weather", "Get the current weather in a city."),
             ("send_message", "Send a message to a person."))


def plan(model, tok, messages: list[dict], tools, tool_choice, decide: bool = True
         ) -> tuple[list[str] | None, dict, float]:
    """For a request with ``tools``: (the tools an auto reply must call, [] for text, None for the
    model's choice; ``constrain.grammar``'s ``numbers`` and ``text``; seconds spent deciding).
    ``decide``: False leaves every auto request to the model (``--tool_decision model``)."""
    from kernel.llm import constrain

    functions, mode = constrain.chosen(constrain.tool_functions(tools), tool_choice)
    if mode == "none":
        return None, {}, 0.0
    texts = [m["content"] for m in messages if isinstance(m.get("content"), str)]
    facts = {"numbers": ground.numbers(texts), "text": " ".join(texts).lower(),
             "asked": " ".join(m["content"] for m in messages
                               if m.get("role") == "user" and isinstance(m.get("content"), str)).lower()}
    if not decide or not applies(messages, mode):
        return None, facts, 0.0
    t0 = time.perf_counter()
    allow = decide_tools(model, tok, messages, functions, facts["numbers"])
    return allow, facts, time.perf_counter() - t0


def applies(messages: list[dict], mode: str) -> bool:
    """An ``auto`` request whose last turn is the user's (not a tool's result)."""
    return mode == "auto" and bool(messages) and messages[-1].get("role") == "user"


def request_text(messages: list[dict]) -> str:
    return str(messages[-1].get("content") or "")


def scores(model, tok, request: str, functions: list[dict]) -> list[float]:
    """score(tool) for each of ``functions`` (see the module docstring)."""
    import torch

    q = tok.encode(" " + " ".join(request.split()), add_special_tokens=False)[-REQUEST_TOKENS:]
    words = {w for f in functions for w in _words(f["name"])}
    base = [(n, d) for n, d in BASELINES if n == "reply" or not _words(n) & words]  # not one like a real tool
    texts = [*(f"Tool {n}: {d}" for n, d in base),
             *(f"Tool {f['name']}: {' '.join(f['description'].split())}" for f in functions)]
    heads = [tok.encode(t, add_special_tokens=False)[:TOOL_TOKENS] + tok.encode("\nUser request:", add_special_tokens=False)
             for t in texts]
    rows = [h + q for h in heads]
    width = max(map(len, rows))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    device = next(model.parameters()).device
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
    out = []
    target = torch.tensor(q, device=device)
    for i, h in enumerate(heads):
        lp = torch.log_softmax(logits[i, len(h) - 1:len(h) - 1 + len(q)], dim=-1)
        out.append(lp.gather(1, target[:, None]).mean().item())
    return [x - max(out[:len(base)]) for x in out[len(base):]]


def _words(name: str) -> set[str]:
    """The words of a tool name that say what it does (get_weather -> {"weather"})."""
    return ground.name_words(name) - {"get", "set", "do", "run"}


STOP_WORDS = frozenset(
    "the and for with from into onto about what which who whom whose where when how why this that these those "
    "its are was were been being have has had does did can could would should will shall may might must "
    "you your yours our ours their theirs them they she her his him not all any some each per than then also "
    "find get give show tell please want need given using use based".split())
MAX_REQUEST_CHARS = 4000  # the request's last characters whose words are compared (the scores read its end too)


def lexicon(text: str) -> set[str]:
    """The content words of ``text`` (``ground.name_words``: lower case, split at case changes and
    punctuation, ``getWeather``), three letters or more, without the commonest words, a plural made
    singular the simple way ("cities", "flights")."""
    out = set()
    for w in ground.name_words(text):
        if len(w) >= 3 and w not in STOP_WORDS:
            if len(w) > 4 and w.endswith("ies"):
                w = w[:-3] + "y"
            elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
                w = w[:-1]
            out.add(w)
    return out


def shares(request: str, functions: list[dict]) -> list[tuple[float, frozenset[str]]]:
    """For each of ``functions``: (the weight of the words its name and description share with
    ``request``, those words); each shared word counts log(1 + n / (how many of the n tools use it))."""
    asked = lexicon(request[-MAX_REQUEST_CHARS:])
    tools = [lexicon(f"{f['name']} {f.get('description', '')}") for f in functions]
    used: dict[str, int] = {}
    for words in tools:
        for w in words:
            used[w] = used.get(w, 0) + 1
    n = len(functions)
    return [(sum(math.log(1 + n / used[w]) for w in asked & words), frozenset(asked & words)) for words in tools]


def narrowed(near: list[int], shared: list[tuple[float, frozenset[str]]]) -> list[int]:
    """Of the tools ``near`` (indexes), those sharing the most with the request, and each other one
    that shares a word none of those kept shares (rule 3); all of them where none shares a word."""
    order = sorted(near, key=lambda i: -shared[i][0])
    most = shared[order[0]][0] if order else 0
    if most <= 0:
        return near
    kept = [i for i in order if shared[i][0] == most]
    cover = set().union(*(shared[i][1] for i in kept))
    for i in order[len(kept):]:
        if shared[i][1] - cover:
            kept.append(i)
            cover |= shared[i][1]
    return sorted(kept)


def decide_tools(model, tok, messages: list[dict], functions: list[dict], numbers: list) -> list[str] | None:
    """The names of the tools the reply must call ([] for a text reply; None: the model chooses)."""
    callable_ = [f for f in functions if ground.ground(f["parameters"], numbers) is not None]
    if not callable_:
        return []
    if len(callable_) > MAX_SCORED:
        return None
    s = scores(model, tok, request_text(messages), callable_)
    best = max(s)
    near = [] if best < RELEVANCE_MIN else [i for i, x in enumerate(s) if x >= best - RELEVANCE_NEAR]
    if len(near) > 1:
        near = narrowed(near, shares(request_text(messages), callable_))
    chosen = [callable_[i]["name"] for i in near]
    log.debug("tool decision: %s -> %s", {f["name"]: round(x, 3) for f, x in zip(callable_, s)}, chosen)
    return chosen
