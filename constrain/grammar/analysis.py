"""Grammar analysis over the IR: reduction, terminals used, optional terminals, FOLLOW.

Rules are given as ``{nonterminal: [alternative, ...]}`` with each alternative a tuple
of symbol names, as in :attr:`Grammar.rules`.
"""

from __future__ import annotations

from itertools import chain, compress
from typing import Iterable

import numpy as np

from ..errors import UnsatisfiableError
from ._fixpoints import first_sets, follow_sets, nullable_rules, productive_kept
from .ir import Grammar

__all__ = ["Rules", "Coded", "reduce", "one_rule_reduction", "prune", "terminals_used", "optionalize",
           "terminal_follow", "terminal_follow_bits", "terminal_follow_rows", "nullable"]

Rules = dict[str, list[tuple[str, ...]]]


class Coded:
    """Rules as the flat integer arrays the kernels of :mod:`._fixpoints` read: the
    nonterminals are symbols ``0 .. n_nt - 1`` in the rules' order, then ``others`` (the
    terminals), then any other name an alternative uses. ``alts``: every alternative
    (the rules' own tuples), rule by rule; rule ``r``'s are ``rule_off[r] ..
    rule_off[r + 1] - 1``, alternative ``a``'s symbols ``syms[alt_off[a]:alt_off[a + 1]]``.
    Made with C-level passes over the names (a Python loop per symbol use, ten thousand
    in a large schema's grammar, was most of an analysis)."""

    __slots__ = ("heads", "symbols", "index", "n_nt", "rule_off", "alt_off", "syms", "alts")

    def __init__(self, rules: Rules, others: Iterable[str] = ()):
        self.heads = heads = list(rules)
        self.n_nt = len(heads)
        index = dict(zip(heads, range(len(heads))))
        for s in others:
            if s not in index:
                index[s] = len(index)
        self.alts = alts = list(chain.from_iterable(rules.values()))
        lengths = np.fromiter(map(len, alts), dtype=np.int64, count=len(alts))
        n_uses = int(lengths.sum())
        try:
            syms = np.fromiter(map(index.__getitem__, chain.from_iterable(alts)), dtype=np.int64, count=n_uses)
        except KeyError:  # a name that is neither a rule nor one of ``others``
            for s in chain.from_iterable(alts):
                index.setdefault(s, len(index))
            syms = np.fromiter(map(index.__getitem__, chain.from_iterable(alts)), dtype=np.int64, count=n_uses)
        self.index = index
        self.symbols = list(index)
        self.syms = syms
        self.alt_off = _offsets(lengths)
        self.rule_off = _offsets(np.fromiter(map(len, rules.values()), dtype=np.int64, count=len(heads)))


def _offsets(lengths: np.ndarray) -> np.ndarray:
    off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    return off


def reduce(grammar: Grammar, dead_terminals: frozenset[str] = frozenset()) -> Rules:
    """The rules reachable from the start, without unproductive alternatives, in the
    order a depth-first walk from the start meets them.

    ``dead_terminals`` are terminals whose language is empty. Raises
    :class:`UnsatisfiableError` when the start derives no finite string.
    """
    if grammar.start not in grammar.rules:
        raise UnsatisfiableError(f"the start rule {grammar.start!r} derives no finite string")
    coded = Coded(grammar.rules, grammar.terminals)
    index = coded.index
    live = np.zeros(len(coded.symbols), dtype=np.bool_)
    live[np.fromiter((index[t] for t in grammar.terminals if t not in dead_terminals), dtype=np.int64)] = True
    order, n_kept, keep = productive_kept(coded.n_nt, coded.rule_off, coded.alt_off, coded.syms, live,
                                             index[grammar.start])
    if n_kept == 0:
        raise UnsatisfiableError(f"the start rule {grammar.start!r} derives no finite string")
    # (rules that keep every alternative, most of them: a copy of their list)
    dropped = set((np.searchsorted(coded.rule_off, np.flatnonzero(~keep), side="right") - 1).tolist())
    order = order[:n_kept].tolist()
    heads, lists = coded.heads, list(grammar.rules.values())
    kept: Rules = dict(zip(map(heads.__getitem__, order), map(list.copy, map(lists.__getitem__, order))))
    for r in dropped:
        if heads[r] in kept:
            lo, hi = int(coded.rule_off[r]), int(coded.rule_off[r + 1])
            kept[heads[r]] = list(compress(coded.alts[lo:hi], keep[lo:hi].tolist()))
    return kept


def one_rule_reduction(grammar: Grammar, dead_terminals: frozenset[str]) -> Rules | None:
    """What :func:`reduce` gives for a grammar of one rule whose alternatives are all
    sequences of live terminals (nothing to drop), else None; cheaper to find out."""
    rules = grammar.rules
    if len(rules) != 1 or grammar.start not in rules:
        return None
    alts = rules[grammar.start]
    terminals = grammar.terminals
    for alt in alts:
        if not alt:
            continue
        for s in alt:
            if s not in terminals or s in dead_terminals:
                return None
    if not alts:
        return None
    return {grammar.start: list(alts)}


def prune(grammar: Grammar) -> Grammar:
    """``grammar`` with only the rules :func:`reduce` keeps and the terminals they use
    (ignored terminals included), rules and terminals in their original order.

    Raises :class:`UnsatisfiableError` when the start derives no finite string.
    """
    kept = reduce(grammar)
    used = set(terminals_used(kept, grammar))
    return Grammar(
        start=grammar.start,
        rules={n: kept[n] for n in grammar.rules if n in kept},
        terminals={n: t for n, t in grammar.terminals.items() if n in used},
        ignore=grammar.ignore,
        priorities={n: p for n, p in grammar.priorities.items() if n in used},
        longest_match=grammar.longest_match,
        separate_literals=grammar.separate_literals,
    )


def terminals_used(rules: Rules, grammar: Grammar) -> list[str]:
    """Terminal names the rules use, in first-use order, then the ignored terminals."""
    terminals = grammar.terminals
    seen = dict.fromkeys(chain.from_iterable(chain.from_iterable(rules.values())))
    out = [s for s in seen if s in terminals]
    for s in grammar.ignore:
        if s not in seen:
            seen[s] = None
            out.append(s)
    return out


def optionalize(grammar: Grammar, names: set[str]) -> Grammar:
    """``grammar`` with each use of a terminal in ``names`` replaced by a rule ``T | <empty>``."""
    rules = {k: list(v) for k, v in grammar.rules.items()}
    wrap = {}
    for t in sorted(names):
        w = f"\0opt {t}"
        wrap[t] = w
        rules[w] = [(t,), ()]
    for k, alts in list(rules.items()):
        if k in wrap.values():
            continue
        rules[k] = [tuple(wrap.get(s, s) for s in alt) for alt in alts]
    return Grammar(
        grammar.start, rules, dict(grammar.terminals), grammar.ignore, dict(grammar.priorities), grammar.longest_match
    )


def nullable(rules: Rules) -> set[str]:
    """The nonterminals that derive the empty string."""
    coded = Coded(rules)
    flags = nullable_rules(coded.n_nt, coded.rule_off, coded.alt_off, coded.syms)
    return {coded.heads[i] for i in np.flatnonzero(flags).tolist()}


def terminal_follow(rules: Rules, terminals: set[str]) -> dict[str, set[str]]:
    """FOLLOW sets restricted to terminals: which terminals may come right after each one."""
    names = list(terminals)
    out: dict[str, set[str]] = {}
    for t, bits in zip(names, terminal_follow_bits(rules, names)):
        got = set()
        while bits:
            low_bit = bits & -bits
            got.add(names[low_bit.bit_length() - 1])
            bits ^= low_bit
        out[t] = got
    return out


def terminal_follow_bits(rules: Rules, names: list[str]) -> list[int]:
    """:func:`terminal_follow` as bit sets: per terminal of ``names``, bit ``i`` set when
    ``names[i]`` may come right after it."""
    rows = terminal_follow_rows(rules, names)
    return [int.from_bytes(row.tobytes(), "little") for row in rows.astype("<u8")]


def terminal_follow_rows(rules: Rules, names: list[str]) -> np.ndarray:
    """:func:`terminal_follow_bits` as rows of uint64 words (bit ``i`` of a row: word
    ``i >> 6``, bit ``i & 63``), one row per terminal of ``names``."""
    words = max(1, (len(names) + 63) // 64)
    coded = Coded(rules, names)
    if len(coded.syms) == 0 or int(np.diff(coded.alt_off).max()) <= 1:
        # no alternative puts one symbol after another (a single terminal, a choice of
        # them): nothing follows anything
        return np.zeros((len(names), words), dtype=np.uint64)
    index, n_nt = coded.index, coded.n_nt
    bitpos = np.full(len(coded.symbols), -1, dtype=np.int64)
    roots = np.fromiter((index[t] for t in names), dtype=np.int64, count=len(names))
    bitpos[roots] = np.arange(len(names), dtype=np.int64)
    empty = nullable_rules(n_nt, coded.rule_off, coded.alt_off, coded.syms)
    first = first_sets(n_nt, coded.rule_off, coded.alt_off, coded.syms, empty, bitpos, words)
    return follow_sets(n_nt, coded.rule_off, coded.alt_off, coded.syms, empty, first, bitpos, roots, words)
