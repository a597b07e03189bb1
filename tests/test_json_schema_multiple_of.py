"""``multipleOf`` with decimal (and integral) divisors: the numbers written without an
exponent whose exact decimal value is a multiple, checked against Decimal arithmetic and
``jsonschema``."""

from __future__ import annotations

import json
import re
import warnings
from decimal import Decimal

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsts_cases import accepts, suite_cases, with_draft

from constrain.errors import SchemaError, UnsatisfiableError
from constrain.frontends.json_schema import json_schema_to_grammar
from constrain.frontends.json_schema.numbers import multiple_regexes

DIVISORS = ["0.01", "0.05", "0.25", "0.5", "0.1", "0.001", "0.125", "1.5", "0.3", "0.15", "0.75", "2.5", "0.6",
            "0.03", "37.5", "0.0003", "1", "2", "3", "6", "12", "15", "16", "32", "5", "25", "10", "100", "1e-8",
            "0.0625", "4.8"]
SYNTAX = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def is_multiple(text: str, m: str) -> bool:
    return Decimal(text) % Decimal(m) == 0


def number_texts():
    """Numbers as JSON writes them without exponent: sign, integer digits, fraction."""
    ints = st.one_of(st.integers(0, 200), st.integers(0, 10**12)).map(str)
    fracs = st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=6).map(lambda f: "." + f))
    return st.tuples(st.sampled_from(["", "-"]), ints, fracs).map("".join)


def unsigned_language(m: str):
    regs, _ = multiple_regexes(Decimal(m))
    rxs = [re.compile(r) for r in regs]
    return lambda text: all(rx.fullmatch(text) for rx in rxs)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(DIVISORS), st.lists(number_texts(), min_size=20, max_size=20))
def test_regexes_are_exactly_the_multiples(m, texts):
    member = unsigned_language(m)
    for text in texts:
        assert member(text.lstrip("-")) == is_multiple(text, m), (m, text)


@pytest.mark.parametrize("m", DIVISORS)
def test_multiples_near_zero_and_their_neighbours(m):
    d = Decimal(m)
    member = unsigned_language(m)
    for k in range(0, 60):
        x = d * k
        for text in {format(x, "f"), format(x.normalize(), "f"), format(x, "f") + "0", format(x + Decimal("0.001"), "f"),
                     format(x + Decimal("0.0001"), "f"), format(x + 1, "f")}:
            if SYNTAX.fullmatch(text):
                assert member(text) == is_multiple(text, m), (m, text)


@pytest.mark.parametrize("m, valid, invalid", [
    (0.01, ["1", "1.5", "2.25", "-3.1", "2.250", "0", "-0", "0.10"], ["1.001", "0.125", "1e2"]),
    (1.5, ["0", "4.5", "-4.5", "3", "1.50", "30"], ["35", "1", "0.75", "4.55"]),
    (0.3, ["0.3", "0.6", "0.9", "1.2", "3", "-0.30", "300"], ["0.1", "1", "0.31", "0.33"]),
    (0.0001, ["0.0075", "1", "0.1234"], ["0.00751"]),
    (2.5, ["2.5", "5", "12.5", "100", "-7.5"], ["1.5", "2", "2.55"]),
])
def test_numbers_through_the_grammar(m, valid, invalid):
    schema = {"type": "number", "multipleOf": m}
    for text in valid:
        assert accepts(schema, text), (m, text)
        assert jsonschema.Draft202012Validator(schema).is_valid(json.loads(text)) or "e" in text, (m, text)
    for text in invalid:
        assert not accepts(schema, text), (m, text)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["0.01", "1.5", "0.3", "0.25", "7.5"]), st.integers(-3, 3), st.integers(-3, 3),
       st.lists(number_texts(), min_size=8, max_size=8))
def test_with_bounds_and_types(m, lo, hi, texts):
    for typ in ("number", "integer"):
        schema = {"type": typ, "multipleOf": float(m), "minimum": lo, "maximum": hi + 2}
        for text in texts:
            want = is_multiple(text, m) and lo <= Decimal(text) <= hi + 2
            if typ == "integer":
                want = want and Decimal(text) == Decimal(text).to_integral_value()
            try:
                got = accepts(schema, text)
            except UnsatisfiableError:  # no multiple in the range
                got = False
            assert got == want, (schema, text)
            if want:
                assert jsonschema.Draft202012Validator(schema).is_valid(json.loads(text)) or typ == "number"


def test_integer_type_with_decimal_divisor():
    # An integer is a multiple of 1.5 when it is one of 3; of 0.25 always.
    assert accepts({"type": "integer", "multipleOf": 1.5}, "9") and not accepts({"type": "integer", "multipleOf": 1.5}, "4")
    assert accepts({"type": "integer", "multipleOf": 1.5}, "6.0") and not accepts({"type": "integer", "multipleOf": 1.5}, "4.5")
    assert accepts({"type": "integer", "multipleOf": 0.25}, "7")


def test_draft4_integers_of_a_decimal_divisor():
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer", "multipleOf": 1.5}
    assert accepts(schema, "3") and not accepts(schema, "3.0") and not accepts(schema, "4")


@pytest.mark.parametrize("m", [7, 0.7, 0.9, 4.5, 11, 64, 0.123456789])
def test_divisors_without_a_compact_automaton_are_refused(m):
    with pytest.raises(SchemaError, match="multipleOf"):
        json_schema_to_grammar({"type": "number", "multipleOf": m})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        g, report = json_schema_to_grammar({"type": "number", "multipleOf": m}, strict=False)
    assert report.approximated and w


CASES = suite_cases("multipleOf.json")


@pytest.mark.skipif(not CASES, reason="JSON Schema Test Suite not present")
@pytest.mark.parametrize("draft, description, schema, data, valid", CASES)
def test_suite_multiple_of(draft, description, schema, data, valid):
    schema = with_draft(schema, draft)
    try:
        got = accepts(schema, json.dumps(data))
    except SchemaError:
        assert schema.get("multipleOf") == 0.123456789  # refused: a factor 3,607
        return
    # Numbers with an exponent (1e+308) are never written under multipleOf.
    assert got == (valid and "e" not in json.dumps(data)), description
