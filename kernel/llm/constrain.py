"""Constrained decoding: ``response_format`` and ``tools`` of llm.chat as a grammar per sequence.

What a request may ask (OpenAI's shapes):

- ``response_format``: ``{"type": "json_schema", "json_schema": {"name", "schema"}}``,
  ``{"type": "json_object"}`` (any JSON object) or ``{"type": "text"}`` (no constraint);
- ``tools``: ``[{"type": "function", "function": {"name", "description", "parameters"}}]``
  with ``tool_choice``: ``"auto"`` (default: a call or a plain reply), ``"required"``
  (one call of one of the tools), ``{"type": "function", "function": {"name": N}}``
  (a call of N), or ``"none"`` (tools ignored).

The local engine writes a call in SmolLM2's own tool format,
``<tool_call>[{"name": N, "arguments": {...}}]</tool_call>`` (one to ``MAX_CALLS`` calls in the list), after a
system block that lists the tools (``tools_prompt``); ``parse_reply`` turns it into
``tool_calls: [{"name", "arguments"}]``. The grammar is compiled by llguidance (Rust,
CPU, no torch.compile): measured on this 2-core CPU, a mask costs about 0.7 ms to
compute and 0.7 ms to apply per constrained row, against a 90-150 ms decode step
(``bench/agent_tasks.py --mask-bench`` prints it). xgrammar pulls triton on Linux,
outlines-core builds a full DFA index per schema up front (seconds for large
schemas); llguidance computes masks lazily with an Earley parser, with fuel limits on
every step, which is also what keeps a hostile schema from stalling the engine.

Limits (a hostile agent sends the schema): ``MAX_SCHEMA_BYTES`` of JSON per request,
``_limits`` on grammar size, lexer states and per-step work; schema checks and
compilation run on the ``llm-grammar`` thread (``Compiler``), never on the engine or
the kernel's event loop (which only checks the size). A
grammar that runs out of fuel mid-generation fails its own sequence with EINVAL.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import OrderedDict

from kernel.param import CACHE_GRAMMARS, MAX_SCHEMA_BYTES

log = logging.getLogger("aios.engine")

CALL_OPEN, CALL_CLOSE = "<tool_call>[", "]</tool_call>"
COMPACT = {"whitespace_flexible": False}  # no free whitespace: a small model loops on it


class ConstraintError(ValueError):
    """A bad response_format/tools/tool_choice: the caller answers EINVAL with this text."""


def _limits():
    import llguidance

    return llguidance.LLParserLimits(max_grammar_size=200_000, max_lexer_states=50_000,
                                     initial_lexer_fuel=1_000_000, step_lexer_fuel=200_000,
                                     step_max_items=50_000, verbose_errors=False)


# -- request -> grammar (pure; used by the syscall to answer EINVAL early) ---------------------
def _schema_of(response_format: dict | None) -> dict | None:
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        js = response_format.get("json_schema")
        schema = js.get("schema") if isinstance(js, dict) else None
        if not isinstance(schema, dict):
            raise ConstraintError("response_format.json_schema.schema must be a JSON schema object")
        return schema
    raise ConstraintError(f"response_format.type must be text, json_object or json_schema, not {kind!r}")


def tool_functions(tools: list | None) -> list[dict]:
    out = []
    for t in tools or []:
        f = t.get("function") if isinstance(t, dict) else None
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise ConstraintError("each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}")
        params = f.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise ConstraintError(f"tool {f['name']}: parameters must be a JSON schema object")
        out.append({"name": f["name"], "description": str(f.get("description", "")), "parameters": params})
    names = [f["name"] for f in out]
    if len(set(names)) != len(names):
        raise ConstraintError("tool names must be unique")
    return out


def chosen(functions: list[dict], tool_choice) -> tuple[list[dict], str]:
    """(the functions the reply may call, "auto" | "required" | "none")."""
    if not functions or tool_choice == "none":
        return [], "none"
    if tool_choice in (None, "auto"):
        return functions, "auto"
    if tool_choice == "required":
        return functions, "required"
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        hit = [f for f in functions if f["name"] == name]
        if not hit:
            raise ConstraintError(f"tool_choice names {name!r}, which is not one of the tools")
        return hit, "required"
    raise ConstraintError(f"tool_choice must be auto, required, none or a function, not {tool_choice!r}")


def check_size(response_format, tools) -> None:
    n = len(json.dumps([response_format, tools], separators=(",", ":")))
    if n > MAX_SCHEMA_BYTES:
        raise ConstraintError(f"response_format and tools take {n} bytes of JSON; the limit is {MAX_SCHEMA_BYTES}")


def check_schemas(response_format, tools, tool_choice) -> None:
    """Size, shape and JSON-Schema validity (Draft 2020-12 meta-schema) of every schema; ConstraintError."""
    try:
        _check_schemas(response_format, tools, tool_choice)
    except RecursionError:
        raise ConstraintError("schema nested too deeply") from None


def _check_schemas(response_format, tools, tool_choice) -> None:
    import jsonschema

    check_size(response_format, tools)
    schemas = [("response_format", _schema_of(response_format))]
    functions = tool_functions(tools)
    chosen(functions, tool_choice)
    schemas += [(f"tool {f['name']}", f["parameters"]) for f in functions]
    for where, schema in schemas:
        if schema is None:
            continue
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise ConstraintError(f"{where}: invalid JSON schema: {e.message}") from None


SHORT_STRING = 1000  # a tool argument string up to this maxLength is a value, not a document
PLAIN = r"^[^{}<>\n]*$"  # what such a value may hold unless its schema says otherwise
FREE_STRING = 200  # characters of an argument string whose schema sets no maxLength
FREE_ITEMS = 16  # items of an argument array whose schema sets no maxItems
MAX_CALLS = 8  # tool calls in one reply


def plain_values(schema: dict) -> dict:
    """A copy of a tool's parameters as the grammar decodes them: strict, bounded, plain.

    - **Strict**: an object that names its properties admits only those (OpenAI's strict mode does
      the same), unless it says otherwise (``additionalProperties`` or ``patternProperties``): a
      small model otherwise invents arguments (``"temperature"`` in a weather call).
    - **Bounded**: a string without ``maxLength`` takes at most ``FREE_STRING`` characters and an
      array without ``maxItems`` at most ``FREE_ITEMS`` items, so a call that repeats itself
      (``["Quantities:10", "Quantities:10", ...]``) still closes before ``max_new_tokens``; a
      required array without ``minItems`` takes at least one item, and a string item is not empty
      (``[]`` and ``[""]`` were the model's ways out).
    - **Plain**: a small model closes its call inside an argument (``"17*23}}]</tool_call>``) when
      the grammar lets it; arithmetic, units, paths and queries never need ``{}<>`` or a newline.
      A string with its own pattern, format, enum or const, or a long one (file content), is left
      as its schema says.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kind = out.get("type")
    if kind == "string" and not {"enum", "const"} & out.keys():
        out.setdefault("maxLength", FREE_STRING)
        if not {"pattern", "format"} & out.keys() and out["maxLength"] <= SHORT_STRING:
            out["pattern"] = PLAIN
    if kind == "array":
        out.setdefault("maxItems", max(FREE_ITEMS, out.get("minItems", 0)))
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: plain_values(v) for k, v in out["properties"].items()}
        for k in out.get("required") or ():
            v = out["properties"].get(k)
            if isinstance(v, dict) and v.get("type") == "array" and "minItems" not in v:
                v = out["properties"][k] = dict(v, minItems=1)  # a required list is not left empty ...
                item = v.get("items")
                if isinstance(item, dict) and item.get("type") == "string" and "minLength" not in item:
                    v["items"] = dict(item, minLength=1)  # ... nor filled with ""
        if "additionalProperties" not in out and "patternProperties" not in out:
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = plain_values(out["items"])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [plain_values(v) for v in out[key]]
    return out


def grammar(response_format=None, tools=None, tool_choice=None, allow: list[str] | None = None,
            numbers: list | None = None, text: str | None = None, asked: str | None = None
            ) -> tuple[str | None, list[str]]:
    """(llguidance grammar or None when unconstrained, names of the tools it may call).

    A reply calls one to ``MAX_CALLS`` tools (parallel calls, one list) or, with ``auto``, answers
    in text. ``allow`` is the engine's decision for an ``auto`` request (kernel.llm.relevance): the
    names of the tools the reply must call (a ``required`` call of those), or ``[]`` for a text
    reply; None leaves the choice to the model. ``numbers``: the numbers the conversation writes,
    which number arguments are decoded under (kernel.llm.ground); None leaves them free.
    ``text``: the conversation's words (lower case), which name the optional ones it asks for;
    ``asked``: the user's (lower case), which say what a boolean argument is."""
    import llguidance

    from kernel.llm import ground

    schema = _schema_of(response_format)
    all_functions = tool_functions(tools)
    functions, mode = chosen(all_functions, tool_choice)
    if mode == "auto" and allow is not None:
        functions = [f for f in functions if f["name"] in allow]
        mode = "required" if functions else "text"
    if mode == "none":
        if schema is None:
            return None, []
        return llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=COMPACT), []
    params = {}
    for f in functions:
        grounded = f["parameters"] if numbers is None else ground.ground(f["parameters"], numbers, text, asked)
        if grounded is None and mode == "required":
            grounded = f["parameters"]  # the call was demanded: its numbers stay the model's
        if grounded is not None:
            params[f["name"]] = plain_values(grounded)
    if mode == "auto" and not params:
        mode = "text"  # no tool can be called with what the conversation gives
    rules = []
    if mode == "text":
        rules.append("start: reply")
    else:
        call = {"anyOf": [{"type": "object", "additionalProperties": False, "required": ["name", "arguments"],
                           "properties": {"name": {"const": name}, "arguments": args}}
                          for name, args in params.items()], "x-guidance": COMPACT}
        rules += [f"start: {json.dumps(CALL_OPEN)} calls {json.dumps(CALL_CLOSE)}" +
                  ("" if mode == "required" else " | reply"),
                  "calls: call (\",\" call){0,%d}" % (MAX_CALLS - 1),
                  f"call: %json {json.dumps(call)}"]
    if mode in ("auto", "text"):
        if schema is None:
            rules.append(r"reply: TEXT" + "\n" + r"TEXT: /[^<\s](.|\n)*/")
        else:
            rules.append(f"reply: %json {json.dumps(dict(schema, **{'x-guidance': COMPACT}))}")
    return (llguidance.LLMatcher.grammar_from_lark("\n".join(rules) + "\n"),
            [f["name"] for f in all_functions] if mode == "text" else list(params))


# -- prompt and reply in the model's tool format -----------------------------------------------
def signature(f: dict) -> str:
    """``name(arg: type, opt?: type): description``, one line: the grammar enforces the schema,
    so the prompt only has to tell the model what exists (full JSON schemas cost ~100 tokens a
    tool, and a 1,500-token prompt is most of a CPU call)."""
    props = f["parameters"].get("properties", {}) if isinstance(f["parameters"], dict) else {}
    req = set(f["parameters"].get("required", [])) if isinstance(f["parameters"], dict) else set()
    args = ", ".join(f"{k}{'' if k in req else '?'}: {p.get('type', 'value') if isinstance(p, dict) else 'value'}"
                     for k, p in props.items())
    return f"- {f['name']}({args}): {' '.join(f['description'].split())[:200]}"


def tools_prompt(tools: list | None, tool_choice=None) -> str:
    """The system block that shows a local model its tools, and SmolLM2's call format.

    It lists every tool whatever ``tool_choice`` says (the grammar enforces the choice, as
    OpenAI's API does), so an agent's calls with one tool list start with the same tokens
    turn after turn and the prefix cache serves all but the new turn."""
    functions, mode = chosen(tool_functions(tools), tool_choice)
    if mode == "none":
        return ""
    listed = "\n".join(signature(f) for f in tool_functions(tools))
    return (f"You have access to the following tools:\n<tools>\n{listed}\n</tools>\n"
            f"To call a tool, reply with {CALL_OPEN}{{\"name\": \"<tool>\", \"arguments\": {{...}}}}{CALL_CLOSE};"
            f" several calls go in the one list, separated by commas. If no tool is needed, answer in plain text.")


def call_text(calls: list[dict]) -> str:
    """Tool calls as the local model writes them: the grammar's compact JSON between the call tags."""
    body = ",".join(json.dumps({"name": c["name"], "arguments": c.get("arguments", {})}, ensure_ascii=False,
                               separators=(",", ":")) for c in calls)
    return f"{CALL_OPEN}{body}{CALL_CLOSE}"


def as_text(messages: list[dict]) -> list[dict]:
    """llm.chat messages as the local model's chat template takes them, ``{role, content}`` strings.

    An assistant's ``tool_calls`` follow its content in the form the model itself writes them, so a
    history of calls reads to the model like its own replies; a tool message is a ``tool`` turn, and
    call ids (which remote APIs pair calls and results by) have no place in the local prompt."""
    out = []
    for m in messages:
        text = m["content"]
        if m.get("tool_calls"):
            text = f"{text}\n{call_text(m['tool_calls'])}" if text else call_text(m["tool_calls"])
        out.append({"role": m["role"], "content": text})
    return out


def with_tools(messages: list[dict], tools: list | None, tool_choice=None) -> list[dict]:
    """``messages`` with the tools block appended to the system message (one is added if none)."""
    block = tools_prompt(tools, tool_choice)
    if not block:
        return messages
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{block}"}, *messages[1:]]
    return [{"role": "system", "content": block}, *messages]


def parse_reply(text: str) -> dict:
    """Result fields for a reply to a request with tools: tool_calls (possibly empty), text.

    The calls are the complete ones in the list, each once: a reply cut off by ``max_new_tokens``
    keeps the calls it finished, a call repeated word for word (a small model that has made
    its calls starts them over) counts once, and a list that repeated itself to the bound is
    cut back (``_unrepeated``)."""
    s = text.strip()
    if not s.startswith(CALL_OPEN):
        return {"tool_calls": [], "text": text}
    body, pos, calls, seen = s[len(CALL_OPEN):], 0, [], set()
    decoder = json.JSONDecoder()
    while True:
        try:
            c, pos = decoder.raw_decode(body, pos)
        except ValueError:
            break  # the list ends here, or max_new_tokens cut the next call
        key = json.dumps(c, sort_keys=True)
        if isinstance(c, dict) and key not in seen:
            seen.add(key)
            calls.append({"name": c.get("name"), "arguments": _unrepeated(c.get("arguments", {}))})
        if not body.startswith(",", pos):
            break
        pos += 1
    return {"tool_calls": calls, "text": "" if calls else text}


def _unrepeated(v):
    """``v`` with each list that ran to ``FREE_ITEMS`` repeating itself cut back: a small model that
    has listed what was asked repeats it until the bound (llguidance has no ``uniqueItems``). A
    list of strings keeps its distinct items (``["volume", "volume", ...]``); a list of numbers,
    which may repeat a value on purpose, loses only a final run of one value
    (``[85, 90, 88, 91, 91, 91, ...]`` -> ``[85, 90, 88, 91]``)."""
    if isinstance(v, dict):
        return {k: _unrepeated(x) for k, x in v.items()}
    if not isinstance(v, list):
        return v
    if len(v) >= FREE_ITEMS and all(isinstance(x, str) for x in v) and len(set(v)) < len(v):
        return list(dict.fromkeys(v))
    if len(v) >= FREE_ITEMS and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        run = next(i for i in range(len(v) - 1, -1, -1) if i == 0 or v[i - 1] != v[-1])
        if len(v) - run >= 3:
            return v[:run + 1]
    return [_unrepeated(x) for x in v]


def lltokenizer(hf_tokenizer):
    """The llguidance tokenizer of a fast Hugging Face tokenizer (as llguidance.hf does, without
    importing transformers' lazy attributes from this thread)."""
    import copy

    import llguidance

    backend = copy.copy(hf_tokenizer.backend_tokenizer)
    backend.no_padding()
    backend.no_truncation()
    return llguidance.LLTokenizer(backend.to_str(), n_vocab=len(hf_tokenizer), eos_token=hf_tokenizer.eos_token_id)


# -- compilation off the engine thread -----------------------------------------------------------
class Compiler:
    """The ``llm-grammar`` thread: compiles grammars one at a time, never on the engine thread.

    ``submit(job)`` returns at once; the thread calls ``job()``, which compiles with
    ``matcher`` and hands the result on itself. ``tokenizer_fn`` builds the LLTokenizer on
    first use (about a second, once the model has loaded). Compiled matchers are kept (LRU)
    and deep-copied for a grammar seen before: one app's agents ask for the same tools over
    and over. ``matcher`` may also be called directly (kernel.llm.serve, tests).
    """

    def __init__(self, tokenizer_fn):
        self._tokenizer_fn = tokenizer_fn
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()  # guards _cache and _lltok (matcher() may run on any thread)
        self._lltok = None
        self._thread: threading.Thread | None = None

    @property
    def vocab(self) -> int:
        return self.tokenizer().vocab_size

    def tokenizer(self):
        with self._lock:
            if self._lltok is None:
                self._lltok = self._tokenizer_fn()
            return self._lltok

    def submit(self, job) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llm-grammar", daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def stop(self) -> None:
        self._jobs.put(None)

    def matcher(self, grammar_text: str):
        """A fresh LLMatcher for ``grammar_text``; raises ConstraintError."""
        import llguidance

        lltok = self.tokenizer()
        with self._lock:
            hit = self._cache.get(grammar_text)
            if hit is not None:
                self._cache.move_to_end(grammar_text)
                return hit.deep_copy()
        m = llguidance.LLMatcher(lltok, grammar_text, log_level=0, limits=_limits())
        if not m.is_error():
            m.compute_bitmask()  # builds the lexer here, not in the engine's first mask
        if m.is_error():
            raise ConstraintError(f"cannot compile the schema: {m.get_error()}")
        with self._lock:
            self._cache[grammar_text] = m.deep_copy()
            while len(self._cache) > CACHE_GRAMMARS:
                self._cache.popitem(last=False)
        return m

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                log.exception("grammar job failed")
