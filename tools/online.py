"""Online tools of the original AIOS, as real HTTP clients: wikipedia, arxiv,
web_search (Bing or Google Programmable Search, by API key), wolfram_alpha.

Endpoints can be moved (a mirror, a proxy, a test server) with environment
variables of the kernel process: AIOS_WIKIPEDIA_API, AIOS_ARXIV_API,
AIOS_BING_ENDPOINT, AIOS_GOOGLE_ENDPOINT, AIOS_WOLFRAM_ENDPOINT. Keys:
BING_SEARCH_API_KEY; GOOGLE_API_KEY + GOOGLE_CSE_ID; WOLFRAM_ALPHA_APPID.
Offline or unconfigured, a call fails with a message that says which.
All run in child processes (isolation "process"): a DNS lookup can hang.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from kernel.protocol.messages import EIO, ENOSYS
from tools import _http
from tools.base import READ_ONLY, Tool, ToolError, obj_schema

QUERY = {"type": "string", "minLength": 1, "maxLength": 300}
COUNT = {"type": "integer", "minimum": 1, "maximum": 10}


def _timeout(ctx, cap: float) -> float:
    return max(0.5, min(cap, ctx.remaining() - 0.5))


class _Online(Tool):
    side_effect = READ_ONLY
    parallel = 4
    timeout_s = 15.0
    isolation = "process"


class Wikipedia(_Online):
    name = "wikipedia"
    keywords = ("wikipedia", "who", "encyclopedia", "history", "biography", "born")
    description = "Look a topic up on Wikipedia; returns the intro of the best-matching article. Args: query."
    schema = obj_schema(["query"], query=QUERY, sentences={"type": "integer", "minimum": 1, "maximum": 20})

    def run(self, args, ctx):
        api = os.environ.get("AIOS_WIKIPEDIA_API", "https://en.wikipedia.org/w/api.php")
        data = _http.get_json(self.name, api, {
            "action": "query", "format": "json", "generator": "search", "gsrsearch": args["query"],
            "gsrlimit": 1, "prop": "extracts", "exintro": 1, "explaintext": 1,
            "exsentences": args.get("sentences", 5), "redirects": 1}, timeout=_timeout(ctx, 10))
        pages = (data.get("query") or {}).get("pages") or {}
        if not pages:
            return {"query": args["query"], "found": False, "text": f"No Wikipedia article matches {args['query']!r}."}
        page = next(iter(pages.values()))
        return {"query": args["query"], "found": True, "title": page.get("title"),
                "text": (page.get("extract") or "").strip()[:4000]}


ATOM = "{http://www.w3.org/2005/Atom}"


class Arxiv(_Online):
    name = "arxiv"
    keywords = ("arxiv", "paper", "papers", "research", "preprint")
    description = "Search arXiv papers; returns titles, authors, dates and abstracts. Args: query, max_results."
    schema = obj_schema(["query"], query=QUERY, max_results=COUNT)

    def run(self, args, ctx):
        api = os.environ.get("AIOS_ARXIV_API", "https://export.arxiv.org/api/query")
        body = _http.get(self.name, api, {"search_query": f"all:{args['query']}", "start": 0,
                                          "max_results": args.get("max_results", 3)}, timeout=_timeout(ctx, 12))
        if b"<!DOCTYPE" in body[:2048] or b"<!ENTITY" in body:
            raise ToolError(EIO, "arxiv: refusing an answer with a DTD")  # no entity expansion tricks
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            raise ToolError(EIO, f"arxiv: the answer is not valid Atom XML ({e})") from None
        papers = []
        for entry in root.iter(f"{ATOM}entry"):
            def text(tag):
                el = entry.find(f"{ATOM}{tag}")
                return " ".join((el.text or "").split()) if el is not None else ""
            papers.append({"title": text("title"), "published": text("published")[:10], "id": text("id"),
                           "authors": [" ".join((a.findtext(f"{ATOM}name") or "").split())
                                       for a in entry.findall(f"{ATOM}author")][:10],
                           "summary": text("summary")[:1500]})
        return {"query": args["query"], "papers": papers}


class WebSearch(_Online):
    name = "web_search"
    keywords = ("web", "internet", "online", "news", "latest", "google", "bing")
    description = "Search the web (Bing or Google, needs an API key); returns titles, links and snippets. Args: query."
    schema = obj_schema(["query"], query=QUERY, count=COUNT)

    def run(self, args, ctx):
        n = args.get("count", 5)
        if os.environ.get("BING_SEARCH_API_KEY"):
            url = os.environ.get("AIOS_BING_ENDPOINT", "https://api.bing.microsoft.com/v7.0/search")
            data = _http.get_json(self.name, url, {"q": args["query"], "count": n},
                                  headers={"Ocp-Apim-Subscription-Key": os.environ["BING_SEARCH_API_KEY"]},
                                  timeout=_timeout(ctx, 10))
            items = ((data.get("webPages") or {}).get("value") or [])[:n]
            hits = [{"title": i.get("name"), "url": i.get("url"), "snippet": i.get("snippet")} for i in items]
            return {"query": args["query"], "engine": "bing", "results": hits}
        if os.environ.get("GOOGLE_API_KEY") and os.environ.get("GOOGLE_CSE_ID"):
            url = os.environ.get("AIOS_GOOGLE_ENDPOINT", "https://www.googleapis.com/customsearch/v1")
            data = _http.get_json(self.name, url, {"q": args["query"], "num": n, "key": os.environ["GOOGLE_API_KEY"],
                                                   "cx": os.environ["GOOGLE_CSE_ID"]}, timeout=_timeout(ctx, 10))
            hits = [{"title": i.get("title"), "url": i.get("link"), "snippet": i.get("snippet")}
                    for i in (data.get("items") or [])[:n]]
            return {"query": args["query"], "engine": "google", "results": hits}
        raise ToolError(ENOSYS, "web_search is not configured: set BING_SEARCH_API_KEY, or GOOGLE_API_KEY and "
                                  "GOOGLE_CSE_ID, in the kernel's environment")


class WolframAlpha(_Online):
    name = "wolfram_alpha"
    keywords = ("wolfram", "solve", "equation", "integral", "derivative")
    description = "Ask Wolfram|Alpha a factual or math question; returns a short answer (needs WOLFRAM_ALPHA_APPID)."
    schema = obj_schema(["query"], query=QUERY)

    def run(self, args, ctx):
        appid = os.environ.get("WOLFRAM_ALPHA_APPID")
        if not appid:
            raise ToolError(ENOSYS, "wolfram_alpha is not configured: set WOLFRAM_ALPHA_APPID in the kernel's "
                                      "environment")
        url = os.environ.get("AIOS_WOLFRAM_ENDPOINT", "https://api.wolframalpha.com/v1/result")
        body = _http.get(self.name, url, {"appid": appid, "i": args["query"]}, timeout=_timeout(ctx, 10))
        return {"query": args["query"], "answer": body.decode("utf-8", errors="replace")[:2000]}


TOOLS = [Wikipedia(), Arxiv(), WebSearch(), WolframAlpha()]
