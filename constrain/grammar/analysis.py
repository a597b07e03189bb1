"""Grammar analysis over the IR: reduction, terminals used, optional terminals, FOLLOW.

Rules are given as ``{nonterminal: [alternative, ...]}`` with each alternative a tuple
of symbol names, as in :attr:`Grammar.rules`.
"""

from __future__ import annotations

from ..errors import UnsatisfiableError
from .ir import Grammar

__all__ = ["Rules", "reduce", "one_rule_reduction", "prune", "terminals_used", "optionalize", "terminal_follow",
           "terminal_follow_bits", "nullable", "nullable_heads"]

Rules = dict[str, list[tuple[str, ...]]]


def reduce(grammar: Grammar, dead_terminals: frozenset[str] = frozenset()) -> Rules:
    """The rules reachable from the start, without unproductive alternatives, in the
    order a depth-first walk from the start meets them.

    ``dead_terminals`` are terminals whose language is empty. Raises
    :class:`UnsatisfiableError` when the start derives no finite string.
    """
    terms = {t for t in grammar.terminals if t not in dead_terminals}
    rules = grammar.rules
    # productive rules in linear time: each alternative counts its rule symbols not yet
    # known productive; a rule becomes productive when one of its counts reaches zero
    productive: set[str] = set()
    ready: list[str] = []
    missing: list[int] = []  # per alternative (numbered across rules)
    owner: list[str] = []
    uses: dict[str, list[int]] = {}
    for name, alts in rules.items():
        for alt in alts:
            i = len(missing)
            owner.append(name)
            need = 0
            for sym in alt:
                if sym in rules:
                    need += 1
                    uses.setdefault(sym, []).append(i)
                elif sym not in terms:
                    need = -1  # a dead or unknown terminal: never productive
                    break
            missing.append(need)
            if need == 0 and name not in productive:
                productive.add(name)
                ready.append(name)
    while ready:
        for i in uses.get(ready.pop(), ()):
            if missing[i] > 0:
                missing[i] -= 1
                if missing[i] == 0 and owner[i] not in productive:
                    productive.add(owner[i])
                    ready.append(owner[i])
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


def nullable_heads(alternatives) -> set:
    """The heads that derive the empty string, from ``(head, symbols)`` pairs (one per
    alternative; a symbol that is no head derives nothing empty). Linear time: each
    alternative counts down the symbols not yet known nullable."""
    out: set = set()
    heads: list = []
    left: list[int] = []
    waiting: dict = {}
    todo: list = []
    for head, rhs in alternatives:
        i = len(heads)
        heads.append(head)
        left.append(len(rhs))
        if not rhs:
            todo.append(head)
        for x in rhs:
            got = waiting.get(x)
            if got is None:
                waiting[x] = [i]
            else:
                got.append(i)
    while todo:
        h = todo.pop()
        if h in out:
            continue
        out.add(h)
        for i in waiting.get(h, ()):
            left[i] -= 1
            if left[i] == 0 and heads[i] not in out:
                todo.append(heads[i])
    return out


def nullable(rules: Rules) -> set[str]:
    """The nonterminals that derive the empty string."""
    return nullable_heads((k, alt) for k, alts in rules.items() for alt in alts)


def _least_union(nodes, deps: dict, const: dict) -> dict:
    """The least ``value`` with ``value[n] = const[n] | value[d]`` for every ``d`` in
    ``deps[n]`` (integers as bit sets): each strongly connected component of the
    dependency graph solved once, dependencies first (Tarjan's order)."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    value: dict = {}
    counter = 0
    empty = ()
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(deps.get(root, empty)))]
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(deps.get(w, empty))))
                    break
                if w in on_stack and index[w] < low[v]:
                    low[v] = index[w]
            else:
                work.pop()
                if work:
                    u = work[-1][0]
                    if low[v] < low[u]:
                        low[u] = low[v]
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    acc = 0
                    for w in comp:
                        acc |= const.get(w, 0)
                        for d in deps.get(w, empty):
                            acc |= value.get(d, 0)  # 0 for members of comp: not solved yet
                    for w in comp:
                        value[w] = acc
    return value


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
    if all(len(alt) <= 1 for alts in rules.values() for alt in alts):
        # no alternative puts one symbol after another (a single terminal, a choice of
        # them): nothing follows anything
        return [0] * len(names)
    empty = nullable(rules)
    bit = {t: 1 << i for i, t in enumerate(names)}
    # FIRST: a terminal is its own; a rule's takes what each alternative can start with.
    first_const: dict[str, int] = {}
    first_deps: dict[str, list[str]] = {}
    for k, alts in rules.items():
        c = 0
        ds = []
        for alt in alts:
            for x in alt:
                if x in rules:
                    ds.append(x)
                else:
                    c |= bit.get(x, 0)
                if x not in empty:
                    break
        first_const[k] = c
        first_deps[k] = ds
    first = _least_union(rules, first_deps, first_const)
    first.update(bit)
    # FOLLOW: what comes after a symbol inside an alternative (constant), and all that
    # follows the alternative's head when only nullable symbols come after it.
    follow_const: dict[str, int] = {}
    follow_deps: dict[str, list[str]] = {}
    for k, alts in rules.items():
        for alt in alts:
            tail_first = 0
            tail_nullable = True
            for x in reversed(alt):
                if tail_first:
                    follow_const[x] = follow_const.get(x, 0) | tail_first
                if tail_nullable:
                    got = follow_deps.get(x)
                    if got is None:
                        follow_deps[x] = [k]
                    else:
                        got.append(k)
                if x in empty:
                    tail_first |= first.get(x, 0)
                else:
                    tail_first = first.get(x, 0)
                    tail_nullable = False
    follow = _least_union(names, follow_deps, follow_const)
    return [follow.get(t, 0) for t in names]
