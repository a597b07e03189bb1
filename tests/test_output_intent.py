"""Output that means what the user meant: only declared fields for pydantic models (and
for JSON Schemas with ``extra_properties=False``), whitespace a model cannot loop on, and
declared properties in any order on request. Every language here is checked against
``jsonschema`` or pydantic, never only against itself."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, Field, RootModel
from typing_extensions import TypedDict

import constrain
from conftest import byte_vocab
from constrain.frontends.pydantic import pydantic_to_schema

V = byte_vocab()


def accepts(grammar, text: str) -> bool:
    m = grammar.matcher()
    return all(m.advance(b) for b in text.encode()) and m.is_accepting()


def compiled(spec, **options):
    if options:
        spec = constrain.JsonSchema(spec, **options)
    return constrain.compile(spec, V)


# ---------------------------------------------------------------- pydantic: declared fields only


class Item(BaseModel):
    sku: str
    quantity: int


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int


class Forbid(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: int


class Order(BaseModel):
    customer: str
    items: list[Item]
    note: Optional[str] = None
    counts: dict[str, int] = {}
    anything: Any = None
    extra_ok: Optional[Open] = None


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pet(BaseModel):
    pet: Union[Cat, Dog] = Field(discriminator="kind")


class Items(RootModel[list[Item]]):
    pass


class Movie(TypedDict):
    title: str


@dataclass
class Point:
    x: int
    y: int


def test_a_model_admits_only_its_declared_fields():
    g = compiled(Item)
    assert accepts(g, '{"sku": "A-1", "quantity": 2}')
    assert not accepts(g, '{"sku": "A-1", "quantity": 2, "price": 3}')
    assert not accepts(g, '{"sku": "A-1", "colour": "red", "quantity": 2}')
    assert not accepts(g, '{"colour": "red", "sku": "A-1", "quantity": 2}')


def test_extra_allow_admits_more_and_forbid_admits_none():
    assert accepts(compiled(Open), '{"a": 1, "b": [true]}')
    assert accepts(compiled(Open), '{"z": null, "a": 1}')
    assert not accepts(compiled(Forbid), '{"a": 1, "b": 2}')


def test_nested_models_unions_and_root_models_are_closed():
    g = compiled(Order)
    ok = {"customer": "Ann", "items": [{"sku": "x", "quantity": 1}], "counts": {"any key": 3},
          "anything": {"free": {"form": [1]}}, "extra_ok": {"a": 1, "mine": "yes"}}
    assert accepts(g, json.dumps(ok))
    bad_nested = {"customer": "Ann", "items": [{"sku": "x", "quantity": 1, "price": 2}]}
    assert not accepts(g, json.dumps(bad_nested))
    assert not accepts(g, json.dumps({"customer": "Ann", "items": [], "vip": True}))
    assert not accepts(g, json.dumps({"customer": "Ann", "items": [], "counts": {"k": "not an int"}}))
    pet = compiled(Pet)
    assert accepts(pet, '{"pet": {"kind": "cat", "lives": 9}}')
    assert not accepts(pet, '{"pet": {"kind": "cat", "lives": 9, "good": true}}')
    items = compiled(Items)
    assert accepts(items, '[{"sku": "x", "quantity": 1}]')
    assert not accepts(items, '[{"sku": "x", "quantity": 1, "q": 2}]')
    assert not accepts(compiled(Movie), '{"title": "Heat", "year": 1995}')
    assert not accepts(compiled(Point), '{"x": 1, "y": 2, "z": 3}')
    assert accepts(compiled(RootModel[dict[str, int]]), '{"a": 1, "b": 2}')


def test_serialized_instances_are_accepted():
    order = Order(customer="Ann", items=[Item(sku="x", quantity=1), Item(sku="y", quantity=2)],
                  note="leave at the door", counts={"a": 1}, anything=[1, {"b": None}])
    g = compiled(Order)
    data = order.model_dump(mode="json")
    for text in (json.dumps(data), json.dumps(data, indent=2), json.dumps(data, indent=4),
                 json.dumps(data, indent="\t"), order.model_dump_json(), order.model_dump_json(indent=2),
                 json.dumps(data, separators=(",", ":"))):
        assert accepts(g, text), text


def test_pydantic_schema_says_it():
    schema = pydantic_to_schema(Order)
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Item"]["additionalProperties"] is False
    assert schema["$defs"]["Open"]["additionalProperties"] is True
    assert schema["properties"]["counts"]["additionalProperties"] == {"type": "integer"}
    assert "additionalProperties" not in pydantic_to_schema(list[int])


# ---------------------------------------------------------------- raw JSON Schema: extra_properties


PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "tags": {"type": "object"}, "address": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    "required": ["name"],
}


def test_raw_schemas_keep_their_own_language_by_default():
    g = compiled(PERSON)
    assert accepts(g, '{"name": "Ann", "age": 3}')
    assert accepts(g, '{"name": "Ann", "address": {"city": "Oslo", "zip": "0150"}}')


def test_extra_properties_false_closes_objects_that_list_properties():
    g = compiled(PERSON, extra_properties=False)
    assert accepts(g, '{"name": "Ann", "tags": {"free": "form"}, "address": {"city": "Oslo"}}')
    assert not accepts(g, '{"name": "Ann", "age": 3}')
    assert not accepts(g, '{"name": "Ann", "address": {"city": "Oslo", "zip": "0150"}}')


def test_extra_properties_false_keeps_what_the_schema_says():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}}
    g = compiled(schema, extra_properties=False)
    assert accepts(g, '{"a": 1, "b": "x"}') and not accepts(g, '{"a": 1, "b": 2}')
    schema = {"type": "object", "properties": {"a": {}}, "additionalProperties": True}
    assert accepts(compiled(schema, extra_properties=False), '{"a": 1, "b": 2}')
    schema = {"type": "object", "properties": {"a": {}}, "patternProperties": {"^x-": {"type": "integer"}}}
    g = compiled(schema, extra_properties=False)
    assert accepts(g, '{"a": 1, "x-b": 2}') and not accepts(g, '{"a": 1, "b": 2}')
    # Required names are declared too, and conjuncts pool their properties.
    schema = {"allOf": [{"properties": {"a": {"type": "integer"}}}, {"properties": {"b": {}}, "required": ["c"]}]}
    g = compiled(schema, extra_properties=False)
    assert accepts(g, '{"a": 1, "b": 2, "c": 3}') and not accepts(g, '{"a": 1, "c": 3, "d": 4}')
    with pytest.raises(constrain.UnsatisfiableError):
        compiled({"properties": {"a": {}}, "minProperties": 2, "type": "object"}, extra_properties=False)


def test_strict_mode_schemas_from_openai_docs_shape():
    schema = {"type": "object", "properties": {
        "steps": {"type": "array", "items": {"type": "object", "properties": {
            "explanation": {"type": "string"}, "output": {"type": "string"}}}},
        "final_answer": {"type": "string"}}, "required": ["steps", "final_answer"]}
    g = compiled(schema, extra_properties=False)
    assert accepts(g, '{"steps": [{"explanation": "a", "output": "b"}], "final_answer": "c"}')
    assert not accepts(g, '{"steps": [{"explanation": "a", "thought": "b"}], "final_answer": "c"}')


# ---------------------------------------------------------------- whitespace


def test_bounded_whitespace_ends_the_document_at_its_last_character():
    g = compiled({"type": "object", "properties": {"a": {"type": "integer"}}})
    m = g.matcher()
    for b in b'{"a": 1}':
        assert m.advance(b)
    assert m.is_accepting()
    for ws in b" \n\t\r":
        assert not m.is_token_allowed(ws)
    assert not accepts(g, '{"a": 1}\n') and not accepts(g, '\n{"a": 1}') and not accepts(g, ' {"a": 1}')
    for top in ("1", '"x"', "[1, 2]", "true"):
        assert not accepts(compiled({}), top + " ")


def test_bounded_whitespace_runs_are_short():
    g = compiled({"type": "array", "items": {"type": "integer"}})
    assert accepts(g, "[\n" + " " * 64 + "1\n]")
    assert not accepts(g, "[\n" + " " * 65 + "1\n]")
    assert not accepts(g, "[  1]") and not accepts(g, "[\n\n1]") and not accepts(g, "[1 , 2]")
    assert accepts(g, "[1,\r\n 2]") and accepts(g, "[ 1 ]")


def test_json_whitespace_stays_an_option():
    g = compiled({"type": "array", "items": {"type": "integer"}}, whitespace="json")
    assert accepts(g, " [ \n\n 1 ,\t2 ] \n") and accepts(g, "[" + " " * 300 + "1]")
    with pytest.raises(constrain.SchemaError, match="whitespace"):
        compiled({}, whitespace="pretty")


def test_json_dumps_output_is_accepted_under_the_default():
    rng = random.Random(5)
    schema = {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#"}}}, "required": ["id"]}
    g = compiled(schema)

    def tree(depth: int) -> dict:
        node: dict = {"id": rng.randint(-9, 99)}
        if rng.random() < 0.5:
            node["name"] = rng.choice(["", "a b", "x\ny", "é"])
        if depth and rng.random() < 0.7:
            node["children"] = [tree(depth - 1) for _ in range(rng.randint(0, 3))]
        return node

    for _ in range(40):
        value = tree(6)
        for kw in ({}, {"indent": 2}, {"indent": 4}, {"separators": (",", ":")}, {"ensure_ascii": False}):
            assert accepts(g, json.dumps(value, **kw)), (kw, value)


# ---------------------------------------------------------------- property order


OBJ = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"},
                                        "d": {"type": "null"}}, "required": ["a", "c"]}
VALUES = {"a": 1, "b": "x", "c": True, "d": None}


def test_any_order_accepts_every_permutation_each_key_once():
    g = compiled(OBJ, property_order="any")
    schema_order = compiled(OBJ)
    validator = jsonschema.Draft202012Validator(OBJ)
    for r in range(5):
        for keys in itertools.permutations("abcd", r):
            text = json.dumps({k: VALUES[k] for k in keys})
            expected = validator.is_valid(json.loads(text))
            assert accepts(g, text) == expected, text
            if expected and list(keys) != sorted(keys):
                assert not accepts(schema_order, text)
    assert not accepts(g, '{"a": 1, "c": true, "a": 2}')
    assert not accepts(g, '{"c": true, "b": "x", "b": "y", "a": 1}')


def test_any_order_with_extras_and_property_counts():
    schema = dict(OBJ, maxProperties=3)
    g = compiled(schema, property_order="any")
    assert accepts(g, '{"c": false, "zz": 1, "a": 0}')
    assert not accepts(g, '{"c": false, "zz": 1, "a": 0, "b": "x"}')
    g = compiled(dict(OBJ, minProperties=3), property_order="any", extra_properties=False)
    assert accepts(g, '{"d": null, "c": false, "a": 0}')
    assert not accepts(g, '{"c": false, "a": 0}') and not accepts(g, '{"c": false, "zz": 1, "a": 0}')


def test_any_order_past_the_state_limit_keeps_the_schema_order():
    props = {f"p{i:02d}": {"type": "integer"} for i in range(14)}
    g = compiled({"type": "object", "properties": props}, property_order="any")
    assert accepts(g, '{"p00": 0, "p05": 5}') and not accepts(g, '{"p05": 5, "p00": 0}')
    assert [e.keyword for e in g.report.narrowed] == ["properties"]


def test_sampled_documents_validate():
    """Random walks through the masks (any order, closed objects): every finished
    document validates, and has no key the schema does not list."""
    schema = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 3}, "n": {"type": "integer", "minimum": -2, "maximum": 30},
        "tags": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 2},
        "sub": {"type": "object", "properties": {"k": {"type": "boolean"}}, "required": ["k"]}},
        "required": ["name", "sub"]}
    validator = jsonschema.Draft202012Validator(schema)
    g = compiled(schema, property_order="any", extra_properties=False)
    rng = random.Random(11)
    import numpy as np

    bitmask = constrain.allocate_bitmask(1, V.model_vocab_size)
    finished = 0
    for _ in range(150):
        m = g.matcher(max_tokens=60)
        out = bytearray()
        while True:
            m.fill_bitmask(bitmask, 0)
            bits = np.unpackbits(bitmask[0].view(np.uint8), bitorder="little")[: V.size]
            allowed = np.flatnonzero(bits)
            tok = int(rng.choice(allowed))
            if tok in V.eos_token_ids:
                break
            assert m.advance(tok)
            out += V.token_bytes(tok)
        value = json.loads(out)
        assert validator.is_valid(value), out
        assert set(value) <= set(schema["properties"]) and set(value["sub"]) <= {"k"}
        finished += 1
    assert finished == 150


def test_tight_budgets_never_leave_a_state_without_a_token(qwen2_vocab):
    """Random walks through the budget masks of real-vocabulary tokens: some token (or
    EOS) is always allowed, and every walk ends valid within its budget. Declared keys in
    any order make the per-state estimates disagree most (a state's shortest completion
    may take another key order, with other tokens)."""
    import numpy as np

    item = {"type": "object", "properties": {"id": {"type": "string", "minLength": 1}}, "required": ["id"]}
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"collector": item, "contributors": {"type": "array", "items": item},
                             "commits": {"type": "array", "items": item}, "projects": {"type": "array"},
                             "projectComponents": {"type": "object", "patternProperties": {"^[a-f0-9]+$": item}},
                             "projectVersions": {"type": "object"}, "projectIssues": {"type": "object"}},
              "required": ["collector", "contributors", "commits", "projects", "projectComponents",
                           "projectVersions", "projectIssues"]}
    validator = jsonschema.Draft202012Validator(schema)
    vocab = qwen2_vocab
    bitmask = constrain.allocate_bitmask(1, vocab.model_vocab_size)
    rng = random.Random(2)
    for options in ({"property_order": "any"}, {"property_order": "any", "whitespace": "json"}, {}):
        g = constrain.compile(constrain.JsonSchema(schema, **options), vocab)
        need = g.min_tokens() + 1
        for budget in (need, need + 3, need + 12):
            for _ in range(12):
                m = g.matcher(max_tokens=budget)
                ids: list[int] = []
                while True:
                    bitmask.fill(0)
                    m.fill_bitmask(bitmask, 0)
                    allowed = np.flatnonzero(np.unpackbits(bitmask[0].view(np.uint8), bitorder="little"))
                    assert len(allowed), (options, budget, vocab.decode_bytes(ids))
                    tok = int(rng.choice(allowed))
                    assert m.advance(tok)
                    if tok in vocab.eos_token_ids:
                        break
                    ids.append(tok)
                assert len(ids) + 1 <= budget
                assert validator.is_valid(json.loads(vocab.decode_bytes(ids)))


def test_openai_response_format_strict_maps_to_closed_objects():
    from constrain.specs import from_response_format

    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    strict = from_response_format({"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}})
    loose = from_response_format({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert accepts(compiled(strict), '{"a": 1}') and not accepts(compiled(strict), '{"a": 1, "b": 2}')
    assert accepts(compiled(loose), '{"a": 1, "b": 2}')
    assert accepts(compiled(from_response_format({"type": "json_object"})), '{"any": [1]}')
    assert from_response_format({"type": "text"}) is None
    for bad in ({"type": "xml"}, {"type": "json_schema"}, {"type": "json_schema", "json_schema": {"schema": {}, "strict": 1}}):
        with pytest.raises(constrain.SpecError):
            from_response_format(bad)
