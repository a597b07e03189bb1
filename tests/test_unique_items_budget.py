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


# Items of other kinds: the budget is kept with a larger reserve and, once it binds, the
# checked completion only.
LONG_ENUM = ["a"] + [f"long_value_number_{i:02d}_with_many_words_in_it" for i in range(30)]
OTHER = [
    {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
    {"type": "array", "items": {"type": "number"}, "uniqueItems": True},
    {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 1000}, "uniqueItems": True},
    {"type": "array", "items": {"enum": LONG_ENUM}, "uniqueItems": True},
    {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}}, "required": ["id"], "additionalProperties": False},
     "uniqueItems": True},
    {"type": "array", "items": {"type": "object", "properties": {
        "k": {"type": "boolean"}, "v": {"enum": LONG_ENUM}}, "required": ["k", "v"], "additionalProperties": False},
     "uniqueItems": True},
    {"type": "array", "items": {"type": "string", "format": "date"}, "uniqueItems": True},
    {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "uniqueItems": True},
    {"type": "array", "items": {"type": "string", "maxLength": 3}, "uniqueItems": True},
    {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 3},
    {"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True,
                                              "minItems": 2}}, "required": ["ids"], "additionalProperties": False},
    {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}, "uniqueItems": True},
]
NUMBERS_REPEATED = {b"0", b"1", b",", b"[0", b",0", b", 0", b"-", b"-0", b".", b"e", b"{", b"}", b'{"id":',
                    b'"id":', b" 0", b'"', b'""', b'","', b"a", b'"a', b'a"', b"[", b"]", b"true", b"false"}
OTHER_BYTES = byte_vocab(extra=[b'""', b'"]', b'","', b'a"', b'", "', b'"a', b',0', b'-0', b'{"id":'])


def _walk_other(g, vocab, budget, rng, pick) -> bytes:
    m = g.matcher(max_tokens=budget)
    eos = set(vocab.eos_token_ids)
    out = bytearray()
    while not m.is_terminated():
        ids = m.allowed_token_ids()
        assert len(ids), bytes(out)
        t = pick(ids, rng)
        assert m.advance(t)
        if t not in eos:
            out += vocab.token_bytes(t)
    assert m.num_tokens <= budget
    return bytes(out)


@pytest.mark.parametrize("schema", OTHER)
@pytest.mark.parametrize("how", ["favoured", "uniform"])
def test_other_items_under_tight_budgets(schema, how):
    # favoured: the walk leans on zeros, commas, empty strings and short items, so items
    # repeat all the time; uniform: any allowed token but EOS, so long enum values and
    # long numbers come up. Every walk ends complete, in budget, with no repeated item;
    # none raises (a budget too small for unique items is refused when the matcher is made).
    vocab = OTHER_BYTES
    g = constrain.compile(constrain.JsonSchema(schema), vocab)
    validator = jsonschema.Draft202012Validator(schema)
    favour = _favour(vocab, NUMBERS_REPEATED)
    eos = vocab.eos_token_ids[0]

    def pick(ids, rng):
        if how == "favoured":
            if eos in ids and rng.random() < 0.02:
                return eos
            return int(ids[np.argmax(rng.normal(size=len(ids)) + favour[ids])])
        non = ids[ids != eos]
        return int(rng.choice(non)) if len(non) else eos

    rng = np.random.default_rng(11)
    low = g.min_tokens() + 1
    walked = 0
    for budget in list(range(low, low + 16)) + [low + 30, low + 60]:
        for _ in range(2):
            try:
                out = _walk_other(g, vocab, budget, rng, pick)
            except constrain.UnsatisfiableError:
                assert budget < low + 16  # only the shortest documents may all repeat
                continue
            value = json.loads(out)
            assert validator.is_valid(value), (budget, out)
            walked += 1
    assert walked >= 24


@pytest.mark.parametrize("schema", [OTHER[0], OTHER[3], OTHER[4], OTHER[9]])
def test_other_items_qwen2(schema):
    vocab = real_vocab("qwen2")
    g = constrain.compile(constrain.JsonSchema(schema), vocab)
    validator = jsonschema.Draft202012Validator(schema)
    rng = np.random.default_rng(2)
    eos = set(vocab.eos_token_ids)

    def pick(ids, rng):
        non = [t for t in ids.tolist() if t not in eos]
        return int(rng.choice(non)) if non else int(ids[0])

    low = g.min_tokens() + 1
    for budget in range(low, low + 40, 3):
        try:
            out = _walk_other(g, vocab, budget, rng, pick)
        except constrain.UnsatisfiableError:
            continue
        assert validator.is_valid(json.loads(out)), (budget, out)


def test_a_repeated_number_is_made_new_in_time():
    # after [0, the planner's completion is 0] which repeats: under every budget that lets
    # the prefix in, the matcher finishes with another number, in time
    g = constrain.compile(constrain.JsonSchema(OTHER[0]), BYTES)
    eos = BYTES.eos_token_ids[0]
    taken = 0
    for budget in range(4, 24):
        m = g.matcher(max_tokens=budget)
        if not all(m.advance(b) for b in b"[0,"):
            assert budget < 16  # refused only inside the reserve
            continue
        taken += 1
        out = bytearray(b"[0,")
        while not m.is_terminated():
            ids = m.allowed_token_ids()
            t = eos if eos in ids else int(ids[-1])  # the highest byte: no whitespace, no sign
            assert m.advance(t)
            if t != eos:
                out += BYTES.token_bytes(t)
        items = json.loads(out)
        assert len(items) == len(set(items)) >= 2 and m.num_tokens <= budget, out
    assert taken >= 8


def _allowed_bytes(m) -> set[bytes]:
    return {BYTES.token_bytes(int(t)) for t in m.allowed_token_ids()}


@pytest.mark.parametrize("draft", ["2020-12", "4"])
def test_a_number_item_that_can_only_repeat_is_refused_where_it_begins(draft):
    # integers: 0 (or -0) can go on only as 0.0... (draft 6 on) and end as 0; written
    # before, such an item is a trap (the mask never empties, no item can end): refused
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    if draft == "4":
        schema["$schema"] = "http://json-schema.org/draft-04/schema#"
    g = constrain.compile(constrain.JsonSchema(schema), BYTES)
    m = g.matcher()
    for b in b"[0,":
        assert m.advance(b)
    allowed = _allowed_bytes(m)
    assert b"0" not in allowed and b"1" in allowed and b"-" in allowed
    assert m.advance(ord("-"))
    assert b"0" not in _allowed_bytes(m) and b"1" in _allowed_bytes(m)
    # 7 written: 7 may still go on as 70..79, 7.0 is refused once 7 ends the point's way
    m = g.matcher()
    for b in b"[7,7":
        assert m.advance(b)
    allowed = _allowed_bytes(m)
    assert b"0" in allowed and b"," not in allowed and b"]" not in allowed
    if draft != "4":
        assert b"." not in allowed


def test_numbers_stuck_only_where_every_end_repeats():
    g = constrain.compile(constrain.JsonSchema(OTHER[1]), BYTES)  # any number
    m = g.matcher()
    for b in b"[0,0":
        assert m.advance(b)
    allowed = _allowed_bytes(m)
    assert b"." in allowed  # 0.5 is new
    assert b"e" not in allowed and b"E" not in allowed  # 0e... is 0 whatever the exponent
    g = constrain.compile(constrain.JsonSchema(OTHER[2]), BYTES)  # 0 .. 1000
    m = g.matcher()
    for b in b"[1000,100":
        assert m.advance(b)
    assert b"0" not in _allowed_bytes(m)  # 1000 again (10000 is out of range)
    m = g.matcher()
    for b in b"[100,10":
        assert m.advance(b)
    assert b"0" in _allowed_bytes(m)  # 100 is written, but 1000 is new


def test_numbers_compare_exactly_at_any_size():
    # equal by value at any exponent (Decimal gives up past about 10**18 in the exponent)
    g = constrain.compile(constrain.JsonSchema(OTHER[1]), BYTES)
    big = b"1e" + b"9" * 40
    m = g.matcher()
    for b in b"[" + big + b",":
        assert m.advance(b)
    for b in b"10e" + b"9" * 39 + b"8":  # the same value spelt otherwise
        assert m.advance(b)
    assert not m.advance(ord("]"))
    assert m.advance(ord("1")) and m.advance(ord("]"))


@pytest.mark.parametrize("items, written, prefix, stuck, free", [
    ({"type": "string", "pattern": "^#[0-9a-f]{6}$"}, b'"#ff0000"', b'"#ff000', b"0", b"1"),
    ({"type": "string", "maxLength": 2}, b'"ab"', b'"a', b"b", b"c"),
    ({"type": "string", "format": "date"}, b'"2024-01-02"', b'"2024-01-0', b"2", b"3"),
])
def test_a_string_item_that_can_only_repeat_is_refused_where_it_would_begin_to(items, written, prefix, stuck, free):
    # the grammar lets the item end only as the earlier one: the byte that would leave it
    # so is refused (before, the next mask was empty and raised MatcherError)
    g = constrain.compile(constrain.JsonSchema({"type": "array", "items": items, "uniqueItems": True}), BYTES)
    m = g.matcher()
    for b in b"[" + written + b"," + prefix:
        assert m.advance(b)
    allowed = _allowed_bytes(m)
    assert stuck not in allowed and free in allowed
    assert not m.advance(stuck[0])


def test_strings_that_can_still_end_new_are_not_refused():
    # plain strings: the text of an earlier item may be written, then go on
    g = constrain.compile(constrain.JsonSchema(PLAIN[0]), BYTES)
    m = g.matcher()
    for b in b'["ab","ab':
        assert m.advance(b)
    allowed = _allowed_bytes(m)
    assert b'"' not in allowed and b"c" in allowed
