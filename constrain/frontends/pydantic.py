"""pydantic models and types to JSON Schema (then to the grammar IR).

``pydantic_to_schema`` asks pydantic for its validation-mode JSON Schema and adjusts the
few places where that schema is stricter or looser than what the model accepts from JSON:

* ``uniqueItems`` (emitted for ``set``/``frozenset``) is dropped: pydantic accepts a JSON
  array with repeated items for a set and removes the duplicates.
* A ``oneOf`` with a ``discriminator`` (discriminated unions) stays a ``oneOf``; the JSON
  Schema front door reads the discriminator as requiring the tag property, which pydantic
  requires too, so the branches are provably disjoint.
"""

from __future__ import annotations

from typing import Any

from ..errors import SchemaError
from ..grammar.ir import Grammar
from .json_schema import SchemaReport, json_schema_to_grammar

__all__ = ["pydantic_to_schema", "pydantic_to_grammar"]


def _is_model(obj: Any) -> bool:
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return False
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def pydantic_to_schema(model_or_type: Any) -> dict:
    """JSON Schema (validation mode) of a pydantic model class or any type pydantic can adapt.

    Raises :class:`SchemaError` when pydantic cannot produce a schema for it.
    """
    from pydantic import TypeAdapter
    from pydantic.errors import PydanticInvalidForJsonSchema, PydanticSchemaGenerationError, PydanticUserError

    try:
        if _is_model(model_or_type):
            schema = model_or_type.model_json_schema(mode="validation")
        else:
            schema = TypeAdapter(model_or_type).json_schema(mode="validation")
    except (PydanticInvalidForJsonSchema, PydanticSchemaGenerationError, PydanticUserError) as e:
        raise SchemaError(f"pydantic cannot describe {model_or_type!r} as JSON Schema: {e}", "") from None
    return _adjust(schema)


def _adjust(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "uniqueItems":
                continue
            if k in ("enum", "const", "default", "examples"):
                out[k] = v
            else:
                out[k] = _adjust(v)
        return out
    if isinstance(node, list):
        return [_adjust(v) for v in node]
    return node


def pydantic_to_grammar(
    model_or_type: Any, *, strict: bool = True, whitespace: str | int = "json"
) -> tuple[Grammar, SchemaReport]:
    """Grammar of the JSON texts that validate against ``model_or_type``.

    Same guarantees and errors as :func:`json_schema_to_grammar`.
    """
    return json_schema_to_grammar(pydantic_to_schema(model_or_type), strict=strict, whitespace=whitespace)
