"""Tracing: a span for every call of every process (recorder.py), bounded per process; views over it
(the ``trace`` control op: ops.py) and export as OpenTelemetry (otel.py, export.py). Import Tracer
from kernel.trace.recorder; this package imports nothing on its own."""
