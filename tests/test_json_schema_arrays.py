"""``contains`` / ``minContains`` / ``maxContains`` and ``uniqueItems``, compared with
``jsonschema`` on every small array over a pool of values: the grammar accepts an
instance exactly when the reference validator does."""

from __future__ import annotations

import itertools
import json

import jsonschema
import pytest

import constrain
from conftest import byte_vocab

V = byte_vocab()
DRAFTS = {
    2020: ("https://json-schema.org/draft/2020-12/schema", jsonschema.Draft202012Validator),
    2019: ("https://json-schema.org/draft/2019-09/schema", jsonschema.Draft201909Validator),
    7: ("http://json-schema.org/draft-07/schema#", jsonschema.Draft7Validator),
}
POOL = [1, 2, 3, "a", "b", True, None, [1], {"k": 1}]


def accepts(grammar, text: str) -> bool:
    m = grammar.matcher()
    return all(m.advance(b) for b in text.encode()) and m.is_accepting()


def arrays(pool, longest):
    for n in range(longest + 1):
        yield from (list(t) for t in itertools.product(pool, repeat=n))


def check_exact(schema: dict, draft: int = 2020, pool=POOL, longest: int = 3) -> int:
    uri, validator = DRAFTS[draft]
    schema = {"$schema": uri, **schema}
    g = constrain.compile(constrain.JsonSchema(schema), V)
    ref = validator(schema)
    n = 0
    for inst in arrays(pool, longest):
        want = ref.is_valid(inst)
        assert accepts(g, json.dumps(inst)) == want, (schema, inst, want)
        n += want
    return n


@pytest.mark.parametrize("schema", [
    {"contains": {"const": 1}},
    {"contains": {"type": "string"}, "minContains": 2},
    {"contains": {"type": "string"}, "maxContains": 1},
    {"contains": {"type": "string"}, "minContains": 0, "maxContains": 1},
    {"contains": {"const": 1}, "minContains": 2, "maxContains": 2},
    {"contains": {"const": 1}, "minContains": 2.0},
    {"contains": {"const": 1}, "minContains": 0},
    {"contains": {"minimum": 2}, "items": {"type": "integer"}},
    {"contains": {"type": "integer"}, "maxContains": 1, "items": {"type": ["integer", "string"]}},
    {"contains": {"const": "a"}, "prefixItems": [{"type": "integer"}], "minItems": 2},
    {"contains": {"const": 1}, "maxItems": 2},
    {"allOf": [{"contains": {"const": 1}}, {"minItems": 2}]},
    {"not": {"contains": {"const": 1}}},
    {"not": {"contains": {"type": "string"}, "maxContains": 1}},
    {"contains": {"type": "integer"}, "maxContains": 1, "minContains": 3},
    {"minContains": 2},  # without contains: no effect
])
def test_contains_counts(schema):
    assert check_exact(schema) > 0 or schema.get("maxContains", 9) < schema.get("minContains", 0)


def test_contains_in_draft_7_has_no_counts():
    check_exact({"contains": {"const": 1}, "minContains": 2, "maxContains": 0}, draft=7)
    check_exact({"contains": {"type": "string"}}, draft=7)


@pytest.mark.parametrize("schema", [
    {"uniqueItems": True, "items": {"enum": [1, 2, "a", None]}},
    {"uniqueItems": True, "items": {"type": "boolean"}},
    {"uniqueItems": True, "items": {"type": "integer", "minimum": 1, "maximum": 3}},
    {"uniqueItems": True, "items": {"enum": [[1], {"k": 1}, 1]}},
    {"uniqueItems": True, "prefixItems": [{"const": 1}], "items": {"enum": [1, 2, 3]}},
    {"uniqueItems": True, "items": {"enum": [1, 2, 3]}, "minItems": 2},
    {"uniqueItems": True, "items": {"enum": [1, 2, 3, "a"]}, "contains": {"type": "string"}},
    {"uniqueItems": True, "maxItems": 1},  # at most one item: always unique
    {"uniqueItems": False, "items": {"enum": [1, 2]}},
])
def test_unique_items_over_finite_item_values(schema):
    assert check_exact(schema, longest=4 if "maxItems" not in schema else 2) > 0


def test_unique_items_equality_ignores_number_spelling_and_key_order():
    schema = {"$schema": DRAFTS[2020][0], "uniqueItems": True,
              "items": {"enum": [{"a": 1, "b": 2}, {"b": 2, "a": 1}, 1, 1.0]}}
    g = constrain.compile(constrain.JsonSchema(schema), V)
    ref = jsonschema.Draft202012Validator(schema)
    for inst in ([{"a": 1, "b": 2}], [{"a": 1, "b": 2}, {"b": 2, "a": 1}], [1, 1.0], [1]):
        assert accepts(g, json.dumps(inst)) == ref.is_valid(inst), inst


def test_unique_items_with_contains_over_wide_items_is_declined_clearly():
    # items of many values are checked by the matcher (tests/test_json_schema_unique_items.py),
    # but not beside `contains`, which counts items in states
    items = {"type": "integer", "minimum": 0, "maximum": 1000}
    schema = {"type": "array", "items": items, "uniqueItems": True, "contains": {"const": 3}}
    with pytest.raises(constrain.SchemaError, match="uniqueItems") as e:
        constrain.compile(constrain.JsonSchema(schema), V)
    assert "/uniqueItems" in str(e.value)
    with pytest.warns(UserWarning, match="uniqueItems"):
        g = constrain.compile(constrain.JsonSchema(dict(schema), strict=False), V)
    assert g.report.approximated
    # without contains, the same items are compared by the matcher
    g = constrain.compile(constrain.JsonSchema({"type": "array", "items": items, "uniqueItems": True}), V)
    assert accepts(g, "[1, 2, 3]") and not accepts(g, "[1, 2, 1]")


def test_max_contains_whose_schema_cannot_be_negated_is_declined():
    schema = {"contains": {"uniqueItems": True, "items": {"type": "string"}}, "maxContains": 1}
    with pytest.raises(constrain.SchemaError):
        constrain.compile(constrain.JsonSchema(schema), V)


def test_enums_of_arrays_keep_only_members_that_satisfy_contains_and_uniqueness():
    schema = {"enum": [[1, 1], [1, 2], ["a"], []], "contains": {"const": 1}, "uniqueItems": True}
    check_exact(schema, pool=[1, 2, "a"], longest=2)
