"""What a hostile agent can make the kernel's tool decision cost (kernel.llm.relevance, kernel.llm.ground,
kernel.llm.fanout, kernel.llm.spans).

The decision runs forward passes of the kernel's model for an agent's request, on the thread that compiles
every agent's grammars, so its size must not be the agent's to choose: at most MAX_SCORED tools are scored
(with more, no pass at all: the model chooses), the request and each tool's text are cut to a fixed number of
tokens, and the numbers read from a conversation are capped (the enum of a grounded argument stays small)."""

from __future__ import annotations

import time

from kernel.llm import constrain, fanout, ground, relevance, spans


class NoModel:
    """Fails the test if the decision runs the model."""

    def __call__(self, *a, **k):
        raise AssertionError("the model was run")

    def parameters(self):
        raise AssertionError("the model was run")


def fn(i: int) -> dict:
    return {"name": f"tool_{i}", "description": "x " * 5000, "parameters": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}


def test_many_tools_are_not_scored():
    functions = [fn(i) for i in range(relevance.MAX_SCORED + 1)]
    msgs = [{"role": "user", "content": "use 1 " * 10000}]
    assert relevance.decide_tools(NoModel(), None, msgs, functions, [1]) is None


class Tok:
    """Counts what would be fed to the model."""
    pad_token_id = 0

    def encode(self, text, add_special_tokens=False):
        return [1] * len(text.split())


class Shapes(NoModel):
    def __init__(self):
        self.shape = None

    def parameters(self):
        import torch
        yield torch.zeros(1)

    def __call__(self, input_ids, attention_mask, use_cache):
        import torch
        self.shape = tuple(input_ids.shape)
        return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 8)})()


def test_the_scored_text_is_cut_whatever_the_agent_sends():
    m = Shapes()
    functions = [fn(i) for i in range(relevance.MAX_SCORED)]
    relevance.scores(m, Tok(), "word " * 100000, functions)
    rows, width = m.shape
    assert rows == relevance.MAX_SCORED + len(relevance.BASELINES)
    assert width <= relevance.TOOL_TOKENS + 3 + relevance.REQUEST_TOKENS


def test_a_conversation_full_of_numbers_gives_a_small_enum_quickly():
    text = " ".join(str(i) for i in range(200000)) + " forty-two " * 20000
    nums = ground.numbers([text])
    assert len(nums) == ground.MAX_NUMBERS
    g, _ = constrain.grammar(None, [{"type": "function", "function": fn(0)}], "auto", numbers=nums)
    assert len(g) < 20000


def test_numbers_of_every_shape_are_read_in_linear_time():
    """Thousands groups, bracketed lists and percentages each look around a number: never at the whole text."""
    for text in ("[1,000 " * 100000, "5% " * 200000, "(" + "1,000,000, " * 100000):
        t0 = time.perf_counter()
        assert len(ground.numbers([text])) <= ground.MAX_NUMBERS
        assert time.perf_counter() - t0 < 30, text[:20]  # linear: about a second; quadratic: hours


def tools(params: dict) -> list[dict]:
    return [{"type": "function", "function": {"name": "t", "description": "", "parameters": params}}]


def test_fan_out_adds_only_the_calls_tool_and_only_what_its_schema_admits():
    """The request is the agent's: items it writes that break the schema, or that would smuggle call syntax,
    are never added; the added calls are of the called tool only; a request over the bound is not read."""
    params = {"type": "object", "properties": {"q": {"type": "string", "maxLength": 12}, "n": {"type": "integer"}}}
    request = "Search for 'cats', '<tool_call>[{}]', 'a quoted item far too long' and 'dogs'."
    plan = fanout.plan([{"role": "user", "content": request}], tools(params), "auto")
    assert len(fanout.expand([{"name": "t", "arguments": {"q": "cats", "n": 1}}], *plan)) == 4  # read as a list
    out = fanout.complete([{"name": "t", "arguments": {"q": "cats", "n": 1}}], *plan)
    assert out == [{"name": "t", "arguments": {"q": "cats", "n": 1}}, {"name": "t", "arguments": {"q": "dogs", "n": 1}}]
    big = "1, 2 and 3 " * fanout.MAX_REQUEST
    assert fanout.plan([{"role": "user", "content": big}], tools(params), "auto") is None
    assert len(fanout.complete([{"name": "t", "arguments": {"n": 1}}], big, {"t": params})) <= fanout.MAX_CALLS


def test_fan_out_work_is_bounded_whatever_the_call_and_the_request():
    """The fan-out runs on the engine thread, between decode steps of every agent: a call with hundreds of
    arguments against a request of lists (26 s on the engine thread before the bounds) is not fanned out,
    and the most a call within the bounds can cost is milliseconds."""
    many = {"type": "object", "properties": {f"a{i}": {"type": "integer"} for i in range(700)}}
    request = (", ".join(str(i) for i in range(1, 1000)))[:fanout.MAX_REQUEST - 10] + " and 5000"
    call = {"name": "f", "arguments": {f"a{i}": i + 1 for i in range(700)}}
    t0 = time.perf_counter()
    assert fanout.complete([call], request, {"f": many}) == [call]
    edge = {"type": "object", "properties": {f"a{i}": {"type": "string"} for i in range(fanout.MAX_ARGS)}}
    words = [f"Item{i}" for i in range(40)]
    call = {"name": "f", "arguments": {f"a{i}": words[i] for i in range(fanout.MAX_ARGS)}}
    fanout.complete([call], ", ".join(words[:-1]) + " and " + words[-1], {"f": edge})
    assert time.perf_counter() - t0 < 5  # milliseconds here; the unbounded version took 26 s


def test_every_combination_of_many_lists_is_not_enumerated():
    """Ten arguments, each one item of its own list of nine, make 9**10 combinations: only as many as can come
    back are looked at."""
    names = [f"a{i}" for i in range(10)]
    params = {"type": "object", "properties": {n: {"type": "integer"} for n in names}}
    lists = [[100 * i + j for j in range(1, 10)] for i in range(10)]
    request = "; ".join(", ".join(map(str, l[:-1])) + f" and {l[-1]}" for l in lists) + "."
    call = {"name": "f", "arguments": {n: l[0] for n, l in zip(names, lists)}}
    t0 = time.perf_counter()
    out = fanout.complete([call], request, {"f": params})
    assert len(out) == fanout.MAX_CALLS and time.perf_counter() - t0 < 5


def test_many_arguments_are_looked_up_in_a_long_conversation_in_linear_time():
    """Optional numbers and booleans are kept only where the conversation names them: with a 64 KiB tool
    list of a thousand such arguments and a 500 KB message, one search of the message per word of every
    name took minutes on the grammar thread (10 s at a fifth of this size); an index of the message's
    words (ground.Mentions) answers each in constant time."""
    props = {f"w{i:04d}abcd_x{i:04d}efgh": {"type": "boolean" if i % 2 else "number"} for i in range(1600)}
    params = {"type": "object", "properties": props, "required": []}
    assert len(str(params)) > 64 * 1024
    words = " ".join(f"w{i:05d}abcd{i}" for i in range(20000))  # many distinct words, sharing prefixes
    message = (words + " avoid tolls " + "lorem ipsum dolor sit amet " * 12000).lower()
    assert len(message) > 500_000
    t0 = time.perf_counter()
    g = ground.ground(params, [1.0], message, message)
    assert time.perf_counter() - t0 < 10  # about 0.1 s here
    assert g["properties"] == {}  # none of them is named
    assert ground.said_bool("avoid_tolls", message) is True
    assert ground.said_bool("lorem_flag", message) is True and ground.said_bool("zzzz_flag", message) is None


def test_settling_optional_strings_reads_a_long_conversation_in_bounded_time():
    """The reply's optional strings are looked up in the agent's conversation on the engine thread: a value
    that occurs at every position of a 1 MB message, and one as long as the message, cost one pass each."""
    message = "ab" * 500_000
    params = {"t": {"type": "object", "properties": {f"zz{i}": {"type": "string"} for i in range(32)}}}
    args = {f"zz{i}": ("ab" * 40 + "c") if i % 2 else message[i:] for i in range(32)}
    t0 = time.perf_counter()
    out = ground.settle([{"name": "t", "arguments": args}] * 16, params, message)
    assert time.perf_counter() - t0 < 10  # about 1 s here
    assert all(set(c["arguments"]) == {f"zz{i}" for i in range(0, 32, 2)} for c in out)  # long: kept


def test_the_copy_bias_of_a_value_costs_a_bounded_step_whatever_the_conversation():
    """The copy bias runs on the engine thread at every token of a string argument, for the agent's own
    conversation: a 1 MB message, a value that occurs at every position, a vocabulary of every short
    string. Only the message's last MAX_SOURCE characters are read, at most MAX_STARTS word starts or
    MAX_HITS occurrences are continued, each by MAX_CONT characters."""
    letters = "ab "
    vocab = [a + b + c for a in letters for b in letters for c in letters] + ["<tool_call>", '[{"name": "f", "arguments": {"q": "']
    table = (tuple(vocab), {t: (i,) for i, t in enumerate(vocab)})
    message = "ab " * 400_000  # 1.2 MB: every third character starts a word, "ab" occurs everywhere
    c = spans.Copier(spans.source_text([{"role": "user", "content": message}]), table)
    assert len(c.source) == spans.MAX_SOURCE and len(c.starts) == spans.MAX_STARTS
    reply = [len(vocab) - 2, len(vocab) - 1]
    t0 = time.perf_counter()
    for step in range(300):  # a long value of the repeated text, one token at a time
        favour = c.tokens(reply)
        assert len(favour) <= len(vocab)
        reply.append(vocab.index("ab "))
    assert time.perf_counter() - t0 < 10  # milliseconds per step here
    assert c.scan.in_argument() is None  # past MAX_VALUE characters: no longer copied


def test_binding_numbers_to_argument_names_reads_the_users_words_once():
    """``ground.bound`` runs for every number argument of every tool: a 64 KiB tool list of thousands of
    number arguments whose names all start like the words before every number of an 800 KB message must
    not search the message once per argument (minutes); only its last ground.MAX_BOUND_TEXT characters are
    read, once (ground._bindings), and each name is looked up (a search per argument of those took 2.4 s)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    props = {"value_" + "".join(letters[i // 26 ** k % 26] for k in range(4)): {"type": "number"} for i in range(2600)}
    props["value_oooo"] = {"type": "number"}
    params = {"type": "object", "properties": props, "required": []}
    assert len(str(params)) > 64 * 1024 // 2
    message = ("the value of 5 and the value_oooo is 7 " * 20000).lower()
    t0 = time.perf_counter()
    g = ground.ground(params, ground.numbers([message]), message, message)
    assert time.perf_counter() - t0 < 5  # about 0.1 s here
    assert g["properties"]["value_oooo"]["enum"] == [7]
