"""uniqueItems over plain string items, checked by the matcher: acceptance equals
jsonschema's verdict, the mask agrees with advance, random decoding stays valid."""

from __future__ import annotations

import json
import random

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import constrain
from conftest import byte_vocab, real_vocab

BYTES = byte_vocab()

SCHEMAS = [
    {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True, "minItems": 2, "maxItems": 4},
    {"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "string"}, "uniqueItems": True},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                                      "rows": {"type": "array", "items": {
                                          "type": "array", "items": {"type": "string"}, "uniqueItems": True}}}},
]


def _bit(words: np.ndarray, t: int) -> bool:
    return bool((int(words[t >> 5]) >> (t & 31)) & 1)


def feed(g: constrain.CompiledGrammar, tokens: list[int]) -> bool:
    """Feed ``tokens``, checking before each that the mask agrees with is_token_allowed
    and advance; True when all were taken and the text is complete."""
    m = g.matcher()
    for t in tokens:
        words = m.mask_words()
        allowed = m.is_token_allowed(t)
        assert _bit(words, t) == allowed
        if not m.advance(t):
            assert not allowed
            return False
        assert allowed
    return m.is_accepting()


def byte_tokens(text: str) -> list[int]:
    return [BYTES.longest_match(bytes([b]))[0] for b in text.encode()]


strings = st.sampled_from(["a", "b", "ab", "", "é", "\u00e9", "x\"y", "\\", "a\nb", "😀"])
spellings = st.sampled_from(["plain", "ascii"])


def dump(value, how: str) -> str:
    return json.dumps(value, ensure_ascii=how == "ascii")


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_byte_vocabulary_agrees_with_jsonschema(schema, data):
    g = constrain.compile(constrain.JsonSchema(schema), BYTES)
    items = data.draw(st.lists(strings, max_size=5))
    if schema.get("type") == "object":
        inst = {"tags": items, "rows": [items, list(reversed(items))]}
    else:
        inst = items
    text = dump(inst, data.draw(spellings))
    assert feed(g, byte_tokens(text)) == jsonschema.Draft202012Validator(schema).is_valid(inst), text


def test_escapes_compare_by_value():
    g = constrain.compile(constrain.JsonSchema(SCHEMAS[0]), BYTES)
    assert not feed(g, byte_tokens('["\\u00e9", "é"]'))
    assert not feed(g, byte_tokens('["\\ud83d\\ude00", "😀"]'))
    assert not feed(g, byte_tokens('["a\\/b", "a/b"]'))
    assert feed(g, byte_tokens('["a\\\\", "a"]'))
    assert feed(g, byte_tokens('["e\\u0301", "\\u00e9"]'))  # code points, not normalized


@pytest.fixture(scope="module")
def qwen2():
    return real_vocab("qwen2")


@pytest.mark.parametrize("inst", [["alpha", "beta"], ["alpha", "alpha"], ["", ""], ["a", "b", "a"], [],
                                  ["hello world", "hello", "hello world"], ["x\"", "x\""]])
def test_real_vocabulary_agrees_with_jsonschema(qwen2, inst):
    schema = SCHEMAS[0]
    g = constrain.compile(constrain.JsonSchema(schema), qwen2)
    for text in (json.dumps(inst), json.dumps(inst, separators=(",", ":"))):
        toks = qwen2.longest_match(text.encode())
        assert feed(g, toks) == jsonschema.Draft202012Validator(schema).is_valid(inst), text


def test_tokens_that_end_two_items_are_checked(qwen2):
    g = constrain.compile(constrain.JsonSchema(SCHEMAS[0]), qwen2)
    m = g.matcher()
    for t in qwen2.longest_match(b'["", '):
        assert m.advance(t)
    empty = qwen2.longest_match(b'""')
    assert len(empty) == 1 and not m.is_token_allowed(empty[0]) and not _bit(m.mask_words(), empty[0])
    m2 = g.matcher()
    for t in qwen2.longest_match(b'["'):
        assert m2.advance(t)
    sep = qwen2.longest_match(b'","')
    assert len(sep) == 1 and m2.advance(sep[0])  # "" then an open item: fine
    m3 = g.matcher()
    for t in qwen2.longest_match(b'["a'):
        assert m3.advance(t)
    assert m3.advance(sep[0])
    assert all(m3.advance(t) for t in qwen2.longest_match(b"a"))
    quote = qwen2.longest_match(b'"')
    assert len(quote) == 1 and not m3.is_token_allowed(quote[0]) and not _bit(m3.mask_words(), quote[0])


def test_rollback_and_fork_keep_the_items(qwen2):
    g = constrain.compile(constrain.JsonSchema(SCHEMAS[0]), qwen2)
    m = g.matcher()
    toks = qwen2.longest_match(b'["ab", "cd", "')
    for t in toks:
        assert m.advance(t)
    ab = qwen2.longest_match(b'ab"')
    f = m.fork()
    assert not all(m.advance(t) for t in ab)
    m.rollback(m.num_tokens - 1)
    assert all(m.advance(t) for t in qwen2.longest_match(b'ab", "')) and f.num_tokens == len(toks)
    assert not all(f.advance(t) for t in ab)
    assert f.advance_bytes(b'x"]') and f.is_accepting()
    assert not m.advance_bytes(b'ab"')


def test_random_decoding_outputs_are_valid(qwen2):
    rng = np.random.default_rng(0)
    for schema in SCHEMAS:
        g = constrain.compile(constrain.JsonSchema(schema), qwen2)
        validator = jsonschema.Draft202012Validator(schema)
        eos = qwen2.eos_token_ids[0] if hasattr(qwen2, "eos_token_ids") else None
        favour = np.zeros(qwen2.model_vocab_size)
        for t in range(qwen2.size):  # make quotes, short strings and separators likely
            b = qwen2.token_bytes(t)
            if b and len(b) <= 3 and (b'"' in b or b in (b"a", b"b", b",", b"]")):
                favour[t] = 6.0
        for _ in range(12):
            m = g.matcher()
            out = bytearray()
            for _step in range(200):
                words = m.mask_words()
                ids = m.allowed_token_ids()
                assert len(ids), bytes(out)
                logits = rng.normal(size=len(ids)) + favour[ids]
                t = int(ids[np.argmax(logits)])
                assert m.advance(t)
                if m.is_terminated():
                    break
                out += qwen2.token_bytes(t)
            if m.is_terminated():
                assert validator.is_valid(json.loads(out.decode())), out


def test_budget_is_refused_clearly():
    g = constrain.compile(constrain.JsonSchema(SCHEMAS[0]), BYTES)
    with pytest.raises(constrain.MatcherError, match="uniqueItems"):
        g.matcher(max_tokens=64)


def test_wide_integers_and_ambiguous_arrays_still_decline():
    with pytest.raises(constrain.SchemaError, match="uniqueItems"):
        constrain.compile(constrain.JsonSchema({"type": "array", "items": {"type": "number"}, "uniqueItems": True}),
                          BYTES)
    with pytest.raises(constrain.SchemaError, match="uniqueItems"):
        constrain.compile(constrain.JsonSchema({"anyOf": [
            {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            {"type": "array", "items": {"type": "string"}, "maxItems": 3}]}), BYTES)


def test_report_says_enforced():
    g = constrain.compile(constrain.JsonSchema(SCHEMAS[0]), BYTES)
    assert [(e.pointer, e.status) for e in g.report.entries if e.keyword == "uniqueItems"] == [("/uniqueItems", "enforced")]
    assert not g.report.approximated
