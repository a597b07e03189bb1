"""The grammar analyses (reduction, nullable rules, FOLLOW between terminals) against
plain fixpoint iterations written here, on random grammars and on a JSON Schema's."""

from __future__ import annotations

import random

import pytest

from constrain.errors import UnsatisfiableError
from constrain.frontends.json_schema import json_schema_to_grammar
from constrain.grammar.analysis import nullable, prune, reduce, terminal_follow_bits, terminals_used
from constrain.grammar.ir import Grammar, Lit


def _productive(g: Grammar, dead) -> set[str]:
    live = {t for t in g.terminals if t not in dead}
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for k, alts in g.rules.items():
            if k not in out and any(all(s in live or s in out for s in alt) for alt in alts):
                out.add(k)
                changed = True
    return out


def _reduce(g: Grammar, dead=frozenset()):
    good = _productive(g, dead)
    live = {t for t in g.terminals if t not in dead}
    if g.start not in good:
        return None
    kept: dict = {}
    todo = [g.start]
    while todo:
        k = todo.pop()
        if k in kept:
            continue
        kept[k] = [alt for alt in g.rules[k] if all(s in live or s in good for s in alt)]
        todo.extend(s for alt in kept[k] for s in alt if s in g.rules and s not in kept)
    return kept


def _nullable(rules) -> set[str]:
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for k, alts in rules.items():
            if k not in out and any(all(s in out for s in alt) for alt in alts):
                out.add(k)
                changed = True
    return out


def _follow(rules, names) -> list[set[str]]:
    empty = _nullable(rules)
    first = {k: set() for k in rules}
    changed = True
    while changed:
        changed = False
        for k, alts in rules.items():
            for alt in alts:
                for x in alt:
                    add = first[x] if x in rules else ({x} if x in names else set())
                    if not add <= first[k]:
                        first[k] |= add
                        changed = True
                    if x not in empty:
                        break
    follow = {s: set() for alts in rules.values() for alt in alts for s in alt} | {k: set() for k in rules}
    changed = True
    while changed:
        changed = False
        for k, alts in rules.items():
            for alt in alts:
                for i, x in enumerate(alt):
                    add = set()
                    rest_empty = True
                    for y in alt[i + 1:]:
                        add |= first[y] if y in rules else ({y} if y in names else set())
                        if y not in empty:
                            rest_empty = False
                            break
                    if rest_empty:
                        add |= follow[k]
                    if not add <= follow[x]:
                        follow[x] |= add
                        changed = True
    return [follow.get(t, set()) for t in names]


def _bits(names, sets) -> list[int]:
    pos = {t: i for i, t in enumerate(names)}
    return [sum(1 << pos[u] for u in s) for s in sets]


def _random_grammar(rng: random.Random) -> tuple[Grammar, frozenset]:
    nts = [f"n{i}" for i in range(rng.randint(1, 9))]
    ts = [f"T{i}" for i in range(rng.randint(1, 7))]
    pool = nts + ts + (["UNDEFINED"] if rng.random() < 0.1 else [])
    rules = {
        k: [tuple(rng.choice(pool) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(0, 3))]
        for k in nts
    }
    ignore = (ts[0],) if rng.random() < 0.3 else ()
    dead = frozenset(t for t in ts if rng.random() < 0.2)
    return Grammar("n0", rules, {t: Lit("a") for t in ts}, ignore), dead


@pytest.mark.parametrize("seed", range(8))
def test_analyses_are_the_plain_fixpoints_on_random_grammars(seed):
    rng = random.Random(seed)
    for _ in range(300):
        g, dead = _random_grammar(rng)
        want = _reduce(g, dead)
        if want is None:
            with pytest.raises(UnsatisfiableError):
                reduce(g, dead)
            continue
        got = reduce(g, dead)
        assert got == want and list(got) == list(want)  # the depth-first order too
        assert nullable(g.rules) == _nullable(g.rules)
        used = terminals_used(got, g)
        assert terminal_follow_bits(got, used) == _bits(used, _follow(got, used))


def _schema(n: int) -> dict:
    """A schema of many objects that refer to each other, optional and nullable parts."""
    defs = {}
    for i in range(n):
        props = {f"p{j}": {"$ref": f"#/$defs/d{(i * 7 + j) % n}"} for j in range(3)}
        props["s"] = {"type": ["string", "null"]}
        props["a"] = {"type": "array", "items": {"$ref": f"#/$defs/d{(i + 1) % n}"}, "maxItems": 3}
        defs[f"d{i}"] = {"type": "object", "properties": props, "required": ["s"] if i % 2 else []}
    return {"$defs": defs, "$ref": "#/$defs/d0"}


def test_analyses_are_the_plain_fixpoints_on_a_schemas_grammar():
    g, _ = json_schema_to_grammar(_schema(40))
    assert len(g.rules) > 200
    want = _reduce(g)
    got = reduce(g)
    assert got == want and list(got) == list(want)
    assert prune(g).rules == g.rules  # the front end's grammar is pruned already
    used = terminals_used(got, g)
    assert terminal_follow_bits(got, used) == _bits(used, _follow(got, used))
    assert nullable(got) == _nullable(got)


def test_a_start_without_a_rule_or_a_finite_string_is_unsatisfiable():
    with pytest.raises(UnsatisfiableError):
        reduce(Grammar("s", {"t": [("A",)]}, {"A": Lit("a")}))
    with pytest.raises(UnsatisfiableError):
        reduce(Grammar("s", {"s": [("s", "A")]}, {"A": Lit("a")}))


def _parser_tables(reduced, terminal_index, start):
    """The Earley parser's flat tables written rule by rule: nonterminals by name, the
    augmented start last, terminals after them."""
    nts = sorted(reduced)
    nt = {name: i for i, name in enumerate(nts)}
    n_nt = len(nts) + 1
    sym = dict(nt, **{t: n_nt + i for t, i in terminal_index.items()})
    rules = [(n_nt - 1, (nt[start],))] + [(nt[k], tuple(sym[s] for s in alt)) for k in nts for alt in reduced[k]]
    next_sym, lhs, first = [], [], [[] for _ in range(n_nt)]
    for head, rhs in rules:
        first[head].append(len(next_sym))
        next_sym += [*rhs, -1]
        lhs += [head] * (len(rhs) + 1)
    empty = _nullable({**reduced, "\0start": [(start,)]})
    return next_sym, lhs, [tuple(f) for f in first], [k in empty for k in nts] + [start in empty]


@pytest.mark.parametrize("seed", range(3))
def test_the_parser_tables_are_the_rules_written_out(seed):
    from constrain.masking.parser import EarleyParser

    rng = random.Random(seed)
    grammars = [json_schema_to_grammar(_schema(12))[0]] + [_random_grammar(rng)[0] for _ in range(200)]
    for g in grammars:
        try:
            reduced = reduce(g)
        except UnsatisfiableError:
            continue
        index = {t: i for i, t in enumerate(terminals_used(reduced, g))}
        p = EarleyParser(g, index, reduced=reduced)
        next_sym, lhs, first, empty = _parser_tables(reduced, index, g.start)
        assert list(p.next_symbols) == next_sym
        assert list(p.rule_heads) == lhs
        assert [tuple(p.alternatives(k)) for k in range(p.n_nt)] == first
        assert list(map(bool, p._nullable)) == empty
