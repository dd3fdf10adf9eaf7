"""The one result shape: every agent's result has ``answer``, the plain text a person reads.

An agent's ``run(task)`` may return anything JSON can carry (proc.exit's ``result``); the
kernel keeps that value as it is (``result`` in the process table: the SDK's proc.wait and
the kernel's tests read it back unchanged) and derives from it the ``answer``, always a
string:

    "48"                                   -> answer "48"
    {"answer": "5 km is 3.10686 miles.", ...} -> its "answer" (a non-string one as JSON)
    {"final_answer": ..} / {"output": ..} / {"text": ..} / {"result": ..}
                                           -> that field, when no "answer" is there
    None                                   -> ""
    42, true, [1, 2], {"x": 1}             -> its JSON text: 42, true, [1, 2], {"x": 1}

``record(value)`` is the result as a record for ``--json`` and ``-o json``: always an object
with ``answer`` first (a string result becomes ``{"answer": text}``, a dict keeps its other
fields, any other value is kept under ``value``), or null when the agent reported none.
So in JSON ``answer`` is always a string and ``result`` always an object or null.

Light module (json only): the front and the kernel import it.
"""

from __future__ import annotations

import json
from typing import Any

ANSWER_KEYS = ("answer", "final_answer", "output", "text", "result")  # where a dict's answer is looked for


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def answer_of(value: Any) -> str:
    """The plain answer of an agent's result (see the module docstring); "" when there is none."""
    if isinstance(value, dict):
        for key in ANSWER_KEYS:
            if key in value and value[key] is not None:
                return _text(value[key])
    return _text(value)


def record(value: Any, reported: bool = True) -> dict | None:
    """The result as a JSON object with ``answer`` first; None when nothing was reported."""
    if not reported:
        return None
    if isinstance(value, dict):
        return {"answer": answer_of(value), **{k: v for k, v in value.items() if k != "answer"}}
    if isinstance(value, str) or value is None:
        return {"answer": _text(value)}
    return {"answer": answer_of(value), "value": value}
