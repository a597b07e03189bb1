"""uniqueItems over items of many values (strings, numbers, objects, arrays, mixed),
checked by the matcher: acceptance equals jsonschema's verdict, the mask agrees with
advance, random decoding stays valid."""

from __future__ import annotations

import json
import random
import re

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
        try:
            words = m.mask_words()
        except constrain.MatcherError as e:  # no new item can be written from here
            assert "uniqueItems" in str(e)
            return False
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


def test_the_check_is_kept_per_state_not_per_offset(qwen2, monkeypatch):
    """The check's memo serves a state that recurs later in the text (rows of one shape),
    and what it serves is what the check computes afresh there."""
    from constrain.masking import unique
    schema = {"type": "array", "items": {"type": "object", "properties": {
        "k": {"type": "string"}, "v": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
        "required": ["k", "v"], "additionalProperties": False}}
    g = constrain.compile(constrain.JsonSchema(schema), qwen2)
    checker = g.unique_checker
    calls = []
    real = unique.UniqueChecker._duplicates
    monkeypatch.setattr(unique.UniqueChecker, "_duplicates", lambda self, *a: calls.append(a) or real(self, *a))
    m = g.matcher()
    row = b'{"k": "x", "v": ["a", "b"]}, '
    fourth = qwen2.longest_match(row)
    toks = qwen2.longest_match(b"[") + fourth * 3  # from the third row on, the rows' states recur
    for i, t in enumerate(toks + fourth[:-1] + qwen2.longest_match(b'{"k": "x", "v": ["a", "')):
        if i == len(toks):
            calls.clear()
        words = m.mask_words()
        fresh = real(checker, m._stack[-1], m._tracks[-1], g.engine.mask(m._stack[-1]))
        expect = g.engine.mask(m._stack[-1]).copy()
        for d in fresh:
            expect[d >> 5] &= ~np.uint32(1 << (d & 31))
        assert np.array_equal(words, expect), i
        assert m.advance(t)
        if i == len(toks) + len(fourth) - 2:
            assert not calls  # the fourth row: every check served from the third's
    repeat = qwen2.longest_match(b'a"')
    assert not all(m.advance(t) for t in repeat)


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


def test_budget_is_kept_with_several_items_required():
    # two to four distinct non-empty strings (the grammar's shortest document repeats its
    # item): every budget from the first that fits a document with unique items ends in
    # one (more kinds of items: test_unique_items_budget.py)
    g = constrain.compile(constrain.JsonSchema(SCHEMAS[1]), BYTES)
    eos = BYTES.eos_token_ids[0]
    kept = 0
    for budget in range(g.min_tokens() + 1, g.min_tokens() + 30):
        try:
            m = g.matcher(max_tokens=budget)
        except constrain.UnsatisfiableError:
            assert not kept  # refused only below the first budget kept
            continue
        kept += 1
        out = bytearray()
        while not m.is_terminated():
            ids = m.allowed_token_ids()
            t = eos if eos in ids else int(ids[len(ids) // 2])
            assert m.advance(t)
            if t != eos:
                out += BYTES.token_bytes(t)
        items = json.loads(out)
        assert 2 <= len(items) == len(set(items)) <= 4 and all(items) and m.num_tokens <= budget, (budget, out)
    assert kept >= 20


def test_ambiguous_arrays_still_decline():
    # one text, an array of two branches, one compared and one not: the matcher cannot tell
    with pytest.raises(constrain.SchemaError, match="uniqueItems"):
        constrain.compile(constrain.JsonSchema({"anyOf": [
            {"type": "array", "items": {"type": "number"}, "uniqueItems": True},
            {"type": "array", "items": {"type": "number"}, "maxItems": 3}]}), BYTES)


def test_report_says_enforced():
    g = constrain.compile(constrain.JsonSchema(SCHEMAS[0]), BYTES)
    assert [(e.pointer, e.status) for e in g.report.entries if e.keyword == "uniqueItems"] == [("/uniqueItems", "enforced")]
    assert not g.report.approximated


# ----------------------------------------------------------------------------- any item schema

ANY_SCHEMAS = [
    {"type": "array", "items": {"type": "number"}, "uniqueItems": True},
    {"type": "array", "items": {"type": "integer", "minimum": 0}, "uniqueItems": True, "maxItems": 6},
    {"type": "array", "uniqueItems": True},
    {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                                "additionalProperties": False}, "uniqueItems": True},
    {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}, "uniqueItems": True},
    {"type": "array", "items": {"type": "string", "pattern": "^[a-c]+$"}, "uniqueItems": True},
    {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
     "uniqueItems": True},
    {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": ["number", "string", "null"]},
                                            "uniqueItems": True}}},
]

scalars = st.one_of(st.integers(-3, 3), st.sampled_from([1.0, -0.0, 0.5, 1e2, 100, 2.50]),
                    st.sampled_from(["a", "b", "ab", "é", "1"]), st.booleans(), st.none())
values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.sampled_from(["a", "b"]), kids, max_size=2)), max_leaves=6)


def _spell(value, how: str) -> str:
    if how == "spaced":
        return json.dumps(value)
    text = json.dumps(value, separators=(",", ":"))
    # numbers written another way than Python writes them: 1 as 1.0, 100 as 1e2
    return re.sub(r"(?<![\d.])100(?![\d.eE])", "1e2", text) if how == "exp" else text


@pytest.mark.parametrize("schema", ANY_SCHEMAS, ids=range(len(ANY_SCHEMAS)))
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_any_items_agree_with_jsonschema(schema, data):
    # (keys in any order, as jsonschema takes them: the drawn objects put them so)
    g = constrain.compile(constrain.JsonSchema(schema, property_order="any"), BYTES)
    items = data.draw(st.lists(values, max_size=5))
    if data.draw(st.booleans()) and items:
        items.append(data.draw(st.sampled_from(items)))  # a repeat, often
    inst = {"xs": items} if schema.get("type") == "object" else items
    # (integers are written without exponent: 1e2 is refused where an integer is due)
    how = data.draw(st.sampled_from(["spaced", "compact"] if "integer" in json.dumps(schema) else
                                    ["spaced", "compact", "exp"]))
    text = _spell(inst, how)
    assert feed(g, byte_tokens(text)) == jsonschema.Draft202012Validator(schema).is_valid(json.loads(text)), text


@pytest.mark.parametrize("text,ok", [
    ("[1, 1.0]", False), ("[1e2, 100]", False), ("[-0, 0]", False), ("[1, 2, 3]", True), ("[0.1, 0.10]", False),
    ('[{"a": 1, "b": "x"}, {"b": "x", "a": 1}]', False), ('[{"a": 1}, {"a": 2}]', True),
    ("[[1, 2], [1, 2]]", False), ("[[1, 2], [2, 1]]", True), ("[true, 1]", True), ("[true, true]", False),
    ('["1", 1]', True), ("[null, null]", False), ('[{"a": [1, {"b": null}]}, {"a": [1, {"b": null}]}]', False),
    ('[{}, []]', True), ('[{}, {}]', False), ('["\\u00e9", "\u00e9"]', False),
])
def test_json_equality_of_items(text, ok):
    g = constrain.compile(constrain.JsonSchema({"type": "array", "uniqueItems": True}), BYTES)
    assert feed(g, byte_tokens(text)) is ok, text


def test_real_vocabulary_any_items(qwen2):
    schema = ANY_SCHEMAS[3]
    g = constrain.compile(constrain.JsonSchema(schema), qwen2)
    for inst in ([{"a": 1, "b": "x"}, {"a": 1, "b": "y"}], [{"a": 1, "b": "x"}, {"b": "x", "a": 1}],
                 [{"a": 1}, {"a": 1}], [{}, {"a": 2}, {}]):
        for text in (json.dumps(inst), json.dumps(inst, separators=(",", ":"))):
            toks = qwen2.longest_match(text.encode())
            assert feed(g, toks) == jsonschema.Draft202012Validator(schema).is_valid(inst), text
    g = constrain.compile(constrain.JsonSchema(ANY_SCHEMAS[0]), qwen2)
    for text in ("[1,2,1]", "[10, 1, 10.0]", "[3.5,3.50]", "[1,12,123]"):
        toks = qwen2.longest_match(text.encode())
        assert feed(g, toks) == jsonschema.Draft202012Validator(ANY_SCHEMAS[0]).is_valid(json.loads(text)), text


def test_a_prefix_with_no_new_completion_is_refused_where_it_is_made():
    # items of a string and a boolean: after {"k":"x","v":true} and {"k":"x","v":false},
    # a third item that closes "x" could only repeat one of them; the quote is refused
    # (before, the masks ran empty a few bytes later), and the string may go on instead
    schema = {"type": "array", "uniqueItems": True, "items": {
        "type": "object", "properties": {"k": {"type": "string"}, "v": {"type": "boolean"}},
        "required": ["k", "v"], "additionalProperties": False}}
    g = constrain.compile(constrain.JsonSchema(schema), BYTES)
    m = g.matcher()
    assert all(m.advance(t) for t in byte_tokens('[{"k": "x", "v": true}, {"k": "x", "v": false}, {"k": "x'))
    quote, y = byte_tokens('"y')
    assert not m.is_token_allowed(quote) and not _bit(m.mask_words(), quote)
    assert not m.advance(quote)
    assert m.advance(y) and all(m.advance(t) for t in byte_tokens('", "v": true}]'))
    assert m.is_token_allowed(BYTES.eos_token_ids[0])


def test_random_decoding_any_items_is_valid(qwen2):
    rng = np.random.default_rng(1)
    favour = np.zeros(qwen2.model_vocab_size)
    for t in range(qwen2.size):  # short numbers, separators and brackets likely: many repeats tried
        b = qwen2.token_bytes(t)
        if b and len(b) <= 2 and all(c in b"0123,]}{[\" :ab" for c in b):
            favour[t] = 6.0
    for schema in ANY_SCHEMAS:
        g = constrain.compile(constrain.JsonSchema(schema), qwen2)
        validator = jsonschema.Draft202012Validator(schema)
        finished = 0
        for _ in range(10):
            m = g.matcher()
            out = bytearray()
            try:
                for _step in range(160):
                    ids = m.allowed_token_ids()
                    assert len(ids), bytes(out)
                    t = int(ids[np.argmax(rng.normal(size=len(ids)) + favour[ids])])
                    assert m.advance(t)
                    if m.is_terminated():
                        break
                    out += qwen2.token_bytes(t)
            except constrain.MatcherError as e:
                assert "uniqueItems" in str(e)
                continue
            if m.is_terminated():
                finished += 1
                assert validator.is_valid(json.loads(out.decode())), out
        assert finished, schema


def test_items_from_a_long_enum_never_begin_a_used_value():
    # more values than are compiled into states: the matcher refuses an item begun that no
    # unused value completes, and a comma once every value is used
    values = [f"v{i}" for i in range(20)] + ["alpha", "alphabet"]
    schema = {"type": "array", "items": {"enum": values}, "uniqueItems": True}
    g = constrain.compile(constrain.JsonSchema(schema), BYTES)
    m = g.matcher()
    assert all(m.advance(t) for t in byte_tokens('["v1", "alpha", "v'))
    one, quote = byte_tokens('1"')
    assert m.advance(one)  # "v1" is used, "v10".."v19" are not
    assert not m.is_token_allowed(quote) and not _bit(m.mask_words(), quote)
    m = g.matcher()
    assert all(m.advance(t) for t in byte_tokens('["alpha", "alpha'))
    assert m.advance(byte_tokens("b")[0])  # toward "alphabet"
    m = g.matcher()
    assert all(m.advance(t) for t in byte_tokens('["alphabet", "alpha", "'))
    a, v = byte_tokens("av")
    assert not m.is_token_allowed(a) and not _bit(m.mask_words(), a)  # both values with "a" used
    assert m.is_token_allowed(v)
    m = g.matcher()
    text = "[" + ", ".join(json.dumps(v) for v in values)
    assert all(m.advance(t) for t in byte_tokens(text))
    comma, close = byte_tokens(",]")
    assert not m.is_token_allowed(comma) and m.is_token_allowed(close)


def test_enum_item_masks_equal_the_check_token_by_token(qwen2):
    # inside a string item from a known set, tokens of string content are judged without
    # a walk: there, each mask along random documents equals feeding every token the
    # grammar allows (the check's own answer)
    values = [f"feature/{w}" for w in ("a", "ab", "abc", "b", "ba", "caf\u00e9", "c\"q", "d", "dd")] + \
        [f"x{i}" for i in range(40)]
    item = {"enum": values}
    schemas = [{"type": "array", "items": item, "uniqueItems": True},
               {"type": "array", "items": {"type": "array", "items": item, "uniqueItems": True}}]
    rng = np.random.default_rng(3)
    looked = removed = 0
    for schema in schemas:
        g = constrain.compile(constrain.JsonSchema(schema), qwen2)
        checker = g.unique_checker
        opening = "[" if schema is schemas[0] else '[["feature/a"], ['
        for doc in range(12):
            m = g.matcher()
            # items written first: values with "feature/d" all used by some documents
            written = [json.dumps(str(v), ensure_ascii=False) for v in rng.permutation(values[:7])[: doc % 8]] + ['"feature/d"', '"feature/dd"']
            assert all(m.advance(t) for t in qwen2.longest_match((opening + ", ".join(written) + ", ").encode()))
            for _ in range(40):
                words = m.mask_words()
                s, track = m._stack[-1], m._tracks[-1]
                if checker._string_head(track) is not None:
                    looked += 1
                    grammar = g.engine.mask(s)
                    allowed = np.flatnonzero(np.unpackbits(grammar.view(np.uint8), bitorder="little")[: qwen2.size])
                    for t in allowed.tolist():
                        kept = checker.feed(s, track, qwen2.token_bytes(t)) is not None
                        assert _bit(words, t) == kept, (doc, t)
                        removed += not kept
                ids = m.allowed_token_ids()
                if not len(ids):
                    break
                # short tokens favoured: items end early, repeat and nest
                weights = np.array([4.0 if len(qwen2.token_bytes(int(t))) <= 2 else 1.0 for t in ids])
                assert m.advance(int(rng.choice(ids, p=weights / weights.sum())))
                if m.is_terminated():
                    break
    assert looked >= 20 and removed >= 20, (looked, removed)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_long_enum_items_agree_with_jsonschema(data):
    values = [f"v{i}" for i in range(18)] + ["a", "ab", "abc"]
    schema = {"type": "array", "items": {"enum": values}, "uniqueItems": True, "maxItems": 5}
    g = constrain.compile(constrain.JsonSchema(schema), BYTES)
    items = data.draw(st.lists(st.sampled_from(values), max_size=5))
    text = json.dumps(items)
    assert feed(g, byte_tokens(text)) == jsonschema.Draft202012Validator(schema).is_valid(items), text


def test_token_index_matches_its_definition():
    # the index is made with array operations; here each class is spelled out token by token
    from constrain.masking.unique import _DELIM, _ENDERS, _LITERALS, _TokenIndex

    vocab = real_vocab("smollm2")
    idx = _TokenIndex(vocab)
    want: dict = {k: [] for k in ("quoted", "quote_nest", "enders", "begin_end", "brackets", "open_end")}
    heads: dict = {}
    for t in range(vocab.size):
        data = vocab.token_bytes(t)
        if vocab.special_mask[t] or not data:
            continue
        q = data.find(b'"')
        lead = next((i for i, b in enumerate(data) if b not in _DELIM), -1)
        o = data.find(b"[")
        if q >= 0:
            if data.count(b'"') == 1 and b"\\" not in data and all(b in _DELIM for b in data[q + 1:]):
                heads.setdefault(data[:q], []).append(t)
            else:
                want["quoted"].append(t)
            if any(b in b"[]}" for b in data[q + 1:]):
                want["quote_nest"].append(t)
        if any(b in _ENDERS for b in data):
            want["enders"].append(t)
        if any(b in b"[]}" for b in data):
            want["brackets"].append(t)
        if lead >= 0 and (any(b in _ENDERS for b in data[lead + 1:]) or data[lead] in _LITERALS):
            want["begin_end"].append(t)
        if o >= 0 and any(b in _ENDERS for b in data[o + 1:]):
            want["open_end"].append(t)
    for name, ids in want.items():
        assert getattr(idx, name).tolist() == ids, name
    assert {k: v.tolist() for k, v in idx.by_head.items()} == heads
