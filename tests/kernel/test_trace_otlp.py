"""--otlp-endpoint: the kernel's spans through the OpenTelemetry SDK's OTLP/HTTP exporter to a receiver.

The receiver is a real OTLP/HTTP server started here on 127.0.0.1: it decodes each POST /v1/traces
body as an ``ExportTraceServiceRequest`` (the protobuf of opentelemetry-proto, what every collector
parses) and answers as a collector does; the client side is the SDK's own exporter, unmocked. When
an OpenTelemetry Collector binary is installed (``otelcol`` or ``otelcol-contrib`` on PATH, or
$AIOS_OTELCOL), the same run goes through it too; otherwise that test is skipped, saying why.

Proves: one trace per agent, ``invoke_agent {agent}`` at its root, ``chat {model}`` and
``execute_tool {tool}`` under it, the GenAI attributes (usage tokens, request model, tool name), the
kernel's own ids (so a traceparent sent to a model server names a span the collector has), and no
content without --trace-content.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import start_kernel

SECRET = "launch code 0000-1234"
SCRIPT = [{"tool": "calculator", "args": {"expression": "6*7"}},
          {"sys": "llm.chat", "args": {"messages": [{"role": "user", "content": SECRET}], "max_new_tokens": 4}}]


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1 (protobuf, optionally gzip)."""

    def __init__(self):
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        self.spans: list[tuple[dict, object]] = []  # (resource attributes, Span protobuf)
        self.cv = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or "protobuf" not in (self.headers.get("Content-Type") or ""):
                    self.send_response(404)
                    self.end_headers()
                    return
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                with receiver.cv:
                    for rs in req.resource_spans:
                        res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
                        for ss in rs.scope_spans:
                            receiver.spans += [(res, s) for s in ss.spans]
                    receiver.cv.notify_all()
                out = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def attrs(span) -> dict:
    out = {}
    for kv in span.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = [x.string_value for x in v.array_value.values] if kind == "array_value" else getattr(v, kind)
    return out


def test_spans_reach_a_real_otlp_receiver_with_genai_names(tmp_path):
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as G

    rx = Receiver()
    try:
        k, _ = start_kernel(tmp_path, otlp_endpoint=rx.url)
        try:
            pid = k.spawn("ToolAgent", json.dumps(SCRIPT))
            assert k.wait(pid, timeout=120)["state"] == "done"
            trace = k.request("trace", timeout=10, pid=pid)
            model = k.stats()["model"]
        finally:
            k.stop()  # the kernel flushes its exporter as it stops
        spans = {s.name: (res, s) for res, s in rx.spans}
    finally:
        rx.stop()
    assert {"invoke_agent ToolAgent", f"chat {model}", "execute_tool calculator", "proc.exit"} <= set(spans)
    res, root = spans["invoke_agent ToolAgent"]
    assert res["service.name"] == "aios" and root.parent_span_id == b""
    assert root.trace_id.hex() == trace["root"]["trace_id"] and root.span_id.hex() == trace["root"]["span_id"]
    for name in (f"chat {model}", "execute_tool calculator", "proc.exit"):
        s = spans[name][1]
        assert s.trace_id == root.trace_id and s.parent_span_id == root.span_id
    chat = attrs(spans[f"chat {model}"][1])
    assert chat[G.GEN_AI_OPERATION_NAME] == "chat" and chat[G.GEN_AI_REQUEST_MODEL] == model
    assert chat[G.GEN_AI_USAGE_INPUT_TOKENS] > 0 and 0 < chat[G.GEN_AI_USAGE_OUTPUT_TOKENS] <= 4
    assert chat["aios.llm.prefill_s"] >= 0 and spans[f"chat {model}"][1].kind == 3  # SPAN_KIND_CLIENT
    tool = attrs(spans["execute_tool calculator"][1])
    assert tool[G.GEN_AI_TOOL_NAME] == "calculator" and tool[G.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert attrs(root)[G.GEN_AI_AGENT_NAME] == "ToolAgent" and attrs(root)[G.GEN_AI_AGENT_ID] == str(pid)
    assert SECRET not in repr([s for _, s in rx.spans])


def _collector() -> str | None:
    return os.environ.get("AIOS_OTELCOL") or shutil.which("otelcol-contrib") or shutil.which("otelcol")


@pytest.mark.skipif(_collector() is None, reason="no OpenTelemetry Collector here: install otelcol or otelcol-contrib "
                    "(https://github.com/open-telemetry/opentelemetry-collector-releases) or set AIOS_OTELCOL")
def test_spans_reach_the_opentelemetry_collector(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "otelcol.yaml"
    cfg.write_text(f"receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{port}\n"
                   "exporters:\n  debug:\n    verbosity: detailed\n"
                   "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n")
    log = tmp_path / "otelcol.log"
    with open(log, "w") as out:
        col = subprocess.Popen([_collector(), "--config", str(cfg)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "Everything is ready" not in log.read_text():
            assert col.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        k, _ = start_kernel(tmp_path, otlp_endpoint=f"http://127.0.0.1:{port}")
        try:
            pid = k.spawn("ToolAgent", json.dumps(SCRIPT))
            assert k.wait(pid, timeout=120)["state"] == "done"
        finally:
            k.stop()
        deadline = time.monotonic() + 30
        while "invoke_agent ToolAgent" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
        text = log.read_text()
        assert "execute_tool calculator" in text and "gen_ai.usage.input_tokens" in text
    finally:
        col.terminate()
        col.wait(10)
