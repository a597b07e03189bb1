"""The parser's one-loop path (``Parser.fast``) gives the recursive parser's AST, or
leaves the pattern to it; either way ``parse`` answers as the recursive parser does."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrain.automata.parse import Parser, parse
from constrain.errors import RegexError

FLAGS = [{}, {"ascii": True}, {"ignore_case": True}, {"search": True}, {"ascii": True, "ignore_case": True}]

PATTERNS = [
    "",
    "a",
    "abc",
    "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
    "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])",
    "((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
    "-?[1-9][0-9]{0,2}(,[0-9]{3}){0,4}(\\.[0-9]{1,4})?",
    "[a-zA-Z0-9._%+-]{1,40}@[a-zA-Z0-9-]{1,30}(\\.[a-zA-Z0-9-]{1,30}){0,3}\\.[a-zA-Z]{2,12}",
    "(\\+[1-9][0-9]{0,2}[ .-]?)?(\\([0-9]{3}\\)|[0-9]{3})[ .-]?[0-9]{3}[ .-]?[0-9]{4}",
    "[^\"]{0,500}",
    "(foo|bar|baz)( (foo|bar|baz)){0,7}",
    "^a$", "\\Aab\\Z", "a^", "$a", "^*", "a$+", "\\A?", "(\\A){2,}", "(^)*", "(?:$)?", "(^a)*", "((^))+",
    "a*?b+?c??d{2}?e{2,}?f{,3}?", "a{,}", "a{}", "a{", "a{1", "a{x}", "{", "}", "]", "a]b}",
    "a{3,2}", "a**", "a*+", "a++", "a?*", "a{2}{3}", "a{2}*", "*a", "+", "?", "(*)", "a|*",
    "(", ")", "a)", "(a", "((a)", "(a))", "()", "(|)", "a||b", "|", "(?:)", "(?:a|b)*",
    "(?i)abc", "(?i:a)b", "(?P<n>a)(?P=n)", "(?<n>a)", "(?=a)", "(?#c)a", "(?x) a b", "(?m)a",
    "(?P<n>a)|(?P<n>b)", "(?", "(?:", "(?:a",
    "\\", "a\\", "\\d\\D\\w\\W\\s\\S", "\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\\\/\\-",
    "\\n\\t\\r\\f\\v\\a", "\\x41\\u00e9\\U0001F600\\N{BULLET}", "\\0\\01\\101", "\\1", "(a)\\1", "\\b", "\\B",
    "\\q", "\\é", "\\ ", "\\\n", "\\x4", "\\u12", "\\U00110000",
    "[abc]", "[^abc]", "[]a]", "[^]a]", "[a-]", "[-a]", "[z-a]", "[]", "[^]", "[a", "[\\d.-]", "[\\w\\s]",
    "[^\"\\\\]", "[\\]]", "[\\x41-\\x5a]", "[a-\\d]", "[\\b]", "[[:alpha:]]", "[é-ü]", "[\\u00c0-\\u00ff]",
    ".", ".*", "a.b", "é+", "\U0001F600{2}", "ab*c", "ab{2}c", "x{2,3}y{0,}z{1,}",
    "((((((((a))))))))", "(" * 70 + "a" + ")" * 70, "(?:" * 70 + "a" + ")" * 70,
]


def _outcome(fn):
    try:
        return ("ok", fn())
    except RegexError as e:
        return ("error", str(e))
    except RecursionError:
        return ("recursion",)


def _check(pattern: str, flags: dict) -> None:
    general = _outcome(lambda: Parser(pattern, **flags).recursive())
    assert _outcome(lambda: parse(pattern, **flags)) == general, (pattern, flags)
    fast = _outcome(lambda: Parser(pattern, **flags).fast())
    if fast[0] == "ok" and fast[1] is not None:
        assert fast == general, (pattern, flags)


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: ",".join(f) or "plain")
def test_listed_patterns(flags):
    for p in PATTERNS:
        _check(p, flags)


def test_fast_path_taken_for_common_patterns():
    for p in PATTERNS[:12]:
        assert Parser(p).fast() is not None, p


def test_fast_path_shares_nodes():
    node = Parser("(ab|ba)[0-9][0-9]").fast()
    (ab, ba), d1, d2 = node[1][0][1], node[1][1], node[1][2]
    assert ab[1][0] is ba[1][1] and ab[1][1] is ba[1][0]
    assert d1 is d2


PIECES = ["a", "b", "é", "\U0001F600", "ab", "(", ")", "(?:", "|", "*", "+", "?", "??", "{2}", "{1,3}", "{,2}",
          "{2,}", "{", "}", "[a-c]", "[^x]", "[\\d]", "[", "]", "\\d", "\\.", "\\", "\\n", "\\x41", "\\1", "\\A",
          "\\Z", "\\b", "^", "$", ".", "-", "(?i)", "(?P<g>", "(?#c)", " ", "\n"]


def test_random_token_soup():
    rng = random.Random(7)
    for _ in range(3000):
        p = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        _check(p, rng.choice(FLAGS))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab().|*+?{}[]^-$\\d,0123é")), max_size=20), st.sampled_from(FLAGS))
def test_random_text(pattern, flags):
    _check(pattern, flags)
