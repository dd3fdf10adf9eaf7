"""ReActAgent shows a small model only the tools its task mentions (plus the calculator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_apps.react_agent.agent import shortlist
from tools import registry

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def specs():
    described = {name: entry[0].describe() for name, entry in registry.discover().items()}
    profile = json.loads((ROOT / "agent_apps" / "react_agent" / "config.json").read_text())["tools"]
    return [described[n] for n in profile]


@pytest.mark.parametrize("task,names", [
    ("What is seventeen times twenty-three?", ["calculator"]),
    ("What is (15 + 27) * 3?", ["calculator"]),
    ("Convert 5 kilometers to miles.", ["unit_converter", "calculator"]),
    ("Convert 50 EUR to GBP.", ["currency_converter", "calculator"]),
    ("How many JPY is 10 dollars?", ["currency_converter", "calculator"]),
    ("What number is written in secret.txt?", ["read_file", "calculator"]),
    ("Search my notes for the word budget", ["search_docs", "web_search", "calculator"]),
    ("Delete old.txt", ["read_file", "delete_file", "calculator"]),  # ties keep the profile's order
])
def test_the_task_picks_its_tools(specs, task, names):
    assert [t["name"] for t in shortlist(task, specs, 3, ["calculator"])] == names


def test_no_match_or_no_limit_shows_every_tool(specs):
    assert shortlist("Tell me a joke", specs, 3, ["calculator"]) == specs
    assert shortlist("What is 2 + 2?", specs, 0, ["calculator"]) == specs


def test_every_builtin_tool_declares_keywords():
    """Keywords come from each tool (its units, its currency codes...), not from the agent."""
    for name, entry in registry.discover().items():
        if entry[0].__module__.startswith("tools."):  # not the test suite's own tools
            assert entry[0].describe()["keywords"], name


def _enums(defs) -> dict:
    return {(d["function"]["name"], k): p.get("enum") for d in defs
            for k, p in d["function"]["parameters"]["properties"].items() if "enum" in p}


def test_conversions_and_numbers_are_grounded_in_the_task(specs):
    from agent_apps.react_agent.ground import ground, unused
    from agent_apps.sdk import function_tools

    by_name = {t["name"]: t for t in specs}
    defs = function_tools([by_name[n] for n in ("currency_converter", "unit_converter", "read_file", "list_files")])
    got = _enums(ground(defs, by_name, "How many JPY is 10 USD?", []))
    assert got[("currency_converter", "from_currency")] == ["USD"]  # the word after the number
    assert got[("currency_converter", "to_currency")] == ["JPY"]
    assert got[("currency_converter", "amount")] == [10]
    got = _enums(ground(defs, by_name, "How many feet are in 2.5 meters? See notes.txt", ["{\"value\": 3}"]))
    assert got[("unit_converter", "from_unit")] == ["meters"] and got[("unit_converter", "to_unit")] == ["feet"]
    assert got[("unit_converter", "value")] == [2.5]  # a converter's number: a quantity of the task (2.5 meters)
    assert got[("read_file", "path")] == ["notes.txt"] and ("list_files", "path") not in got  # optional: free
    assert ("unit_converter", "from_unit") not in _enums(ground(defs, by_name, "Convert 5 to feet", []))
    assert unused("What is (15 + 27) * 3?", [{"args": {"expression": "15+27"}}]) == ["3"]
    assert unused("What is 19 - 45?", [{"args": {"expression": "19-45"}}]) == []


# -- the plan by rules (agent_apps/react_agent/plan.py): what the next call must be ------------------------
def _step(tool: str, args: dict, out: dict) -> dict:
    from agent_apps.react_agent.agent import observation
    return {"tool": tool, "args": args, "observation": observation(out)}


def test_the_plan_converts_each_quantity_then_adds_results_of_one_unit(specs):
    from agent_apps.react_agent.plan import first_quantity, next_step

    by_name = {t["name"]: t for t in specs}
    arithmetic = set(by_name["calculator"]["keywords"])
    task = "How many seconds are in 2 days and 3 hours?"
    days = _step("unit_converter", {"value": 2, "from_unit": "days", "to_unit": "seconds"},
                 {"value": 172800.0, "unit": "s"})
    assert next_step(task, [days], by_name, arithmetic) == ("convert", {"tool": "unit_converter", "numbers": ["3"]})
    assert first_quantity(task, by_name["unit_converter"]) == ["2"]  # the first call: "2" and "days" only
    hours = _step("unit_converter", {"value": 3, "from_unit": "hours", "to_unit": "seconds"},
                  {"value": 10800.0, "unit": "s"})
    assert next_step(task, [days, hours], by_name, arithmetic) == \
        ("calculate", {"numbers": ["172800.0", "10800.0"], "ops": "+-"})  # seconds and seconds: never times
    miles = _step("unit_converter", {"value": 3, "from_unit": "miles", "to_unit": "kilometers"},
                  {"value": 4.828032, "unit": "km"})
    assert next_step("Convert 3 miles to kilometers, then multiply by 2.", [miles], by_name, arithmetic) == \
        ("calculate", {"numbers": ["4.828032", "2"], "ops": ""})
    calc = _step("calculator", {"expression": "4.828032 * 2"}, {"expression": "4.828032 * 2", "value": 9.656064})
    assert next_step("Convert 3 miles to kilometers, then multiply by 2.", [miles, calc], by_name, arithmetic) == \
        ("answer", {"value": "9.656064"})


def test_the_plan_adds_up_a_file_only_when_the_task_asks_for_arithmetic(specs):
    from agent_apps.react_agent.plan import next_step

    by_name = {t["name"]: t for t in specs}
    arithmetic = set(by_name["calculator"]["keywords"])
    read = _step("read_file", {"path": "numbers.txt"}, {"path": "numbers.txt", "content": "12 30 58\n"})
    assert next_step("Add up the numbers in numbers.txt.", [read], by_name, arithmetic) == \
        ("calculate", {"numbers": ["12", "30", "58"], "ops": ""})
    notes = _step("read_file", {"path": "notes.txt"}, {"path": "notes.txt", "content": "Meeting at 10, room 4.\n"})
    assert next_step("Read notes.txt and tell me what it says.", [notes], by_name, arithmetic) == \
        ("answer", {"value": None})
    price = _step("read_file", {"path": "price.txt"}, {"path": "price.txt", "content": "price: 19.99 dollars\n"})
    assert next_step("Read price.txt and tell me the price.", [price], by_name, arithmetic) == \
        ("answer", {"value": "19.99"})


def test_the_first_call_reads_a_named_file_and_a_word_problem_goes_to_the_calculator(specs):
    from agent_apps.react_agent.plan import first_call

    def first(task: str) -> tuple[list[str], str]:
        shown = shortlist(task, specs, 3, ["calculator"])
        named = shortlist(task, specs, 3, [])
        choice = {"type": "function", "function": {"name": named[0]["name"]}} if len(named) == 1 else "required"
        shown, choice = first_call(task, specs, shown, named, choice)
        return [t["name"] for t in shown], choice if isinstance(choice, str) else choice["function"]["name"]
    assert first("How many kilometers is the distance given in trip.txt?") == (["read_file", "calculator"], "read_file")
    # "dollars" alone is no conversion (nothing to convert them to): a word problem, for the calculator
    assert first("Tickets cost 7 dollars for an adult and 4 dollars for a child. How much do 2 adults pay?") == \
        (["calculator"], "calculator")
    assert first("Convert 20 USD to EUR and add 5.") == (["currency_converter", "calculator"], "currency_converter")
