"""A token budget with uniqueItems checked by the matcher (arrays of plain strings): every
output ends in the language, within the budget, with no repeated item, however the
tokens are chosen; the mask is never empty."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

import constrain
from conftest import byte_vocab, real_vocab
from constrain.masking.unique import budget_slack

BYTES = byte_vocab(extra=[b'""', b'"]', b'","', b'a"', b'", "', b'"a', b'ab'])

PLAIN = [
    {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 1},
        "name": {"type": "string"}}, "required": ["tags", "name"], "additionalProperties": False},
    {"type": "object", "properties": {
        "rows": {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
        "ids": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
     "required": ["rows", "ids"], "additionalProperties": False},
    {"type": "array", "items": {"type": "string", "minLength": 2}, "uniqueItems": True, "minItems": 1},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "uniqueItems": True}},
     "required": ["tags"], "$defs": {"tag": {"type": "string", "minLength": 1}}},
]


def _walk(g, vocab, budget: int, rng, favour: np.ndarray, eos_p: float = 0.05) -> bytes:
    """Random decoding under ``budget``: tokens drawn with ``favour`` added to noise."""
    m = g.matcher(max_tokens=budget)
    eos = vocab.eos_token_ids[0]
    out = bytearray()
    n = 0
    while not m.is_terminated():
        ids = m.allowed_token_ids()
        assert len(ids), bytes(out)
        if eos in ids and rng.random() < eos_p:
            t = eos
        else:
            t = int(ids[np.argmax(rng.normal(size=len(ids)) + favour[ids])])
        assert m.advance(t)
        n += 1
        if t not in vocab.eos_token_ids:
            out += vocab.token_bytes(t)
    assert n <= budget
    return bytes(out)


def _favour(vocab, chosen) -> np.ndarray:
    f = np.zeros(vocab.model_vocab_size)
    for t in range(vocab.size):
        b = vocab.token_bytes(t)
        if b and b in chosen:
            f[t] = 8.0
    return f


# quotes, commas and one-letter strings: the walk tries to repeat items all the time
REPEATERS = {b'"', b'""', b'"]', b'","', b'", "', b",", b"a", b"b", b'"a', b'a"', b'["', b'"b', b'["a', b'["a"'}


@pytest.mark.parametrize("schema", PLAIN)
def test_byte_vocabulary_under_every_tight_budget(schema):
    g = constrain.compile(constrain.JsonSchema(schema), BYTES)
    validator = jsonschema.Draft202012Validator(schema)
    favour = _favour(BYTES, REPEATERS)
    rng = np.random.default_rng(3)
    low = g.min_tokens() + 1
    for budget in list(range(low, low + 14)) + [low + 25, low + 40]:
        for _ in range(4):
            out = _walk(g, BYTES, budget, rng, favour)
            value = json.loads(out)
            assert validator.is_valid(value), (budget, out)


@pytest.mark.parametrize("schema", PLAIN)
def test_qwen2_under_tight_budgets(schema):
    vocab = real_vocab("qwen2")
    g = constrain.compile(constrain.JsonSchema(schema), vocab)
    validator = jsonschema.Draft202012Validator(schema)
    favour = _favour(vocab, REPEATERS)
    rng = np.random.default_rng(5)
    low = g.min_tokens() + 1
    for budget in list(range(low, low + 10)) + [low + 30]:
        for _ in range(3):
            out = _walk(g, vocab, budget, rng, favour)
            assert validator.is_valid(json.loads(out)), (budget, out)


def test_a_repeated_shortest_item_is_made_new_in_time():
    # after ["", the planner's completion is ""] which repeats the first item: with the
    # budget of exactly that completion the matcher must finish with a new item instead,
    # so the array may take no second item at such a budget
    g = constrain.compile(constrain.JsonSchema(PLAIN[0]), BYTES)
    text = b'["",'
    for budget in range(len(text) + 3, len(text) + 12):
        m = g.matcher(max_tokens=budget)
        for b in text:
            if not m.advance(b):
                break
        else:
            # the prefix fit: the rest must still come out new and complete
            out = bytearray(text)
            while not m.is_terminated():
                ids = m.allowed_token_ids()
                assert len(ids)
                t = int(ids[0]) if BYTES.eos_token_ids[0] not in ids else BYTES.eos_token_ids[0]
                assert m.advance(t)
                if t != BYTES.eos_token_ids[0]:
                    out += BYTES.token_bytes(t)
            items = json.loads(out)
            assert len(items) == len(set(items)) == 2, out
            continue
        # refused part of the way: only a budget too small for a new second item does that
        assert budget < len(text) + 3 + budget_slack(1)


def test_rollback_and_fork_keep_the_commit():
    # near the end of the budget, where the planner's completion ("]) would repeat the
    # first item: every allowed token, taken and rolled back (the commit's first token
    # among them, after which the commit carries on), leaves the matcher as a fresh one
    # fed the same text; so does a fork taken before
    g = constrain.compile(constrain.JsonSchema(PLAIN[0]), BYTES)
    prefix = b'["",'

    def fed():
        m = g.matcher(max_tokens=10)
        for b in prefix:
            assert m.advance(b)
        return m

    expected = fed().mask_words().copy()
    m = fed()
    f = m.fork()
    allowed = m.allowed_token_ids()
    assert 0 < len(allowed) < 256  # the budget binds here
    for t in allowed.tolist():
        assert m.advance(t)
        m.mask_words()  # (makes the commit of the later position)
        m.rollback(1)
        assert np.array_equal(m.mask_words(), expected), t
    assert np.array_equal(f.mask_words(), expected)


def test_too_small_a_budget_is_unsatisfiable():
    g = constrain.compile(constrain.JsonSchema(PLAIN[1]), BYTES)
    with pytest.raises(constrain.UnsatisfiableError):
        g.matcher(max_tokens=g.min_tokens())


def test_other_items_still_refuse_a_budget_clearly():
    for schema in ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
                   {"type": "array", "items": {"type": "string", "maxLength": 3}, "uniqueItems": True},
                   {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "uniqueItems": True},
                   {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 2}):
        g = constrain.compile(constrain.JsonSchema(schema), BYTES)
        with pytest.raises(constrain.MatcherError, match="uniqueItems"):
            g.matcher(max_tokens=64)
