"""One tool of an MCP server, as the tool manager sees it: ``mcp__<server>__<tool>``.

Everything here comes from an untrusted server and is checked before the kernel uses it:
  name         ``[A-Za-z0-9_.-]{1,64}``, else the tool is not exposed
  description  control characters removed, cut to MAX_DESCRIPTION
  inputSchema  an object schema (type "object"), a valid JSON Schema 2020-12, at most
               MAX_SCHEMA_BYTES and MAX_SCHEMA_DEPTH deep, with no ``$ref`` outside itself and no
               ``patternProperties``; else the tool is not exposed. Its ``pattern`` keywords are
               not checked by the kernel (an untrusted regular expression could stall the kernel's
               loop by backtracking); the server checks its own patterns.
  annotations  hints only: a tool is read_only when it says ``readOnlyHint: true`` (and not
               ``destructiveHint: true``); every other tool is irreversible and each call
               needs confirmation, like the shell tool.
Results become ``{"text": ..., "structured": ..., "content": [...]}``; ``isError`` becomes EIO.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from kernel import param
from kernel.protocol.messages import E2BIG, EIO, ENOSYS
from kernel.tools.mcp import config as C
from tools.base import IRREVERSIBLE, READ_ONLY, Tool, ToolError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
McpValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": lambda *a: None})


def full_name(server: str, tool: str) -> str:
    return f"mcp__{server}__{tool}"


def server_of(name: str) -> str | None:
    """``mcp__<server>__<tool>`` -> server (server names never contain "__")."""
    if not name.startswith("mcp__"):
        return None
    server, sep, _ = name[5:].partition("__")
    return server if sep and server else None


def clean_text(text: str, limit: int) -> str:
    return _CONTROL.sub("", text)[:limit]


def check_schema(schema: Any) -> dict:
    """The schema, or ValueError saying why it is not usable."""
    if not isinstance(schema, dict):
        raise ValueError("inputSchema is not an object")
    if len(json.dumps(schema)) > param.MCP_MAX_SCHEMA_BYTES:
        raise ValueError(f"inputSchema is larger than {param.MCP_MAX_SCHEMA_BYTES} bytes")
    if schema.get("type") != "object":
        raise ValueError('inputSchema must have "type": "object"')

    def walk(node, depth):
        if depth > param.MCP_MAX_SCHEMA_DEPTH:
            raise ValueError(f"inputSchema nests deeper than {param.MCP_MAX_SCHEMA_DEPTH}")
        if isinstance(node, dict):
            if "patternProperties" in node:
                raise ValueError("inputSchema uses patternProperties (untrusted regular expressions)")
            for key in ("$ref", "$dynamicRef"):
                if key in node and not (isinstance(node[key], str) and node[key].startswith("#")):
                    raise ValueError(f"inputSchema has a {key} outside itself")
            for v in node.values():
                walk(v, depth + 1)
        elif isinstance(node, list):
            for v in node:
                walk(v, depth + 1)

    walk(schema, 0)
    try:
        McpValidator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ValueError(f"inputSchema is not a valid JSON schema: {e.message[:200]}") from None
    return schema


class McpTool(Tool):
    isolation = "mcp"

    def __init__(self, spec: C.ServerSpec, remote, max_timeout: float):
        """``remote``: an mcp_types.Tool from the server's listing. Raises ValueError if unusable."""
        if not isinstance(remote.name, str) or not C.TOOL_NAME.match(remote.name):
            raise ValueError(f"tool name {str(remote.name)[:80]!r} is not [A-Za-z0-9_.-]{{1,64}}")
        self.server = spec.name
        self.remote_name = remote.name
        self.name = full_name(spec.name, remote.name)
        text = remote.description or remote.title or ""
        self.description = clean_text(f"[MCP {spec.name}] {text}", param.MCP_MAX_DESCRIPTION)
        self.schema = check_schema(remote.input_schema)
        ann = remote.annotations
        self.annotations = {} if ann is None else ann.model_dump(by_alias=True, exclude_none=True)
        read_only = ann is not None and ann.read_only_hint is True and ann.destructive_hint is not True
        self.side_effect = READ_ONLY if read_only else IRREVERSIBLE
        self.parallel = spec.parallel
        self.timeout_s = min(spec.timeout_s, max_timeout)

    def validator(self):
        return McpValidator(self.schema)

    def run(self, args, ctx):  # calls go through the hub, never a worker thread
        raise ToolError(ENOSYS, "MCP tools run through the MCP hub")

    def describe(self) -> dict:
        return {**super().describe(), "server": self.server, "annotations": self.annotations}

    def convert(self, result) -> dict:
        """An mcp_types.CallToolResult as a JSON result; raises ToolError for isError or a too big result."""
        texts, other = [], []
        for block in result.content or []:
            kind = getattr(block, "type", "?")
            if kind == "text":
                texts.append(block.text)
            elif kind in ("image", "audio"):
                other.append({"type": kind, "mimeType": block.mime_type, "bytes": len(block.data) * 3 // 4})
            elif kind == "resource_link":
                other.append({"type": kind, "uri": str(block.uri), "name": block.name})
            elif kind == "resource":
                res = block.resource
                if getattr(res, "text", None) is not None:
                    texts.append(res.text)
                other.append({"type": kind, "uri": str(res.uri), "mimeType": getattr(res, "mime_type", None)})
            else:
                other.append({"type": str(kind)[:32]})
        text = "\n".join(texts)
        if result.is_error:
            raise ToolError(EIO, f"{self.name}: the server reports an error: {clean_text(text, 2000) or '(no text)'}")
        out: dict[str, Any] = {"text": text}
        if result.structured_content is not None:
            out["structured"] = result.structured_content
        if other:
            out["content"] = other
        try:
            size = len(json.dumps(out))
        except (TypeError, ValueError, RecursionError) as e:
            raise ToolError(EIO, f"{self.name}: result is not JSON: {e}") from None
        if size > param.MCP_MAX_RESULT:
            raise ToolError(E2BIG, f"{self.name}: result of {size} bytes exceeds {param.MCP_MAX_RESULT}")
        return out
