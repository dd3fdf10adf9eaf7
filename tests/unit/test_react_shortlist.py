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
    assert got[("unit_converter", "value")] == [2.5, 3]  # the task's and the observations' numbers
    assert got[("read_file", "path")] == ["notes.txt"] and ("list_files", "path") not in got  # optional: free
    assert ("unit_converter", "from_unit") not in _enums(ground(defs, by_name, "Convert 5 to feet", []))
    assert unused("What is (15 + 27) * 3?", [{"args": {"expression": "15+27"}}]) == ["3"]
    assert unused("What is 19 - 45?", [{"args": {"expression": "19-45"}}]) == []
