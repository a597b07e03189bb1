"""Byte DFAs: invariants, set operations, realistic patterns, errors, limits, encodings."""

from __future__ import annotations

import itertools
import json
import random
import re
import time

import numpy as np
import pytest

import constrain

from constrain.automata import charset as cs
from constrain.automata import regex as regex_mod
from constrain.automata.dfa import ByteDFA, concat, difference, empty_dfa, intersect, literal_dfa, union
from constrain.automata.regex import compile_regex, compile_terminal
from constrain.errors import CompileLimitError, RegexError
from constrain.grammar.ir import Concat, Difference, Intersect, Lit, Union_
from constrain.grammar.ir import RegexTerm as Regex


def check_invariants(d: ByteDFA) -> None:
    t = d.transitions
    n = d.n_states
    assert t.dtype == np.int32 and t.shape == (n, 256) and d.accepting.shape == (n,)
    assert d.start == 0
    if d.is_empty():
        return
    # canonical BFS numbering: states appear in order of first discovery
    seen = [0]
    order = {0: 0}
    i = 0
    while i < len(seen):
        for b in range(256):
            x = int(t[seen[i], b])
            if x >= 0 and x not in order:
                order[x] = len(seen)
                seen.append(x)
        i += 1
    assert order == {s: s for s in range(n)}, "not canonically numbered / not all reachable"
    # every state reaches an accepting state
    live = set(np.flatnonzero(d.accepting).tolist())
    changed = True
    while changed:
        changed = False
        for s in range(n):
            if s not in live and any(int(x) in live for x in t[s] if x >= 0):
                live.add(s)
                changed = True
    assert len(live) == n, "not trimmed"
    # minimal: re-minimizing changes nothing
    assert ByteDFA.from_table(t, d.accepting).key == d.key


def brute(d: ByteDFA, alphabet: bytes, maxlen: int) -> set:
    out = set()
    for n in range(maxlen + 1):
        for tup in itertools.product(alphabet, repeat=n):
            s = bytes(tup)
            if d.accepts(s):
                out.add(s)
    return out


# ----------------------------------------------------------------------------- DFA core


def test_literal_and_empty():
    d = literal_dfa(b"abc")
    check_invariants(d)
    assert d.accepts(b"abc") and not d.accepts(b"ab") and not d.accepts(b"abcd")
    e = empty_dfa()
    assert e.is_empty() and not e.accepts_empty() and e.n_states == 1
    assert literal_dfa(b"").accepts_empty()
    assert compile_regex("[^\\s\\S]").key == e.key
    assert compile_regex("a[^\\s\\S]b").is_empty()


def test_set_operations_match_brute_force():
    pats = ["a*b", "(ab|b)*", "a?b?", "[ab]{2}", "b+a"]
    dfas = [compile_regex(p) for p in pats]
    langs = [brute(d, b"ab", 4) for d in dfas]
    for (da, la), (db, lb) in itertools.product(zip(dfas, langs), repeat=2):
        for op, expect in ((union, la | lb), (intersect, la & lb)):
            r = op(da, db)
            check_invariants(r)
            assert brute(r, b"ab", 4) == expect
        r = difference(da, db)
        check_invariants(r)
        assert brute(r, b"ab", 4) == la - lb
        r = concat(da, db)
        check_invariants(r)
        want = {x + y for x in brute(da, b"ab", 4) for y in brute(db, b"ab", 4) if len(x + y) <= 4}
        assert brute(r, b"ab", 4) == want


def test_equal_languages_equal_keys():
    groups = [
        ["a", "a|a", "(a)", "a{1}", "(?:a)", "[a]", "a{1,1}", "(?P<x>a)"],
        ["a*", "a*a*", "(a*)*", "(?:a|a)*", "a{0,}", "(a+)?", "a*?"],
        ["[0-9]{2,3}", "[0-9][0-9][0-9]?", "\\d\\d\\d?" ],
        ["(ab|ac)", "a(b|c)", "a[bc]"],
    ]
    for g in groups:
        keys = {compile_regex(p, ascii=True).key for p in g}
        assert len(keys) == 1, g
    assert compile_regex("a").key != compile_regex("b").key
    assert union(compile_regex("ab"), compile_regex("ac")).key == compile_regex("a[bc]").key
    assert difference(compile_regex("[a-c]"), compile_regex("b")).key == compile_regex("[ac]").key


def test_invariants_on_various_patterns():
    for p in ["\\w+", "[^\"]{0,20}", "(a|b)*abb", "x(\\d{1,3}\\.){3}", "(?i:straße)", ".*", "\\S+@\\S+"]:
        check_invariants(compile_regex(p))
        check_invariants(compile_regex(p, json_string=True))
        check_invariants(compile_regex(p, search=True))


# ----------------------------------------------------------------------------- realistic patterns

def _word(i: int) -> str:
    rng = random.Random(i)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3 + i % 8))


WORDS = sorted({_word(i) for i in range(1000)})

REALISTIC = {
    "email": (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", ["a.b@ex.com", "x@y.io", "bad@x", "@x.com"]),
    "iso_date": (r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", ["2024-02-29", "2024-13-01", "1999-12-31"]),
    "date_time": (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                  ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123+01:00", "2024-01-02 03:04:05Z"]),
    "uuid": (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
             ["123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-42661417400"]),
    "ipv4": (r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)",
             ["192.168.0.1", "256.1.1.1", "1.2.3", "0.0.0.0"]),
    "ipv6": (r"(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|"
             r"([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|::)",
             ["2001:db8:0:0:0:0:2:1", "fe80::1", "::", "1:2:3:4:5:6:7:8:9"]),
    "url": (r"https?://[A-Za-z0-9.-]+(:\d+)?(/[^\s?#]*)?(\?[^\s#]*)?(#\S*)?",
            ["https://example.com/a/b?x=1#top", "http://h:80", "ftp://x", "https://ex.com/ä"]),
    "phone": (r"\+?1?[ -]?\(?\d{3}\)?[ -]?\d{3}[ -]?\d{4}", ["+1 (555) 123-4567", "555-123-4567", "12-34"]),
    "words_1000": ("|".join(WORDS), WORDS[:20] + ["zzzzzzzzzzzz", WORDS[0] + "x"]),
    "not_quote_500": (r'[^"]{0,500}', ["", "a" * 500, "a" * 501, 'ab"c', "é" * 300]),
    "nested_bounded": (r"((a|bc){1,3}d){2,4}", ["ad" * 2, "abcad" * 3, "ad", "ad" * 5]),
    "thousands": (r"\d{1,3}(,\d{3}){0,4}", ["1,000", "12,345,678", "1234", "1,00"]),
}


def _mutations(s: str, rng: random.Random, alphabet: str) -> list[str]:
    out = []
    for _ in range(8):
        if not s:
            out.append(rng.choice(alphabet))
            continue
        i = rng.randrange(len(s))
        op = rng.randrange(3)
        if op == 0:
            out.append(s[:i] + s[i + 1 :])
        elif op == 1:
            out.append(s[:i] + rng.choice(alphabet) + s[i:])
        else:
            out.append(s[:i] + rng.choice(alphabet) + s[i + 1 :])
    return out


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_realistic_patterns_compile_fast_and_agree(name):
    pattern, examples = REALISTIC[name]
    compile_regex("\\d\\w\\s")  # build the Unicode tables outside the timing
    t0 = time.perf_counter()
    dfa = compile_regex(pattern)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"{name} took {elapsed:.3f}s"
    rng = random.Random(0)
    rx = re.compile(pattern)
    alphabet = "".join(sorted(set("".join(examples)))) + "0a:.-é\"\n"
    cases = list(examples)
    for e in examples:
        cases += _mutations(e, rng, alphabet)
    for s in cases:
        assert dfa.accepts(s.encode()) == bool(rx.fullmatch(s)), (name, s)


def test_not_quote_500_size():
    d = compile_regex(r'[^"]{0,500}')
    assert d.accepts(("a" * 500).encode()) and not d.accepts(("a" * 501).encode())
    assert d.accepts(("\U0001F600" * 500).encode())
    assert 500 < d.n_states < 5000


def test_search_mode_anchors():
    d = compile_regex(r"(^a|b)c$", search=True)
    for s in ["ac", "xbc", "bc", "xac", "acx", "ac\n", "zzbc"]:
        assert d.accepts(s.encode()) == bool(re.search(r"(^a|b)c\Z", s)), s
    d = compile_regex("ab", search=True)
    assert d.accepts("x\ny\nab\n".encode())
    assert not d.accepts(b"a\xff")  # search still requires valid UTF-8


def test_ascii_mode_ecma_semantics():
    d = compile_regex(r"\d", ascii=True)
    assert d.accepts(b"7") and not d.accepts("\u0663".encode())
    assert compile_regex(r"\d").accepts("\u0663".encode())
    dot = compile_regex(".", ascii=True)
    for ch in "\n\r\u2028\u2029":
        assert not dot.accepts(ch.encode())
    assert dot.accepts("é".encode())
    sp = compile_regex(r"\s", ascii=True)
    for ch in " \t\n\r\f\v\u00a0\u2028\ufeff\u3000":
        assert sp.accepts(ch.encode()), repr(ch)
    assert not compile_regex("k", ascii=True, ignore_case=True).accepts("\u212a".encode())
    assert compile_regex("k", ignore_case=True).accepts("\u212a".encode())


# ----------------------------------------------------------------------------- json_string


def test_json_string_any_two_or_three_chars():
    d = compile_regex(r"[\s\S]{2,3}", json_string=True)
    rng = random.Random(1)
    pieces = ["a", "é", "\U0001F600", '\\"', "\\\\", "\\/", "\\n", "\\u00e9", "\\u00E9", "\\ud83d\\ude00",
              "\\uD83D\\uDE00", '"', "\\", "\x01", "\\ud83d", "\\x", "\\u12"]
    for _ in range(3000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        try:
            decoded = json.loads('"' + body + '"')
            ok = 2 <= len(decoded) <= 3 and not any(0xD800 <= ord(c) <= 0xDFFF for c in decoded)
        except ValueError:
            ok = False
        assert d.accepts(body.encode()) == ok, body


def test_json_string_format_patterns():
    d = compile_regex(r"\d{4}-\d{2}-\d{2}", ascii=True, json_string=True)
    assert d.accepts(b"2024-01-02") and d.accepts(b"\\u0032024-01-02") and not d.accepts(b"2024-01-2")
    q = compile_regex(r'a"b', json_string=True)
    assert q.accepts(b'a\\"b') and q.accepts(b"a\\u0022b") and not q.accepts(b'a"b')


# ----------------------------------------------------------------------------- errors and limits

UNSUPPORTED = [
    (r"(a)\1", 3, "backreference"),
    (r"(?P<n>a)(?P=n)", 8, "backreference"),
    (r"a(?=b)", 1, "lookaround"),
    (r"a(?!b)", 1, "lookaround"),
    (r"(?<=a)b", 0, "lookaround"),
    (r"x(?<!a)b", 1, "lookaround"),
    (r"(a)?(?(1)b|c)", 4, "conditional"),
    (r"ab\b", 2, "word boundary"),
    (r"a\Bb", 1, "word boundary"),
    (r"a*+", 2, "possessive"),
    (r"(?>a)", 0, "atomic"),
    (r"(?m)^a", 2, "MULTILINE"),
    (r"ab(", 2, "missing )"),
    (r"a)", 1, "unbalanced"),
    (r"*a", 0, "nothing to repeat"),
    (r"a**", 2, "multiple repeat"),
    (r"[a", 0, "unterminated"),
    (r"[z-a]", 1, "bad character range"),
    (r"a{3,2}", 1, "min repeat greater"),
    (r"\q", 0, "bad escape"),
    (r"a(?i)b", 1, "global flags"),
]


@pytest.mark.parametrize("pattern,pos,word", UNSUPPORTED)
def test_unsupported_constructs_raise_with_position(pattern, pos, word):
    with pytest.raises(RegexError) as info:
        compile_regex(pattern)
    assert info.value.position == pos, str(info.value)
    assert word.lower() in info.value.msg.lower()
    assert info.value.pattern == pattern


def test_supported_syntax_corners():
    cases = [
        (r"a{,2}", ["", "aa", "aaa"]), (r"a{}", ["a{}"]), (r"a{x}", ["a{x}"]), (r"\x41\u00e9\U0001F600", ["Aé😀"]),
        (r"\N{LATIN SMALL LETTER A}", ["a"]), (r"(?i)abc", ["ABC", "abd"]), (r"(?x) a b # c", ["ab", "a b"]),
        (r"(?s).", ["\n"]), (r"[]a]", ["]", "a"]), (r"[^]a]", ["]", "b"]), (r"\0\101", ["\x00A"]),
        (r"a(?#comment)b", ["ab"]), (r"(?i:a)b", ["Ab", "AB"]), (r"(?-i:a)b", ["ab", "Ab"]),
        (r"\Aa\Z", ["a", "a\n"]), (r"[\b]", ["\x08"]), (r"a|", ["", "a", "b"]),
    ]
    for pattern, strings in cases:
        d = compile_regex(pattern)
        for s in strings:
            assert d.accepts(s.encode()) == bool(re.fullmatch(pattern, s)), (pattern, s)
    d = compile_regex(r"(?-i:a)b", ignore_case=True)
    assert d.accepts(b"aB") and not d.accepts(b"Ab")


def test_limits_raise_compile_limit_error():
    with pytest.raises(CompileLimitError) as info:
        compile_regex(r"[ab]*a[ab]{20}", max_states=1000)
    assert "max_states" in str(info.value) and "[ab]*a[ab]{20}" in str(info.value)
    with pytest.raises(CompileLimitError) as info:
        # max_states out of reach: the time limit must be what stops it
        compile_regex(r"[ab]*a[ab]{30}", max_states=10_000_000, time_limit=0.05)
    assert "time_limit" in str(info.value)
    with pytest.raises(CompileLimitError):
        compile_regex(r"(a{1000}){1000}")


def test_repeated_word_list_equals_composed_dfa():
    # a big alternation that recurs and is repeated: compiled through a DFA of its own
    words = WORDS[:300]
    alt = "(" + "|".join(words) + ")"
    d = compile_regex(f"{alt}( {alt}){{0,3}}")
    one = union(*[literal_dfa(w.encode()) for w in words])
    more = concat(literal_dfa(b" "), one)
    opt = union(literal_dfa(b""), more)
    assert d == concat(one, opt, opt, opt)
    assert d.accepts(f"{words[0]} {words[1]} {words[2]} {words[3]}".encode())
    assert not d.accepts(f"{words[0]} {words[1]} {words[2]} {words[3]} {words[4]}".encode())
    assert compile_regex(f"{alt}( {alt})*") == concat(one, compile_regex(f"( {alt})*"))


def test_repeated_big_sub_expressions_with_anchors_and_limits(monkeypatch):
    alt = "(" + "|".join(WORDS[:300]) + ")"
    d = compile_regex(f"(^{alt}$|x){{2}}")  # anchors inside: built as an NFA
    assert d.accepts(b"xx") and not d.accepts(WORDS[0].encode() + b"x")
    rx = re.compile(f"(^{alt}$|x){{2}}")
    for s in ["xx", WORDS[0] + "x", "x" + WORDS[0], WORDS[0], WORDS[0] + "\n"]:
        assert d.accepts(s.encode()) == bool(rx.fullmatch(s)), s
    with pytest.raises(CompileLimitError) as info:
        compile_regex(f"{alt}( {alt}){{0,7}}", max_states=2000)
    assert "max_states=2000" in str(info.value)
    # a repeated sub-expression whose own DFA is bigger than its NFA stays an NFA
    big = "(((a|b)*a(a|b){11}|" + "|".join(WORDS[:150]) + ")(a|b)*;){2}"
    d = compile_regex(big)
    assert d.n_states < 2000 and d.accepts(b"ab" + b"a" * 11 + b"b;" + WORDS[3].encode() + b";")
    monkeypatch.setattr(regex_mod, "_SUB_MIN", 10**9)  # no sub-expression DFAs
    assert compile_regex(big) == d
    assert compile_regex(f"{alt}( {alt}){{0,2}}") == concat(compile_regex(alt), compile_regex(f"( {alt}){{0,2}}"))


# ----------------------------------------------------------------------------- terminals


def test_compile_terminal_ir():
    num = Regex(r"[0-9]+")
    assert compile_terminal(num) is compile_terminal(Regex(r"[0-9]+"))
    assert compile_terminal(Lit("ab")).accepts(b"ab")
    assert compile_terminal(Lit(b"\xff\x00")).accepts(b"\xff\x00")
    assert compile_terminal(Lit("Straße", ignore_case=True)).accepts("STRASSE".encode()) is False
    assert compile_terminal(Lit("Hello", ignore_case=True)).accepts(b"hELLO")
    d = compile_terminal(Difference(num, Lit("0")))
    assert d.accepts(b"10") and not d.accepts(b"0")
    d = compile_terminal(Intersect((num, Regex(r".{2}"))))
    assert d.accepts(b"12") and not d.accepts(b"1")
    d = compile_terminal(Concat((Lit("a"), num)))
    assert d.accepts(b"a12") and not d.accepts(b"a")
    d = compile_terminal(Union_((Lit("a"), num)))
    assert d.accepts(b"a") and d.accepts(b"9")
    s = compile_terminal(Regex(r"\d", search=True, ascii=True))
    assert s.accepts(b"ab3") and not s.accepts("ab\u0663".encode())


# ----------------------------------------------------------------------------- tables


def test_case_folding_matches_re():
    ranges = (list(range(0, 0x600)) + list(range(0x1C80, 0x1C90)) + list(range(0x1E00, 0x2000))
              + list(range(0x2100, 0x2200)) + list(range(0xFB00, 0xFB10)))
    universe = "".join(chr(c) for c in ranges)
    present = set(universe)
    for c in ranges:
        ch = chr(c)
        want = {m.group() for m in re.finditer(re.escape(ch), universe, re.IGNORECASE)}
        got = cs.fold(((c, c),))
        mine = {chr(x) for lo, hi in got for x in range(lo, hi + 1) if chr(x) in present}
        assert mine == want, (hex(c), sorted(map(hex, map(ord, mine ^ want))))


def test_unicode_class_tables_skip_only_empty_planes():
    for lo, hi in ((0x40000, 0xDFFFF), (0xE1000, 0x10FFFF)):
        for c in range(lo, hi + 1, 7):
            ch = chr(c)
            assert not (ch.isalnum() or ch.isspace() or ch.isdecimal())
    w = cs.unicode_class("w")
    for c in range(0, 0x30000, 13):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        assert cs.contains(w, c) == bool(re.fullmatch(r"\w", ch))
        assert cs.contains(cs.unicode_class("d"), c) == bool(re.fullmatch(r"\d", ch))
        assert cs.contains(cs.unicode_class("s"), c) == bool(re.fullmatch(r"\s", ch))


def test_utf8_encoding_of_ranges_is_exact():
    rng = random.Random(3)
    for _ in range(20):
        lo = rng.randrange(0, 0x110000)
        hi = min(0x10FFFF, lo + rng.choice([0, 5, 300, 5000, 70000]))
        d = compile_regex(f"[\\U{lo:08x}-\\U{hi:08x}]")
        probes = [lo, hi, lo - 1, hi + 1, (lo + hi) // 2] + [rng.randrange(0, 0x110000) for _ in range(30)]
        for c in probes:
            if 0 <= c <= 0x10FFFF and not 0xD800 <= c <= 0xDFFF:
                assert d.accepts(chr(c).encode()) == (lo <= c <= hi and not 0xD800 <= c <= 0xDFFF)
        assert not d.accepts(b"\xed\xa0\x80")  # an encoded surrogate is never accepted


# ----------------------------------------------------------------------------- kernels


def _reference_min_states(t: np.ndarray, acc: np.ndarray, start: int) -> int:
    """States of the minimal trimmed DFA, by plain Moore refinement in Python."""
    n = t.shape[0]
    reach = {start}
    stack = [start]
    while stack:
        s = stack.pop()
        for x in set(t[s].tolist()):
            if x >= 0 and x not in reach:
                reach.add(x)
                stack.append(x)
    live = {s for s in reach if acc[s]}
    changed = True
    while changed:
        changed = False
        for s in reach - live:
            if any(x in live for x in t[s].tolist() if x >= 0):
                live.add(s)
                changed = True
    if start not in live:
        return 1
    states = sorted(live)
    part = {s: int(acc[s]) for s in states}
    while True:
        sigs = {s: (part[s],) + tuple(part[x] if x in live else -1 for x in t[s].tolist()) for s in states}
        ids: dict = {}
        new = {s: ids.setdefault(sigs[s], len(ids)) for s in states}
        if len(ids) == len(set(part.values())):
            return len(ids)
        part = new


def test_minimization_matches_reference_on_random_tables():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 30))
        k = int(rng.integers(1, 4))
        small = rng.integers(-1, n, size=(n, k))
        small[rng.random((n, k)) > rng.random()] = -1
        cls = rng.integers(0, k, size=256)
        cls[:k] = np.arange(k)
        t = small[:, cls]
        acc = rng.random(n) < rng.random()
        start = int(rng.integers(0, n))
        d = ByteDFA.from_table(t, acc, start)
        check_invariants(d)
        assert d.n_states == _reference_min_states(t, acc, start)
        # renumbering the input changes nothing
        perm = rng.permutation(n)
        inv = np.argsort(perm)
        t2 = np.where(t[perm] >= 0, inv[np.maximum(t[perm], 0)], -1)
        assert ByteDFA.from_table(t2, acc[perm], int(inv[start])).key == d.key
        # and the language is the same on random strings
        for _ in range(20):
            s = bytes(rng.integers(0, k, size=int(rng.integers(0, 8))).tolist())
            q = start
            for b in s:
                q = int(t[q, b])
                if q < 0:
                    break
            assert d.accepts(s) == (q >= 0 and bool(acc[q]))


def test_concat_join_and_subset_paths_agree_with_regex():
    pairs = [('"', "[ab]*"), ("[ab]*", '"'), ("a*", "ab"), ("ab", "(ab)*"), ("a|ab", "b*"), ("(ab)*", "ab"),
             ("x", "y"), ("a?", "a?"), ("a+", "a+"), ("[^x]*", "x[^x]*"), ("", "a*"), ("ab|cd", "ef|g")]
    for r1, r2 in pairs:
        got = concat(compile_regex(r1), compile_regex(r2))
        check_invariants(got)
        assert got.key == compile_regex(f"(?:{r1})(?:{r2})").key, (r1, r2)
    parts = ["a", "(bc)*", "d?", "[a-d]+", "e"]
    got = concat(*[compile_regex(p) for p in parts])
    assert got.key == compile_regex("".join(f"(?:{p})" for p in parts)).key
    assert concat(compile_regex("a"), empty_dfa()).is_empty()


def test_wide_unions_and_regex_alternatives():
    words = WORDS[:60]
    dfas = [compile_regex(w) for w in words]
    u = union(*dfas)
    check_invariants(u)
    assert u.key == compile_regex("|".join(words)).key
    # Union_ of Regex terminals (merged into one alternation) equals the union of each
    regs = tuple(Regex(re.escape(w), json_string=True) for w in words[:20]) + (Regex("(?i)zz"), Lit("q"))
    merged = compile_terminal(Union_(regs))
    each = union(*[compile_terminal(r) for r in regs])
    assert merged.key == each.key
    assert merged.accepts(b"ZZ") and merged.accepts(b"q") and merged.accepts(words[0].encode())
    # a malformed member still raises, naming its own pattern
    with pytest.raises(RegexError):
        compile_terminal(Union_((Regex("a"), Regex("b)"))))


def test_long_bounded_json_string_is_linear():
    term = Concat((Lit('"'), Regex(r"[\s\S]{0,300}", json_string=True), Lit('"')))
    t0 = time.perf_counter()
    d = compile_terminal(term)
    elapsed = time.perf_counter() - t0
    check_invariants(d)
    assert d.n_states == 20 * 300 + 3
    assert d.accepts(b'"' + b"x" * 300 + b'"') and not d.accepts(b'"' + b"x" * 301 + b'"')
    assert d.accepts(b'"' + "é".encode() * 300 + b'"') and d.accepts(b'"' + b"\\u00e9" * 300 + b'"')
    assert elapsed < 5.0


# ----------------------------------------------------------------------------- direct JSON string DFAs

from constrain.automata._json_strings import JSON_STRING_REGEX  # noqa: E402

_KEY_CHARS = ["a", "b", "z", "A", "0", "u", "-", ".", " ", '"', "\\", "/", "\n", "\t", "\b", "\x00", "\x1f", "\x7f"]


def _general(term) -> ByteDFA:
    """The DFA of ``term`` the general way (products, concatenation, minimization)."""
    if isinstance(term, Difference):
        return difference(compile_terminal(term.left), compile_terminal(term.right))
    return concat(*[compile_terminal(p) for p in term.parts])


def _names_term(names) -> Difference:
    regs = tuple(Regex(re.escape(n), json_string=True) for n in names)
    return Difference(Regex(JSON_STRING_REGEX),
                      Concat((Lit('"'), regs[0] if len(regs) == 1 else Union_(regs), Lit('"'))))


@pytest.mark.parametrize("seed", range(6))
def test_string_except_names_equals_the_general_difference(seed):
    # "any key but the declared ones" is built from the names' trie; it must be the very
    # DFA (same canonical table) the difference of the two languages gives, escapes,
    # control characters, quotes, the empty name and shared prefixes included
    rng = random.Random(seed)
    for _ in range(25):
        names = sorted({"".join(rng.choice(_KEY_CHARS) for _ in range(rng.randint(0, 6)))
                        for _ in range(rng.randint(1, 7))})
        term = _names_term(names)
        assert regex_mod._excluded_names(term) == names
        got = regex_mod._terminal_dfa(term)
        check_invariants(got)
        assert got == _general(term), names


def test_string_except_names_with_alike_suffixes_equals_the_general_difference():
    # Trie nodes share states where their futures are equal: names that end alike, a
    # node that ends a name beside one that does not with the same children (they share
    # the states inside an escape), characters of one low nibble under different high
    # ones ('a' 0x61, 'q' 0x71: the last hex digit's state); the minimal DFA, as built
    rng = random.Random(11)
    alphabet = ["a", "q", "b", "r", "\n", "/", '"', "\\", "\x01", "\x11", "A", "Q"]
    for _ in range(150):
        chars = alphabet[:rng.randint(2, len(alphabet))]
        names = sorted({"".join(rng.choice(chars) for _ in range(rng.randint(0, 5)))
                        for _ in range(rng.randint(1, 9))})
        term = _names_term(names)
        got = regex_mod._terminal_dfa(term)
        check_invariants(got)
        assert got == _general(term), names
    for names in (["ab", "abc", "xc"], ["aa", "qa", "ba"], ["kind", "mind", "find", "kin"]):
        assert regex_mod._terminal_dfa(_names_term(names)) == _general(_names_term(names)), names


def test_string_except_names_by_example():
    d = regex_mod._terminal_dfa(_names_term(["kind", "apiVersion", "k"]))
    for text, ok in [('"kind"', False), ('"k"', False), ('"\\u006bind"', False), ('"ki\\u006Ed"', False),
                     ('"kin"', True), ('"kinds"', True), ('""', True), ('"apiversion"', True),
                     ('"\\u006b\\u0069"', True), ('"k\\n"', True), ('"kind', False)]:
        assert d.accepts(text.encode()) is ok, text
    # names that are not ASCII take the general path, with the same language
    term = _names_term(["é", "ü-x"])
    assert regex_mod._terminal_dfa(term) == _general(term)


def test_a_name_read_off_its_escaped_source_is_the_one_its_regex_parses_to():
    # The front ends write a name as re.escape(name): read back without parsing, it must
    # be what the regex parser makes of that source, for every character
    rng = random.Random(4)
    chars = [chr(c) for c in range(128)] + ["é", "中", "\u2028", "😀"]
    names = chars + ["".join(rng.choice(chars) for _ in range(rng.randint(0, 8))) for _ in range(500)]
    for name in names:
        part = Regex(re.escape(name), json_string=True)
        assert regex_mod._name(part) == regex_mod._parsed_name(part) == name, repr(name)
    for source in ["a.b", "a\\d", "[a]", "a|b", "\\x41", "a{2}"]:  # not a name's escape: parsed
        part = Regex(source, json_string=True)
        assert regex_mod._name(part) == regex_mod._parsed_name(part), source


@pytest.mark.parametrize("lo,hi", [(0, 0), (0, 1), (1, 1), (2, 2), (3, 7), (0, 40), (5, 64), (1, 255)])
def test_bounded_json_string_equals_the_general_concatenation(lo, hi):
    term = Concat((Lit('"'), Regex(r"[\s\S]{%d,%d}" % (lo, hi), json_string=True), Lit('"')))
    got = regex_mod._terminal_dfa(term)
    check_invariants(got)
    assert got == _general(term)
    for text in ['"' + "x" * lo + '"', '"' + "é" * hi + '"', '"' + "\\u00e9" * lo + '"']:
        assert got.accepts(text.encode())
    assert not got.accepts(('"' + "x" * (hi + 1) + '"').encode())
    if lo:
        assert not got.accepts(('"' + "\\n" * (lo - 1) + '"').encode())


def test_bounded_json_string_past_the_state_limit_keeps_the_limit_error():
    term = Concat((Lit('"'), Regex(r"[\s\S]{0,100000}", json_string=True), Lit('"')))
    with pytest.raises(CompileLimitError, match="at most 100000 characters.*max_regex_states"):
        compile_terminal(term)
    # just past the limit (20 states a character here): the limit error, with the same DFA
    # one character shorter just inside it
    ok = Concat((Lit('"'), Regex(r"[\s\S]{0,3}", json_string=True), Lit('"')))
    assert compile_terminal(ok, constrain.Limits(max_regex_states=63)).n_states == 63
    with pytest.raises(CompileLimitError, match="max_regex_states"):
        compile_terminal(Concat((Lit('"'), Regex(r"[\s\S]{0,4}", json_string=True), Lit('"'))),
                         constrain.Limits(max_regex_states=63))


def test_literal_sets_build_the_dfa_of_their_union():
    # an enum's values compile as one trie, minimized: the DFA a union of their literal
    # DFAs gives, bytes of every kind (a quote, NUL, 0xff), prefixes of each other, ""
    from constrain.automata.dfa import literals_dfa

    rng = random.Random(7)
    alphabet = b'ab"\x00\xff'
    for _ in range(200):
        words = sorted({bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
                        for _ in range(rng.randint(1, 30))})
        got = literals_dfa(words)
        check_invariants(got)
        assert got == (union(*map(literal_dfa, words)) if len(words) > 1 else literal_dfa(words[0]))
        for _ in range(20):
            w = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            assert got.accepts(w) == (w in words)
    every_byte = [bytes([b]) for b in range(256)]  # no byte left over for a class of its own
    assert literals_dfa(every_byte) == union(*map(literal_dfa, every_byte))
    # through the terminal compiler: literals beside another part, a case-blind literal
    term = Union_((Lit('"AB"'), Lit('"AF"'), Regex("[0-9]+"), Lit(b'"x\xff"'), Lit("ok", ignore_case=True)))
    d = compile_terminal(term)
    for w, ok in ((b'"AB"', True), (b'"AF"', True), (b"12", True), (b'"x\xff"', True), (b"OK", True),
                  (b'"AX"', False), (b"", False), (b'"A', False)):
        assert d.accepts(w) == ok, w
    with pytest.raises(CompileLimitError):
        literals_dfa([b"%03d" % i for i in range(1000)], max_states=3)  # 4 states: 3 digits, then the end


def test_dfas_over_byte_classes_make_their_table_when_asked():
    # A bounded string's DFA is kept over its byte classes (a dozen columns, not 256); its
    # table, its store round trip and the lexer rows read from it are those of the same
    # DFA kept whole.
    from constrain.automata import store
    from constrain.masking.lexer import Lexer

    term = Concat((Lit('"'), Regex(r"[\s\S]{0,300}", json_string=True), Lit('"')))
    d = regex_mod._terminal_dfa(term)
    assert d._t is None
    tab, cls = d.class_table()
    assert tab.shape == (d.n_states, int(cls.max()) + 1) < (d.n_states, 256)
    assert d.accepts(b'"' + "é".encode() * 300 + b'"') and d._t is not None  # made when read
    whole = ByteDFA(d.transitions, d.accepting)
    assert np.array_equal(whole.transitions, np.take(tab, cls, axis=1)) and whole == d
    for dfa in (d, whole):
        table, classes = dfa.compact()
        assert np.array_equal(np.take(table, classes, axis=1), whole.transitions)
    (back,) = store.unpack(store.pack([regex_mod._terminal_dfa(term)]), 1)
    assert back._t is None and back == whole
    rows = []
    for dfa in (back, whole):
        lexer = Lexer([dfa], [], follow_bytes=[np.ones(256, dtype=np.bool_)])
        n = lexer.n_states
        rows.append((lexer.trans[:n].copy(), lexer.accept[:n].copy(), lexer.follow[:n].copy(),
                     lexer._narrow([0])))
    assert all(np.array_equal(a, b) for a, b in zip(rows[0][:3], rows[1][:3])) and rows[0][3] == rows[1][3]


def test_joint_classes_are_the_common_refinement_numbered_by_first_byte():
    from constrain.automata.dfa import joint_classes

    rng = random.Random(5)
    pool = [literal_dfa(bytes(rng.choice(b'ab-"\\\xc3\xa9z') for _ in range(rng.randint(1, 10)))) for _ in range(60)]
    pool += [compile_regex(p) for p in (r"[a-z]+", r"\d{3}-\d+", JSON_STRING_REGEX, r"[^\x00-\x1f]{2,5}", r"(?i)hello")]
    for _ in range(300):
        dfas = rng.sample(pool, rng.randint(1, 40))
        reps, cls = joint_classes(dfas)
        # two bytes share a class exactly where every DFA's own classes put them together,
        # and then no DFA tells them apart
        parts = np.stack([d._byte_partition() for d in dfas])
        cols = np.concatenate([d.transitions.T for d in dfas], axis=1)
        for a in range(0, 256, 7):
            same = (parts == parts[:, a:a + 1]).all(axis=0)
            assert np.array_equal(cls == cls[a], same)
            assert (cols[same] == cols[a]).all()
        assert list(reps) == sorted(int(np.flatnonzero(cls == k)[0]) for k in range(len(reps)))
        assert [int(cls[r]) for r in reps] == list(range(len(reps)))
