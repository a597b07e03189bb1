"""References as the drafts define them: ``$id``-based URIs, ``$anchor``, the official
meta-schemas, ``$dynamicRef`` (2020-12) and ``$recursiveRef`` (2019-09); compared with
``jsonschema`` on sample instances."""

from __future__ import annotations

import json

import jsonschema
import pytest

import constrain
from conftest import byte_vocab

V = byte_vocab()
D2020 = "https://json-schema.org/draft/2020-12/schema"
D2019 = "https://json-schema.org/draft/2019-09/schema"
D7 = "http://json-schema.org/draft-07/schema#"


def accepts(grammar, text: str) -> bool:
    m = grammar.matcher()
    return all(m.advance(b) for b in text.encode()) and m.is_accepting()


def same_as_jsonschema(schema, instances):
    g = constrain.compile(constrain.JsonSchema(schema), V)
    ref = jsonschema.validators.validator_for(schema)(schema)
    for inst in instances:
        assert accepts(g, json.dumps(inst)) == ref.is_valid(inst), (schema, inst)


def test_embedded_ids_and_relative_refs():
    schema = {"$schema": D2020, "$id": "http://example.com/root.json",
              "properties": {"a": {"$ref": "item.json"}, "b": {"$ref": "http://example.com/nested/leaf.json"},
                             "c": {"$ref": "nested/leaf.json#/$defs/n"}},
              "$defs": {"item": {"$id": "item.json", "type": "integer"},
                        "deep": {"$id": "nested/", "$defs": {"leaf": {"$id": "leaf.json", "type": "string",
                                                                     "$defs": {"n": {"type": "null"}}}}}}}
    same_as_jsonschema(schema, [{"a": 1}, {"a": "x"}, {"b": "x"}, {"b": 1}, {"c": None}, {"c": 1}])


def test_anchors_and_urn_ids():
    schema = {"$schema": D2020, "$id": "urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed",
              "properties": {"a": {"$ref": "#num"}, "b": {"$ref": "urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed#/$defs/s"}},
              "$defs": {"n": {"$anchor": "num", "type": "number"}, "s": {"type": "string"}}}
    same_as_jsonschema(schema, [{"a": 1.5}, {"a": "x"}, {"b": "x"}, {"b": 2}])
    draft7 = {"$schema": D7, "properties": {"a": {"$ref": "#foo"}}, "definitions": {"x": {"$id": "#foo", "type": "integer"}}}
    same_as_jsonschema(draft7, [{"a": 1}, {"a": "x"}])


def test_a_sibling_id_of_ref_does_not_change_the_base_before_2019():
    schema = {"$schema": D7, "$id": "http://localhost:1234/sibling_id/base/",
              "definitions": {"foo": {"$id": "http://localhost:1234/sibling_id/foo.json", "type": "string"},
                              "base_foo": {"$id": "foo.json", "type": "number"}},
              "allOf": [{"$id": "http://localhost:1234/sibling_id/", "$ref": "foo.json"}]}
    same_as_jsonschema(schema, [1, "a"])


def test_a_ref_to_a_draft_meta_schema_resolves_offline():
    schema = {"$schema": D7, "properties": {"s": {"$ref": "http://json-schema.org/draft-07/schema#/definitions/nonNegativeInteger"}}}
    same_as_jsonschema(schema, [{"s": 3}, {"s": -1}, {"s": "x"}])
    schema = {"$schema": D2020, "properties": {"t": {"$ref": "https://json-schema.org/draft/2020-12/meta/validation#/$defs/simpleTypes"}}}
    same_as_jsonschema(schema, [{"t": "string"}, {"t": "strin"}])


def test_refs_outside_the_document_say_what_is_missing():
    with pytest.raises(constrain.SchemaError, match="not available offline"):
        constrain.compile(constrain.JsonSchema({"$ref": "http://localhost:1234/integer.json"}), V)
    with pytest.raises(constrain.SchemaError, match="does not resolve"):
        constrain.compile(constrain.JsonSchema({"$ref": "#/$defs/missing"}), V)


def test_dynamic_ref_takes_the_outermost_dynamic_anchor():
    # A generic list whose items the root overrides through $dynamicAnchor.
    schema = {"$schema": D2020, "$id": "https://example.com/strings",
              "$ref": "list", "$defs": {
                  "items": {"$dynamicAnchor": "item", "type": "string"},
                  "list": {"$id": "list", "type": "array", "items": {"$dynamicRef": "#item"},
                           "$defs": {"default": {"$dynamicAnchor": "item"}}}}}
    same_as_jsonschema(schema, [["a", "b"], ["a", 1], []])
    alone = {"$schema": D2020, "$id": "https://example.com/tree", "$dynamicAnchor": "node", "type": "object",
             "properties": {"kids": {"type": "array", "items": {"$dynamicRef": "#node"}}, "v": {"type": "integer"}}}
    same_as_jsonschema(alone, [{"kids": [{"v": 1}]}, {"kids": [{"v": "x"}]}])


def test_recursive_ref():
    schema = {"$schema": D2019, "$id": "http://example.com/tree.json", "$recursiveAnchor": True,
              "type": "object", "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$recursiveRef": "#"}}}}
    same_as_jsonschema(schema, [{"kids": [{"v": 1, "kids": []}]}, {"kids": [{"v": "x"}]}])
    nested = {"$schema": D2019, "$id": "http://localhost:4242/schema.json",
              "$defs": {"myobject": {"$id": "myobject.json", "$recursiveAnchor": True,
                                     "anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"$recursiveRef": "#"}}]}},
              "anyOf": [{"type": "integer"}, {"$ref": "#/$defs/myobject"}]}
    same_as_jsonschema(nested, [1, "a", {"foo": "a"}, {"foo": 1}, {"foo": {"bar": 1}}, {"foo": {"bar": "x"}}])
