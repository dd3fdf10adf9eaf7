"""Schemas and tool definitions shared by the constrained-decoding tests."""

PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age", "city"],
          "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0},
                         "city": {"enum": ["Paris", "London", "Rome"]}}}
FMT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
CALC = {"type": "function", "function": {
    "name": "calculator", "description": "Evaluate an arithmetic expression.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["expression"],
                   "properties": {"expression": {"type": "string", "maxLength": 60}}}}}
CONVERT = {"type": "function", "function": {
    "name": "unit_converter", "description": "Convert a value between units.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["value", "from_unit", "to_unit"],
                   "properties": {"value": {"type": "number"}, "from_unit": {"type": "string", "maxLength": 12},
                                  "to_unit": {"type": "string", "maxLength": 12}}}}}
TOOL_SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (CALC, CONVERT)}
