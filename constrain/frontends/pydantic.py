"""pydantic models and types to JSON Schema (then to the grammar IR).

``pydantic_to_schema`` asks pydantic for its validation-mode JSON Schema and adjusts the
few places where that schema is stricter or looser than what the user means:

* A model, dataclass or TypedDict admits only its declared fields: unless its config says
  ``extra="allow"`` (then pydantic writes ``additionalProperties`` itself), its object
  schema gets ``additionalProperties: false``. pydantic's default ``extra="ignore"``
  writes nothing, which would let a model invent keys that validation then drops.

* ``uniqueItems`` (emitted for ``set``/``frozenset``) is dropped: pydantic accepts a JSON
  array with repeated items for a set and removes the duplicates.
* A ``oneOf`` with a ``discriminator`` (discriminated unions) stays a ``oneOf``; the JSON
  Schema front door reads the discriminator as requiring the tag property, which pydantic
  requires too, so the branches are provably disjoint.
"""

from __future__ import annotations

import functools
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
            schema = model_or_type.model_json_schema(mode="validation", schema_generator=_declared_fields_only())
        else:
            schema = TypeAdapter(model_or_type).json_schema(mode="validation", schema_generator=_declared_fields_only())
    except (PydanticInvalidForJsonSchema, PydanticSchemaGenerationError, PydanticUserError) as e:
        raise SchemaError(f"pydantic cannot describe {model_or_type!r} as JSON Schema: {e}", "") from None
    return _adjust(schema)


@functools.cache
def _declared_fields_only() -> Any:
    """pydantic's schema generator, closing every class schema (model, dataclass,
    TypedDict) that leaves ``additionalProperties`` unsaid (made once, on first use)."""
    from pydantic.json_schema import GenerateJsonSchema

    def closed(method: Any) -> Any:
        def wrapper(self: Any, schema: Any) -> Any:
            json_schema = method(self, schema)
            # A RootModel's schema is its root type's: only a schema listing properties is
            # the class's own object.
            if isinstance(json_schema, dict) and "properties" in json_schema:
                json_schema.setdefault("additionalProperties", False)
            return json_schema

        return wrapper

    class DeclaredFieldsOnly(GenerateJsonSchema):
        model_schema = closed(GenerateJsonSchema.model_schema)
        dataclass_schema = closed(GenerateJsonSchema.dataclass_schema)
        typed_dict_schema = closed(GenerateJsonSchema.typed_dict_schema)

    return DeclaredFieldsOnly


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
    model_or_type: Any, *, strict: bool = True, whitespace: str | int = "bounded"
) -> tuple[Grammar, SchemaReport]:
    """Grammar of the JSON texts that validate against ``model_or_type``.

    Same guarantees and errors as :func:`json_schema_to_grammar`.
    """
    return json_schema_to_grammar(pydantic_to_schema(model_or_type), strict=strict, whitespace=whitespace)
