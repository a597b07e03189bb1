"""``contentEncoding``/``contentMediaType``: assertions in draft 7 only (base64 enforced,
JSON documents refused as not regular), annotations in 2019-09 and later."""

from __future__ import annotations

import base64
import binascii
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsts_cases import accepts

from constrain.automata import compile_terminal
from constrain.errors import SchemaError
from constrain.frontends.json_schema import json_schema_to_grammar, merge
from constrain.frontends.json_schema.formats import BASE64, CONTENT_BASE64, format_terminals
from constrain.frontends.json_schema.strings import content_constraints
from constrain.grammar.ir import RegexTerm

D7 = "http://json-schema.org/draft-07/schema#"
D2020 = "https://json-schema.org/draft/2020-12/schema"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def rfc4648_base64(text: str) -> bool:
    """RFC 4648: the alphabet, in quanta of four, padding only to complete the last one
    (Python's decoder, which also takes surplus padding, decodes every such text)."""
    body = text.rstrip("=")
    pad = len(text) - len(body)
    ok = set(body) <= set(ALPHABET) and len(text) % 4 == 0 and pad == -len(body) % 4 and pad <= 2
    if ok:
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise AssertionError(f"Python cannot decode {text!r}") from None
    return ok


@pytest.fixture(scope="module")
def base64_dfa():
    return compile_terminal(RegexTerm(BASE64, ascii=True))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(ALPHABET + "=", max_size=14), st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode()),
                 st.text(ALPHABET + "=%- \n_", max_size=10)))
def test_base64_regex_is_rfc4648(text):
    dfa = compile_terminal(RegexTerm(BASE64, ascii=True))
    assert dfa.accepts(text.encode()) == rfc4648_base64(text), text


def test_base64_inside_json_strings(base64_dfa):
    (term,) = format_terminals(CONTENT_BASE64)
    dfa = compile_terminal(term)
    assert dfa.accepts(b"eyJmb28iOiAiYmFyIn0K") and dfa.accepts(b"ab\\/c") and dfa.accepts(b"")
    assert not dfa.accepts(b"eyJmb28iOi%iYmFyIn0K") and not dfa.accepts(b"{}") and not dfa.accepts(b"abc")


def test_what_each_draft_asserts():
    both = {"contentEncoding": "base64", "contentMediaType": "application/json"}
    fmts, unsupported = content_constraints(both, 7, "/p")
    assert fmts == [(CONTENT_BASE64, "/p/contentEncoding")]
    assert [(ptr, kw) for ptr, kw, _ in unsupported] == [("/p/contentMediaType", "contentMediaType")]
    assert content_constraints({"contentMediaType": "Application/JSON; charset=utf-8"}, 7, "")[1]
    assert content_constraints({"contentEncoding": "Base64", "contentMediaType": "image/png"}, 7, "") == (
        [(CONTENT_BASE64, "/contentEncoding")], [])
    assert content_constraints({"contentEncoding": "quoted-printable"}, 7, "") == ([], [])
    for draft in (4, 6, 2019, 2020):
        assert content_constraints(both, draft, "") == ([], [])


ROUTED = "contentEncoding" not in merge.ANNOTATIONS


@pytest.mark.skipif(not ROUTED, reason="merge.py does not pass contentEncoding/contentMediaType to the string merge")
def test_draft7_schemas():
    enc = {"$schema": D7, "contentEncoding": "base64"}
    assert accepts(enc, json.dumps("eyJmb28iOiAiYmFyIn0K")) and accepts(enc, "100") and accepts(enc, "{}")
    assert not accepts(enc, json.dumps("eyJmb28iOi%iYmFyIn0K"))
    for schema in ({"$schema": D7, "contentMediaType": "application/json"},
                   {"$schema": D7, "contentEncoding": "base64", "contentMediaType": "application/json"}):
        with pytest.raises(SchemaError, match="contentMediaType"):
            json_schema_to_grammar(schema)
    with pytest.warns(UserWarning):
        g, report = json_schema_to_grammar(
            {"$schema": D7, "contentEncoding": "base64", "contentMediaType": "application/json"}, strict=False)
    assert report.approximated
    loose = {"$schema": D7, "contentEncoding": "base64", "contentMediaType": "application/json"}
    assert not accepts(loose, json.dumps("{}"), strict=False)  # still base64
    assert accepts(loose, json.dumps("ezp9Cg=="), strict=False)  # base64 of "{:}\n": not JSON, approximated


@pytest.mark.skipif(not ROUTED, reason="merge.py does not pass contentEncoding/contentMediaType to the string merge")
def test_not_content_encoding_in_draft7():
    schema = {"$schema": D7, "type": "string", "not": {"contentEncoding": "base64"}}
    assert accepts(schema, json.dumps("%")) and not accepts(schema, json.dumps("abcd"))


def test_annotations_from_2019_on():
    for schema in ({"$schema": D2020, "contentEncoding": "base64", "contentMediaType": "application/json"},
                   {"$schema": D2020, "contentMediaType": "application/json", "contentSchema": {"type": "object"}}):
        assert accepts(schema, json.dumps("{:}")) and accepts(schema, json.dumps("%%")) and accepts(schema, "1")
    assert accepts({"$schema": D2020, "not": {"contentEncoding": "base64"}}, "1") is False  # not(annotations) = false
