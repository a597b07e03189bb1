"""Grammar analysis over the IR: reduction, terminals used, optional terminals, FOLLOW.

Rules are given as ``{nonterminal: [alternative, ...]}`` with each alternative a tuple
of symbol names, as in :attr:`Grammar.rules`.
"""

from __future__ import annotations

from ..errors import UnsatisfiableError
from .ir import Grammar

__all__ = ["Rules", "reduce", "one_rule_reduction", "prune", "terminals_used", "optionalize", "terminal_follow"]

Rules = dict[str, list[tuple[str, ...]]]


def reduce(grammar: Grammar, dead_terminals: frozenset[str] = frozenset()) -> Rules:
    """The rules reachable from the start, without unproductive alternatives, in the
    order a depth-first walk from the start meets them.

    ``dead_terminals`` are terminals whose language is empty. Raises
    :class:`UnsatisfiableError` when the start derives no finite string.
    """
    productive: set[str] = set()
    terms = {t for t in grammar.terminals if t not in dead_terminals}
    changed = True
    while changed:
        changed = False
        for name, alts in grammar.rules.items():
            if name in productive:
                continue
            for alt in alts:
                if all(s in terms or s in productive for s in alt):
                    productive.add(name)
                    changed = True
                    break
    if grammar.start not in productive:
        raise UnsatisfiableError(f"the start rule {grammar.start!r} derives no finite string")
    kept: Rules = {}
    todo = [grammar.start]
    while todo:
        name = todo.pop()
        if name in kept:
            continue
        alts = [a for a in grammar.rules[name] if all(s in terms or s in productive for s in a)]
        kept[name] = alts
        for alt in alts:
            for s in alt:
                if s in grammar.rules and s not in kept:
                    todo.append(s)
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
    seen: dict[str, None] = {}
    for alts in rules.values():
        for alt in alts:
            for s in alt:
                if s in grammar.terminals:
                    seen.setdefault(s, None)
    for s in grammar.ignore:
        seen.setdefault(s, None)
    return list(seen)


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
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for k, alts in rules.items():
            if k not in out and any(all(x in out for x in alt) for alt in alts):
                out.add(k)
                changed = True
    return out


def terminal_follow(rules: Rules, terminals: set[str]) -> dict[str, set[str]]:
    """FOLLOW sets restricted to terminals: which terminals may come right after each one."""
    if all(len(alt) <= 1 for alts in rules.values() for alt in alts):
        # no alternative puts one symbol after another (a single terminal, a choice of
        # them): nothing follows anything
        return {t: set() for t in terminals}
    empty = nullable(rules)
    first: dict[str, set[str]] = {t: {t} for t in terminals}
    for k in rules:
        first.setdefault(k, set())
    changed = True
    while changed:
        changed = False
        for k, alts in rules.items():
            fk = first[k]
            before = len(fk)
            for alt in alts:
                for x in alt:
                    fk |= first.get(x, set())
                    if x not in empty:
                        break
            if len(fk) != before:
                changed = True
    follow: dict[str, set[str]] = {x: set() for x in first}
    # Constant parts (FIRST of what comes after) once, then propagate FOLLOW(A) -> FOLLOW(X).
    edges: dict[str, set[str]] = {}
    for k, alts in rules.items():
        for alt in alts:
            tail_first: set[str] = set()
            tail_nullable = True
            for x in reversed(alt):
                follow.setdefault(x, set()).update(tail_first)
                if tail_nullable:
                    edges.setdefault(k, set()).add(x)
                if x in empty:
                    tail_first = tail_first | first.get(x, set())
                else:
                    tail_first = set(first.get(x, set()))
                    tail_nullable = False
    changed = True
    while changed:
        changed = False
        for a, xs in edges.items():
            fa = follow.get(a, set())
            if not fa:
                continue
            for x in xs:
                fx = follow[x]
                if not fa <= fx:
                    fx |= fa
                    changed = True
    return {t: follow.get(t, set()) & terminals for t in terminals}
