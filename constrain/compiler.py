"""The compile pipeline: a grammar IR and a vocabulary in, the runtime pieces out.

Stages, in order: a byte DFA per terminal (one that matches the empty string becomes an
optional non-empty one) → grammar analysis (reduction, the terminals used, FOLLOW) →
parser → lexer (with the bytes that may start a lexeme after each terminal) → mask
engine, which makes the parse states nearest the start ahead of any mask.
"""

from __future__ import annotations

import numpy as np

from .automata.dfa import ByteDFA
from .automata.regex import compile_terminal
from .masking.lexer import Lexer
from .masking.masks import ALIKE_MIN_STATES, MaskEngine
from .masking.parser import EarleyParser, one_rule_parser
from .errors import UnsatisfiableError
from .grammar.analysis import Rules, one_rule_reduction, optionalize, reduce, terminal_follow, terminals_used
from .grammar.ir import Difference, Grammar, Lit
from .limits import DEFAULT_LIMITS, Limits
from .vocabulary import Vocabulary

__all__ = ["Runtime", "build"]


# What a compiled grammar runs on: (terminal names by terminal id, parser, lexer, mask
# engine). A plain tuple: compiling a small regex takes tens of microseconds, and a
# named tuple would add a few hundred nanoseconds to each.
Runtime = tuple[list[str], EarleyParser, Lexer, MaskEngine]


def build(grammar: Grammar, vocab: Vocabulary, limits: Limits = DEFAULT_LIMITS) -> Runtime:
    """Compile ``grammar`` against ``vocab`` within ``limits``: (terminal names by id,
    parser, lexer, mask engine).

    Raises :class:`GrammarError` for a malformed grammar, :class:`UnsatisfiableError`
    when no token sequence of ``vocab`` can produce its language, and what the terminal
    compiler and the parser raise (:class:`RegexError`, :class:`CompileLimitError`).
    """
    grammar.validate()
    dfas, optional, dead = terminal_dfas(grammar, limits)
    if optional:
        grammar = optionalize(grammar, optional)
    reduced = one_rule_reduction(grammar, dead)
    one_rule = reduced is not None
    if reduced is None:
        reduced = reduce(grammar, dead)
        used = [t for t in terminals_used(reduced, grammar) if t not in dead]
    else:
        used = [t for t in dfas if t not in dead]
    index = {t: i for i, t in enumerate(used)}
    if one_rule:
        # one rule over terminals (a regex, say): a parser every such grammar shares
        alts = tuple(tuple(index[s] for s in alt) for alt in reduced[grammar.start])
        parser = one_rule_parser(alts, len(index), limits.max_parser_states, limits.max_parser_items)
    else:
        parser = EarleyParser(grammar, index, max_states=limits.max_parser_states,
                              max_items_per_set=limits.max_parser_items, dead_terminals=dead, reduced=reduced)
    lexer = Lexer(
        [dfas[t] for t in used], [index[t] for t in grammar.ignore if t in index],
        follow_bytes=follow_bytes(grammar, reduced, dfas, used),
        longest_match=grammar.longest_match, separate_literals=grammar.separate_literals,
        references=_references(grammar, dfas, used, optional, limits), max_states=limits.max_lexer_states,
    )
    engine = MaskEngine(parser, lexer, vocab, max_walks_per_mask=limits.max_walks_per_mask)
    if not (one_rule and all(len(alt) == 1 for alt in alts)):
        # (a lexeme that is a whole document has no lexeme after it to prepare)
        engine.prepare()
    if not vocab.spells_every_byte:
        # With every single byte a token, any byte string can be spelled, so a live
        # lexer state always has a completion. Without that, check the start at least.
        words = engine.mask(engine.initial)
        if not words.any():
            raise UnsatisfiableError("no token of this vocabulary can start the spec's language")
    return used, parser, lexer, engine


def terminal_dfas(
    grammar: Grammar, limits: Limits = DEFAULT_LIMITS,
) -> tuple[dict[str, ByteDFA], set[str], frozenset[str]]:
    """The byte DFA of each terminal the rules use (and of the ignored ones), built within
    ``limits``, the terminals that match the empty string, and those whose language is empty.

    Lexemes are never empty: a terminal T that matches the empty string gets the DFA of
    T minus the empty string, and its uses become optional (see :func:`optionalize`)."""
    dfas = {}
    dead = set()
    optional = set()
    for name in terminals_used(grammar.rules, grammar):
        dfa = compile_terminal(grammar.terminals[name], limits)
        if dfa.accepts_empty():
            optional.add(name)
            dfa = compile_terminal(Difference(grammar.terminals[name], Lit(b"")), limits)
        if dfa.is_empty():
            dead.add(name)
        dfas[name] = dfa
    return dfas, optional, frozenset(dead)


def follow_bytes(grammar: Grammar, reduced: Rules, dfas: dict[str, ByteDFA], used: list[str]) -> list[np.ndarray]:
    """Per terminal of ``used``: the bytes that may start a lexeme right after one of its
    lexemes. The trie walk asks the parser only at nodes where a token goes on with one."""
    live = set(used)
    follow = terminal_follow(reduced, live)
    ignored = set(grammar.ignore)
    firsts: dict[str, np.ndarray] = {}

    def first(t: str) -> np.ndarray:
        got = firsts.get(t)
        if got is None:
            got = firsts[t] = dfas[t].transitions[dfas[t].start] >= 0
        return got

    ignore_first = np.zeros(256, dtype=np.bool_)
    for t in grammar.ignore:
        if t in live:
            ignore_first |= first(t)
    any_first = None
    out = []
    for t in used:
        if t in ignored:
            # An ignored lexeme may sit between any two lexemes: anything may follow it.
            if any_first is None:
                any_first = np.zeros(256, dtype=np.bool_)
                for u in used:
                    any_first |= first(u)
            out.append(any_first.copy())
            continue
        fb = ignore_first.copy()
        for u in follow[t]:
            fb |= first(u)
        out.append(fb)
    return out


def _references(grammar: Grammar, dfas: dict[str, ByteDFA], used: list[str], optional: set[str],
                limits: Limits) -> dict[int, ByteDFA]:
    """Reference DFAs by terminal id: a terminal "L but not R" (a key that is not one of
    the declared names) walks the vocabulary almost as L does, so the mask engine patches
    its walks from L's, which every grammar shares."""
    references = {}
    for i, t in enumerate(used):
        term = grammar.terminals[t]
        if isinstance(term, Difference) and t not in optional and dfas[t].n_states >= ALIKE_MIN_STATES:
            left = compile_terminal(term.left, limits)
            if 0 < left.n_states < dfas[t].n_states:
                references[i] = left
    return references
