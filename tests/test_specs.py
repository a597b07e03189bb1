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
    from constrain import _caches
    from constrain.automata import regex
    from constrain.masking import masks, parser

    monkeypatch.setattr(masks, "_SHARE_MIN_NS", 0)  # share every walk, however quick
    v = byte_vocab()
    spec = constrain.Regex(r"(ab|cd){2,5}e")
    a = constrain.compile(spec, v)
    a.matcher().mask_words()
    assert regex._TERMINALS and masks._SHARED_WALKS and parser._ONE_RULE
    constrain.clear_caches()
    assert not any(len(c) for c in _caches.registry().values() if not c.spec_free)
    assert not regex._TERMINALS and not masks._SHARED_WALKS
    assert parser._ONE_RULE  # depends on no spec: kept
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
        constrain.compile({"properties": {"a": {"type": "array", "uniqueItems": True, "contains": {"type": "string"}}}}, v)
    assert "uniqueItems" in str(err.value) and "/properties/a" in str(err.value)
    with pytest.raises(constrain.UnsatisfiableError):
        constrain.compile({"type": "integer", "minimum": 3, "maximum": 2}, v)


LIMITED = [
    # (spec, a limit it exceeds that the defaults do not, a text whose masks meet it)
    (constrain.Regex(r"[ab]*a[ab]{10}"), {"max_regex_states": 500}, ""),
    (constrain.Lark('start: A | B | C\nA: /[a-z]{1,40}/\nB: /[a-m]{3,30}x/\nC: /[b-z]+y/\n'),
     {"max_lexer_states": 40}, ""),
    (constrain.Lark('start: "(" start ")" start | \n'), {"max_parser_states": 2}, "((((()))))"),
    ({"type": "object", "properties": {k: {"type": "integer"} for k in "abcdef"}}, {"max_schema_rules": 5}, ""),
    ({"properties": {"a": {"properties": {"b": {"properties": {"c": {"type": "integer"}}}}}}},
     {"max_schema_nesting": 2}, ""),
    ({"enum": list(range(30))}, {"max_schema_enum": 20}, ""),
    ({"type": "array", "minItems": 40}, {"max_schema_array_positions": 30}, ""),
    ({"allOf": [{"allOf": [{"allOf": [{"type": "integer"}]}]}]}, {"max_schema_merge_depth": 2}, ""),
    ({"type": "object", "anyOf": [{"required": [k]} for k in "abcd"], "oneOf": [{"required": ["x"]}, {"required": ["y"]}],
      "allOf": [{"anyOf": [{"required": ["z"]}, {"required": ["w"]}]}]}, {"max_schema_anyof_product": 10}, ""),
]


def _masks_along(spec, text: str, **kw) -> None:
    m = constrain.compile(spec, byte_vocab(), **kw).matcher()
    for b in text.encode():
        m.mask_words()
        assert m.advance(b)


@pytest.mark.parametrize("spec, limit, text", LIMITED)
def test_limits_name_the_limit_passed(spec, limit, text):
    (field, value), = limit.items()
    with pytest.raises(constrain.CompileLimitError) as info:
        _masks_along(spec, text, cache=False, limits=constrain.Limits(**limit))
    assert f"Limits.{field}={value}" in str(info.value) and f"limits=constrain.Limits({field}=" in str(info.value)
    _masks_along(spec, text, cache=False)  # the defaults allow it
    with pytest.raises(constrain.CompileLimitError):  # whatever the caches hold now
        _masks_along(spec, text, limits=constrain.Limits(**limit))


def test_mask_walk_limit_is_named():
    v = byte_vocab([b"selectfrom", b"selectx", b"fromy"])
    spec = constrain.Lark('start: "select"i NAME "from"i NAME\nNAME: /[a-z]+/\n%ignore " "\n')
    m = constrain.compile(spec, v, cache=False, limits=constrain.Limits(max_walks_per_mask=1)).matcher()
    with pytest.raises(constrain.CompileLimitError, match=r"Limits\.max_walks_per_mask=1"):
        for b in b"select":
            m.advance(b)
            m.mask_words()


def test_cache_per_limits():
    v = byte_vocab()
    spec = constrain.Regex(r"(ab|cd){2,5}e")
    a = constrain.compile(spec, v)
    assert constrain.compile(spec, v, limits=constrain.Limits()) is a
    small = constrain.Limits(max_regex_states=5_000)
    b = constrain.compile(spec, v, limits=small)
    assert b is not a and constrain.compile(spec, v, limits=constrain.Limits(max_regex_states=5_000)) is b
    assert (b.matcher().mask_words() == a.matcher().mask_words()).all()


def test_bad_limits():
    with pytest.raises(ValueError, match="max_lexer_states"):
        constrain.Limits(max_lexer_states=0)
    with pytest.raises(TypeError, match="Limits"):
        constrain.compile(constrain.Regex("a"), byte_vocab(), limits={"max_lexer_states": 10})


def test_process_caches_are_registered_and_bounded():
    from constrain import _caches

    caches = _caches.registry()
    assert {"specs.grammars", "automata.terminals", "masking.shared_walks", "masking.one_rule_parsers"} <= set(caches)
    for name, c in caches.items():
        assert c.name == name and c.about
        assert isinstance(c, _caches.PerThread) or c.capacity > 0
