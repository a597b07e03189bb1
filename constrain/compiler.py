"""The compile pipeline: a grammar IR and a vocabulary in, the runtime pieces out.

Stages, in order: a byte DFA per terminal (one that matches the empty string becomes an
optional non-empty one) → grammar analysis (reduction, the terminals used, FOLLOW) →
parser → lexer (with the bytes that may start a lexeme after each terminal) → mask
engine, which makes the parse states nearest the start ahead of any mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .automata.dfa import ByteDFA
from .automata.regex import compile_terminal
from .masking.lexer import Lexer
from .masking.masks import ALIKE_MIN_STATES, MaskEngine
from .masking.parser import EarleyParser, one_rule_parser
from .errors import UnsatisfiableError
from .grammar._fixpoints import follow_first_bytes
from .grammar.analysis import Rules, one_rule_reduction, optionalize, reduce, terminal_follow_rows, terminals_used
from .grammar.ir import Difference, Grammar, Lit
from .limits import DEFAULT_LIMITS, Limits
from .vocabulary import Vocabulary

__all__ = ["Runtime", "Plan", "build", "plan", "assemble"]


# What a compiled grammar runs on: (terminal names by terminal id, parser, lexer, mask
# engine). A plain tuple: compiling a small regex takes tens of microseconds, and a
# named tuple would add a few hundred nanoseconds to each.
Runtime = tuple[list[str], EarleyParser, Lexer, MaskEngine]


@dataclass(frozen=True)
class Plan:
    """What a grammar compiles to before any vocabulary: the terminals used (their
    DFAs, the bytes that may follow each, reference DFAs), the reduced rules over them.
    Everything in it is plain data: :mod:`constrain._grammar_store` keeps plans on disk,
    and :func:`assemble` makes a runtime of one for a vocabulary."""

    start: str
    rules: dict[str, list[tuple[str, ...]]]  # reduced, over nonterminals and the names in `used`
    one_rule: bool  # rules is one rule over terminals only: a shared parser
    used: list[str]  # terminal names by terminal id
    dfas: list[ByteDFA]  # by terminal id
    ignore: list[int]  # terminal ids
    follow: np.ndarray  # bool [len(used), 256]
    references: dict[int, ByteDFA]
    longest_match: bool
    separate_literals: bool


def build(grammar: Grammar, vocab: Vocabulary, limits: Limits = DEFAULT_LIMITS) -> Runtime:
    """Compile ``grammar`` against ``vocab`` within ``limits``: (terminal names by id,
    parser, lexer, mask engine).

    Raises :class:`GrammarError` for a malformed grammar, :class:`UnsatisfiableError`
    when no token sequence of ``vocab`` can produce its language, and what the terminal
    compiler and the parser raise (:class:`RegexError`, :class:`CompileLimitError`).
    """
    return assemble(plan(grammar, limits), vocab, limits)


def plan(grammar: Grammar, limits: Limits = DEFAULT_LIMITS) -> Plan:
    """The vocabulary-independent part of :func:`build`."""
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
    follow = follow_bytes(grammar, reduced, dfas, used)
    return Plan(
        start=grammar.start, rules=reduced, one_rule=one_rule, used=used, dfas=[dfas[t] for t in used],
        ignore=[index[t] for t in grammar.ignore if t in index],
        follow=np.array(follow, dtype=np.bool_).reshape(len(used), 256),
        references=_references(grammar, dfas, used, optional, limits),
        longest_match=grammar.longest_match, separate_literals=grammar.separate_literals,
    )


def assemble(p: Plan, vocab: Vocabulary, limits: Limits = DEFAULT_LIMITS) -> Runtime:
    """The runtime of plan ``p`` for ``vocab``: parser, lexer, mask engine. Raises
    :class:`UnsatisfiableError` when no token of ``vocab`` can start the language."""
    index = {t: i for i, t in enumerate(p.used)}
    if p.one_rule:
        # one rule over terminals (a regex, say): a parser every such grammar shares
        alts = tuple(tuple(index[s] for s in alt) for alt in p.rules[p.start])
        parser = one_rule_parser(alts, len(index), limits.max_parser_states, limits.max_parser_items)
    else:
        alts = ()
        parser = EarleyParser(_Start(p.start), index, max_states=limits.max_parser_states,
                              max_items_per_set=limits.max_parser_items, reduced=p.rules)
    lexer = Lexer(
        p.dfas, p.ignore, follow_bytes=list(p.follow), longest_match=p.longest_match,
        separate_literals=p.separate_literals, references=p.references, max_states=limits.max_lexer_states,
        horizon=vocab.max_token_length + 1,
    )
    engine = MaskEngine(parser, lexer, vocab, max_walks_per_mask=limits.max_walks_per_mask)
    if not (p.one_rule and all(len(alt) == 1 for alt in alts)):
        # (a lexeme that is a whole document has no lexeme after it to prepare)
        engine.prepare()
    if not vocab.spells_every_byte:
        # With every single byte a token, any byte string can be spelled, so a live
        # lexer state always has a completion. Without that, check the start at least.
        words = engine.mask(engine.initial)
        if not words.any():
            raise UnsatisfiableError("no token of this vocabulary can start the spec's language")
    return list(p.used), parser, lexer, engine


@dataclass(frozen=True)
class _Start:
    """All the parser reads of a grammar when its reduced rules are given: the start."""

    start: str


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
    if not used:
        return []
    follow = terminal_follow_rows(reduced, used)  # bit i of a row: used[i] may come next
    firsts = np.stack([dfas[t].row(dfas[t].start) >= 0 for t in used])
    index = {t: i for i, t in enumerate(used)}
    ignored = [index[t] for t in grammar.ignore if t in index]
    # Terminals grouped by the bytes their lexemes may start with (few groups: every
    # key of an object starts with a quote): one test per group and terminal.
    groups: dict[bytes, int] = {}
    group_of = np.fromiter((groups.setdefault(key, len(groups)) for key in map(bytes, np.packbits(firsts, axis=1))),
                           dtype=np.int64, count=len(used))
    out = follow_first_bytes(follow, firsts, group_of, len(groups))
    if ignored:
        out |= firsts[ignored].any(axis=0)
        # An ignored lexeme may sit between any two lexemes: anything may follow it.
        out[ignored] = firsts.any(axis=0)
    return list(out)


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
