"""The one-call ASCII path (``_ascii.ascii_nfa``) gives the general path's minimal DFA for
every pattern it takes, and leaves to the general path every pattern that path rejects."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrain.automata import _ascii, regex
from constrain.automata._jit import clock
from constrain.automata._regex_dfa import regex_table
from constrain.automata.parse import parse
from constrain.errors import CompileLimitError, RegexError

from test_regex_parse_paths import PATTERNS, PIECES


def _general(pattern: str, ecma: bool):
    """The general path's DFA key (or the error it raises)."""
    try:
        limits = regex._Limits(pattern, 100_000, 10.0)
        ast = parse(pattern, ascii=ecma)
        return ("ok", regex._compile_ast(ast, pattern, False, limits, regex._may_anchor(pattern)).key)
    except (RegexError, CompileLimitError) as e:
        return ("error", type(e).__name__)


def _ascii_path(pattern: str, ecma: bool):
    """The ASCII path's DFA key, or None where it declines."""
    if not pattern.isascii():
        return None
    limits = regex._Limits(pattern, 100_000, 10.0)
    dfa = regex._compile_ascii(pattern, ecma, limits)
    return None if dfa is None else ("ok", dfa.key)


def _check(pattern: str, ecma: bool) -> bool:
    fast = _ascii_path(pattern, ecma)
    if fast is None:
        return False
    assert fast == _general(pattern, ecma), (pattern, ecma)
    return True


@pytest.mark.parametrize("ecma", [False, True])
def test_listed_patterns(ecma):
    for p in PATTERNS:
        _check(p, ecma)


def test_common_patterns_take_the_ascii_path():
    for p in PATTERNS[1:9]:
        assert _check(p, False), p
    assert _check("\\d{4}-\\w+", True)
    for p in ["a.b", "[^a]", ".*x", "[^]a]{2}", "[^\\n\\-]+"]:  # "." and negated classes: non-ASCII too
        assert _check(p, False) and _check(p, True), p
    assert _check("[^\\d-]+", True) and not _check("[^\\d-]+", False)  # Unicode \\d: the general path
    # outside its subset: Unicode classes, anchors, special groups, non-ASCII characters
    for p in ["\\d", "^a", "(?P<n>a)", "\\s", "a*+", "é", "a{2}{3}", "(a", "a)", "[z-a]", "[^[a]"]:
        assert not _check(p, False), p


def test_random_token_soup():
    rng = random.Random(11)
    ascii_pieces = [p for p in PIECES if p.isascii()] + ["[\\w-]", "[a\\-z]", "[]-]", "\\w", "{0}", "{0,0}",
                                                         "{3,5}?", "(a|)", "[+--]"]
    taken = 0
    for _ in range(4000):
        p = "".join(rng.choice(ascii_pieces) for _ in range(rng.randint(1, 12)))
        taken += _check(p, rng.random() < 0.5)
    assert taken > 250  # the subset is not empty in practice


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab().|*+?{}[]-\\dw,0123:")), max_size=24), st.booleans())
def test_random_text(pattern, ecma):
    _check(pattern, ecma)


def test_declines_past_its_size():
    # repeats that make more NFA states than it lays out go to the general path
    pat = "(ab|cd){1000}"
    assert regex._compile_ascii(pat, False, regex._Limits(pat, 100_000, 10.0)) is None
    assert regex.compile_regex(pat).n_states == 3001


def test_limits_hold_on_the_ascii_path():
    pat = "(a|b)*a(a|b){14}"  # 2**15 subsets
    limits = regex._Limits(pat, 1000, 10.0)
    with pytest.raises(CompileLimitError, match="max_states=1000"):
        regex._compile_ascii(pat, False, limits)
    late = regex._Limits(pat, 100_000, 10.0)
    late.t0 = clock() - 20.0  # the limit clock, not perf_counter: it pauses in numba's compiler
    with pytest.raises(CompileLimitError, match="time_limit"):
        regex._compile_ascii(pat, False, late)


def test_nfa_layout():
    ok, n, ed, ep, final = _ascii.nfa("[a-c]x", False)
    assert ok and ed.shape[0] % 4 == 0 and ep.shape[0] % 2 == 0 and 0 < final < n
    m = ed.shape[0] // 4
    assert sorted(zip(ed[m : 2 * m].tolist(), ed[2 * m : 3 * m].tolist())) == [(97, 99), (120, 120)]


def _general_nfa(pattern: str, ecma: bool):
    """The general path's NFA of ``pattern`` (kernel inputs), or None."""
    try:
        limits = regex._Limits(pattern, 100_000, 10.0)
        ast = parse(pattern, ascii=ecma)
        nfa = regex._NFA(False, limits, {})
        final = nfa.build(ast, nfa.new())
    except (RegexError, CompileLimitError):
        return None
    return (nfa.n, *regex._kernel_inputs(nfa), final)


def test_bitset_kernel_gives_the_general_kernels_table():
    from constrain.automata._bitset_dfa import bitset_table

    rng = random.Random(5)
    pats = PATTERNS + ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 10))) for _ in range(1500)]
    compared = 0
    for p in pats:
        for ecma in (False, True):
            nfas = [_general_nfa(p, ecma)]
            if p.isascii():
                ok, n, ed, ep, final = _ascii.nfa(p, ecma)
                if ok:
                    nfas.append((n, ed, ep, np.zeros(0, np.int64), final))
            for got in nfas:
                if got is None or len(got[3]):
                    continue  # anchors: the general kernels only
                n, ed, ep, asr, final = got
                ok, table, acc, byte_cls = bitset_table(n, ed, ep, final, 100_001)
                if not ok:
                    continue
                want = regex_table(n, ed, ep, asr, final, 100_001, clock() + 60)
                assert want[3] == 0
                assert np.array_equal(table, want[0]) and np.array_equal(acc, want[1]), p
                assert np.array_equal(byte_cls, want[2]), p
                compared += 1
    assert compared > 800


def test_bitset_kernel_leaves_large_subset_constructions():
    from constrain.automata._bitset_dfa import bitset_table

    pat = "(a|b)*a(a|b){9}"  # 2**10 subsets from an NFA of a few dozen states
    ok, n, ed, ep, final = _ascii.nfa(pat, False)
    assert ok and not bitset_table(n, ed, ep, final, 100_001)[0]
    dfa = regex.compile_regex(pat)  # the general kernels take it
    assert dfa.n_states == 1024 and dfa.accepts(b"b" + b"a" * 10) and not dfa.accepts(b"b" * 10)
