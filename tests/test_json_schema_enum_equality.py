"""``enum``/``const`` compare values as JSON Schema does: numbers by value (``1`` is
``1.0``), objects whatever their key order; never a value unequal to a member."""

from __future__ import annotations

import json
from decimal import Decimal

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsts_cases import accepts, suite_cases, with_draft

D4 = "http://json-schema.org/draft-04/schema#"
D2020 = "https://json-schema.org/draft/2020-12/schema"


def spellings(x, draft: str = D2020) -> list[str]:
    """Ways to write the number ``x`` (as an int or a float) without an exponent. Draft 4
    writes an integral member with a fraction only where a float holds it exactly."""
    d = Decimal(repr(x)) if isinstance(x, float) else Decimal(x)
    text = format(d.normalize(), "f") if d != d.to_integral_value() else str(int(d))
    out = {text}
    if "." in text or draft != D4 or Decimal(float(d)) == d:
        out |= {text + ("0" if "." in text else ".0"), text + ("00" if "." in text else ".00")}
    if d == 0:
        out |= {"-" + t for t in out}
    return sorted(out)


@pytest.mark.parametrize("schema, good, bad", [
    ({"$schema": D4, "enum": [1]}, ["1", "1.0", "1.00"], ["1e0", "true", "2", "1.01"]),
    ({"$schema": D4, "enum": [[1]]}, ["[1]", "[1.0]"], ["[true]", "[1.5]"]),
    ({"$schema": D4, "enum": [0]}, ["0", "0.0", "-0", "-0.0"], ["false", "0.1"]),
    ({"$schema": D4, "enum": [2.5, -3]}, ["2.5", "2.50", "-3", "-3.0"], ["2.05", "3", "-2.5"]),
    # Draft 4: 1.0 is no integer, so the spelling must suit the rest of the schema.
    ({"$schema": D4, "type": "integer", "enum": [1]}, ["1"], ["1.0"]),
    ({"$schema": D4, "type": "integer", "enum": [1.0]}, ["1"], ["1.0"]),
    ({"$schema": D4, "items": {"type": "integer"}, "enum": [[1.0, 2]]}, ["[1, 2]"], ["[1, 2.0]", "[1.0, 2]"]),
    ({"$schema": D4, "items": {"oneOf": [{"type": "integer"}, {"type": "number"}]}, "enum": [[1, 2]]},
     ["[1.0, 2.0]"], ["[1, 2.0]", "[1, 2]", "[1.0, 2]"]),
    ({"$schema": D4, "items": [{"type": "integer"}, {}], "enum": [[1, 2]]}, ["[1, 2]", "[1, 2.0]"], ["[1.0, 2]"]),
    ({"$schema": D2020, "type": "integer", "enum": [1, 2.0]}, ["1", "1.0", "2", "2.00"], ["3"]),
    ({"$schema": D2020, "enum": [{"a": 1, "b": [2, 3.5]}]}, ['{"a": 1, "b": [2, 3.5]}', '{"a": 1.0, "b": [2.0, 3.50]}'],
     ['{"a": 1, "b": [2, 3]}', '{"a": true, "b": [2, 3.5]}']),
])
def test_members_and_their_spellings(schema, good, bad):
    for text in good:
        assert accepts(schema, text), (schema, text)
        assert jsonschema.validators.validator_for(schema)(schema).is_valid(json.loads(text)), text
    for text in bad:
        assert not accepts(schema, text), (schema, text)


def test_object_members_in_any_key_order():
    schema = {"const": {"foo": "bar", "baz": [1, {"x": 1, "y": 2}]}}
    orders = ['{"foo": "bar", "baz": [1, {"x": 1, "y": 2}]}', '{"baz": [1, {"y": 2, "x": 1}], "foo": "bar"}',
              '{"baz": [1.0, {"x": 1, "y": 2.0}], "foo": "bar"}']
    for text in orders:
        assert accepts(schema, text, property_order="any"), text
    # Schema order (the default) keeps the member's own order.
    assert accepts(schema, orders[0]) and not accepts(schema, orders[1])
    for text in ['{"foo": "bar"}', '{"foo": "bar", "baz": [1, {"x": 1, "y": 2}], "foo": "bar"}',
                 '{"foo": "bar", "foo": "bar"}', '{"baz": [1, {"x": 1}], "foo": "bar"}', '{"foo": "bar",, "baz": 1}']:
        assert not accepts(schema, text, property_order="any"), text


SCALARS = st.one_of(st.integers(-1000, 1000), st.integers(-2**53, 2**53),
                    st.decimals(-1000, 1000, places=3).map(float), st.booleans(), st.none(), st.sampled_from(["a", "1"]))


@settings(max_examples=120, deadline=None)
@given(st.lists(SCALARS, min_size=1, max_size=4), SCALARS, st.sampled_from([D4, D2020]))
def test_number_spellings_against_jsonschema(members, probe, draft):
    # Every spelling of a member is accepted; a probe is accepted exactly when it equals one.
    schema = {"$schema": draft, "enum": members}
    cls = jsonschema.validators.validator_for(schema)
    for m in members:
        if isinstance(m, (int, float)) and not isinstance(m, bool):
            for text in spellings(m, draft):
                assert accepts(schema, text), (members, text)
    texts = [json.dumps(probe)] + (spellings(probe, draft) if isinstance(probe, (int, float)) and not isinstance(probe, bool) else [])
    for text in texts:
        assert accepts(schema, text) == cls(schema).is_valid(json.loads(text)), (members, text)


def test_big_integers_compare_exactly():
    # Past 2^53 a float would round; the grammar compares the written decimals.
    schema = {"$schema": D2020, "enum": [10**20 + 1]}
    assert accepts(schema, "100000000000000000001") and accepts(schema, "100000000000000000001.00")
    assert not accepts(schema, "100000000000000000000") and not accepts(schema, "1e20")
    d4 = {"$schema": D4, "enum": [2**53 + 1]}
    assert accepts(d4, str(2**53 + 1)) and not accepts(d4, str(2**53 + 1) + ".0")  # no float holds it


CASES = suite_cases("enum.json") + suite_cases("const.json")


@pytest.mark.skipif(not CASES, reason="JSON Schema Test Suite not present")
@pytest.mark.parametrize("draft, description, schema, data, valid", CASES)
def test_suite_enum_and_const(draft, description, schema, data, valid):
    # Objects in another key order than the member's: with property_order="any".
    # Strings as json.dumps(..., ensure_ascii=False) spells them (members are literals).
    text = json.dumps(data, ensure_ascii=False)
    assert accepts(with_draft(schema, draft), text, property_order="any") == valid, description
