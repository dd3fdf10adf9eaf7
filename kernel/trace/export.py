"""Exporter: finished spans out of the kernel, on a thread of their own.

``--trace-file PATH``: one span per line, OTLP/JSON field names (kernel/trace/otel.py), the file
created 0600 (traces are the user's) and appended to. ``--otlp-endpoint URL``: OTLP over HTTP
(protobuf) to a collector, Jaeger, Phoenix, Langfuse...: the OpenTelemetry SDK's
BatchSpanProcessor and OTLPSpanExporter do the batching, retries and encoding; a URL without a
path gets ``/v1/traces``; the usual OTEL_EXPORTER_OTLP_HEADERS etc. apply. The resource is
``service.name=aios``; each user-started agent is one trace (its children under its spawns).

Never on the loop: ``put`` appends a finished span to a bounded queue (TRACE_EXPORT_QUEUE; beyond,
the span is dropped and counted) and returns; the ``trace-export`` thread converts and writes.
A collector that is down costs the SDK's own bounded queue and retries, not the kernel's loop.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
from urllib.parse import urlsplit

from kernel import __version__
from kernel.param import TRACE_EXPORT_QUEUE
from kernel.trace import otel

log = logging.getLogger("aios.kernel")


def endpoint_url(url: str) -> str:
    """``http://host:4318`` -> ``http://host:4318/v1/traces`` (a URL with a path is taken as it is)."""
    return url if urlsplit(url).path not in ("", "/") else url.rstrip("/") + "/v1/traces"


class Exporter:
    def __init__(self, config):
        self.path = config.trace.file or None
        self.endpoint = endpoint_url(config.trace.otlp_endpoint) if config.trace.otlp_endpoint else None
        self.content = bool(config.trace.content)
        self._cv = threading.Condition()  # guards _queue, _stopping
        self._queue: collections.deque = collections.deque()
        self._stopping = False
        self.exported = 0  # spans written/handed to the SDK (exporter thread)
        self.dropped = 0  # spans refused by a full queue
        self._file = None
        self._processor = None
        self._thread = threading.Thread(target=self._run, name="trace-export", daemon=True)

    def start(self, llm: dict) -> None:
        if self.path:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        if self.endpoint:
            self._processor, self._resource, self._scope = _sdk(self.endpoint, llm)
        self._thread.start()
        log.info("tracing: exporting spans to %s", " and ".join(x for x in (self.path, self.endpoint) if x))

    def put(self, span) -> None:
        """Any thread (tracer lock held): queue a finished span; never blocks."""
        with self._cv:
            if len(self._queue) >= TRACE_EXPORT_QUEUE:
                self.dropped += 1
                return
            self._queue.append(span)
            if len(self._queue) == 1:
                self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._processor is not None:
            try:
                self._processor.shutdown()  # flushes what the SDK holds
            except Exception:
                log.exception("tracing: OTLP exporter shutdown")
        if self._file is not None:
            self._file.close()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                batch = list(self._queue)
                self._queue.clear()
                stopping = self._stopping
            for span in batch:
                try:
                    self._export(span)
                    self.exported += 1
                except Exception:
                    log.exception("tracing: exporting a span failed")
            if self._file is not None and batch:
                self._file.flush()
            if stopping:
                return

    def _export(self, span) -> None:
        if self._file is not None:
            self._file.write(json.dumps(otel.otlp_json(span, self.content), ensure_ascii=False) + "\n")
        if self._processor is not None:
            self._processor.on_end(_readable(span, self.content, self._resource, self._scope))


def _sdk(endpoint: str, llm: dict):
    """The OpenTelemetry SDK's batch processor over its OTLP/HTTP exporter (imported only when used)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    resource = Resource.create({"service.name": "aios", "service.version": __version__,
                                "service.instance.id": str(os.getpid()), "aios.model": llm.get("model", "")})
    return (BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)), resource,
            InstrumentationScope("aios.kernel.trace", __version__))


def _readable(span, content: bool, resource, scope):
    """Our finished span as the SDK's ReadableSpan, with our own ids (so the ``traceparent`` sent to
    a remote LLM server names the very span the collector receives)."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    flags = TraceFlags(TraceFlags.SAMPLED)
    name, kind = otel.name_and_kind(span)
    parent = SpanContext(span.trace_id, span.parent_id, is_remote=False, trace_flags=flags) if span.parent_id else None
    return ReadableSpan(
        name=name,
        context=SpanContext(span.trace_id, span.span_id, is_remote=False, trace_flags=flags),
        parent=parent,
        resource=resource, attributes=otel.attributes(span, content),
        events=[Event(n, a or {}, timestamp=otel.ns(t)) for t, n, a in otel.events(span)],
        kind={"INTERNAL": SpanKind.INTERNAL, "SERVER": SpanKind.SERVER, "CLIENT": SpanKind.CLIENT}[kind],
        status=Status(StatusCode.ERROR, span.error) if span.error else Status(StatusCode.UNSET),
        start_time=otel.ns(span.start), end_time=otel.ns(span.end or span.start), instrumentation_scope=scope)
