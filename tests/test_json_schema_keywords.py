"""Per-keyword checks of the JSON Schema front door, with ``jsonschema`` as the oracle."""

from __future__ import annotations

import json
import warnings

import jsonschema
import pytest
from test_json_schema_ir import accepts

from constrain.errors import CompileLimitError, SchemaError, UnsatisfiableError
from constrain.frontends.json_schema import json_schema_to_grammar


def oracle(schema, value) -> bool:
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value)


def check(schema, valid, invalid, **kw):
    """Every value in ``valid`` is accepted, every one in ``invalid`` rejected, as the oracle says."""
    g, report = json_schema_to_grammar(schema, **kw)
    for v in valid:
        assert oracle(schema, v), ("oracle rejects", v)
        assert accepts(g, json.dumps(v, ensure_ascii=False)), ("grammar rejects valid", v)
    for v in invalid:
        assert not oracle(schema, v), ("oracle accepts", v)
        assert not accepts(g, json.dumps(v, ensure_ascii=False)), ("grammar accepts invalid", v)
    return g, report


def test_types():
    check({"type": ["string", "null"]}, ["a", None], [1, True, [], {}])
    check({"type": "boolean"}, [True, False], [0, "true", None])
    check({"type": "integer"}, [0, -5, 12345678901234567890, 3.0], [1.5, "1", None])
    g, _ = json_schema_to_grammar({"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"})
    assert accepts(g, "3") and not accepts(g, "3.0")
    check({"type": "number"}, [0, -1.5, 1e-7, 2.5e300], ["1", None])


@pytest.mark.parametrize(
    "schema, valid, invalid",
    [
        ({"type": "integer", "minimum": -3, "maximum": 12}, [-3, 0, 12, 7], [-4, 13, 100, -30]),
        ({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100}, [1, 99], [0, 100, -1]),
        ({"type": "integer", "minimum": 1.5}, [2, 10], [1, 0, -2]),
        ({"type": "number", "minimum": 0.1, "maximum": 2.25}, [0.1, 1, 2.25, 0.5], [0.09, 2.26, -1, 0]),
        ({"type": "number", "exclusiveMinimum": -1.5}, [-1.4, 0, 1e3], [-1.5, -2]),
        ({"$schema": "http://json-schema.org/draft-04/schema#", "type": "number", "minimum": 0,
          "exclusiveMinimum": True, "maximum": 1, "exclusiveMaximum": True}, [0.5, 0.001], [0, 1, 2]),
        ({"type": "integer", "multipleOf": 5}, [0, 5, 10, 115, -20], [1, 12, 7]),
        ({"type": "integer", "multipleOf": 4, "minimum": 0}, [0, 4, 8, 100, 1000], [2, 6, 10, -4]),
    ],
)
def test_numeric_bounds(schema, valid, invalid):
    check(schema, valid, invalid)


def test_strings():
    check({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "abc", "é€"], ["a", "abcd", ""])
    check({"type": "string", "pattern": "[0-9]{3}"}, ["123", "a1234"], ["12", "abc"])
    check({"type": "string", "pattern": "^a+$", "maxLength": 3}, ["a", "aaa"], ["aaaa", "ba"])
    check({"type": "string"}, ['quote " and \\ and \n'], [1])


@pytest.mark.parametrize(
    "fmt, valid, invalid",
    [
        ("date", ["2024-02-29", "1999-12-31"], ["2023-02-29", "2020-13-01", "20-01-01"]),
        ("date-time", ["2020-01-01T12:30:00Z", "2020-01-01T12:30:00.5+02:00"], ["2020-01-01", "2020-01-01T25:00:00Z"]),
        ("time", ["12:30:00Z", "23:59:59+01:00"], ["12:30", "24:00:00Z"]),
        ("email", ["a.b@example.com", "x+y@sub.example.org"], ["no-at-sign"]),
        ("uuid", ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000x"]),
        ("ipv4", ["10.0.0.1", "255.255.255.255"], ["256.1.1.1", "1.2.3"]),
        ("ipv6", ["::1", "2001:db8::1", "::ffff:10.0.0.1"], ["1:2:3:4:5:6:7:8:9", "12345::"]),
        ("hostname", ["example.com", "a-b.example"], ["-bad.com", "a" * 64 + ".com"]),
        ("uri", ["https://example.com/a?b=c#d", "urn:isbn:0451450523"], ["not a uri", "/relative"]),
        ("duration", ["P1D", "PT1H30M", "P2W"], ["P", "1D"]),
    ],
)
def test_formats(fmt, valid, invalid):
    schema = {"type": "string", "format": fmt}
    g, _ = json_schema_to_grammar(schema)
    for v in valid:
        assert accepts(g, json.dumps(v)), (fmt, v)
    for v in invalid:
        assert not accepts(g, json.dumps(v)), (fmt, v)


def test_unknown_format_is_an_annotation_but_regex_format_is_refused():
    g, report = json_schema_to_grammar({"type": "string", "format": "int32"})
    assert accepts(g, '"anything"')
    assert report.ignored and report.ignored[0].keyword == "format"
    with pytest.raises(SchemaError, match="format"):
        json_schema_to_grammar({"type": "string", "format": "regex"})


def test_enum_and_const():
    check({"enum": ["a", 1, None, {"k": [1, 2]}]}, ["a", 1, None, {"k": [1, 2]}, 1.0], ["b", 2, {"k": [1]}, False])
    check({"const": {"a": True}}, [{"a": True}], [{"a": False}, {}])
    check({"type": "string", "enum": ["a", "bb", 3], "minLength": 2}, ["bb"], ["a", 3])


def test_objects_properties_required_and_additional():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
              "required": ["b"], "additionalProperties": False}
    check(schema, [{"b": "x"}, {"a": 1, "b": "x"}], [{}, {"a": 1}, {"b": "x", "c": 1}, {"a": "1", "b": "x"}])
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}}
    check(schema, [{}, {"a": 1, "z": "s"}, {"z": "s", "y": "t"}], [{"a": "1"}, {"z": 1}])
    # Declared names cannot sneak in as additional properties, however they are spelled.
    g, _ = json_schema_to_grammar(schema)
    assert not accepts(g, '{"\\u0061": "str"}')
    check({"type": "object", "required": ["x"]}, [{"x": 1}, {"x": None, "y": 2}], [{"y": 2}])


def test_property_order_follows_schema():
    schema = {"type": "object", "properties": {"a": {}, "b": {}}}
    g, _ = json_schema_to_grammar(schema)
    assert accepts(g, '{"a": 1, "b": 2}')
    assert not accepts(g, '{"b": 2, "a": 1}')
    assert accepts(g, '{"a": 1, "b": 2, "c": 3}')
    assert accepts(g, '{"c": 3, "a": 1, "x": 0, "b": 2, "d": 4}')  # additional ones anywhere
    g, _ = json_schema_to_grammar({**schema, "maxProperties": 2})
    assert accepts(g, '{"c": 3, "a": 1}') and not accepts(g, '{"c": 3, "a": 1, "b": 2}')


def test_property_order_follows_where_names_are_written():
    """Names come in the order the keywords declaring them are written: a conjunct or a
    branch written before ``properties`` leads, one written after follows."""
    before = {"type": "object", "allOf": [{"properties": {"x": {}}}], "properties": {"a": {}}}
    g, _ = json_schema_to_grammar(before)
    assert accepts(g, '{"x": 1, "a": 2}') and not accepts(g, '{"a": 2, "x": 1}')
    after = {"type": "object", "properties": {"a": {}}, "allOf": [{"properties": {"x": {}}}]}
    g, _ = json_schema_to_grammar(after)
    assert accepts(g, '{"a": 2, "x": 1}') and not accepts(g, '{"x": 1, "a": 2}')
    branch = {"anyOf": [{"properties": {"x": {}}, "required": ["x"]}, {"properties": {"y": {}}, "required": ["y"]}],
              "properties": {"a": {}}, "type": "object"}
    g, _ = json_schema_to_grammar(branch)
    assert accepts(g, '{"x": 1, "a": 2}') and accepts(g, '{"y": 1, "a": 2}')
    assert not accepts(g, '{"a": 2, "x": 1}')


def test_same_properties_in_another_order_are_another_rule():
    ab = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    ba = {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "string"}}}
    g, _ = json_schema_to_grammar({"type": "object", "properties": {"x": ab, "y": ba}})
    assert accepts(g, '{"x": {"a": "1", "b": "2"}, "y": {"b": "2", "a": "1"}}')
    assert not accepts(g, '{"x": {"a": "1", "b": "2"}, "y": {"a": "1", "b": "2"}}')
    g, _ = json_schema_to_grammar({"type": "array", "prefixItems": [{"const": {"a": 1, "b": 2}}, {"const": {"b": 2, "a": 1}}]})
    assert accepts(g, '[{"a": 1, "b": 2}, {"b": 2, "a": 1}]')


def test_pattern_properties():
    schema = {"type": "object", "patternProperties": {"^x-": {"type": "integer"}, "^y": {"type": "string"}},
              "additionalProperties": False}
    check(schema, [{"x-a": 1, "yb": "s"}, {}], [{"x-a": "s"}, {"z": 1}, {"yb": 2}])


def test_min_max_properties():
    schema = {"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "minProperties": 1, "maxProperties": 2}
    check(schema, [{"a": 1}, {"a": 1, "c": 3}, {"z": 1}], [{}, {"a": 1, "b": 2, "c": 3}, {"a": 1, "z": 1, "y": 2}])


def test_arrays():
    check({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
          [[1], [1, 2, 3]], [[], [1, 2, 3, 4], ["a"]])
    check({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
          [[], ["a"], ["a", 1]], [[1], ["a", 1, 2]])
    check({"$schema": "http://json-schema.org/draft-04/schema#", "type": "array",
           "items": [{"type": "string"}], "additionalItems": {"type": "boolean"}},
          [["a", True, False], []], [[1], ["a", 1]])
    check({"type": "array", "minItems": 2}, [[1, "x"], [None, None, None]], [[], [1]])


def test_combinators():
    check({"anyOf": [{"type": "string", "maxLength": 1}, {"type": "integer", "minimum": 10}]},
          ["a", 10], ["ab", 9])
    check({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}, ["a", ["b"]], [1, [1]])
    check({"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind"]},
                     {"type": "object", "properties": {"kind": {"const": "b"}, "y": {"type": "string"}}, "required": ["kind"]}]},
          [{"kind": "a", "x": 1}, {"kind": "b", "y": "s"}], [{"kind": "c"}, {"kind": "a", "x": "s"}])
    check({"type": "object", "allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                                        {"properties": {"b": {"type": "string"}}}]},
          [{"a": 1}, {"a": 1, "b": "s"}], [{"b": "s"}, {"a": 1, "b": 2}])
    check({"allOf": [{"type": "integer", "minimum": 0}, {"maximum": 5}]}, [0, 5], [-1, 6, "a"])
    check({"oneOf": [{"enum": ["a", "b"]}, {"type": "integer"}]}, ["a", 3], ["c", 1.5])
    check({"type": "object", "required": ["v"],
           "oneOf": [{"properties": {"v": {"type": "string"}}}, {"properties": {"v": {"type": "array"}}}]},
          [{"v": "s"}, {"v": []}], [{"v": 1}, {}])


def test_overlapping_one_of_strict_and_lenient():
    # Both branches accept every object: the oneOf admits none, which negation proves.
    with pytest.raises(UnsatisfiableError):
        json_schema_to_grammar({"oneOf": [{"type": "object", "properties": {"a": {}}},
                                          {"type": "object", "properties": {"b": {}}}]})
    # Exactly one of two required properties: exact through negated branches.
    check({"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
          [{"a": 1}, {"b": 2}], [{"a": 1, "b": 2}, {}])
    # Arrays of integers or of strings: the empty array is both, so it is excluded.
    check({"oneOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "array", "items": {"type": "string"}}]},
          [[1], ["a"], [1, 2]], [[], [1, "a"]])
    schema = {"oneOf": [{"type": "object", "propertyNames": {"maxLength": 3}},
                        {"type": "object", "propertyNames": {"minLength": 2}}]}
    with pytest.raises(SchemaError, match="oneOf") as e:
        json_schema_to_grammar(schema)
    assert e.value.pointer == "/oneOf"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        g, report = json_schema_to_grammar(schema, strict=False)
    assert w and report.approximated[0].keyword == "oneOf"
    assert accepts(g, '{"a": 1}') and accepts(g, '{"abcd": 1}')


def test_refs_and_recursion():
    tree = {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                                "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                               "additionalProperties": False}},
            "$ref": "#/$defs/node"}
    check(tree, [{"v": 1, "kids": [{"v": 2, "kids": []}, {"kids": [{"v": 3}]}]}], [{"v": 1, "kids": [{"v": "x"}]}])
    root = {"type": "object", "properties": {"next": {"$ref": "#"}, "n": {"type": "integer"}}, "additionalProperties": False}
    check(root, [{"next": {"next": {"n": 1}}, "n": 2}], [{"next": {"m": 1}}])
    escaped = {"definitions": {"a/b": {"type": "integer"}, "c~d": {"type": "string"}, "e f": {"type": "boolean"}},
               "type": "array", "prefixItems": [{"$ref": "#/definitions/a~1b"}, {"$ref": "#/definitions/c~0d"},
                                                {"$ref": "#/definitions/e%20f"}]}
    check(escaped, [[1, "s", True]], [["s"], [1, 2], [1, "s", 0]])
    check({"properties": {"x": {"type": "integer"}, "y": {"$ref": "#/properties/x"}}}, [{"x": 1, "y": 2}], [{"y": "s"}])


def test_nullable_openapi():
    g, _ = json_schema_to_grammar({"type": "string", "nullable": True})
    assert accepts(g, "null") and accepts(g, '"a"') and not accepts(g, "1")


def test_not_forms():
    check({"type": ["string", "integer"], "not": {"type": "integer"}}, ["a"], [1])
    check({"type": "string", "not": {"enum": ["a", "b"]}}, ["c", "ab"], ["a", "b"])
    check({"not": {"pattern": "^a"}}, ["b", "ba"], ["a", "ab", 1, None])
    check({"not": {"minimum": 3}}, [2, 2.5, -1], [3, 4, "x"])
    check({"type": "object", "not": {"required": ["a"]}}, [{}, {"b": 1}], [{"a": 1}])
    check({"not": {"minLength": 2}}, ["", "a"], ["ab", 1])
    check({"not": {"not": {"type": "string"}}}, ["a"], [1])
    check({"not": {"items": {"type": "integer"}}}, [["a"], [1, "a"]], [[], [1], "x"])
    check({"not": {"prefixItems": [{"const": 1}, {"type": "string"}]}}, [[2], [1, 2], [2, "a"]], [[1], [1, "a", 3], []])
    check({"not": {"contains": {"const": 1}}}, [[], [2]], [[1], [2, 1]])
    check({"not": {"enum": [1, 2.5, "a"]}}, [0, 2, 3, 2.4, "b", None], [1, 1.0, 2.5, "a"])
    check({"type": "object", "properties": {"a": {"type": "integer"}},
           "not": {"properties": {"a": {"minimum": 5}}}}, [{"a": 4}], [{"a": 5}, {}])


@pytest.mark.parametrize("keyword, schema", [
    ("uniqueItems", {"type": "array", "uniqueItems": True, "contains": {"type": "string"}}),
    ("if", {"if": {"propertyNames": {"maxLength": 2}}, "then": {"minProperties": 1}}),
    ("propertyNames", {"type": "object", "properties": {"a": {"propertyNames": {"anyOf": [{"maxLength": 3}, {"pattern": "x"}]}}}}),
    ("multipleOf", {"type": "number", "multipleOf": 0.07}),
    ("not", {"not": {"propertyNames": {"maxLength": 2}}}),
    ("maxContains", {"contains": {"propertyNames": {"maxLength": 2}}, "maxContains": 1}),
])
def test_unenforceable_keywords(keyword, schema):
    with pytest.raises(SchemaError, match=keyword) as e:
        json_schema_to_grammar(schema)
    if keyword == "propertyNames":
        assert e.value.pointer == "/properties/a/propertyNames"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, report = json_schema_to_grammar(schema, strict=False)
    assert any(e.keyword == keyword for e in report.approximated)


def test_annotations_ignored():
    g, _ = json_schema_to_grammar({"type": "integer", "title": "t", "description": "d", "default": 3,
                                   "examples": [1], "$comment": "c", "deprecated": True, "readOnly": True})
    assert accepts(g, "3") and not accepts(g, '"3"')


def test_limits():
    with pytest.raises(CompileLimitError):
        json_schema_to_grammar({"type": "array", "minItems": 10**6})
    with pytest.raises(CompileLimitError):
        json_schema_to_grammar({"enum": list(range(100_000))})
    deep: dict = {"type": "integer"}
    for _ in range(5000):
        deep = {"type": "array", "items": deep}
    with pytest.raises(CompileLimitError):
        json_schema_to_grammar(deep)


def test_contradictions_are_unsatisfiable():
    with pytest.raises(UnsatisfiableError):
        json_schema_to_grammar({"type": "string", "minLength": 3, "maxLength": 2})
    with pytest.raises(UnsatisfiableError):
        json_schema_to_grammar({"type": "array", "prefixItems": [False], "minItems": 1})


def test_dependencies_and_conditionals():
    check({"type": "object", "properties": {"card": {}, "billing": {}}, "dependentRequired": {"card": ["billing"]}},
          [{}, {"billing": 1}, {"card": 1, "billing": 2}], [{"card": 1}])
    check({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
           "properties": {"a": {}, "b": {}}, "dependencies": {"a": {"required": ["b"]}}},
          [{}, {"a": 1, "b": 2}], [{"a": 1}])
    check({"type": "object", "properties": {"kind": {"type": "string"}, "n": {"type": "integer"}},
           "if": {"properties": {"kind": {"const": "num"}}}, "then": {"required": ["n"]}},
          [{"kind": "num", "n": 1}, {"kind": "str"}], [{"kind": "num"}])


def test_multiple_of_decimal_and_number_types():
    check({"type": "number", "multipleOf": 0.01}, [1, 1.5, 2.25, -3.1, 2.250], [1.001, 0.125])
    check({"type": "number", "multipleOf": 10}, [0, 10, 120, -30], [5, 12.5, 1])
    with pytest.raises(SchemaError, match="multipleOf"):
        json_schema_to_grammar({"type": "integer", "multipleOf": 7})


def test_property_names():
    check({"type": "object", "propertyNames": {"pattern": "^[a-z]+$", "maxLength": 3}},
          [{}, {"ab": 1, "xyz": 2}], [{"abcd": 1}, {"A": 1}, {"a1": 0}])
    check({"type": "object", "properties": {"ok": {}, "BAD": {}}, "propertyNames": {"enum": ["ok", "fine"]}},
          [{"ok": 1}, {"fine": 2}, {"ok": 1, "fine": 2}], [{"BAD": 1}, {"other": 1}])
    g, _ = json_schema_to_grammar({"type": "object", "propertyNames": False})
    assert accepts(g, "{}") and not accepts(g, '{"a": 1}')


# ---------------------------------------------------------------------- pydantic

from enum import Enum  # noqa: E402
from typing import Literal, Optional, Union  # noqa: E402

from pydantic import BaseModel, Field, conint, constr  # noqa: E402

from constrain.frontends.pydantic import pydantic_to_grammar, pydantic_to_schema  # noqa: E402


class _Color(Enum):
    RED = "red"
    BLUE = "blue"


class _Cat(BaseModel):
    pet_type: Literal["cat"] = "cat"
    meows: int


class _Dog(BaseModel):
    pet_type: Literal["dog"]
    barks: float


class _Owner(BaseModel):
    name: constr(pattern=r"^[A-Z][a-z]+$", max_length=10)
    age: conint(ge=0, le=150)
    nick: Optional[str] = None
    color: _Color
    pet: Union[_Cat, _Dog] = Field(discriminator="pet_type")
    tags: set[str] = set()
    scores: dict[str, int] = {}
    pos: tuple[int, str]
    kids: list["_Owner"] = []


def test_pydantic_model_round_trip():
    g, report = pydantic_to_grammar(_Owner)
    kid = _Owner(name="Bo", age=1, color="blue", pet=_Cat(meows=2), pos=(2, "b"))
    o = _Owner(name="Ann", age=3, color="red", pet=_Dog(pet_type="dog", barks=1.5), pos=(1, "a"), kids=[kid],
               tags={"x"}, scores={"m": 1})
    for text in (o.model_dump_json(), json.dumps(json.loads(o.model_dump_json()))):
        assert accepts(g, text)
        _Owner.model_validate_json(text)
    good = json.loads(o.model_dump_json())
    for path, bad in [(("name",), "ann"), (("age",), 151), (("color",), "green"), (("pet", "pet_type"), "cow"),
                      (("pos",), [1, 2]), (("kids", 0, "pet", "meows"), "many")]:
        doc = json.loads(json.dumps(good))
        node = doc
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = bad
        assert not accepts(g, json.dumps(doc)), path
    # The tag property is required by the discriminated union (as pydantic requires it).
    assert not accepts(g, json.dumps({**good, "pet": {"meows": 2}}))


def test_pydantic_types_and_adapters():
    assert pydantic_to_schema(list[int]) == {"items": {"type": "integer"}, "type": "array"}
    g, _ = pydantic_to_grammar(dict[str, Optional[int]])
    assert accepts(g, '{"a": 1, "b": null}') and not accepts(g, '{"a": "1"}')
    g, _ = pydantic_to_grammar(tuple[int, ...])
    assert accepts(g, "[1, 2, 3]") and not accepts(g, '[1, "x"]')
    assert "uniqueItems" not in json.dumps(pydantic_to_schema(set[int]))


def test_compile_time_budget():
    # Each level of this recursion yields a new, larger conjunction: expansion never closes.
    schema = {"definitions": {"pp": {"patternProperties": {"a": {"allOf": [{"$ref": "#/definitions/pp"},
                                                                             {"maxProperties": 1}]},
                                                           "b": {"allOf": [{"$ref": "#/definitions/pp"},
                                                                           {"minProperties": 1}]}}}},
              "$ref": "#/definitions/pp"}
    with pytest.raises(CompileLimitError):
        json_schema_to_grammar(schema, max_seconds=1.0)


def test_pattern_dollar_is_the_end_of_the_input():
    # ECMA-262's "$" (no m flag) matches at the end only, not before a final newline as
    # Python's does (jsonschema, on re, would take "a\n" for "^a$")
    g, _ = json_schema_to_grammar({"enum": ["a\n", "a", "b"], "pattern": "^a$"})
    assert accepts(g, '"a"') and not accepts(g, json.dumps("a\n")) and not accepts(g, '"b"')
    g, _ = json_schema_to_grammar({"type": "object", "properties": {"k\n": {"type": "integer"}},
                                   "patternProperties": {"^k$": {"type": "string"}}})
    assert accepts(g, '{"k": "s"}') and not accepts(g, '{"k": 1}')
    assert accepts(g, json.dumps({"k\n": 1})) and not accepts(g, json.dumps({"k\n": "s"}))
