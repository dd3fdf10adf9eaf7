"""RecAgent reads the request in the task's own words, without a model.

Proves: the phrases a field may take are the task's runs of words without a function word
("New York", not "tour to New"); what the request's verb asks for is the first run after it
("restaurants", not the tour; "laptop", not "programming"), and nothing without such a verb;
the restated request pluralises what is asked for and leaves out what the task does not say;
the final list keeps numbered items only, one line each (name and first sentence, initials kept),
each item once.
"""

from __future__ import annotations

from kernel import apps as registry
from agent_apps.rec_agent.agent import RecAgent, asked_object, items, phrases, plural

DEMO = "I want to take a tour to New York during the spring break, recommend some restaurants around for me."


def test_phrases_are_the_tasks_words_without_function_words():
    assert phrases(DEMO) == ["New York", "spring break", "tour", "New", "York", "spring", "break", "restaurants"]
    assert phrases("suggest museums in Paris for a rainy day") == ["rainy day", "museums", "Paris", "rainy", "day"]


def test_what_is_asked_for_is_the_first_run_after_the_asking_verb():
    assert asked_object(DEMO) == "restaurants"
    assert asked_object("recommend a sci-fi book for a long flight") == "sci-fi book"
    assert asked_object("Suggest a laptop for programming") == "laptop"
    assert asked_object("Any good hiking trails near Seattle for the weekend?") is None


def test_the_restated_request_leaves_out_what_the_task_does_not_say():
    agent = RecAgent(registry.find("RecAgent"))
    agent.defaults = {"anywhere", "any time"}
    agent.fields = {"where": "New York", "what": "restaurants", "when": "spring break"}
    assert agent.fill("Recommend three {request}.") == "Recommend three restaurants in New York."
    agent.fields = {"where": "anywhere", "what": "sci-fi book", "when": "long flight"}
    assert agent.fill("Recommend three {request}.") == "Recommend three sci-fi books."
    assert [plural(w) for w in ("museums", "city", "quiet cafe", "box")] == ["museums", "cities", "quiet cafes", "boxes"]


def test_the_list_is_numbered_items_one_line_each_each_once():
    reply = ("Here you are:\n1. Star Wars by A.J. Smith. A classic.\n\n2. The Louvre: art. Big.\n"
             "3. The Louvre: art. Again.\n4) Star Wars: Andor\nPlease choose one.")
    assert items(reply) == ["Star Wars by A.J. Smith.", "The Louvre: art.", "Star Wars: Andor"]
