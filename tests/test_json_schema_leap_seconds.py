"""``format: time`` and ``date-time``: second 60 only at 23:59 UTC, whatever the offset.

The format's regex is exact; the grammar's terminal admits the leap seconds whose offset
is a whole quarter hour, written in plain bytes (every one a time zone has had since 1972)
and never a time that is not valid."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsts_cases import accepts, suite_cases, with_draft

from constrain.automata import compile_terminal
from constrain.frontends.json_schema.formats import DATE_TIME, TIME, format_terminals
from constrain.grammar.ir import RegexTerm


def utc_is_2359(hh: int, mm: int, sign: str, oh: int, om: int) -> bool:
    """The reference: local time less the offset, by datetime arithmetic, is 23:59."""
    local = datetime(2000, 6, 15, hh, mm)
    offset = timedelta(hours=oh, minutes=om) * (1 if sign == "+" else -1)
    utc = local - offset
    return (utc.hour, utc.minute) == (23, 59)


def time_text(hh, mm, ss, frac, sign, oh, om) -> str:
    off = sign if sign in "Zz" else f"{sign}{oh:02d}:{om:02d}"
    return f"{hh:02d}:{mm:02d}:{ss:02d}{frac}{off}"


def valid(hh, mm, ss, sign, oh, om) -> bool:
    if ss < 60:
        return True
    if sign in "Zz":
        return (hh, mm) == (23, 59)
    return utc_is_2359(hh, mm, sign, oh, om)


def in_grammar(hh, mm, ss, sign, oh, om) -> bool:
    """What the grammar admits: every valid time, leap seconds where the offset's minutes
    are a quarter hour."""
    return valid(hh, mm, ss, sign, oh, om) and (ss < 60 or sign in "Zz" or om in (0, 15, 30, 45))


@pytest.fixture(scope="module")
def exact_dfa():
    return compile_terminal(RegexTerm(TIME, ascii=True))


@pytest.fixture(scope="module")
def grammar_dfa():
    (term,) = format_terminals("time")
    return compile_terminal(term)


def _offsets_near(hh: int, mm: int):
    out = {("Z", 0, 0), ("z", 0, 0)}
    for sign in "+-":
        for oh in {hh, (hh + 1) % 24, 23 - hh, (22 - hh) % 24, 0, 23}:
            for om in {0, 1, 15, 30, 45, 59, (mm + 1) % 60, 59 - mm, mm}:
                out.add((sign, oh, om))
    return out


def test_every_local_time_with_its_offsets(exact_dfa, grammar_dfa):
    # Every local hh:mm, with the offsets that make it 23:59 UTC and their neighbours.
    rx = re.compile(TIME, re.ASCII)
    for hh in range(24):
        for mm in range(60):
            for sign, oh, om in _offsets_near(hh, mm):
                for frac in ("", ".5"):
                    text = time_text(hh, mm, 60, frac, sign, oh, om)
                    data = text.encode()
                    assert exact_dfa.accepts(data) == valid(hh, mm, 60, sign, oh, om), text
                    assert (rx.fullmatch(text) is not None) == valid(hh, mm, 60, sign, oh, om), text
                    assert grammar_dfa.accepts(data) == in_grammar(hh, mm, 60, sign, oh, om), text


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 23), st.integers(0, 59), st.sampled_from([0, 30, 59, 60]), st.sampled_from(["", ".0", ".123"]),
       st.sampled_from(["Z", "+", "-"]), st.integers(0, 23), st.integers(0, 59))
def test_random_times_and_date_times(hh, mm, ss, frac, sign, oh, om):
    text = time_text(hh, mm, ss, frac, sign, oh, om)
    want = valid(hh, mm, ss, sign, oh, om)
    assert compile_terminal(RegexTerm(TIME, ascii=True)).accepts(text.encode()) == want, text
    dt = "1998-12-31T" + text
    assert compile_terminal(RegexTerm(DATE_TIME, ascii=True)).accepts(dt.encode()) == want, dt
    (term,) = format_terminals("date-time")
    assert compile_terminal(term).accepts(dt.encode()) == in_grammar(hh, mm, ss, sign, oh, om), dt


def test_escapes_spell_ordinary_times_only(grammar_dfa):
    # JSON may spell any character as \uXXXX: ordinary times keep that, leap seconds not.
    assert grammar_dfa.accepts(b"\\u0031\\u0032:30:00Z")
    assert grammar_dfa.accepts(b"23:59:60Z") and not grammar_dfa.accepts(b"23:59:\\u00360Z")


def test_negation_excludes_every_time():
    # ``not: {format: time}`` subtracts a superset: never a valid time, escaped or not.
    (loose,) = format_terminals("time", negated=True)
    dfa = compile_terminal(loose)
    for text in (b"23:59:60Z", b"05:16:60+05:17", b"23:59:\\u00360Z", b"12:00:00Z"):
        assert dfa.accepts(text), text
    schema = {"type": "string", "not": {"format": "time"}}
    for s in ("23:59:60Z", "05:16:60+05:17", "12:00:00+01:00"):
        assert not accepts(schema, json.dumps(s)), s
        assert not accepts(schema, '"' + "".join(f"\\u{ord(c):04x}" for c in s) + '"'), s
    assert accepts(schema, json.dumps("noon"))


CASES = suite_cases("optional/format/time.json") + suite_cases("optional/format/date-time.json")


@pytest.mark.skipif(not CASES, reason="JSON Schema Test Suite not present")
@pytest.mark.parametrize("draft, description, schema, data, valid", CASES)
def test_suite_time_and_date_time(draft, description, schema, data, valid):
    assert accepts(with_draft(schema, draft), json.dumps(data)) == valid, description
