"""A small real HTTP server for the online tools' tests: ``python tests/web_server.py``.

Prints its port on the first stdout line, then serves until killed:

  /w/api.php      MediaWiki-shaped search+extracts JSON (generator=search)
  /arxiv/query    an arXiv-shaped Atom feed
  /bing/search    Bing-shaped JSON; 401 unless the Ocp-Apim-Subscription-Key header is "k1"
  /wolfram/result a plain-text short answer
  /fail           HTTP 500
  /slow           answers after 30 s (for timeouts)
"""

import json
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <entry><id>http://arxiv.org/abs/2403.16971v1</id><published>2024-03-25T17:32:23Z</published>
    <title>AIOS: LLM Agent Operating
      System</title><summary>An operating system for {q} agents.</summary>
    <author><name>Kai Mei</name></author><author><name>Yongfeng Zhang</name></author></entry>
</feed>"""


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/w/api.php":
            if q.get("gsrsearch") == "nothing-matches":
                return self.send(200, json.dumps({"batchcomplete": ""}))
            page = {"pageid": 1, "title": q.get("gsrsearch", "").title(), "extract": f"{q.get('gsrsearch')} is a test."}
            return self.send(200, json.dumps({"query": {"pages": {"1": page}}}))
        if url.path == "/arxiv/query":
            return self.send(200, ATOM.replace("{q}", q.get("search_query", "")), "application/atom+xml")
        if url.path == "/bing/search":
            if self.headers.get("Ocp-Apim-Subscription-Key") != "k1":
                return self.send(401, json.dumps({"error": "bad key"}))
            hits = [{"name": f"hit {i}", "url": f"http://example.test/{i}", "snippet": q.get("q", "")}
                    for i in range(int(q.get("count", 3)))]
            return self.send(200, json.dumps({"webPages": {"value": hits}}))
        if url.path == "/wolfram/result":
            return self.send(200, f"answer to {q.get('i')}", "text/plain")
        if url.path == "/slow":
            time.sleep(30)
            return self.send(200, "{}")
        return self.send(500, "boom", "text/plain")


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
