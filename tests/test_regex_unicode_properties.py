"""ECMA-262 Unicode property escapes (``\\p{...}``, ``\\P{...}``, ``u`` flag) in ECMA-mode
patterns (``ascii=True``: JSON Schema's ``pattern``), against the ``regex`` package."""

from __future__ import annotations

import json
import random
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsts_cases import accepts, suite_cases, with_draft
from test_regex_parse_paths import _check

from constrain.automata import charset as cs
from constrain.automata.regex import compile_regex
from constrain.errors import RegexError, SchemaError
from constrain.frontends.json_schema import json_schema_to_grammar
from constrain.frontends.json_schema.strings import pattern_search

regex = pytest.importorskip("regex")

# ECMA-262 spelling -> the regex package's.
PROPERTIES = {
    "L": "General_Category=L", "Letter": "General_Category=L", "Lu": "General_Category=Lu",
    "Uppercase_Letter": "General_Category=Lu", "LC": "General_Category=LC", "Cased_Letter": "General_Category=LC",
    "gc=Nd": "General_Category=Nd", "General_Category=Decimal_Number": "General_Category=Nd", "digit": "General_Category=Nd",
    "punct": "General_Category=P", "P": "General_Category=P", "Combining_Mark": "General_Category=M",
    "Zs": "General_Category=Zs", "Cn": "General_Category=Cn", "Co": "General_Category=Co", "S": "General_Category=S",
    "Script=Greek": "Script=Greek", "sc=Grek": "Script=Greek", "sc=Latn": "Script=Latin", "Script=Han": "Script=Han",
    "Script=Cyrillic": "Script=Cyrillic", "scx=Grek": "Script_Extensions=Greek", "Script_Extensions=Deva": "Script_Extensions=Devanagari",
    "sc=Zyyy": "Script=Common", "Script=Inherited": "Script=Inherited",
    "Alphabetic": "Alphabetic=Yes", "Alpha": "Alphabetic=Yes", "White_Space": "White_Space=Yes", "space": "White_Space=Yes",
    "Emoji": "Emoji=Yes", "Emoji_Presentation": "Emoji_Presentation=Yes", "ExtPict": "Extended_Pictographic=Yes",
    "Uppercase": "Uppercase=Yes", "Lower": "Lowercase=Yes", "Math": "Math=Yes", "Dash": "Dash=Yes",
    "Hex_Digit": "Hex_Digit=Yes", "AHex": "ASCII_Hex_Digit=Yes", "ID_Start": "ID_Start=Yes", "XIDC": "XID_Continue=Yes",
    "NChar": "Noncharacter_Code_Point=Yes", "RI": "Regional_Indicator=Yes", "Ideographic": "Ideographic=Yes",
}

# Code points near the edges of blocks and planes, and a spread of assigned characters.
SAMPLE = sorted({*range(0, 0x250), *range(0x370, 0x400), *range(0x900, 0x980), *range(0x1F300, 0x1F400),
                 *range(0x2000, 0x2070), *range(0xFFF0, 0x10010), 0x1FFFE, 0x1FFFF, 0x10FFFF, 0xE0001, 0xF0000,
                 *random.Random(5).sample(range(0x110000), 3000)} - set(range(0xD800, 0xE000)))


def reference(query: str, c: int) -> bool:
    return regex.fullmatch(r"\p{%s}" % query, chr(c)) is not None


@pytest.mark.parametrize("spec", list(PROPERTIES))
def test_property_code_points_agree_with_regex(spec):
    query = PROPERTIES[spec]
    pos = compile_regex(r"\p{%s}" % spec, ascii=True)
    neg = compile_regex(r"\P{%s}" % spec, ascii=True)
    cls = compile_regex(r"[^\p{%s}]" % spec, ascii=True)
    for c in SAMPLE:
        data = chr(c).encode("utf-8")
        want = reference(query, c)
        assert pos.accepts(data) == want, (spec, hex(c))
        assert neg.accepts(data) != want, (spec, hex(c))
        assert cls.accepts(data) != want, (spec, hex(c))


@pytest.mark.parametrize("spec", ["L", "Script=Greek", "Alphabetic", "Emoji"])
def test_ranges_equal_a_full_scan(spec):
    # The whole code space, one code point at a time, against the ranges' membership.
    r = cs.unicode_property(spec)
    rx = regex.compile(r"\p{%s}" % PROPERTIES[spec])
    got = [c for c in range(0x110000) if cs.contains(r, c)]
    want = [c for c in range(0x110000) if rx.match(chr(c))]
    assert got == want


def test_composite_categories_are_unions():
    for big, parts in {"L": "Lu Ll Lt Lm Lo", "LC": "Lu Ll Lt", "M": "Mn Mc Me", "N": "Nd Nl No",
                       "P": "Pc Pd Ps Pe Pi Pf Po", "S": "Sm Sc Sk So", "Z": "Zs Zl Zp",
                       "C": "Cc Cf Cs Co Cn"}.items():
        union = cs.normalize([x for p in parts.split() for x in cs.unicode_property(p)])
        assert cs.unicode_property(big) == union, big
    assert cs.unicode_property("Any") == cs.FULL and cs.unicode_property("ASCII") == ((0, 0x7F),)
    assert cs.unicode_property("Assigned") == cs.complement(cs.unicode_property("Cn"))


def test_general_category_agrees_with_unicodedata_where_both_know_the_character():
    # Python's unicodedata may be an older Unicode; characters it knows keep their category.
    lu = cs.unicode_property("Lu")
    for c in range(0x3000):
        cat = unicodedata.category(chr(c))
        if cat != "Cn" and not 0xD800 <= c <= 0xDFFF:
            assert cs.contains(lu, c) == (cat == "Lu"), hex(c)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(PROPERTIES)), st.sampled_from(sorted(PROPERTIES)),
       st.lists(st.integers(0, 0x10FFFF).filter(lambda c: not 0xD800 <= c <= 0xDFFF), min_size=1, max_size=4))
def test_classes_mixing_properties_agree_with_regex(a, b, cps):
    text = "".join(map(chr, cps))
    for pattern, ref in [
        (r"[\p{%s}\P{%s}x]+" % (a, b), r"[\p{%s}\P{%s}x]+" % (PROPERTIES[a], PROPERTIES[b])),
        (r"[^\p{%s}\d]+" % a, r"[^\p{%s}0-9]+" % PROPERTIES[a]),
        (r"\p{%s}|\P{%s}\p{%s}*" % (a, b, a), r"\p{%s}|\P{%s}\p{%s}*" % (PROPERTIES[a], PROPERTIES[b], PROPERTIES[a])),
    ]:
        want = regex.fullmatch(ref, text) is not None
        assert compile_regex(pattern, ascii=True).accepts(text.encode("utf-8")) == want, (pattern, text)
        assert pattern_search("^(?:" + pattern + ")$", text) == want, (pattern, text)


def test_inside_json_strings_escapes_count():
    # In a JSON Schema pattern the property applies to the decoded character.
    schema = {"type": "string", "pattern": r"^\p{Script=Greek}+$"}
    assert accepts(schema, '"αβ"') and accepts(schema, '"\\u03b1\\u03b2"')
    assert not accepts(schema, '"ab"') and not accepts(schema, '"\\u0061"')
    emoji = {"type": "string", "pattern": r"^\p{Emoji_Presentation}$"}
    assert accepts(emoji, '"😀"') and accepts(emoji, '"\\ud83d\\ude00"') and not accepts(emoji, '"a"')


@pytest.mark.parametrize("pattern, message", [
    (r"\p{Foo}", "unknown Unicode property 'Foo'"),
    (r"\p{letter}", "unknown Unicode property 'letter'"),
    (r"\p{Script}", "unknown Unicode property 'Script'"),
    (r"\p{Script=Foo}", "unknown Script value 'Foo'"),
    (r"\p{Script=greek}", "unknown Script value 'greek'"),
    (r"\p{gc=Letters}", "unknown General_Category value 'Letters'"),
    (r"\p{Letter=Yes}", "unknown Unicode property 'Letter'"),
    (r"\p{Alphabetic=Yes}", "unknown Unicode property 'Alphabetic'"),
    (r"\p{CWKCF}", "not available"),
    (r"\pL", "needs its property in braces"),
    (r"\p{L", "unterminated"),
    (r"[\p{L}-z]", "bad character range"),
])
def test_unknown_properties_are_errors_naming_them(pattern, message):
    with pytest.raises(RegexError, match=message.replace("(", r"\(")):
        compile_regex(pattern, ascii=True)
    with pytest.raises(SchemaError, match="pattern"):
        json_schema_to_grammar({"type": "string", "pattern": pattern})


def test_python_syntax_keeps_rejecting_property_escapes():
    # Regex(...) without ascii=True is Python's re, which has no \p.
    with pytest.raises(RegexError, match=r"bad escape \\p"):
        compile_regex(r"\p{L}")


def test_both_parser_paths_agree():
    for p in [r"\p{L}", r"a\P{Lu}+b", r"[\p{L}\d]", r"[^\p{Script=Greek}x-z]", r"(\p{N}|\p{P}){2,3}", r"\p{Foo}",
              r"\pL", r"\p{L", r"[\p{L}-z]", r"\p{}", r"\P{Any}", r"[\P{Any}a]"]:
        for flags in ({"ascii": True}, {"ascii": True, "search": True}, {}):
            _check(p, flags)


def test_empty_properties():
    assert not compile_regex(r"a\P{Any}b", ascii=True).accepts(b"ab")
    assert compile_regex(r"a[\P{Any}b]", ascii=True).accepts(b"ab")
    assert pattern_search(r"a[\P{Any}b]", "ab") and not pattern_search(r"^a[\P{Any}]", "ab")
    assert pattern_search(r"^[^\P{Any}]$", "x")


def test_pattern_properties_match_keys_by_property():
    schema = {"type": "object", "patternProperties": {r"^\p{Lu}": {"type": "integer"}},
              "additionalProperties": {"type": "string"}}
    assert accepts(schema, '{"Éa": 1, "x": "s"}')
    assert not accepts(schema, '{"Éa": "s"}') and not accepts(schema, '{"x": 1}')


CASES = suite_cases("pattern.json") + suite_cases("patternProperties.json")


@pytest.mark.skipif(not CASES, reason="JSON Schema Test Suite not present")
@pytest.mark.parametrize("draft, description, schema, data, valid", CASES)
def test_suite_pattern_cases(draft, description, schema, data, valid):
    assert accepts(with_draft(schema, draft), json.dumps(data, ensure_ascii=False)) == valid, description
