"""uniqueItems over object and array items: a prefix of an item that can only end as an
earlier item is refused where it is made, so decoding that keeps writing the same item
never runs into an empty mask (a trap): every walk goes on, and what it finishes is valid."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import constrain
from conftest import byte_vocab, real_vocab

BYTES = byte_vocab(extra=[b'{"', b'"}', b'":', b'",', b'""', b'},{', b' 0', b'-0', b'0}', b'true}'])


def _obj(props: dict, required=None) -> dict:
    return {"type": "array", "uniqueItems": True, "items": {
        "type": "object", "properties": props, "required": list(props) if required is None else required,
        "additionalProperties": False}}


SCHEMAS = [
    _obj({"name": {"type": "string"}}),
    _obj({"id": {"type": "integer"}}),
    _obj({"a": {"type": "boolean"}, "b": {"type": "string", "maxLength": 1}}),
    _obj({"k": {"type": "string"}, "v": {"type": "boolean"}}),
    _obj({"id": {"type": "integer", "minimum": 0, "maximum": 3}, "tag": {"enum": ["x", "y"]}}),
    _obj({"id": {"type": "integer"}, "note": {"type": "string"}}, required=["id"]),
    _obj({"pts": {"type": "array", "items": {"type": "integer"}, "maxItems": 2}}),
    {"type": "array", "uniqueItems": True, "items": {"type": "array", "items": {"type": "boolean"}, "maxItems": 1}},
    {"type": "array", "uniqueItems": True, "items": {"type": "array", "items": {"type": "integer"},
                                                     "minItems": 1, "maxItems": 1}},
    {"type": "object", "properties": {"rows": _obj({"x": {"type": "number"}, "y": {"type": "null"}})},
     "required": ["rows"], "additionalProperties": False},
]

# the bytes of items written over and over: zeros, empty and one-letter strings, true
REPEATED = {b"0", b" 0", b"-0", b"0}", b".", b"e", b"{", b'{"', b"}", b'"}', b"},{", b",", b'",', b":", b'":',
            b'"', b'""', b"a", b"x", b"t", b"true", b"true}", b"[", b"]", b"n", b"null"}


def _favour(vocab) -> np.ndarray:
    f = np.zeros(vocab.model_vocab_size)
    for t in range(vocab.size):
        b = vocab.token_bytes(t)
        if b and (b in REPEATED or b.strip() in REPEATED):
            f[t] = 6.0
    return f


def _walk(g, vocab, rng, favour, steps: int) -> bytes | None:
    """Decoding that leans on the tokens of repeated items; None when not finished in
    ``steps`` tokens. Raises (MatcherError) on a trap."""
    m = g.matcher()
    eos = list(vocab.eos_token_ids)
    out = bytearray()
    for _ in range(steps):
        ids = m.allowed_token_ids()
        assert len(ids), bytes(out)
        ends = np.isin(ids, eos)
        if ends.any() and (rng.random() < 0.15 or ends.all()):
            return bytes(out)
        non = ids[~ends]
        t = int(non[np.argmax(rng.normal(size=len(non)) + favour[non])])
        assert m.advance(t), (bytes(out), vocab.token_bytes(t))
        out += vocab.token_bytes(t)
    return None


def _check(schema, vocab, seed: int, walks: int, steps: int) -> int:
    g = constrain.compile(constrain.JsonSchema(schema), vocab)
    validator = jsonschema.Draft202012Validator(schema)
    favour = _favour(vocab)
    rng = np.random.default_rng(seed)
    done = 0
    for _ in range(walks):
        out = _walk(g, vocab, rng, favour, steps)
        if out is not None:
            assert validator.is_valid(json.loads(out)), out
            done += 1
    return done


@pytest.mark.parametrize("schema", SCHEMAS)
def test_byte_walks_never_trap(schema):
    assert _check(schema, BYTES, 7, walks=24, steps=160) >= 1


@pytest.mark.parametrize("schema", [SCHEMAS[0], SCHEMAS[1], SCHEMAS[3], SCHEMAS[7]])
def test_qwen2_walks_never_trap(schema):
    _check(schema, real_vocab("qwen2"), 3, walks=8, steps=120)


@pytest.mark.parametrize("text, refused", [
    (b'[{"name":"a"},{"name":"a', b'"'),  # only } could follow the quote
    (b'[{"id":0},{"id":', b"0"),  # integers go on only as 0.0...
    (b'[{"id":0},{"id": ', b"0"),
    (b'[{"id":0},{"id":-', b"0"),  # -0 is 0
    (b'[[true],[', b"t"),  # true says which at its first letter; only ] may follow
    (b'[{"a":true,"b":"x"},{"a":true,"b":"', b"x"),  # maxLength 1: only the quote may follow
])
def test_a_prefix_that_can_only_repeat_is_refused(text, refused):
    schema = {b"name": SCHEMAS[0], b'"id"': SCHEMAS[1], b"[[": SCHEMAS[7], b'"a"': SCHEMAS[2]}
    which = next(v for k, v in schema.items() if k in text)
    g = constrain.compile(constrain.JsonSchema(which), BYTES)
    m = g.matcher()
    for b in text:
        assert m.advance(BYTES.token_of(bytes((b,)))), text
    t = BYTES.token_of(refused)
    assert not m.is_token_allowed(t)
    assert not m.advance(t)
    assert len(m.allowed_token_ids())  # and something else is


@pytest.mark.parametrize("text, free", [
    (b'[{"name":"a"},{"name":"a', b"b"),
    (b'[{"name":"a"},{"name":"', b"a"),  # "a" may still become "ab"
    (b'[{"id":0},{"id":', b"1"),
    (b'[{"id":0,"note":"x"},{"id":', b"0"),  # the note may differ
    (b'[{"id":0},{"id":1},{"id":', b"1"),  # 10, 11, ...
    (b'[[true],[', b"f"),
])
def test_a_prefix_that_may_end_new_is_not_refused(text, free):
    schema = SCHEMAS[5] if b"note" in text else SCHEMAS[0] if b"name" in text else SCHEMAS[7] if b"[[" in text \
        else SCHEMAS[1]
    g = constrain.compile(constrain.JsonSchema(schema), BYTES)
    m = g.matcher()
    for b in text:
        assert m.advance(BYTES.token_of(bytes((b,)))), text
    assert m.advance(BYTES.token_of(free))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 1, 2]), ascii_only=st.booleans())
def test_normal_texts_agree_and_ignore_layout(value, indent, ascii_only):
    # the one-pass normal text of a whole item is the byte-by-byte one, and whitespace
    # and number spelling (1, 1.0, 1e0) do not change it
    from constrain.masking.unique import _normal, _normal_text
    value = [value]  # an array item
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only).encode()
    spaced = json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode()
    assert _normal_text(compact) == _normal(compact)[0]
    assert _normal_text(spaced) == _normal_text(compact)
    as_floats = json.dumps(_floats(value), separators=(",", ":"), ensure_ascii=ascii_only).encode()
    assert _normal_text(as_floats) == _normal_text(compact)  # 1 and 1.0 alike


def _floats(v):
    """``v`` with its integers as floats (equal in JSON), where a float holds them exactly."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return float(v)
    if isinstance(v, list):
        return [_floats(x) for x in v]
    if isinstance(v, dict):
        return {k: _floats(x) for k, x in v.items()}
    return v


def test_numbers_normalize_by_value():
    from constrain.masking.unique import _normal_text
    assert _normal_text(b'{"a": 1}') == _normal_text(b'{"a":1.0}') == _normal_text(b'{"a":10e-1}')
    assert _normal_text(b'[0]') == _normal_text(b'[-0.0e5]')
    assert _normal_text(b'{"a": 1}') != _normal_text(b'{"a":2}')
    assert _normal_text(b'["1 2"]') != _normal_text(b'["12"]')  # strings keep their spaces


def test_many_earlier_items():
    # past 64 earlier items that the one being written may still become, no trap is
    # looked for (the walks would follow each); masks and advances still agree
    g = constrain.compile(constrain.JsonSchema(SCHEMAS[1]), BYTES)
    m = g.matcher()
    text = "[" + ",".join('{"id":%d}' % i for i in range(70)) + ","
    for b in text.encode():
        assert m.advance(BYTES.token_of(bytes((b,))))
    rng = np.random.default_rng(0)
    favour = _favour(BYTES)
    favour[[BYTES.token_of(b"}"), BYTES.token_of(b"]")]] += 4.0  # ... and finishes soon
    out = _walk_from(m, BYTES, rng, favour, 200)
    assert out is not None
    value = json.loads(text.encode() + out)
    assert jsonschema.Draft202012Validator(SCHEMAS[1]).is_valid(value)


def _walk_from(m, vocab, rng, favour, steps: int) -> bytes | None:
    eos = list(vocab.eos_token_ids)
    out = bytearray()
    for _ in range(steps):
        ids = m.allowed_token_ids()
        assert len(ids)
        ends = np.isin(ids, eos)
        if ends.any():
            return bytes(out)
        t = int(ids[np.argmax(rng.normal(size=len(ids)) + favour[ids])])
        assert m.advance(t)
        out += vocab.token_bytes(t)
    return None


@pytest.mark.parametrize("schema", [SCHEMAS[1], SCHEMAS[4], SCHEMAS[6], SCHEMAS[7]])
def test_masks_and_advances_agree_on_every_token(schema):
    # a token the mask allows advances, and one it refuses does not, at every step of
    # walks that keep repeating items (the trap checks are asked of the same tokens)
    g = constrain.compile(constrain.JsonSchema(schema), BYTES)
    rng = np.random.default_rng(5)
    favour = _favour(BYTES)
    eos = set(BYTES.eos_token_ids)
    for _ in range(3):
        m = g.matcher()
        for _ in range(40):
            words = m.mask_words()
            allowed = [t for t in range(BYTES.size) if (words[t >> 5] >> (t & 31)) & 1 and t not in eos]
            for t in range(BYTES.size):
                if t in eos or BYTES.is_special(t):
                    continue
                assert m.fork().advance(t) == (t in allowed), (t, BYTES.token_bytes(t))
            if not allowed:
                break
            ids = np.asarray(allowed)
            m.advance(int(ids[np.argmax(rng.normal(size=len(ids)) + favour[ids])]))
