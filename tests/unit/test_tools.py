"""The tools of tools/ on their own (in this process, no kernel): calculator,
conversions, the workspace file tools and their confinement, search_docs,
and the online tools against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from tools import registry
from tools.base import IRREVERSIBLE, WRITES, ToolContext, ToolError
from tools.calculator import evaluate

TOOLS = {name: tool for name, (tool, _) in registry.discover().items()}


def ctx(ws, **kw) -> ToolContext:
    return ToolContext(agent="T", pid=1, workspace=str(ws), deadline=time.monotonic() + 10, **kw)


def run(name, args, c):
    return TOOLS[name].run(args, c)


def err(name, args, c) -> ToolError:
    with pytest.raises(ToolError) as e:
        run(name, args, c)
    return e.value


# -- calculator ---------------------------------------------------------------------------
@pytest.mark.parametrize("expr,value", [("2*16 + 2*8", 48), ("2^10", 1024), ("sqrt(16) + abs(-2)", 6),
                                        ("7 // 2 + 7 % 2", 4), ("round(pi, 2)", 3.14), ("-(3 - 5) * 1.5", 3)])
def test_calculator_values(expr, value):
    assert evaluate(expr) == value


@pytest.mark.parametrize("expr,value", [
    ("seventeen times twenty-three", 391), ("twelve plus thirty", 42), ("one hundred divided by four", 25),
    ("forty-five minus nineteen", 26), ("6 multiplied by 7 times eight", 336),
    ("three thousand two hundred and one", 3201),
    ("2.5 thousand + 1", 2501), ("2 to the power of 10", 1024), ("five squared", 25), ("12 x 15 + 20", 200),
    ("25% of 80, times 3", 60), ("twenty-five percent of eighty", 20), ("1,000 - 387", 613), ("gcd(12,120)", 12),
    ("7 % 2", 1), ("sqrt(16) times 2", 8)])
def test_calculator_reads_english(expr, value):
    """A small model copies a task's words into the expression: number and operator words are read."""
    assert evaluate(expr) == value


@pytest.mark.parametrize("expr,needle", [
    ("What is 17 times 23?", "cannot read 'what'"), ("seventeen times __import__('os')", "cannot read"),
    ("one hundred and one dalmatians", "cannot read 'dalmatians'"),
    ("__import__('os')", "unknown function"), ("__import__('os').system('true')", "unsupported"), ("(1).__class__", "unsupported syntax"),
    ("[x for x in range(9)]", "unsupported"), ("lambda: 1", "unsupported"), ("9**9**9", "too large"),
    ("2**100000", "too large"), ("1/0", "division by zero"), ("factorial(10000)", "factorial"),
    ("1e308 * 10", "finite"), ("open('x')", "unknown function"), ("'a' * 3", "not a number")])
def test_calculator_refuses(expr, needle):
    with pytest.raises(ToolError) as e:
        evaluate(expr)
    assert needle in e.value.message and e.value.code == "EINVAL"


# -- conversions ----------------------------------------------------------------------------
def test_unit_and_currency_conversion(tmp_path):
    c = ctx(tmp_path)
    assert run("unit_converter", {"value": 5, "from_unit": "km", "to_unit": "mi"}, c)["value"] == pytest.approx(3.10686)
    assert run("unit_converter", {"value": 100, "from_unit": "C", "to_unit": "F"}, c)["value"] == pytest.approx(212)
    assert "cannot convert length" in err("unit_converter", {"value": 1, "from_unit": "m", "to_unit": "kg"}, c).message
    out = run("currency_converter", {"amount": 100, "from_currency": "usd", "to_currency": "euro"}, c)
    assert out["currency"] == "EUR" and 90 < out["amount"] < 96 and out["rates_date"] == "2024-06-28"
    assert "unknown currency" in err("currency_converter", {"amount": 1, "from_currency": "XYZ",
                                                            "to_currency": "EUR"}, c).message


# -- workspace confinement --------------------------------------------------------------------
@pytest.fixture
def ws(tmp_path):
    """A workspace with a file, plus a secret just outside it and links pointing out."""
    w = tmp_path / "workspaces" / "T"
    (w / "sub").mkdir(parents=True)
    (w / "a.txt").write_text("alpha")
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir" / "x.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", w / "link_out")
    os.symlink(tmp_path / "outdir", w / "dir_out")
    os.symlink("a.txt", w / "link_in")
    return w


@pytest.mark.parametrize("path", ["../secret.txt", "sub/../../secret.txt", "/etc/passwd", "~/x", "..",
                                  "link_out", "dir_out/x.txt", "link_in"])
def test_read_outside_workspace_refused(ws, path):
    e = err("read_file", {"path": path}, ctx(ws))
    assert e.code == "EPERM", e.message


@pytest.mark.parametrize("path", ["../evil.txt", "/tmp/evil.txt", "dir_out/evil.txt", "sub/../../evil.txt"])
def test_write_outside_workspace_refused(ws, path):
    assert err("write_file", {"path": path, "content": "x"}, ctx(ws)).code == "EPERM"
    assert not (ws.parent.parent / "evil.txt").exists() and not (ws.parent.parent / "outdir" / "evil.txt").exists()


def test_delete_and_list_do_not_follow_links(ws):
    c = ctx(ws, approved=IRREVERSIBLE)
    run("delete_file", {"path": "link_out"}, c)  # removes the link itself
    assert (ws.parent.parent / "secret.txt").read_text() == "top secret"
    assert err("list_files", {"path": "dir_out"}, c).code == "EPERM"
    assert err("delete_file", {"path": "../secret.txt"}, c).code == "EPERM"
    names = {e["name"]: e["type"] for e in run("list_files", {}, c)["entries"]}
    assert names["dir_out"] == "link" and names["a.txt"] == "file" and "link_out" not in names


def test_fifo_is_refused_without_blocking(ws):
    os.mkfifo(ws / "pipe")
    t0 = time.monotonic()
    assert "not a regular file" in err("read_file", {"path": "pipe"}, ctx(ws)).message
    assert time.monotonic() - t0 < 1


def test_write_read_append_and_overwrite_rules(ws):
    c = ctx(ws, approved=WRITES)
    assert run("write_file", {"path": "d/new.txt", "content": "one"}, c)["replaced"] is False
    run("write_file", {"path": "d/new.txt", "content": " two", "append": True}, c)
    assert run("read_file", {"path": "d/new.txt"}, c)["content"] == "one two"
    # Replacing is irreversible: the call is classed so, and without that approval it is refused.
    assert TOOLS["write_file"].effect({"path": "d/new.txt", "content": "x"}, c) == IRREVERSIBLE
    assert TOOLS["write_file"].effect({"path": "d/other.txt", "content": "x"}, c) == WRITES
    assert err("write_file", {"path": "d/new.txt", "content": "x"}, c).code == "EEXIST"
    run("write_file", {"path": "d/new.txt", "content": "three"}, ctx(ws, approved=IRREVERSIBLE))
    assert (ws / "d" / "new.txt").read_text() == "three"
    assert not [p for p in (ws / "d").iterdir() if p.name.endswith(".tmp")]


def test_workspace_cap(ws):
    c = ctx(ws, workspace_max_bytes=100)
    run("write_file", {"path": "b.txt", "content": "x" * 50}, c)
    assert err("write_file", {"path": "c.txt", "content": "x" * 60}, c).code == "EDQUOT"


def test_search_docs_stays_inside(ws, tmp_path):
    (ws / "sub" / "notes.md").write_text("the treasure map\nnothing here\n")
    (tmp_path / "outdir" / "x.txt").write_text("treasure outside")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.txt").write_text("a guide to the treasure island")
    out = run("search_docs", {"query": "treasure map"}, ctx(ws, docs_dirs=[str(docs)]))
    files = [r["file"] for r in out["results"]]
    assert files[0] == "workspace:sub/notes.md" and "docs:guide.txt" in files
    assert not any("outside" in r["text"] for r in out["results"])  # dir_out is a link: not walked


# -- online tools: real HTTP against a local server ----------------------------------------------
@pytest.fixture(scope="module")
def web():
    p = subprocess.Popen([sys.executable, str(ROOT / "tests" / "web_server.py")], stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline())
    yield f"http://127.0.0.1:{port}"
    p.kill()
    p.wait()


def test_online_tools_against_local_server(web, tmp_path, monkeypatch):
    c = ctx(tmp_path)
    monkeypatch.setenv("AIOS_WIKIPEDIA_API", f"{web}/w/api.php")
    monkeypatch.setenv("AIOS_ARXIV_API", f"{web}/arxiv/query")
    monkeypatch.setenv("AIOS_BING_ENDPOINT", f"{web}/bing/search")
    monkeypatch.setenv("AIOS_WOLFRAM_ENDPOINT", f"{web}/wolfram/result")
    for k in ("BING_SEARCH_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CSE_ID", "WOLFRAM_ALPHA_APPID"):
        monkeypatch.delenv(k, raising=False)
    assert run("wikipedia", {"query": "paris"}, c) == {"query": "paris", "found": True, "title": "Paris",
                                                       "text": "paris is a test."}
    assert run("wikipedia", {"query": "nothing-matches"}, c)["found"] is False
    paper = run("arxiv", {"query": "llm"}, c)["papers"][0]
    assert paper["title"] == "AIOS: LLM Agent Operating System" and paper["authors"][0] == "Kai Mei"
    assert "not configured" in err("web_search", {"query": "x"}, c).message
    assert "not configured" in err("wolfram_alpha", {"query": "x"}, c).message
    monkeypatch.setenv("BING_SEARCH_API_KEY", "wrong")
    assert "HTTP 401" in err("web_search", {"query": "x"}, c).message
    monkeypatch.setenv("BING_SEARCH_API_KEY", "k1")
    out = run("web_search", {"query": "aios", "count": 2}, c)
    assert out["engine"] == "bing" and [h["snippet"] for h in out["results"]] == ["aios", "aios"]
    monkeypatch.setenv("WOLFRAM_ALPHA_APPID", "id")
    assert run("wolfram_alpha", {"query": "2+2"}, c)["answer"] == "answer to 2+2"
    monkeypatch.setenv("AIOS_WIKIPEDIA_API", f"{web}/fail")
    assert "HTTP 500" in err("wikipedia", {"query": "x"}, c).message


def test_online_tool_offline_message(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AIOS_WIKIPEDIA_API", f"http://127.0.0.1:{port}/w/api.php")
    e = err("wikipedia", {"query": "x"}, ctx(tmp_path))
    assert e.code == "EIO" and "cannot reach 127.0.0.1" in e.message and "offline" in e.message


def test_every_tool_declares_itself():
    for name, tool in TOOLS.items():
        d = tool.describe()
        assert d["name"] == name and d["description"] and d["side_effect"] in ("read_only", "writes", "irreversible")
        assert d["parallel"] >= 1 and d["schema"]["type"] == "object"
    assert TOOLS["shell"].side_effect == IRREVERSIBLE and TOOLS["shell"].isolation == "process"
    assert TOOLS["delete_file"].side_effect == IRREVERSIBLE
    assert all(TOOLS[n].isolation == "process" for n in ("wikipedia", "arxiv", "web_search", "wolfram_alpha"))
