"""Tool-call grammars without a model: strict and bounded arguments, parallel calls, the engine's
decision (allow), numbers grounded in the conversation, and reading calls back (parse_reply).

The grammars are run on llguidance's byte tokenizer: what a reply may be is a property of the
grammar, whatever the model's vocabulary."""

from __future__ import annotations

import json

import llguidance
import pytest

from kernel.llm import constrain, ground, relevance

BYTES = llguidance.LLTokenizer("byte")


def tool(name: str, props: dict, required: list[str], description: str = "") -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": props, "required": required}}}


AREA = tool("area", {"base": {"type": "integer"}, "unit": {"type": "string"}}, ["base"])
PLAY = tool("play", {"artist": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}, ["artist"])


def accepts(grammar: str, text: str) -> bool:
    m = llguidance.LLMatcher(BYTES, grammar, log_level=0)
    return m.consume_tokens(list(text.encode())) and not m.is_error() and m.is_accepting()


def calls(*cs: dict) -> str:
    return constrain.call_text(list(cs))


def test_arguments_admit_only_the_named_properties():
    g, names = constrain.grammar(None, [AREA], "required")
    assert names == ["area"]
    assert accepts(g, calls({"name": "area", "arguments": {"base": 10, "unit": "cm"}}))
    assert not accepts(g, calls({"name": "area", "arguments": {"base": 10, "temperature": 3}}))
    assert not accepts(g, calls({"name": "nope", "arguments": {"base": 10}}))


def test_a_schema_that_asks_for_more_properties_gets_them():
    free = tool("tag", {"k": {"type": "string"}}, [], )
    free["function"]["parameters"]["additionalProperties"] = {"type": "integer"}
    g, _ = constrain.grammar(None, [free], "required")
    assert accepts(g, calls({"name": "tag", "arguments": {"k": "v", "extra": 3}}))


def test_strings_and_arrays_are_bounded_so_a_call_always_closes():
    g, _ = constrain.grammar(None, [PLAY], "required")
    ok = "x" * constrain.FREE_STRING
    assert accepts(g, calls({"name": "play", "arguments": {"artist": ok}}))
    assert not accepts(g, calls({"name": "play", "arguments": {"artist": ok + "x"}}))
    many = [f"t{i}" for i in range(constrain.FREE_ITEMS)]
    assert accepts(g, calls({"name": "play", "arguments": {"artist": "a", "tags": many}}))
    assert not accepts(g, calls({"name": "play", "arguments": {"artist": "a", "tags": many + ["one more"]}}))


def test_several_calls_in_one_reply_up_to_max_calls():
    g, _ = constrain.grammar(None, [AREA, PLAY], "auto")
    two = calls({"name": "play", "arguments": {"artist": "Taylor Swift"}}, {"name": "area", "arguments": {"base": 3}})
    assert accepts(g, two)
    most = [{"name": "area", "arguments": {"base": i}} for i in range(constrain.MAX_CALLS)]
    assert accepts(g, calls(*most))
    assert not accepts(g, calls(*most, {"name": "area", "arguments": {"base": 99}}))
    assert accepts(g, "Hello, no tool is needed.")


def test_the_engines_decision_makes_auto_a_call_or_text():
    text_only, names = constrain.grammar(None, [AREA, PLAY], "auto", allow=[])
    assert names == ["area", "play"]  # the reply is still read for calls: there are none
    assert accepts(text_only, "Sorry, none of my tools does that.")
    assert not accepts(text_only, calls({"name": "area", "arguments": {"base": 3}}))
    only_play, names = constrain.grammar(None, [AREA, PLAY], "auto", allow=["play"])
    assert names == ["play"]
    assert accepts(only_play, calls({"name": "play", "arguments": {"artist": "x"}}))
    assert not accepts(only_play, calls({"name": "area", "arguments": {"base": 3}}))
    assert not accepts(only_play, "Some text.")


def test_number_arguments_are_the_conversations_numbers():
    g, _ = constrain.grammar(None, [AREA], "auto", numbers=[10, 5])
    assert accepts(g, calls({"name": "area", "arguments": {"base": 10}}))
    assert not accepts(g, calls({"name": "area", "arguments": {"base": 12}}))
    # no number at all: the tool cannot be called in an auto reply ...
    g, _ = constrain.grammar(None, [AREA], "auto", numbers=[])
    assert not accepts(g, calls({"name": "area", "arguments": {"base": 12}}))
    assert accepts(g, "The request gives no base.")
    # ... but a demanded call is still made, with the model's number
    g, _ = constrain.grammar(None, [AREA], "required", numbers=[])
    assert accepts(g, calls({"name": "area", "arguments": {"base": 12}}))


@pytest.mark.parametrize("text, want", [
    ("A base of 10 units and a height of 5.5 units.", [10, 5.5]),
    ("It costs $1,200.50, or -3 after the refund.", [1200.5, -3]),
    ("What is forty-five minus nineteen?", [45, 19]),
    ("three hundred and twelve people; a thousand chairs", [312, 1000]),
    ("two thousand five hundred", [2500]),
    ("What's the mass of an electron?", []),
    ("An annual rate of 5% over 10 years", [0.05, 5, 10]),  # 5 is the rate's whole, for integer arguments
    ("2.5 percent, then 7% and 7 days", [0.025, 2.5, 0.07, 7]),
    ("cash_flows=[200,300,400,500]", [200300400500, 200, 300, 400, 500]),
    ("213 million people on 8.5 million km2; 1.267 billion; 2 millionaires", [213000000, 213, 8500000, 8.5,
                                                                              1267000000, 1.267, 2]),
])
def test_numbers_in_digits_and_words(text, want):
    assert ground.numbers([text]) == want


def test_a_percentage_is_a_fraction_for_a_number_argument_and_a_whole_for_an_integer():
    params = {"type": "object", "required": ["rate"], "properties": {"rate": {"type": "number"}}}
    assert ground.ground(params, ground.numbers(["at 5% a year"]))["properties"]["rate"]["enum"] == [0.05]
    assert ground.ground(params, ground.numbers(["at 5% a year for 5 years"]))["properties"]["rate"]["enum"] == \
        [0.05, 5]  # 5 is written plainly too
    said = {"type": "object", "required": ["rate"], "properties": {"rate": {"type": "number",
                                                                        "description": "Interest rate in percentage."}}}
    assert ground.ground(said, ground.numbers(["at 2.5% a year"]))["properties"]["rate"]["enum"] == [0.025, 2.5]
    whole = {"type": "object", "required": ["pct"], "properties": {"pct": {"type": "integer"}}}
    assert ground.ground(whole, ground.numbers(["a 15% discount"]))["properties"]["pct"]["enum"] == [15]
    assert json.dumps(ground.numbers(["15%"])) == "[0.15, 15]"


def test_grounding_keeps_enums_drops_optional_numbers_and_writes_floats_as_floats():
    params = {"type": "object", "required": ["a"], "properties": {
        "a": {"type": "integer"}, "b": {"type": "number", "format": "float"},
        "c": {"type": "integer", "enum": [1, 2]}, "d": {"type": "integer", "minimum": 100},
        "e": {"type": "array", "items": {"type": "number", "format": "double"}}}}
    g = ground.ground(params, [10, 2.5])
    props = g["properties"]
    assert props["a"]["enum"] == [10]  # 2.5 is no integer
    assert props["b"]["enum"] == [10.0, 2.5] and json.dumps(props["b"]["enum"]) == "[10.0, 2.5]"
    assert props["c"]["enum"] == [1, 2]  # its own
    assert "d" not in props  # optional, and no number of the conversation is >= 100
    assert props["e"]["items"]["enum"] == [10.0, 2.5]
    assert ground.ground(params, [2.5]) is None  # the required integer has nothing to take


@pytest.mark.parametrize("name, asked, want", [
    ("width", "a rectangle with width of 7 units and length of 10 units", [7]),  # BFCL multiple_31
    ("length", "a rectangle with width of 7 units and length of 10 units", [10]),
    ("current", "10 meters away from a long wire carrying a current of 20 amperes", [20]),  # simple_python_43
    ("initial_velocity", "an initial velocity of 20 m/s, then an initial velocity of 5", [20, 5]),
    ("interestRate", "an annual interest rate of 4% over 30 years", [0.04, 4]),
    ("population", "the population is 213 million", [213000000, 213]),
    ("a", "coefficients a = 3, b = -11, and c = -4", [3]),
    ("b", "coefficients a = 3, b = -11, and c = -4", [-11]),
    ("a", "a 3 metre plank", []),  # one letter binds only with "=" or ":"
    ("x", "evaluate it at x=4, then at x: 2", [4, 2]),
    ("price", "a price of $1,200.50", [1200.5]),
    ("charge2", "two charges of 5c and 7c", []),  # a numbered name is a position, not a word
    ("years", "for 10 years", []),  # the number comes before the name: no binding
    ("height", "a height 5 feet", [5]),
])
def test_a_number_written_right_after_an_arguments_name_is_bound_to_it(name, asked, want):
    assert ground.bound(name, asked) == want


def test_a_bound_argument_takes_only_its_number():
    rect = {"type": "object", "required": ["width", "length"],
            "properties": {"width": {"type": "integer"}, "length": {"type": "integer"}}}
    asked = "what is the area and perimeter of a rectangle with width of 7 units and length of 10 units?"
    g = ground.ground(rect, ground.numbers([asked]), asked, asked)["properties"]
    assert g["width"]["enum"] == [7] and g["length"]["enum"] == [10]
    asked = "a rectangle 7 by 10"  # nothing bound: every number is offered
    assert ground.ground(rect, ground.numbers([asked]), asked, asked)["properties"]["width"]["enum"] == [7, 10]
    rate = {"type": "object", "required": ["rate"], "properties": {"rate": {"type": "number"}}}
    asked = "a rate of 5% for 5 years"  # bound to what "5%" means for a number argument
    assert ground.ground(rate, ground.numbers([asked]), asked, asked)["properties"]["rate"]["enum"] == [0.05]
    asked = "width of 7.5"  # bound to no number the argument may take: left as grounded
    assert ground.ground(rect, ground.numbers([asked + " or 3"]), asked, asked)["properties"]["width"]["enum"] == [3]


@pytest.mark.parametrize("asked, want", [
    ("find the fastest route from san francisco to los angeles avoiding tolls", True),
    ("a route to la; avoid the tolls please", True),
    ("find a hair stylist in fremont, ca, and it shouldn't be unisex?", False),
    ("a hotel in london with a non-smoking room", False),
    ("homes in austin, and i don't care about a garage or in-unit laundry", False),
    ("route to la without tolls", True),  # avoid_tolls: a negative name, negated
    ("route to la, don't avoid the tolls", False),
    ("a route to la with tolls", None),  # says nothing sure of avoiding them: the default
    ("rent a home in austin, with a garage", True),
    ("what are the prime factors of 450?", None),
    ("no idea. route from sf to la, avoid tolls", True),  # a negation in another clause does not count
])
def test_a_boolean_is_what_the_users_words_say_of_it(asked, want):
    name = {"avoid": "avoid_tolls", "unisex": "is_unisex", "smoking": "smoking_allowed", "garage": "has_garage",
            "tolls": "avoid_tolls", "prime": "formatted"}
    key = next(w for w in name if w in asked)
    assert ground.said_bool(name[key], asked) is want


def test_booleans_ground_in_the_users_words():
    params = {"type": "object", "required": ["start", "strict"], "properties": {
        "start": {"type": "string"}, "avoid_tolls": {"type": "boolean"}, "scenic_view": {"type": "boolean"},
        "strict": {"type": "boolean"}, "metric": {"type": "boolean", "enum": [True]}}}
    g = ground.ground(params, [], "", "a route from boston avoiding tolls")
    props = g["properties"]
    assert props["avoid_tolls"]["enum"] == [True] and "avoid_tolls" in g["required"]  # named: written, true
    assert "scenic_view" not in props  # optional, not named: the tool's default
    assert props["strict"] == {"type": "boolean"}  # required, not named: the model's
    assert props["metric"] == {"type": "boolean", "enum": [True]}  # its own enum
    assert g["required"] == ["start", "avoid_tolls", "strict"]
    assert ground.ground(params, [], "", None)["properties"]["scenic_view"] == {"type": "boolean"}  # not asked: as is
    tools = [tool("route", params["properties"], params["required"])]
    gram, _ = constrain.grammar(None, tools, "required", numbers=[], text="",
                                asked="route from boston, not avoiding tolls")
    assert accepts(gram, calls({"name": "route", "arguments": {"start": "Boston", "avoid_tolls": False, "strict": True}}))
    assert not accepts(gram, calls({"name": "route", "arguments": {"start": "Boston", "avoid_tolls": True,
                                                                   "strict": True}}))
    assert not accepts(gram, calls({"name": "route", "arguments": {"start": "Boston", "strict": True}}))
    assert not accepts(gram, calls({"name": "route", "arguments": {"start": "Boston", "avoid_tolls": False,
                                                                   "strict": True, "scenic_view": True}}))


def test_optional_strings_the_conversation_does_not_speak_to_are_left_out():
    params = {"trip": {"type": "object", "required": ["origin", "destination"], "properties": {
        "origin": {"type": "string"}, "destination": {"type": "string"}, "unit": {"type": "string"},
        "transportation": {"type": "string"}, "species": {"type": "string"}, "note": {"type": "string"},
        "mode": {"type": "string", "enum": ["fast", "scenic"]}, "days": {"type": "integer"}}}}
    text = "find the shortest distance from new york to boston by train, 3 days, 5m wide"

    def settled(**args):
        return ground.settle([{"name": "trip", "arguments": args}], params, text)[0]["arguments"]

    base = {"origin": "New York", "destination": "Boston"}
    assert settled(**base, unit="F") == base  # neither named nor written: the tool's default
    assert settled(**base, unit="km") == base  # "km" is no word of the conversation
    assert settled(**base, transportation="train") == dict(base, transportation="train")  # written
    assert settled(**base, unit="m") == dict(base, unit="m")  # "5m" writes "m"
    assert settled(**base, species="Boston") == base  # the value of another argument
    assert settled(**base, species="ork") == base  # only a part of a word
    long_note = "remember to book the tickets early in the morning"  # composed text, not a label: kept
    assert settled(**base, note=long_note) == dict(base, note=long_note)
    assert settled(**base, mode="scenic", days=9) == dict(base, mode="scenic", days=9)  # not strings of its own
    named = {"type": "object", "properties": {"unit": {"type": "string"}}}
    assert ground.settle([{"name": "n", "arguments": {"unit": "F"}}], {"n": named},
                         "the distance in your favourite unit")[0]["arguments"] == {"unit": "F"}  # named
    req = {"type": "object", "required": ["unit"], "properties": {"unit": {"type": "string"}}}
    assert ground.settle([{"name": "r", "arguments": {"unit": "F"}}], {"r": req}, "")[0]["arguments"] == {"unit": "F"}
    odd = [{"name": "x", "arguments": {"a": "b"}}, {"name": "trip", "arguments": "not a dict"}]
    assert ground.settle(odd, params, text) == odd  # unknown tools and odd shapes pass through


def test_a_required_string_without_a_value_of_its_own_leaves_the_call_wanting():
    params = {"trait": {"type": "object", "required": ["allele1", "allele2"], "properties": {
        "allele1": {"type": "string"}, "allele2": {"type": "string"}, "note": {"type": "string"}}},
        "cell": {"type": "object", "required": ["cell_shape"], "properties": {"cell_shape": {"type": "string"}}},
        "pick": {"type": "object", "required": ["a", "b"], "properties": {
            "a": {"type": "string", "enum": ["x", "y"]}, "b": {"type": "string", "enum": ["x", "y"]}}}}

    def wanting(name, **args):
        return ground.wanting({"name": name, "arguments": args}, params)

    assert wanting("trait", allele1="rs7412", allele2="RS7412 ")  # one value for both
    assert not wanting("trait", allele1="rs7412", allele2="rs429358")
    assert wanting("cell", cell_shape="cell_shape")  # its own name
    assert not wanting("cell", cell_shape="round")
    assert not wanting("trait", allele1="rs7412", allele2="rs429358", note="rs7412")  # optional: settle's
    assert not wanting("pick", a="x", b="x")  # the tool's own words
    assert not any(ground.wanting(c, params) for c in ({"name": "nope", "arguments": {"a": 1}}, "odd", {"name": ["x"]}))


def test_the_words_a_request_shares_with_a_tool_weigh_by_how_few_tools_use_them():
    tools = [{"name": "timezones.get_difference", "description": "Find the time difference between two cities."},
             {"name": "geodistance_find", "description": "Find the distance between two cities on the globe."},
             {"name": "getFlights", "description": "Search flights between two cities."}]
    shared = relevance.shares("Find the distance between New York City and Los Angeles.", tools)
    assert shared[1][0] > shared[0][0] == shared[2][0] > 0  # "distance" is one tool's; "between", "city" all's
    assert shared[1][1] == {"distance", "between", "city"} and shared[0][1] == {"between", "city"}
    assert relevance.narrowed([0, 1, 2], shared) == [1]
    assert relevance.lexicon("getFlights for the Cities") == {"flight", "city"}  # case split, plural, stop words
    assert [w for w, _ in relevance.shares("Write a poem.", tools)] == [0, 0, 0]
    assert relevance.narrowed([0, 2], relevance.shares("Write a poem.", tools)) == [0, 2]  # none shares: all
    two = relevance.shares("The time difference between Paris and Rome, and flights between them.", tools)
    assert relevance.narrowed([0, 1, 2], two) == [0, 2]  # two things asked: two tools


def test_parse_reply_keeps_finished_calls_once():
    two = calls({"name": "a", "arguments": {"x": 1}}, {"name": "a", "arguments": {"x": 2}})
    assert [c["arguments"] for c in constrain.parse_reply(two)["tool_calls"]] == [{"x": 1}, {"x": 2}]
    repeated = two[:-len(constrain.CALL_CLOSE)] + ',{"name":"a","arguments":{"x":1}},{"name":"a","argu'
    out = constrain.parse_reply(repeated)  # cut by max_new_tokens while starting over
    assert [c["arguments"] for c in out["tool_calls"]] == [{"x": 1}, {"x": 2}] and out["text"] == ""
    assert constrain.parse_reply("Just text.") == {"tool_calls": [], "text": "Just text."}
    cut = '<tool_call>[{"name":"a","argu'
    assert constrain.parse_reply(cut) == {"tool_calls": [], "text": cut}


def test_a_list_that_repeats_itself_to_the_bound_keeps_its_distinct_items():
    ran = ["Opening hours", "Child tickets"] + ["Child tickets"] * (constrain.FREE_ITEMS - 2)
    nums = [85, 90, 88, 92] + [91] * (constrain.FREE_ITEMS - 4)
    got = constrain.parse_reply(calls({"name": "m", "arguments": {"details": ran, "data": nums}}))["tool_calls"]
    assert got[0]["arguments"] == {"details": ["Opening hours", "Child tickets"], "data": [85, 90, 88, 92, 91]}
    kept = [1, 2] * (constrain.FREE_ITEMS // 2) + [3, 3]  # repeats, but no final run of three: kept whole
    assert constrain.parse_reply(calls({"name": "m", "arguments": {"d": kept}}))["tool_calls"][0]["arguments"] == \
        {"d": kept}
    short = ["G", "C", "G"]  # under the bound: what the model meant
    assert constrain.parse_reply(calls({"name": "m", "arguments": {"s": short}}))["tool_calls"][0]["arguments"] == \
        {"s": short}


def test_a_required_list_is_neither_empty_nor_of_empty_strings():
    stats = tool("stats", {"fields": {"type": "array", "items": {"type": "string"}}}, ["fields"])
    g, _ = constrain.grammar(None, [stats], "required")
    assert accepts(g, calls({"name": "stats", "arguments": {"fields": ["points"]}}))
    assert not accepts(g, calls({"name": "stats", "arguments": {"fields": []}}))
    assert not accepts(g, calls({"name": "stats", "arguments": {"fields": [""]}}))
    g, _ = constrain.grammar(None, [PLAY], "required")  # an optional one may be empty
    assert accepts(g, calls({"name": "play", "arguments": {"artist": "a", "tags": []}}))
