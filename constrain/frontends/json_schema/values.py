"""JSON values as JSON Schema sees them: types, equality, canonical keys."""

from __future__ import annotations

import json
from typing import Any

from .number_ranges import to_decimal

ALL_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")


def canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


_dumps_str = json.JSONEncoder(ensure_ascii=False).encode  # canon() of a string, without its setup


def ordered(value: Any) -> str:
    """A key for a schema or value that keeps its objects' key order: two schemas that
    list the same properties in different orders compile to different rules."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def value_key(value: Any) -> str:
    """Key under which JSON Schema equality holds (1 == 1.0, True != 1)."""
    if isinstance(value, str):
        return _dumps_str(value)
    return canon(_numbers_normalized(value))


def _numbers_normalized(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return {"$num": str(to_decimal(v).normalize())}
    if isinstance(v, list):
        return [_numbers_normalized(x) for x in v]
    if isinstance(v, dict):
        return {k: _numbers_normalized(x) for k, x in v.items()}
    return v


def json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def is_integral(v: Any, draft: int) -> bool:
    if isinstance(v, int):
        return True
    return draft >= 6 and isinstance(v, float) and v.is_integer()


def enum_types(values: list[Any], draft: int) -> set[str]:
    out: set[str] = set()
    for v in values:
        t = json_type(v)
        out.add(t)
        if t == "number" and is_integral(v, draft):
            out.add("integer")
    return out
