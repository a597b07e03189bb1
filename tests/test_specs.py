"""compile(): one way in for every spec kind, cached per (spec, vocabulary)."""

import dataclasses
from typing import Literal

import pytest
from pydantic import BaseModel

import constrain
from conftest import byte_vocab


def accepts(grammar, text: str) -> bool:
    m = grammar.matcher()
    return all(m.advance(b) for b in text.encode()) and m.is_accepting()


class Item(BaseModel):
    name: str
    tags: list[Literal["a", "b"]]


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_every_front_door():
    v = byte_vocab()
    assert accepts(constrain.compile(Item, v), '{"name": "x", "tags": ["a"]}')
    assert not accepts(constrain.compile(Item, v), '{"name": "x", "tags": ["c"]}')
    assert accepts(constrain.compile(list[int], v), "[1, 2]")
    assert accepts(constrain.compile(Point, v), '{"x": 1, "y": 2}')
    assert accepts(constrain.compile({"type": "integer", "maximum": 5}, v), "5")
    assert not accepts(constrain.compile({"type": "integer", "maximum": 5}, v), "6")
    assert accepts(constrain.compile(constrain.Regex(r"a+b"), v), "aab")
    assert accepts(constrain.compile(constrain.Lark('start: "x" NUM\nNUM: /[0-9]+/'), v), "x12")
    assert accepts(constrain.compile(constrain.GBNF('root ::= "x" [0-9]+'), v), "x12")


def test_cache_per_spec_and_vocabulary():
    v = byte_vocab()
    a = constrain.compile({"type": "boolean"}, v)
    assert constrain.compile({"type": "boolean"}, v) is a
    assert constrain.compile({"type": "boolean"}, v, cache=False) is not a
    assert constrain.compile({"type": "boolean"}, byte_vocab([b"tr"])) is not a


def test_clear_caches_compiles_from_scratch(monkeypatch):
    from constrain.automata import regex
    from constrain.engine import masks

    monkeypatch.setattr(masks, "_SHARE_MIN_NS", 0)  # share every walk, however quick
    v = byte_vocab()
    spec = constrain.Regex(r"(ab|cd){2,5}e")
    a = constrain.compile(spec, v)
    a.matcher().mask_words()
    assert regex._TERMINAL_CACHE and masks._SHARED_WALKS.data
    constrain.clear_caches()
    assert not regex._TERMINAL_CACHE and not masks._SHARED_WALKS.data
    b = constrain.compile(spec, v)
    assert b is not a
    assert accepts(b, "abcdabe") and not accepts(b, "abe")
    assert (b.matcher().mask_words() == a.matcher().mask_words()).all()


def test_bad_specs():
    v = byte_vocab()
    with pytest.raises(constrain.SpecError):
        constrain.compile(42, v)
    with pytest.raises(TypeError):
        constrain.compile({"type": "string"}, "not a vocabulary")
    with pytest.raises(constrain.SchemaError) as err:
        constrain.compile({"properties": {"a": {"type": "array", "uniqueItems": True}}}, v)
    assert "uniqueItems" in str(err.value) and "/properties/a" in str(err.value)
    with pytest.raises(constrain.UnsatisfiableError):
        constrain.compile({"type": "integer", "minimum": 3, "maximum": 2}, v)
