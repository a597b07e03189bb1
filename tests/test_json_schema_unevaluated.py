"""``unevaluatedProperties`` / ``unevaluatedItems`` through allOf, anyOf, oneOf,
if/then/else, $ref and dependentSchemas, compared with ``jsonschema`` on every small
object or array over a pool: the grammar accepts exactly what the validator does, or (where
which branches validate is ambiguous) a subset of it, never more."""

from __future__ import annotations

import itertools
import json

import jsonschema
import pytest

import constrain
from conftest import byte_vocab

V = byte_vocab()
URI = {2020: "https://json-schema.org/draft/2020-12/schema", 2019: "https://json-schema.org/draft/2019-09/schema"}
VALIDATOR = {2020: jsonschema.Draft202012Validator, 2019: jsonschema.Draft201909Validator}


def accepts(grammar, text: str) -> bool:
    m = grammar.matcher()
    return all(m.advance(b) for b in text.encode()) and m.is_accepting()


def objects(keys=("foo", "bar", "baz", "x-1"), values=("s", 1)):
    for n in range(len(keys) + 1):
        for names in itertools.combinations(keys, n):
            for vals in itertools.product(values, repeat=n):
                yield dict(zip(names, vals))


def arrays(values=("foo", "bar", "baz", 1, True), longest=3):
    for n in range(longest + 1):
        yield from (list(t) for t in itertools.product(values, repeat=n))


def compare(schema, instances, draft=2020, exact=True):
    schema = {"$schema": URI[draft], **schema}
    g = constrain.compile(constrain.JsonSchema(schema), V)
    ref = VALIDATOR[draft](schema)
    valid = 0
    for inst in instances:
        want, got = ref.is_valid(inst), accepts(g, json.dumps(inst))
        assert not (got and not want), ("accepted an invalid instance", schema, inst)
        if exact:
            assert got == want, ("rejected a valid instance", schema, inst)
        valid += got
    return valid


PROPERTY_CASES = [
    {"type": "object", "properties": {"foo": {"type": "string"}}, "unevaluatedProperties": False},
    {"properties": {"foo": {"type": "string"}}, "unevaluatedProperties": {"type": "integer"}},
    {"properties": {"foo": True}, "patternProperties": {"^x-": True}, "unevaluatedProperties": False},
    {"properties": {"foo": True}, "additionalProperties": True, "unevaluatedProperties": False},
    {"properties": {"foo": True}, "allOf": [{"properties": {"bar": True}}], "unevaluatedProperties": False},
    {"allOf": [{"properties": {"foo": True}, "unevaluatedProperties": False}], "properties": {"bar": True}},
    {"properties": {"foo": True}, "anyOf": [{"properties": {"bar": {"const": 1}}, "required": ["bar"]},
                                            {"properties": {"baz": {"const": 1}}, "required": ["baz"]}],
     "unevaluatedProperties": False},
    {"properties": {"foo": True}, "oneOf": [{"properties": {"bar": {"const": 1}}, "required": ["bar"]},
                                            {"properties": {"baz": {"const": 1}}, "required": ["baz"]}],
     "unevaluatedProperties": False},
    {"if": {"properties": {"foo": {"const": "s"}}, "required": ["foo"]},
     "then": {"properties": {"bar": True}}, "else": {"properties": {"baz": True}},
     "unevaluatedProperties": False},
    {"if": {"properties": {"foo": {"const": "s"}}, "required": ["foo"]}, "unevaluatedProperties": False},
    {"$ref": "#/$defs/base", "properties": {"bar": True}, "unevaluatedProperties": False,
     "$defs": {"base": {"properties": {"foo": True}}}},
    {"properties": {"foo": True}, "dependentSchemas": {"foo": {"properties": {"bar": True}}},
     "unevaluatedProperties": False},
    {"not": {"not": {"properties": {"foo": True}}}, "unevaluatedProperties": False},
    {"allOf": [{"properties": {"foo": True}}, {"unevaluatedProperties": False}]},
    {"properties": {"foo": {"properties": {"bar": True}, "unevaluatedProperties": False}}},
]


@pytest.mark.parametrize("schema", PROPERTY_CASES)
def test_unevaluated_properties(schema):
    pool = list(objects()) + [{"foo": {"bar": 1}}, {"foo": {"bar": 1, "baz": 1}}]
    compare(schema, pool)


def test_unevaluated_properties_under_anyof_where_several_branches_validate():
    # {"bar": 1, "baz": 1} validates both branches: each evaluates one name, so only the
    # two together evaluate both; compiled, one branch is chosen: a subset, never more.
    schema = {"anyOf": [{"properties": {"bar": True}}, {"properties": {"baz": True}}],
              "unevaluatedProperties": False}
    assert compare(schema, list(objects()), exact=False) > 0


ITEM_CASES = [
    {"prefixItems": [{"type": "string"}], "unevaluatedItems": False},
    {"items": {"type": "string"}, "unevaluatedItems": False},
    {"prefixItems": [{"type": "string"}], "unevaluatedItems": {"type": "integer"}},
    {"prefixItems": [{"const": "foo"}], "allOf": [{"prefixItems": [True, {"const": "bar"}]}],
     "unevaluatedItems": False},
    {"prefixItems": [{"const": "foo"}], "oneOf": [{"prefixItems": [True, {"const": "bar"}]},
                                                  {"prefixItems": [True, {"const": "baz"}]}],
     "unevaluatedItems": False},
    {"prefixItems": [{"const": "foo"}], "if": {"prefixItems": [True, {"const": "bar"}]},
     "then": {"prefixItems": [True, True, {"const": "baz"}]}, "else": {"prefixItems": [True, True, True, True]},
     "unevaluatedItems": False},
    {"allOf": [{"prefixItems": [True]}, {"unevaluatedItems": False}]},
    {"$ref": "#/$defs/two", "prefixItems": [{"type": "string"}], "unevaluatedItems": False,
     "$defs": {"two": {"prefixItems": [True, {"type": "string"}]}}},
]


@pytest.mark.parametrize("schema", ITEM_CASES)
def test_unevaluated_items(schema):
    compare(schema, list(arrays()))


def test_unevaluated_items_in_2019_09():
    compare({"items": [{"type": "string"}], "unevaluatedItems": False}, list(arrays()), draft=2019)
    compare({"items": [{"type": "string"}], "additionalItems": True, "unevaluatedItems": False},
            list(arrays()), draft=2019)


def test_unevaluated_keywords_mean_nothing_before_2019():
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "unevaluatedProperties": False}
    g = constrain.compile(constrain.JsonSchema(schema), V)
    assert accepts(g, '{"foo": 1}')


def test_items_that_match_contains_are_evaluated():
    compare({"prefixItems": [True], "contains": {"type": "string"}, "unevaluatedItems": False},
            list(arrays(values=("foo", 1, True), longest=3)))
    compare({"allOf": [{"contains": {"const": 1}}, {"contains": {"const": True}}], "unevaluatedItems": {"type": "string"}},
            list(arrays(values=("foo", 1, True, None), longest=3)))
    # 2019-09 names only items/additionalItems/unevaluatedItems as evaluating items (the
    # reference validator counts contains there too): the stricter reading, never more
    compare({"contains": {"type": "string"}, "unevaluatedItems": False}, list(arrays(values=("a", 1), longest=3)),
            draft=2019, exact=False)
