"""kernel.llm.fanout: the calls a request's lists and repeated descriptions ask for, completed from
the one call a small model writes; and the requests where it must add nothing."""

from __future__ import annotations

import time

from kernel.llm import fanout


def props(**kinds) -> dict:
    return {"type": "object", "properties": {k: (v if isinstance(v, dict) else {"type": v}) for k, v in kinds.items()}}


def call(name: str, **args) -> dict:
    return {"name": name, "arguments": args}


def more(request: str, first: dict, schema: dict) -> list[dict]:
    """The arguments of the calls added after ``first``."""
    out = fanout.complete([first], request, {first["name"]: schema})
    assert out[0] == first
    return [c["arguments"] for c in out[1:]]


FACT = props(number="integer")


def test_a_list_of_numbers_is_one_call_each():
    assert more("Find the factorial of 5,10 and 15.", call("fact", number=5), FACT) == [{"number": 10}, {"number": 15}]
    assert more("For 10, 20, and 30 years.", call("fact", number=20), FACT) == [{"number": 10}, {"number": 30}]
    fv = props(rate="number", years="integer")  # "5%" is the rate: 0.05
    assert more("The future value at 5% for 1,5 and 10 years.", call("fv", rate=0.05, years=1), fv) == \
        [{"rate": 0.05, "years": 5}, {"rate": 0.05, "years": 10}]


def test_a_list_of_words_or_quoted_values_is_one_call_each():
    s = props(compartment="string", describe="boolean")
    got = more("What are the proteins in the nucleus, mitochondria, and cytoplasm, and can you also describe them?",
               call("proteins", compartment="nucleus", describe=True), s)
    assert got == [{"compartment": "mitochondria", "describe": True}, {"compartment": "cytoplasm", "describe": True}]
    s = props(show="string")
    assert more("Ratings for 'Friends', 'The Office' and 'Stranger Things'.", call("r", show="Friends"), s) == \
        [{"show": "The Office"}, {"show": "Stranger Things"}]


def test_respectively_pairs_the_lists_and_otherwise_every_combination_is_called():
    play = props(artist="string", duration="integer")
    assert more("Play songs from the artists Taylor Swift and Maroon 5, with a play time of 20 minutes and 15 minutes "
                "respectively, on Spotify.", call("play", artist="Taylor Swift", duration=20), play) == \
        [{"artist": "Maroon 5", "duration": 15}]
    gene = props(gene="string", species="string")
    got = more("What are the protein sequences encoded by the BRCA1 and BRCA2 genes in Homo sapiens and Pan "
               "troglodytes?", call("seq", gene="BRCA1", species="Homo sapiens"), gene)
    assert sorted(map(str, got)) == sorted(map(str, [{"gene": "BRCA1", "species": "Pan troglodytes"},
                                                     {"gene": "BRCA2", "species": "Homo sapiens"},
                                                     {"gene": "BRCA2", "species": "Pan troglodytes"}]))


def test_an_array_of_one_value_fans_out_as_arrays():
    s = props(companies={"type": "array", "items": {"type": "string"}}, duration="string")
    got = more("Stock prices for Apple, Microsoft, and Tesla over 1 week, 2 weeks, and 1 month respectively.",
               call("stock", companies=["Apple"], duration="1 week"), s)
    assert got == [{"companies": ["Microsoft"], "duration": "2 weeks"}, {"companies": ["Tesla"], "duration": "1 month"}]


def test_a_description_repeated_with_other_numbers_is_one_more_call_each():
    area = props(base="integer", height="integer")
    got = more("The first garden has a base of 10 meters and a height of 5 meters, the second garden has a base of "
               "15 meters and a height of 7 meters.", call("area", base=10, height=5), area)
    assert got == [{"base": 15, "height": 7}]
    bmi = props(height="number", weight="integer")
    assert more("Calculate the BMI for a person who is 6 feet tall and weighs 80 kg, also for a person who is "
                "5.6 feet and weighs 60 kg.", call("bmi", height=6, weight=80), bmi) == [{"height": 5.6, "weight": 60}]
    trip = props(destination="string", days="integer", budget="integer", focus="string")
    got = more("Plan for a 7-day trip to Tokyo with a daily budget of $200 focusing on urban exploration, then do the "
               "same for a 10-day trip to Paris with a daily budget of $150 focusing on history.",
               call("trip", destination="Tokyo", days=7, budget=200, focus="urban"), trip)
    assert got == [{"destination": "Paris", "days": 10, "budget": 150, "focus": "history"}]
    em = props(b_field="integer", area="integer", d_time="integer")  # the model took the second (BFCL parallel_1)
    assert more("Calculate the induced electromagnetic force for a magnetic field of 5 Tesla, area of 2 square meters "
                "and change in time of 4 seconds, then repeat with a change in time of 10 seconds.",
                call("em", b_field=5, area=2, d_time=10), em) == [{"b_field": 5, "area": 2, "d_time": 4}]


def test_values_that_belong_together_are_not_a_list():
    tax = props(amount="number", city="string", state="string")
    assert more("Sales tax on $30.45 in Chicago, Illinois.", call("tax", amount=30.45, city="Chicago",
                                                                  state="Illinois"), tax) == []
    gcd = props(a="integer", b="integer")
    assert more("Calculate the greatest common divisor of 40 and 50.", call("gcd", a=40, b=50), gcd) == []
    place = props(location="string", days="integer")
    assert more("Weather for New York, USA for the next 3 days.", call("w", location="New York", days=3), place) == []
    assert more("Humidity in Miami, Florida in the upcoming 7 days?", call("w", location="Miami", days=7), place) == []


def test_arrays_units_and_clauses_are_not_lists():
    s = props(data={"type": "array", "items": {"type": "integer"}}, bins="integer")
    assert more("Make a histogram of [12, 15, 11, 14] with 5 bins.", call("h", data=[12, 15, 11, 14], bins=5), s) == []
    tri = props(base="integer", height="integer", unit="string")
    assert more("Find the area of a triangle with a base of 10 units and height of 5 units.",
                call("area", base=10, height=5, unit="units"), tri) == []
    s = props(topic="string")
    assert more("Tell me about volcanoes and then explain why they erupt.", call("t", topic="volcanoes"), s) == []


def test_an_item_the_schema_refuses_is_not_called():
    s = props(color={"type": "string", "enum": ["red", "blue"]})
    assert more("Paint it red and green.", call("paint", color="red"), s) == []
    s = props(n={"type": "integer", "maximum": 12})
    assert more("Factorials of 5, 10 and 15.", call("f", n=5), s) == [{"n": 10}]
    s = props(code={"type": "string", "pattern": "^(a+)+$"})  # the agent's pattern never runs in Python
    assert more("Codes aaaa, aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa! and b.", call("c", code="aaaa"), s) == []


def test_the_models_own_calls_stand_and_nothing_is_called_twice():
    calls = [call("fact", number=5), call("fact", number=10)]
    out = fanout.complete(calls, "Find the factorial of 5, 10 and 15.", {"fact": FACT})
    assert [c["arguments"]["number"] for c in out] == [5, 10, 15]


def test_at_most_max_calls_come_back():
    request = "Factorials of " + ", ".join(map(str, range(1, 30))) + " and 30."
    out = fanout.complete([call("fact", number=1)], request, {"fact": FACT})
    assert len(out) == fanout.MAX_CALLS


def test_only_a_users_request_is_completed():
    tools = [{"type": "function", "function": {"name": "fact", "description": "", "parameters": FACT}}]
    user = [{"role": "user", "content": "Factorials of 5 and 10."}]
    assert fanout.plan(user, tools, "auto") == ("Factorials of 5 and 10.", {"fact": FACT})
    assert fanout.plan(user, tools, "none") is None
    assert fanout.plan([*user, {"role": "tool", "content": "120"}], tools, "auto") is None
    assert fanout.plan([{"role": "user", "content": "x" * (fanout.MAX_REQUEST + 1)}], tools, "auto") is None


def test_a_fault_keeps_the_models_calls(monkeypatch):
    def boom(*a):
        raise RuntimeError("bug")
    monkeypatch.setattr(fanout, "expand", boom)
    calls = [call("fact", number=5)]
    assert fanout.complete(calls, "Factorials of 5 and 10.", {"fact": FACT}) == calls


def test_a_hostile_request_costs_milliseconds_not_the_engine_thread():
    """The fan-out runs on the engine thread: a request at the size bound, of the shapes its
    patterns look at (numbers in lists, brackets, long runs of words), is read in linear time."""
    s = props(a="integer", b="string")
    shapes = ["1, " * (fanout.MAX_REQUEST // 3), "[" * fanout.MAX_REQUEST, "word " * (fanout.MAX_REQUEST // 5),
              "a and " * (fanout.MAX_REQUEST // 6), ("of 7 days " * 500)[:fanout.MAX_REQUEST],
              ("1 and 2, " * 500)[:fanout.MAX_REQUEST], ("(1, 2) and " * 400)[:fanout.MAX_REQUEST],
              ("'word' " * 600)[:fanout.MAX_REQUEST], ("a of 1 b of 2 " * 300)[:fanout.MAX_REQUEST]]
    for text in shapes:
        t0 = time.perf_counter()
        fanout.complete([call("f", a=1, b="word")], text, {"f": s})
        assert time.perf_counter() - t0 < 5.0, text[:40]  # linear: milliseconds; quadratic backtracking: minutes
    many = props(**{f"s{i}": "string" for i in range(fanout.MAX_ARGS)})  # every pair of 32 strings, 200 prepositions
    for args, text in (({f"s{i}": "ab"[i % 2] for i in range(fanout.MAX_ARGS)}, "from a to b and from c to d " * 200),
                       ({f"s{i}": f"w{i}" for i in range(fanout.MAX_ARGS)},
                        " ".join(f"from w{i} to w{i + 1}" for i in range(fanout.MAX_ARGS)) * 10)):
        t0 = time.perf_counter()
        fanout.complete([call("f", **args)], text[:fanout.MAX_REQUEST], {"f": many})
        assert time.perf_counter() - t0 < 5.0  # about 0.1 s; a search per pair of arguments took 1.4 s


def test_bracketed_groups_are_one_call_each():
    gcd = props(num1="integer", num2="integer")
    assert more("What is the GCD of the two pairs of numbers (45, 60) and (81, 27)?", call("gcd", num1=45, num2=60),
                gcd) == [{"num1": 81, "num2": 27}]
    hist = props(data={"type": "array", "items": {"type": "integer"}}, bins="integer")
    got = more("The first set is [12, 15, 11, 14] and the second set is [32, 35, 31], 5 bins each.",
               call("h", data=[12, 15, 11, 14], bins=5), hist)
    assert got == [{"data": [32, 35, 31], "bins": 5}]


def test_verbs_contractions_articles_dates_and_times_are_not_items():
    recipe = props(servings="integer", diet="string", prep_time="integer")
    assert more("Find me a recipe that serves 2 people, is vegan, and takes under 30 minutes to prepare.",
                call("r", servings=2, diet="vegan", prep_time=30), recipe) == []
    movie = props(cast="string", directed_by="string")
    assert more("An action movie with ryan reynolds and directed by david leitch.",
                call("m", cast="ryan reynolds", directed_by="david leitch"), movie) == []
    place = props(city="string")
    assert more("I'm in Los Gatos, CA, and I'm looking for a family counselor.", call("c", city="Los Gatos, CA"),
                place) == []
    slot = props(province_id="integer", rating="number")
    assert more("A housekeeper in province 3 with a score of 4.5, available on 12/03/2024 16:00 - 18:00.",
                call("s", province_id=3, rating=4.5), slot) == []


def test_a_version_number_in_brackets_is_no_group_and_stops_nothing():
    s = props(a="integer", b="integer")
    assert more("Check version (1.2.3, 4), then the pairs (5, 6) and (7, 8).", call("v", a=5, b=6), s) == \
        [{"a": 7, "b": 8}]


def reply(request: str, calls: list[dict], schema: dict) -> list[dict]:
    """The arguments of every call of the completed reply (the model's may be rewritten)."""
    return [c["arguments"] for c in fanout.complete(calls, request, {calls[0]["name"]: schema})]


def test_groups_are_read_in_order_whatever_numbers_the_model_took():
    gcd = props(num1="integer", num2="integer")
    pairs = [{"num1": 45, "num2": 60}, {"num1": 81, "num2": 27}]
    request = "What is the greatest common divisor (GCD) of the two pairs of numbers (45, 60) and (81, 27)?"
    assert reply(request, [call("gcd", num1=45, num2=81)], gcd) == pairs  # the first of each (BFCL parallel_76)
    assert reply(request, [call("gcd", num1=60, num2=45)], gcd) == pairs  # a pair backwards
    assert reply(request, [call("gcd", num1=60, num2=45), call("gcd", num1=27, num2=81)], gcd) == pairs
    hyp = props(a="integer", b="integer")  # pairs joined by "and", no brackets (parallel_10)
    assert reply("Compute the Pythagorean Theorem of two side lengths: 3 and 4, 5 and 12.", [call("p", a=3, b=4)],
                 hyp) == [{"a": 3, "b": 4}, {"a": 5, "b": 12}]


def test_groups_leave_a_call_of_other_numbers_alone():
    dist = props(x1="integer", y1="integer", x2="integer", y2="integer")  # one call takes both points
    first = call("d", x1=3, y1=4, x2=6, y2=8)
    assert reply("The distance between (3, 4) and (6, 8).", [first], dist) == [first["arguments"]]
    gcd = props(a="integer", b="integer")
    assert reply("The GCD of 40 and 50.", [call("gcd", a=40, b=50)], gcd) == [{"a": 40, "b": 50}]
    assert reply("Between 3 and 4 hours, then rest.", [call("gcd", a=3, b=4)], gcd) == [{"a": 3, "b": 4}]


def test_things_described_in_the_same_words_are_one_call_each_whatever_slots_the_model_mixed():
    bmi = props(height="number", weight="integer")
    request = ("Calculate the body mass index for a person who is 6 feet tall and weighs 80 kg, also for a person who "
               "is 5.6 feet and weighs 60 kg.")
    want = [{"height": 6, "weight": 80}, {"height": 5.6, "weight": 60}]
    assert reply(request, [call("bmi", height=80, weight=60)], bmi) == want  # BFCL parallel_4
    assert reply(request, [call("bmi", height=5.6, weight=80)], bmi) == want  # two things' numbers in one call
    tree = props(criterion="string", max_depth="integer", random_state="integer")
    got = reply("Build a decision tree classifier model with gini criterion, maximum depth of 5 and random state of "
                "1, another with entropy criterion, maximum depth of 10 and random state of 1.",
                [call("tree", criterion="gini", max_depth=1, random_state=1)], tree)
    assert got == [{"criterion": "gini", "max_depth": 5, "random_state": 1},
                   {"criterion": "entropy", "max_depth": 10, "random_state": 1}]
    recipe = props(dish_name="string", serving_size="integer")  # a number the request never wrote takes the slot
    got = reply("Tell me a cooking recipe for 'Lasagne Bolognese' for serving 4 people and another one for 'Caesar "
                "Salad' for serving 2 people", [call("r", dish_name="Lasagne Bolognese", serving_size=1)], recipe)
    assert got == [{"dish_name": "Lasagne Bolognese", "serving_size": 4}, {"dish_name": "Caesar Salad", "serving_size": 2}]


def test_words_go_with_the_numbers_in_the_order_the_request_writes_them():
    save = props(stage="integer", mode={"type": "string", "enum": ["easy", "hard"]})
    got = reply("How to save game progress at stage 7 in easy mode and stage 3 in hard mode?",
                [call("save", stage=7, mode="hard")], save)  # BFCL parallel_50: the model's word was the second's
    assert got == [{"stage": 7, "mode": "easy"}, {"stage": 3, "mode": "hard"}]
    pf = props(number="integer", return_type="string")
    got = reply("What is the prime factorization of the number 4567 and the number 7890, if we want the results to "
                "be returned in a 'dictionary' format?", [call("pf", number=4567, return_type="dictionary")], pf)
    assert got == [{"number": 4567, "return_type": "dictionary"}, {"number": 7890, "return_type": "dictionary"}]


def test_one_thing_or_slots_of_different_sizes_make_no_table():
    area = props(base="integer", height="integer")
    assert fanout._table("A base of 10 and a height of 5.") is None
    assert fanout._table("A base of 10 and a height of 5, then a base of 12, a base of 14 and a height of 6.") is None
    first = call("area", base=10, height=5)
    assert reply("A triangle with a base of 10 meters and a height of 5 meters.", [first], area) == [first["arguments"]]
    ivl = props(start="integer", end="integer")  # interleaved: "from 1 to 5 ... from 2 to 3" is a table; this is not
    assert fanout._table("Integrate from 1 from 2 to 5 to 3.") is None
    assert reply("Sum from 1 to 5, and from 2 to 3.", [call("s", start=1, end=5)], ivl) == \
        [{"start": 1, "end": 5}, {"start": 2, "end": 3}]


def test_a_value_the_table_does_not_hold_stays_unless_the_slots_words_name_its_argument():
    hotel = props(location="string", no_of_adults="integer")  # BFCL simple_python_381: dates are no slot of adults
    first = call("h", location="Paris", no_of_adults=2)
    assert reply("Is any Hilton Hotel available for two adults in Paris from 2023 April 4th to April 8th?", [first],
                 hotel) == [first["arguments"]]
    t_test = props(alpha="number")  # simple_python_124: the values' first items are no slot of alpha
    first = call("t", alpha=0.05)
    assert reply("Find the statistical significance between dataset_A with the values 12, 24, 36 and dataset_B with "
                 "the values 15, 30, 45.", [first], t_test) == [first["arguments"]]


def test_a_hyphenated_unit_marks_a_slot_whatever_words_come_before():
    trip = props(destination="string", days="integer", daily_budget="integer", focus="string")
    request = ("Can you generate a travel itinerary for a 7-day trip to Tokyo with a daily budget of $200 focusing on "
               "urban exploration, then do the same for a 10-day trip to Paris with a daily budget of $150 focusing on "
               "history, followed by a 5-day trip to Sydney with a daily budget of $100 focusing on nature, and finally "
               "a 12-day trip to Rome with a daily budget of $180 focusing on culture?")  # BFCL parallel_90
    got = reply(request, [call("trip", destination="Tokyo", days=10, daily_budget=200, focus="urban")], trip)
    assert got == [{"destination": "Tokyo", "days": 7, "daily_budget": 200, "focus": "urban"},
                   {"destination": "Paris", "days": 10, "daily_budget": 150, "focus": "history"},
                   {"destination": "Sydney", "days": 5, "daily_budget": 100, "focus": "nature"},
                   {"destination": "Rome", "days": 12, "daily_budget": 180, "focus": "culture"}]


def test_a_pair_written_again_after_the_same_word_is_one_more_call():
    dist = props(start_loc="string", end_loc="string", shortest_route="boolean")
    got = reply("What's the driving distance between New York and Washington DC, and between Los Angeles and San "
                "Francisco with optional parameter shortest route enabled?",  # BFCL parallel_38
                [call("d", start_loc="New York", end_loc="Washington DC", shortest_route=True)], dist)
    assert got == [{"start_loc": "New York", "end_loc": "Washington DC", "shortest_route": True},
                   {"start_loc": "Los Angeles", "end_loc": "San Francisco", "shortest_route": True}]
    flight = props(departure_city="string", destination_city="string", date="string")
    request = "Book a flight from San Francisco to Tokyo on May 3rd 2022 and another flight from Tokyo to Sydney."
    assert reply(request, [call("f", departure_city="San Francisco", destination_city="Tokyo", date="May 3rd 2022")],
                 flight)[1:] == [{"departure_city": "Tokyo", "destination_city": "Sydney", "date": "May 3rd 2022"}]
    both = [call("f", departure_city="San Francisco", destination_city="Tokyo", date="May 3rd 2022"),
            call("f", departure_city="Tokyo", destination_city="Sydney", date="May 18th 2022")]
    assert reply(request, both, flight) == [c["arguments"] for c in both]  # the model wrote both: nothing added
    assert reply("Directions from home to work, please.", [call("f", departure_city="home", destination_city="work",
                                                                date="today")], flight) == \
        [{"departure_city": "home", "destination_city": "work", "date": "today"}]


def test_numbered_arguments_take_one_units_numbers_in_the_order_written():
    mix = props(mass1="integer", temperature1="integer", mass2="integer", temperature2="integer")
    got = reply("Calculate the final temperature when 20 kg of water at 30 degree Celsius is mixed with 15 kg of water "
                "at 60 degree Celsius.", [call("mix", mass1=15, temperature1=30, mass2=15, temperature2=60)], mix)
    assert got == [{"mass1": 20, "temperature1": 30, "mass2": 15, "temperature2": 60}]  # BFCL simple_python_46
    gas = props(quantity1="integer", temperature1="integer", quantity2="integer", temperature2="integer")
    got = reply("Calculate the final temperature when 2 moles of gas at 300 K are mixed with 3 moles of the same gas at "
                "400 K.", [call("gas", quantity1=2, temperature1=400, quantity2=3, temperature2=300)], gas)
    assert got == [{"quantity1": 2, "temperature1": 300, "quantity2": 3, "temperature2": 400}]  # multiple_42
    pair = props(num1="integer", num2="integer")  # no unit, or a value the unit's numbers do not hold: as written
    assert reply("The GCD of 40 and 50.", [call("g", num1=50, num2=40)], pair) == [{"num1": 50, "num2": 40}]
    assert reply("Masses of 2 kg first, 3 kg later, 5 kg last.", [call("g", num1=3, num2=2)], pair) == \
        [{"num1": 3, "num2": 2}]  # three numbers before "kg" for two arguments
