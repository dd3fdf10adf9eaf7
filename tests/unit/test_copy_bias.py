"""The copy bias of tool-call string arguments (kernel.llm.spans) on a small made-up vocabulary:
where a reply is (which string, key or value, how deep), and which tokens continue the source."""

from __future__ import annotations

import llguidance
import torch

from kernel.llm import logitmask, spans

BYTES = llguidance.LLTokenizer("byte")

VOCAB = ("<tool_call>", "[", '{"name": "', "get", "_x", '", "arguments": {"', "loc", "ation", '": "',
         "Y", "Yellow", "stone", " National", " Nat", "ional", " Park", "M", "Man", "hattan", "chester",
         '"', ", ", "}}", "]</tool_call>", "in", " Yellow", "\\", "n", "tags", '": ["', "Pre", "P", "forest", "ellow", "y")
TABLE = (VOCAB, {t: (i,) for i, t in enumerate(VOCAB)})
ID = {t: i for i, t in enumerate(VOCAB)}
SOURCE = "Predict the growth of forest in Yellowstone National Park for the next 5 years."


def ids(*texts: str) -> list[int]:
    return [ID[t] for t in texts]


def favoured(copier: spans.Copier, *texts: str) -> set[str]:
    return {VOCAB[i] for i in copier.tokens(ids(*texts))}


HEAD = ("<tool_call>", "[", '{"name": "', "get", "_x", '", "arguments": {"', "loc", "ation", '": "')


def test_a_value_continues_the_span_it_began_in_the_sources_case():
    c = spans.Copier(SOURCE, TABLE)
    assert favoured(c, *HEAD, "Yellow", "stone") == {" National", " Nat"}
    assert favoured(c, *HEAD, "Yellow", "stone", " Nat") == {"ional"}
    assert favoured(c, *HEAD, "y") == {"ellow"}  # the source's "Yellowstone", whatever case the value began in


def test_a_value_does_not_run_on_into_the_next_phrase():
    """Past a word's end the value continues into the next word, unless that word ends the span: a
    conjunction, a preposition, a verb, a possessive ("copper and aluminum", "Sacher in Vienna")."""
    c = spans.Copier("Book the Yellow in Vienna, Yellow and Blue, Yellow & Co, Yellow's", TABLE)
    assert favoured(c, *HEAD, "Yellow") == set()
    c = spans.Copier("Book the Yellow Park", TABLE)
    assert favoured(c, *HEAD, "Yellow") == {" Park"}


def test_a_value_begins_at_a_word_of_the_source():
    c = spans.Copier(SOURCE, TABLE)
    assert favoured(c, *HEAD) == {"Y", "Yellow", "Pre", "P", "forest", "in", "n", "y"}


def test_a_long_conversation_offers_its_newest_words_and_occurrences():
    """Past the caps, the words and occurrences offered are the source's last ones: in a long agent
    conversation the latest turn is what the call is about, not the first."""
    old = " ".join(["filler"] * (spans.MAX_STARTS + 10))
    c = spans.Copier(old + " Yellowstone", TABLE)
    assert len(c.starts) == spans.MAX_STARTS and "Yellow" in favoured(c, *HEAD)
    many = " ".join(["Yellow Park"] * (spans.MAX_HITS + 5))
    c = spans.Copier(many + " Yellowstone", TABLE)
    assert favoured(c, *HEAD, "Yellow") == {"stone", " Park"}  # the last "Yellow" is read, not only the first 32
    c = spans.Copier("Yellowstone " + many, TABLE)
    assert favoured(c, *HEAD, "Yellow") == {" Park"}  # the oldest occurrence is past the cap


def test_a_source_whose_lower_case_is_longer_keeps_its_positions():
    c = spans.Copier("İİİİ Yellowstone National Park", TABLE)  # "İ".lower() is two characters
    assert favoured(c, *HEAD, "Yellow", "stone") == {" National", " Nat"}


def test_a_value_does_not_begin_at_a_number():
    """The numbers of "What is 17 * 23?" are a number argument's, not a unit's first characters."""
    vocab = VOCAB + ("17", "1", "W")
    c = spans.Copier("What is 17 * 23 in Yellow?", (vocab, {t: (i,) for i, t in enumerate(vocab)}))
    assert {c.texts[i] for i in c.tokens(ids(*HEAD))} == {"W", "in", "Y", "Yellow"}


def test_a_value_the_source_does_not_hold_is_left_to_the_model():
    c = spans.Copier("Find Thai food in Manhattan.", TABLE)
    assert favoured(c, *HEAD, "Man") == {"hattan"}
    assert favoured(c, *HEAD, "Man", "chester") == set()


def test_keys_the_tool_name_and_text_outside_a_call_are_not_biased():
    c = spans.Copier(SOURCE, TABLE)
    assert c.tokens([]) == {}  # the reply has not opened a call
    assert favoured(c, "<tool_call>", "[", '{"name": "') == set()  # the tool's name: depth 2
    assert favoured(c, *HEAD[:-3]) == set()  # a key of the arguments
    assert favoured(c, *HEAD[:-3], "loc") == set()


def test_items_of_an_array_argument_are_values_too():
    c = spans.Copier(SOURCE, TABLE)
    assert favoured(c, *HEAD[:-4], "tags", '": ["', "Yellow", "stone") == {" National", " Nat"}


def test_an_escape_in_the_value_stops_the_bias():
    c = spans.Copier("Yellow\\nstone", TABLE)
    assert favoured(c, *HEAD, "Yellow", "\\", "n") == set()


def test_a_rolled_back_reply_is_read_again():
    c = spans.Copier(SOURCE, TABLE)
    assert favoured(c, *HEAD, "Yellow", "stone") == {" National", " Nat"}
    assert favoured(c, *HEAD[:-3]) == set()  # fewer tokens than it had read
    assert favoured(c, *HEAD, "M") == set()  # "M" is not in the source (the first read is gone)


def test_the_source_is_the_users_and_the_tools_turns():
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": []},
                {"role": "tool", "content": "Paris: 18 C"}]
    assert spans.source_text(messages) == "Weather in Paris?\nParis: 18 C"
    assert len(spans.source_text([{"role": "user", "content": "x" * 10**6}])) == spans.MAX_SOURCE


class Row:
    """What logitmask.apply reads of a sequence."""

    def __init__(self, copier):
        from kernel.llm import constrain
        from kernel.llm.logitmask import Matcher

        tool = {"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
        grammar, _ = constrain.grammar(None, [tool], "required")
        self.matcher = Matcher(llguidance.LLMatcher(BYTES, grammar, log_level=0), True, BYTES.vocab_size)
        self.matcher.copier = copier
        self.generated: list[int] = []


class Fixed:
    def __init__(self, favour):
        self.favour = favour

    def tokens(self, generated):
        if isinstance(self.favour, Exception):
            raise self.favour
        return self.favour


def test_the_bias_is_added_on_top_of_the_grammars_mask():
    row = Row(Fixed({ord("<"): 3.0, ord("x"): 3.0}))
    logits = torch.zeros(1, BYTES.vocab_size)
    logitmask.apply(logits, [row])
    assert logits[0, ord("<")] == 3.0  # what a call opens with, favoured
    assert logits[0, ord("x")] == float("-inf")  # the grammar's mask still rules


def test_a_failing_copy_bias_leaves_the_row_to_its_grammar():
    row = Row(Fixed(RuntimeError("boom")))
    logits = torch.zeros(1, BYTES.vocab_size)
    logitmask.apply(logits, [row])
    assert row.matcher.copier is None and row.matcher.error is None
    assert logits[0, ord("<")] == 0.0 and logits[0, ord("x")] == float("-inf")
