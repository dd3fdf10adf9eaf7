"""Answers first, and the console's conventions, without a model (issue 22, items 3 and 6).

Proves: every result has one shape (``answer`` a string, ``result`` an object or null, in every
record ``--json`` prints); an exit line carries the answer on one line, cut on a terminal and whole
to a pipe; ``ps`` to a pipe cuts nothing; ``info``/``sched``/``status`` are sections with ``-``
for none and rounded numbers, never Python's None/True; did-you-mean for commands, agents, models,
flags and formats; a broken config.json is reported with its file and error; the confirmation
question names the agent and the exact command; the workflow agent's text cleaning drops step
echoes and repeats; the program-of-thought grammar admits only the task's numbers.
"""

from __future__ import annotations

import json
import re

import pytest

from agent_apps import pot
from kernel import apps as registry
from agent_apps.base import clean, describe, render
from aios_shell import details, views
from aios_shell.batch import report
from aios_shell.confirm import parse_event
from aios_shell.suggest import ArgumentParser, hint
from kernel.protocol.results import answer_of, record

SNAP = {"pid": 3, "agent": "MathAgent", "task": "What is 12*7?", "state": "done", "priority": 0, "exit": "0",
        "exit_code": 0, "exit_signal": None, "elapsed_s": 9.4123, "start_time": 1_700_000_000.123,
        "end_time": 1_700_000_009.5, "waiting_s": 2.2671851317087808, "turnaround_s": 8.363893429438273,
        "tokens_in": 333, "tokens_out": 7, "llm_calls": 1, "syscalls": {"llm.chat": 1, "tool.call": 1},
        "syscalls_total": 2, "result_path": None, "log_path": None, "error": None, "parent": None,
        "cpu_percent": 0.0, "rss": 0, "cpu_time_s": None, "llm_share": 0.195, "restarted_as": None,
        "answer": "12 * 7 = 84", "result": {"answer": "12 * 7 = 84", "steps": []}}


@pytest.mark.parametrize("value, answer", [
    ("  48\n", "48"), ({"answer": "5 km = 3.1 miles", "steps": []}, "5 km = 3.1 miles"),
    ({"answer": 84}, "84"), ({"final_answer": "yes"}, "yes"), ({"text": "hi", "x": 1}, "hi"), (None, ""),
    (42, "42"), (True, "true"), ([1, 2], "[1, 2]"), ({"x": 1}, '{"x": 1}'), ({"answer": None, "output": "o"}, "o"),
])
def test_every_result_has_a_plain_answer(value, answer):
    assert answer_of(value) == answer
    rec = record(value)
    assert isinstance(rec, dict) and list(rec)[0] == "answer" and rec["answer"] == answer
    if isinstance(value, dict):
        assert all(rec[k] == v for k, v in value.items() if k != "answer")
    elif not isinstance(value, str) and value is not None:
        assert rec["value"] == value
    assert record(value, reported=False) is None


@pytest.mark.parametrize("state, result, error", [
    ("done", "fine", None), ("done", {"answer": "x", "steps": [1]}, None), ("done", [1, 2], None),
    ("done", None, None), ("failed", None, "calculator failed: EINVAL"), ("killed", None, "killed on request"),
])
def test_json_report_has_the_same_types_for_every_agent(state, result, error):
    snap = {"pid": 1, "agent": "A", "task": "t", "state": state, "result": result, "error": error}
    rec = json.loads(json.dumps(report(snap)))
    assert isinstance(rec["answer"], str)
    assert rec["result"] is None if state != "done" else isinstance(rec["result"], dict)
    assert list(rec)[:6] == ["pid", "agent", "task", "status", "answer", "result"]
    if state == "done":
        assert rec["answer"] == answer_of(result) and rec["result"]["answer"] == rec["answer"]
    else:
        assert rec["answer"] == "" and rec["error"] == error


def test_exit_line_has_the_answer_on_one_line_cut_on_a_terminal_whole_to_a_pipe():
    long = dict(SNAP, answer="The island of Elysium was a place of myth.\n\n" + "And then more. " * 20)
    assert views.exit_line(SNAP, 80) == "[3] MathAgent done in 9.41s: 12 * 7 = 84"
    cut = views.exit_line(long, 80)
    assert len(cut) <= 80 and cut.endswith("…") and "\n" not in cut
    whole = views.exit_line(long, None)
    assert "\n" not in whole and whole.endswith("And then more.") and whole.count("And then more.") == 20
    failed = dict(SNAP, state="failed", exit="1", answer=None, error="calculator failed: EINVAL: division by zero")
    assert views.exit_line(failed, None) == "[3] MathAgent failed (exit 1) in 9.41s: calculator failed: EINVAL: " \
                                            "division by zero"
    assert views.exit_line(dict(SNAP, answer=""), None).endswith("(no answer)")
    assert views.result_block(long).splitlines()[1:3] == ["    The island of Elysium was a place of myth.", "    "]
    assert views.answer({"state": "done", "result": {"answer": "from an old kernel"}}) == "from an old kernel"


def test_ps_to_a_pipe_cuts_nothing_and_json_is_plain_json():
    snaps = [dict(SNAP, task="What is 12*7? " * 10, agent="AVeryLongAgentNameIndeed")]
    text = views.ps_table(snaps, None)
    assert "…" not in text and "What is 12*7? " * 9 in text and "AVeryLongAgentNameIndeed" in text
    assert text.splitlines()[0].split() == ["PID", "AGENT", "STATE", "PRI", "%CPU", "RSS", "TOK", "IN/OUT",
                                            "SYSCALLS", "WAIT", "TURNAROUND", "TIME", "CONFINE", "TASK"]
    assert all(len(line) <= 80 for line in views.ps_table(snaps, 80).splitlines())
    data = json.loads(views.json_text(snaps))
    assert data[0]["waiting_s"] == 2.267 and data[0]["cpu_time_s"] is None


def test_output_format_flags():
    assert views.output_format(["-a", "-o", "json"], "ps") == ("json", ["-a"])
    assert views.output_format(["-ojson"], "ps") == ("json", [])
    assert views.output_format(["--output=wide", "-a"], "ps", ("table", "wide", "json")) == ("wide", ["-a"])
    assert views.output_format(["1"], "info") == ("table", ["1"])
    with pytest.raises(ValueError, match="needs a format"):
        views.output_format(["-o"], "ps")
    with pytest.raises(ValueError, match="unknown output format 'jsn'; did you mean 'json'"):
        views.output_format(["-o", "jsn"], "ps")


def test_info_is_sections_with_dashes_and_rounded_numbers():
    text = details.info_text(dict(SNAP, startup_s=0.2512, confinement="namespaces+landlock"))
    assert text.splitlines()[0] == "pid 3: MathAgent, done in 9.41s"
    assert re.search(r"^  answer +12 \* 7 = 84$", text, re.M)
    for section in ("process", "resources", "llm", "syscalls", "files"):
        assert re.search(rf"^{section}$", text, re.M), section
    assert re.search(r"^  wait \(avg\) +2\.27s$", text, re.M) and re.search(r"^  parent +-$", text, re.M)
    assert re.search(r"^  share of llm time +19\.5%$", text, re.M)
    assert re.search(r"^  by kind +llm\.chat 1, tool\.call 1$", text, re.M)
    assert not re.search(r"\bNone\b|\bTrue\b|\bFalse\b|2671851", text)
    assert re.search(r"^  future_key +shown$", details.info_text(dict(SNAP, future_key="shown")), re.M)
    multi = details.info_text(dict(SNAP, state="failed", answer=None, error="Traceback\n  line 2"))
    assert re.search(r"^  error +Traceback\n +line 2$", multi, re.M) and "answer" not in multi


def test_sched_and_status_are_sections_without_python_values():
    stats = {"model": "m", "scheduler": "fifo", "loaded": True, "load_error": None, "queue": 0, "running": 1,
             "max_batch": 16, "tokens_per_s": 8.456, "kernel_pid": 42, "uptime_s": 75.0, "agents_live": 1,
             "agents_total": 3, "kernel_rss": 950 * 2**20, "kernel_cpu_percent": 3.14159, "prefix_cache": "on"}
    text = details.sched_text(stats, [dict(SNAP, state="llm-running")])
    assert re.search(r"^  loaded +yes$", text, re.M) and re.search(r"^  load error +-$", text, re.M)
    assert re.search(r"^  policy +fifo$", text, re.M) and re.search(r"^  tokens/s +8\.46$", text, re.M)
    assert "kernel_pid" not in text and not re.search(r"\bNone\b|\bTrue\b", text)
    assert re.search(r"^ +3 MathAgent +llm-running", text, re.M)
    rec = details.sched_record(stats, [dict(SNAP, state="llm-running"), SNAP])
    assert rec["engine"] == stats and [p["pid"] for p in rec["processes"]] == [3]
    status = details.status_record(stats, "own kernel", "/tmp/logs")
    assert status["agents_running"] == 1 and status["policy"] == "fifo"
    text = details.status_text(status)
    assert re.search(r"^model +m \(ready\)$", text, re.M) and re.search(r"^uptime +1m15s$", text, re.M)
    assert re.search(r"^agents +1 running, 3 in all$", text, re.M) and re.search(r"^kernel cpu % +3\.1%$", text, re.M)


@pytest.mark.parametrize("word, choices, guess", [
    ("rn", ["run", "ps", "result", "wait"], "run"), ("MathAgnt", ["MathAgent", "ReActAgent"], "MathAgent"),
    ("mathagent", ["MathAgent"], "MathAgent"), ("xyzzy", ["run", "ps"], None), ("jsn", ["table", "json"], "json"),
])
def test_did_you_mean(word, choices, guess):
    assert hint(word, choices) == (f"; did you mean {guess!r}?" if guess else "")


def test_did_you_mean_for_flags_and_models(capsys):
    parser = ArgumentParser(prog="main.py")
    parser.add_argument("--agents", nargs="+")
    with pytest.raises(SystemExit):
        parser.parse_args(["--agnets", "MathAgent"])
    assert "unrecognized arguments: --agnets MathAgent (did you mean --agents?)" in capsys.readouterr().err
    from aios_shell.preflight import did_you_mean

    assert did_you_mean("smollm2-135m") == " (did you mean 'smollm2-135m-instruct'?)"
    assert did_you_mean("nothing-like-it-at-all") == ""


def test_a_broken_config_is_listed_with_its_file_and_error(tmp_path, monkeypatch):
    for name, text in [("good_agent", '{"name": "GoodAgent", "description": "fine"}'),
                       ("comma_agent", '{"name": "CommaAgent",\n "description": "x"\n "tools": []}'),
                       ("list_agent", "[1, 2]"), ("bytes_agent", None), ("nocode_agent", '{"name": "NoCode"}')]:
        (tmp_path / name).mkdir()
        if text is None:
            (tmp_path / name / "config.json").write_bytes(b'{"name": "\xff"}')
        else:
            (tmp_path / name / "config.json").write_text(text)
        if name == "good_agent":
            (tmp_path / name / "agent.py").write_text("class GoodAgent:\n    pass\n")
    monkeypatch.setenv("AIOS_AGENT_PATH", str(tmp_path))
    apps, broken = registry.scan()
    assert "GoodAgent" in apps and not {"CommaAgent", "NoCode"} & set(apps)
    why = {b.folder: (b.path, b.error) for b in broken}
    assert set(why) == {"comma_agent", "list_agent", "bytes_agent", "nocode_agent"}
    assert why["comma_agent"] == (str(tmp_path / "comma_agent" / "config.json"),
                                  "line 3, column 2: Expecting ',' delimiter")
    assert why["list_agent"][1] == "expected a JSON object, found list" and "UTF-8" in why["bytes_agent"][1]
    assert "agent.py" in why["nocode_agent"][1]
    text = views.agents_text(**registry.catalog(), width=None)  # as the kernel's apps op gives it
    assert re.search(r"^comma_agent +BROKEN: .*comma_agent/config\.json: line 3, column 2", text, re.M)
    assert "did you mean 'GoodAgent'?" in registry.not_found("GodAgent")
    assert "comma_agent/config.json cannot be read (line 3" in registry.not_found("CommaAgent")


@pytest.mark.parametrize("action, detail, question", [
    ("tool.call tool shell", "shell: echo hi; id", "DangerAgent (pid 1) wants to run: echo hi; id"),
    ("tool.call tool delete_file", "delete_file(path='notes.txt')",
     "DangerAgent (pid 1) wants to call delete_file(path='notes.txt')"),
    ("access.setgroup group g", "DangerAgent (pid 1) asks to join group 'g' (members now: none); its members "
     "could read each other's memory and storage", "DangerAgent (pid 1) wants to join group 'g' (members now: "
     "none); its members could read each other's memory and storage"),
    ("fs.delete notes", "delete all 2 version(s), irreversibly",
     "DangerAgent (pid 1) wants to fs.delete notes (delete all 2 version(s), irreversibly)"),
])
def test_the_confirmation_names_the_agent_and_the_exact_action(action, detail, question):
    ev = {"event": "confirm", "cid": 1, "pid": 1, "agent": "DangerAgent", "action": action, "detail": detail,
          "timeout_s": 30}
    assert parse_event(ev, 30).question() == question


def test_clean_drops_step_echoes_repeats_and_the_unfinished_sentence():
    seen: set[str] = set()
    first = clean("Step 1 of 3: The hero is Kael. He sails at dawn.", seen)
    assert first == "The hero is Kael. He sails at dawn."
    second = clean("Step 4 of 3: The hero is Kael.\nDay 1: Departure from Paris\nDay 2: Departure from Paris\n"
                   "He fights a dragon and wins. Then he", seen, cut_off=True)
    assert second == "Day 1: Departure from Paris\n\nHe fights a dragon and wins."
    assert clean("He sails at dawn. The hero is Kael.", seen) == ""  # nothing new: the agent asks again
    assert render({"options": [{"name": "Katz's", "why": "pastrami"}, {"name": "Joe's", "why": "pizza"}]}) == \
        "1. Katz's: pastrami\n2. Joe's: pizza"
    assert describe("currency_converter", {"amount": 100, "from_currency": "USD", "to_currency": "EUR"},
                    {"amount": 93.4143, "currency": "EUR"}) == "100 USD = 93.4143 EUR"
    assert describe("calculator", {"expression": "2 * 16 + 2 * 8"}, {"value": 48.0}) == "2 * 16 + 2 * 8 = 48"


def test_program_of_thought_grammar_admits_only_the_tasks_numbers_first_one_first():
    task = "He buys 2 large pizzas and 2 small pizzas. A large pizza has 16 slices and a small one 8 slices."
    nums = pot.numbers(task)
    assert nums == ["2", "2", "16", "8"] and pot.numbers("1,000 apples and 2.5 kg") == ["1000", "2.5"]
    regex = pot.pattern(nums)
    for good in ("2 * 16 + 2 * 8", "2 + 2 + 16 + 8", "2 * 8 - 16 / 2"):
        assert re.fullmatch(regex, good), good
    for bad in ("16 * 8 + 2 * 2", "2 * 16", "2 * 16 + 2 * 8 + 1", "2 large pizzas", "2*16+2*8"):
        assert not re.fullmatch(regex, bad), bad
    assert re.fullmatch(pot.pattern(pot.numbers("Seventeen times twenty-three?")), "17 * 23")
    assert pot.plain(48.0) == "48" and pot.plain(1 / 3) == "0.333333" and pot.plain(84) == "84"


def test_number_words_become_numerals_and_pronouns_stay_words():
    n = pot.normalise
    assert n("What is forty-five minus nineteen?") == "What is 45 minus 19?"
    assert n("one hundred and five apples, a dozen eggs, two dozen pens") == "105 apples, 12 eggs, 24 pens"
    assert n("a small one has 8 slices; one of them; he gives one to Sam") == \
        "a small one has 8 slices; one of them; he gives 1 to Sam"
    assert n("Twenty-one people") == "21 people" and pot.numbers("25% of 80, and 5 percent") == ["0.25", "80", "0.05"]


def test_the_program_grammar_keeps_counted_pairs_together_and_written_arithmetic_is_taken_as_written():
    task = "A shop sells 3 boxes of 12 eggs and 2 boxes of six eggs. How many eggs in all?"
    assert pot.pairs(task) == {0, 2}
    regex = pot.pattern(pot.numbers(task), together=pot.pairs(task))
    assert re.fullmatch(regex, "3 * 12 + 2 * 6") and not re.fullmatch(regex, "3 * 6 + 2 * 12")
    grouped = pot.pattern(["8", "4", "10", "3"], groups=True)
    assert re.fullmatch(grouped, "(8 + 4) * (10 - 3)") and not re.fullmatch(grouped, "(8 + 4 * (10 - 3)")
    assert re.fullmatch(pot.pattern(["2", "10"]), "2 ** 10")
    assert re.fullmatch(pot.pattern(["172800.0", "10800.0"], ops="+-"), "172800.0 + 10800.0")
    assert not re.fullmatch(pot.pattern(["172800.0", "10800.0"], ops="+-"), "172800.0 * 10800.0")
    assert pot.written("What is (8 + 4) * (10 - 3)?") == "(8 + 4) * (10 - 3)"
    assert pot.written("What is 12 * 15, plus 20?") == ""  # 20 is not in it: the model writes the program
    assert [q for q, _ in pot.shots("A hall has rows of chairs")][-1].startswith("A hall has 10 rows of 12 chairs")
