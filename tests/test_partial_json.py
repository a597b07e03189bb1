"""Partial values of streamed JSON text (constrain.serving.partial)."""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.serving.partial import MISSING, PartialJson, partial_value

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(a: Any, b: Any) -> bool:
    """Deep equality that also compares types, so True != 1 and 1 != 1.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def prefix_of(a: Any, b: Any) -> bool:
    """Whether partial value ``a`` can grow into ``b`` (the relation is transitive)."""
    if a is MISSING:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        keys, b_keys = list(a), list(b)
        positions = [b_keys.index(k) for k in keys if k in b]
        if len(positions) != len(keys) or positions != sorted(positions):
            return False
        return all(same(a[k], b[k]) for k in keys[:-1]) and (not keys or prefix_of(a[keys[-1]], b[keys[-1]]))
    if isinstance(a, list) and isinstance(b, list):
        if len(a) > len(b):
            return False
        return all(same(x, y) for x, y in zip(a[:-1], b)) and (not a or prefix_of(a[-1], b[len(a) - 1]))
    return same(a, b)


# Strings full of what needs escaping: quotes, backslashes, control characters, non-ASCII,
# astral characters (surrogate pairs under ensure_ascii) and lone surrogates.
_tricky_text = st.text(st.sampled_from(['"', "\\", "/", "\n", "\x00", "\x1f", "u", "é", "😀", "\ud83d", "\ude00", "a"]))
_strings = st.text(max_size=12) | _tricky_text
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _strings
)
json_values = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(_strings, kids, max_size=5),
    max_leaves=20,
)
_WHITESPACE = ["", "", "", " ", "  ", "\n", "\t", "\r\n    "]


def _spaced(v: Any, ws: Callable[[], str], ensure_ascii: bool) -> str:
    """``v`` serialized with ``ws()`` between every two tokens."""
    if isinstance(v, dict):
        members = [
            ws() + json.dumps(k, ensure_ascii=ensure_ascii) + ws() + ":" + ws() + _spaced(x, ws, ensure_ascii) + ws()
            for k, x in v.items()
        ]
        return "{" + (",".join(members) if members else ws()) + "}"
    if isinstance(v, list):
        items = [ws() + _spaced(x, ws, ensure_ascii) + ws() for x in v]
        return "[" + (",".join(items) if items else ws()) + "]"
    return json.dumps(v, ensure_ascii=ensure_ascii)


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    v = draw(json_values)
    ensure_ascii = draw(st.booleans())
    if draw(st.booleans()):
        indent = draw(st.sampled_from([None, 2]))
        separators = draw(st.sampled_from([None, (",", ":"), (", ", ": "), (" , ", " : ")]))
        return json.dumps(v, indent=indent, separators=separators, ensure_ascii=ensure_ascii)
    rng = draw(st.randoms(use_true_random=False))
    ws = lambda: rng.choice(_WHITESPACE)  # noqa: E731
    return ws() + _spaced(v, ws, ensure_ascii) + ws()


def _chunks(text: str, sizes: list[int]) -> list[str]:
    out, i, k = [], 0, 0
    while i < len(text):
        n = sizes[k % len(sizes)]
        out.append(text[i:i + n])
        i, k = i + n, k + 1
    return out


@SETTINGS
@given(json_texts())
def test_every_prefix_is_a_prefix_of_the_final_value_and_grows(text: str) -> None:
    final = json.loads(text)
    parser = PartialJson()
    previous = parser.value()
    assert previous is MISSING
    for c in text:
        parser.feed(c)
        current = parser.value()
        assert prefix_of(current, final), (current, final)
        assert prefix_of(previous, current), (previous, current)
        previous = current
    assert parser.error is None
    parser.finish()
    assert parser.error is None
    assert same(parser.value(), final)


@SETTINGS
@given(json_texts(), st.lists(st.integers(1, 20), min_size=1, max_size=8))
def test_chunked_feeding_matches_one_shot(text: str, sizes: list[int]) -> None:
    final = json.loads(text)
    parser = PartialJson()
    fed = 0
    for chunk in _chunks(text, sizes):
        parser.feed(chunk)
        fed += len(chunk)
        assert same(parser.value(), partial_value(text[:fed]))
        assert prefix_of(parser.value(), final)
    parser.finish()
    assert parser.error is None
    assert same(parser.value(), final)


def _error_offset(error: str) -> int:
    m = re.search(r"offset (\d+)", error)
    assert m, error
    return int(m.group(1))


_JSONISH = st.text(st.sampled_from(list('{}[]",: \n0123456789-+.eEtrufalsn\\') + ["\x01"]), max_size=30)


@st.composite
def _corrupted_texts(draw: st.DrawFn) -> str:
    text = draw(json_texts())
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(list('{}[]",:x0-.e\\') + ["\x01"])) + text[at:]


@SETTINGS
@given(_JSONISH | _corrupted_texts(), st.lists(st.integers(1, 20), min_size=1, max_size=8))
def test_bad_text_keeps_the_last_good_value(text: str, sizes: list[int]) -> None:
    parser = PartialJson()
    for chunk in _chunks(text, sizes):
        parser.feed(chunk)
        parser.value()
    parser.finish()
    try:
        expected = json.loads(text)
    except (ValueError, RecursionError):
        expected = MISSING
    if expected is not MISSING:
        assert parser.error is None
        assert same(parser.value(), expected)
        return
    assert parser.error is not None
    good = _error_offset(parser.error)
    assert good <= len(text)
    before = PartialJson()
    before.feed(text[:good])
    assert before.error is None
    assert same(parser.value(), before.value())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", MISSING),
        ("  \n", MISSING),
        ('{"a": 1, "b": [1, 2', {"a": 1, "b": [1]}),
        ('{"a": "hel', {}),
        ('{"a": {"b": tr', {"a": {}}),
        ("[1, 2", [1]),
        ('"ab', MISSING),
        ('"ab"', "ab"),
        ("[", []),
        ('{"a', {}),
        ('{"a": ', {}),
        ('{"a": [', {"a": []}),
        ("[[1, [2", [[1, []]]),
        ("[{", [{}]),
        ("12", MISSING),
        ("12 ", 12),
        ("[12 ", [12]),
        ("[1.5e3,", [1500.0]),
        ("[-0]", [0]),
        ("tru", MISSING),
        ("true", True),
        ("null", None),
        ("[null, fals", [None]),
        ('"\\ud83d', MISSING),
        ('["\\ud83d\\ude00", ', ["😀"]),
        ('["\\ud800", "\\u00e9\\n\\"', ["\ud800"]),
        ('{"a": 1, "b": {"c": [true, {"d": "x"}, 3', {"a": 1, "b": {"c": [True, {"d": "x"}]}}),
    ],
)
def test_examples(text: str, expected: Any) -> None:
    assert same(partial_value(text), expected)


@pytest.mark.parametrize(
    "text",
    ["12", "-0", "1.5", "-1.25e-3", "1E+2", "123456789012345678901234567890", "1e400", '"x"', "[]", '{"a": 1, "a": [2]}'],
)
def test_finish_completes_the_document(text: str) -> None:
    parser = PartialJson()
    parser.feed(text)
    parser.finish()
    assert parser.error is None
    assert same(parser.value(), json.loads(text))


@pytest.mark.parametrize(("text", "value"), [("[1, 2", [1]), ("", MISSING), ("1.", MISSING), ('{"a": tr', {})])
def test_finish_on_truncated_text_sets_error(text: str, value: Any) -> None:
    parser = PartialJson()
    parser.feed(text)
    parser.finish()
    assert parser.error is not None and "end of input" in parser.error
    assert same(parser.value(), value)


@pytest.mark.parametrize(
    ("text", "offset", "value"),
    [
        ("[1, 2x", 5, [1]),
        ('{"a": 1,}', 8, {"a": 1}),
        ("[01]", 2, []),
        ("[1.]", 3, []),
        ("1 2", 2, 1),
        ("NaN", 0, MISSING),
        ("Infinity", 0, MISSING),
        ("[-Infinity]", 2, []),
        ('["a\x01"]', 3, []),
        ('["\\x"]', 3, []),
        ('["\\u12g4"]', 6, []),
        ("[true1]", 5, [True]),
        ("{1: 2}", 1, {}),
        ("[1" + "1" * 5000 + "]", 1, []),
    ],
)
def test_invalid_text_sets_error_and_keeps_value(text: str, offset: int, value: Any) -> None:
    parser = PartialJson()
    parser.feed(text)
    assert parser.error is not None and _error_offset(parser.error) == offset, parser.error
    assert same(parser.value(), value)
    parser.feed('"more"]')
    parser.finish()
    assert _error_offset(parser.error) == offset
    assert same(parser.value(), value)


def test_feed_after_finish_is_an_error() -> None:
    parser = PartialJson()
    parser.feed("[1]")
    parser.finish()
    parser.feed(" ")
    assert parser.error is not None and _error_offset(parser.error) == 3
    assert parser.value() == [1]


def test_deep_nesting_does_not_recurse() -> None:
    value = partial_value("[" * 20000)
    depth = 0
    while value:
        value = value[0]
        depth += 1
    assert value == [] and depth == 19999


def test_returned_values_are_not_changed_by_later_text() -> None:
    parser = PartialJson()
    parser.feed('{"a": [1, ')
    first = parser.value()
    parser.feed('2], "b": {"c": 3, ')
    assert first == {"a": [1]}
    assert parser.value() == {"a": [1, 2], "b": {"c": 3}}


def test_missing_is_falsy_and_not_none() -> None:
    assert MISSING is not None and not MISSING and repr(MISSING) == "MISSING"


def test_incremental_cost_is_linear() -> None:
    rng = random.Random(0)
    doc = {"items": [{"id": i, "name": f"item {i} \u00e9\\", "tags": ["x", "y"], "score": i / 7, "ok": i % 2 == 0}
                     for i in range(250)]}
    text = json.dumps(doc, indent=2)
    assert len(text) > 20_000
    start = time.perf_counter()
    parser = PartialJson()
    for c in text:  # the worst case: one character a delta, a value() after each
        parser.feed(c)
        parser.value()
    one_char = time.perf_counter() - start
    parser = PartialJson()
    i = 0
    while i < len(text):
        n = rng.randint(1, 20)
        parser.feed(text[i:i + n])
        parser.value()
        i += n
    parser.finish()
    assert parser.value() == doc
    assert one_char < 5.0, one_char
