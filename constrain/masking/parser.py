"""Earley recognizer whose sets are hash-consed into integer states.

An Earley item is (dotted rule, origin), where the origin is the *id of an earlier
interned set* or HERE (predicted in this very set). Because an earlier set's id stands
for its whole content, and that content recursively fixes everything that completing
an item can do, a set's content determines the parser's entire future. Interning sets
therefore turns Earley into a lazily built deterministic automaton: ``advance(state,
terminal)`` is a pure function of two integers and is memoized. Left recursion,
ambiguity and empty rules are handled (nullable symbols by the Aycock-Horspool rule).
Two sequences that reach the same parse situation share a state id, so everything
keyed on it (token masks included) is computed once.
"""

from __future__ import annotations

import threading
from array import array
from hashlib import blake2b
from typing import Sequence

import numpy as np

from .. import _caches
from .._tables import LOW, SHIFT, Chunked, ints_key
from ..errors import CompileLimitError
from ..grammar._fixpoints import nullable_rules, parser_layout
from ..grammar.analysis import Coded, reduce
from ..grammar.ir import Grammar
from ..limits import DEFAULT_LIMITS, limit_error

__all__ = ["EarleyParser", "DEAD"]

DEAD = -1
_BIG = 1 << 32  # item = dotted_rule * _BIG + (origin + 1); origin -1 means HERE
_HERE = bytes(16)  # the origin of an item that started in its own set, in state_key


class EarleyParser:
    """Deterministic view of an Earley recognizer over terminal ids ``0..n_terminals-1``."""

    def __init__(
        self,
        grammar: Grammar,
        terminal_index: dict[str, int],
        *,
        max_states: int = DEFAULT_LIMITS.max_parser_states,
        max_items_per_set: int = DEFAULT_LIMITS.max_parser_items,
        dead_terminals: frozenset[str] = frozenset(),
        reduced: dict[str, list[tuple[str, ...]]] | None = None,
    ):
        self.max_states = max_states
        self.max_items_per_set = max_items_per_set
        self._lock = threading.RLock()
        if reduced is None:
            reduced = reduce(grammar, dead_terminals)
        nts = sorted(reduced)
        start_aug = "\0start"
        self.nt_index = {name: i for i, name in enumerate(nts)}
        self.nt_index[start_aug] = len(nts)
        n_nt = len(self.nt_index)
        self.n_terminals = len(terminal_index)

        # Symbols: nonterminals are 0..n_nt-1 (by name, the augmented start last),
        # terminals are n_nt + t. Dotted rules laid out flat, rule by rule (the augmented
        # start's first, then each nonterminal's alternatives in order): dr = first[r] +
        # dot, -1 after a rule's last symbol. Made from the rules coded as integer arrays
        # (one pass over the names, the rest array arithmetic).
        self.n_nt = n_nt
        next_sym, lhs, first_dr, nullable = _layout(reduced, terminal_index, n_nt, self.nt_index[grammar.start])
        # (tuples, here and in the tables below that hold many ints: the cyclic collector
        # stops tracking a tuple of ints at its first pass, where a list, a set or a
        # frozenset of them is read through at every full collection, a cache miss an
        # int: ~30 ms for a parser of 10^4 states)
        self._next_sym = tuple(next_sym)
        self._lhs = tuple(lhs)
        self._first_dr = first_dr
        self._accept_dr = 1  # S' -> S .
        self._nullable = bytes(nullable)

        # A set is interned by its *kernel*: the items that do not start in it (origin
        # not HERE; the initial set's start items too). Every other item comes from
        # predicting nonterminals, and what predicting a nonterminal adds is the same
        # in every set, so the kernel alone fixes the set: its predicted part is shared
        # by every set that predicts the same nonterminals (a *prediction group*).
        # Per-state tables are kept where the cyclic collector does not read them
        # (constrain._tables): tuples in chunks, bytes keys, ints in arrays.
        self._sets = Chunked()  # kernels, sorted tuples of items
        self._group_of = array("q")
        self._index: dict[bytes, int] = {}  # ints_key(kernel) -> state
        # Runs of items (sorted tuples), found by (owner << 32 | symbol) in int-keyed
        # dicts: per kernel (see _index_items), its items by the terminal after the dot,
        # and its items waiting on each nonterminal, HERE origins resolved to the set
        # (indexed when a completion first asks: _waits_done); per prediction group, the
        # same two over its items (HERE left unresolved: the group serves many sets).
        self._runs = Chunked()
        self._state_terms: dict[int, int] = {}
        self._state_waits: dict[int, int] = {}
        self._waits_done = bytearray()
        self._group_terms: dict[int, int] = {}
        self._group_waits: dict[int, int] = {}
        self._groups = Chunked()  # per prediction group: its nonterminals' items (all HERE)
        self._group_index: dict[bytes, int] = {}
        self._group_nts = Chunked()  # the nonterminals each group predicts, sorted
        self._joins: dict[int, int] = {}  # a << 32 | b (a < b) -> the state of both
        self._group_allowed = Chunked()
        self._advance: dict[int, int] = {}  # state << 32 | terminal -> state
        self._allowed = Chunked()  # sorted tuples of terminal ids
        self._accepting = bytearray()
        self._predictions: dict[int, tuple[int, ...]] = {}
        self._state_keys: dict[int, bytes] = {}  # see state_key
        self.initial = self._intern(*self._closure({0 * _BIG + 0}))

    # ------------------------------------------------------------------ public

    def advance(self, state: int, terminal: int) -> int:
        """The state after ``terminal``, or ``DEAD`` when the grammar does not allow it."""
        key = state << 32 | terminal  # an int key: no tuple kept per step (nothing for the GC)
        got = self._advance.get(key)
        if got is not None:
            return got
        with self._lock:
            got = self._advance.get(key)
            if got is None:
                got = self._compute_advance(state, terminal)
                self._advance[key] = got
        return got

    def join(self, a: int, b: int) -> int:
        """The state whose items are those of ``a`` and of ``b``: the parser after either
        of two inputs. Earley's steps act on each item alone, so from here on it takes
        exactly the inputs that ``a`` or ``b`` takes. Memoized. DEAD where one of them has
        items that started in itself (the initial state: HERE would name the join)."""
        if a == b:
            return a
        if a > b:
            a, b = b, a
        key = a << 32 | b
        got = self._joins.get(key)
        if got is not None:
            return got
        with self._lock:
            got = self._joins.get(key)
            if got is None and any(not it & 0xFFFFFFFF for it in self._sets[a] + self._sets[b]):
                got = self._joins[key] = DEAD
            if got is None:
                items = tuple(sorted(set(self._sets[a]).union(self._sets[b])))
                predicted = tuple(sorted(set(self._group_nts[self._group_of[a]]).union(
                    self._group_nts[self._group_of[b]])))
                if len(items) > self.max_items_per_set:
                    raise _too_many_items(self.max_items_per_set)
                got = self._joins[key] = self._intern(items, predicted)
        return got

    def allowed(self, state: int) -> tuple[int, ...]:
        """Terminal ids the grammar allows next, sorted."""
        return self._allowed.chunks[state >> SHIFT][state & LOW]

    def accepting(self, state: int) -> bool:
        return bool(self._accepting[state])

    def items(self, state: int) -> frozenset[int]:
        """The Earley items of ``state``: its kernel and what it predicts (origin HERE).
        Items whose rule is complete are left out (their completions are in), save the
        accepting one."""
        return frozenset(self._groups[self._group_of[state]]).union(self._sets[state])

    @property
    def n_states(self) -> int:
        return len(self._sets)

    # Dotted rules are numbered so that moving the dot one symbol on adds 1. Symbols:
    # nonterminals are 0..n_nt-1, terminal t is n_nt + t. The rule of dotted rule 0 is
    # the augmented start S' -> S. The sequences below are the parser's own (read-only,
    # not copied: the budget planner reads them in its inner loops).

    @property
    def next_symbols(self) -> Sequence[int]:
        """Per dotted rule: the symbol after its dot, -1 at the end of its rule."""
        return self._next_sym

    @property
    def rule_heads(self) -> Sequence[int]:
        """Per dotted rule: the nonterminal its rule defines."""
        return self._lhs

    def alternatives(self, nt: int) -> Sequence[int]:
        """The dotted rules that start each alternative of nonterminal ``nt``."""
        return self._first_dr[nt]

    def state_key(self, state: int) -> bytes:
        """A 16-byte key of ``state`` that does not depend on the order states were made
        in: a hash of its kernel items, each item's origin by that set's own key (origins
        are sets made earlier). A parser of the same reduced rules, in any process, gives
        equal keys to states with equal kernels all the way down, so equal futures."""
        keys = self._state_keys
        got = keys.get(state)
        if got is not None:
            return got
        stack = [state]
        while stack:
            s = stack[-1]
            if s in keys:
                stack.pop()
                continue
            items = [(it >> 32, (it & 0xFFFFFFFF) - 1) for it in self._sets[s]]  # (dotted rule, origin or -1)
            missing = [o for _, o in items if o >= 0 and o not in keys]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            parts = sorted(dr.to_bytes(4, "little") + (keys[o] if o >= 0 else _HERE) for dr, o in items)
            keys[s] = blake2b(b"".join(parts), digest_size=16).digest()
        return keys[state]

    @staticmethod
    def item_parts(item: int) -> tuple[int, int]:
        """(dotted rule, origin) of an item of :meth:`items`; origin is the id of the set
        the item started in plus 1, or 0 for an item that started in its own set."""
        return divmod(item, _BIG)

    # ------------------------------------------------------------------ internals

    def _index_items(self, state: int, items: tuple[int, ...], group: int) -> None:
        """One pass over a new kernel: its items by the terminal after the dot, whether
        it accepts, the terminals allowed (its own and its prediction group's). Its
        items waiting on each nonterminal are indexed when a completion first asks."""
        n_nt = self.n_nt
        ns = self._next_sym
        by_terminal: dict[int, list[int]] = {}
        accepting = False
        acc = self._accept_dr
        for it in items:
            s = ns[it >> 32]
            if s >= n_nt:
                got = by_terminal.get(s - n_nt)
                if got is None:
                    by_terminal[s - n_nt] = [it]
                else:
                    got.append(it)
            elif s < 0 and it >> 32 == acc:
                accepting = True
        self._put_runs(self._state_terms, state, by_terminal)
        self._accepting.append(accepting)
        self._waits_done.append(0)
        g_allowed = self._group_allowed[group]
        if not by_terminal:
            self._allowed.append(g_allowed)
        elif not g_allowed:
            self._allowed.append(tuple(sorted(by_terminal)))
        else:
            self._allowed.append(tuple(sorted(by_terminal.keys() | set(g_allowed))))

    def _put_runs(self, table: dict[int, int], owner: int, runs: dict[int, list[int]]) -> None:
        for sym, items in runs.items():
            table[owner << 32 | sym] = self._runs.append(tuple(items))

    def _run(self, table: dict[int, int], owner: int, sym: int) -> tuple[int, ...]:
        i = table.get(owner << 32 | sym)
        return () if i is None else self._runs.chunks[i >> SHIFT][i & LOW]

    def _index_waiting(self, state: int) -> None:
        """Index the kernel items of ``state`` waiting on each nonterminal (HERE origins
        resolved to ``state``)."""
        n_nt = self.n_nt
        ns = self._next_sym
        here = state + 1
        waiting: dict[int, list[int]] = {}
        for it in self._sets[state]:
            s = ns[it >> 32]
            if 0 <= s < n_nt:
                if not it & 0xFFFFFFFF:
                    it += here
                got = waiting.get(s)
                if got is None:
                    waiting[s] = [it]
                else:
                    got.append(it)
        self._put_runs(self._state_waits, state, waiting)
        self._waits_done[state] = 1

    def _group(self, nts: tuple[int, ...]) -> int:
        """The prediction group of the nonterminals ``nts``: what predicting them adds,
        closed under prediction. Sets whose dots stand before the same nonterminals share it."""
        key = ints_key(nts)
        got = self._group_index.get(key)
        if got is not None:
            return got
        items: set[int] = set()
        predictions = self._predictions
        for s in nts:
            items.update(predictions.get(s) or self._prediction(s))
        n_nt = self.n_nt
        ns = self._next_sym
        by_terminal: dict[int, list[int]] = {}
        waiting: dict[int, list[int]] = {}
        for it in items:
            s = ns[it >> 32]
            if s >= n_nt:
                by_terminal.setdefault(s - n_nt, []).append(it)
            elif s >= 0:
                waiting.setdefault(s, []).append(it)
        got = self._groups.append(tuple(sorted(items)))
        self._put_runs(self._group_terms, got, by_terminal)
        self._put_runs(self._group_waits, got, waiting)
        self._group_nts.append(nts)
        self._group_allowed.append(tuple(sorted(by_terminal)))
        self._group_index[key] = got
        return got

    def _compute_advance(self, state: int, terminal: int) -> int:
        here = state + 1
        kernel = {it + _BIG if it & 0xFFFFFFFF else it + _BIG + here
                  for it in self._run(self._state_terms, state, terminal)}
        for it in self._run(self._group_terms, self._group_of[state], terminal):
            kernel.add(it + _BIG + here)
        if not kernel:
            return DEAD
        return self._intern(*self._closure(kernel))

    def _prediction(self, s: int) -> tuple[int, ...]:
        """The items that predicting nonterminal ``s`` adds to any set, sorted.

        Predicted items start HERE, so what they predict in turn, and the dots they move
        over nullable symbols, are the same in every set: closed once per nonterminal.
        Their completions need no work either: a HERE item that completes has a nullable
        left-hand side, and the dots waiting on it already moved over it (Aycock-Horspool).
        """
        got = self._predictions.get(s)
        if got is not None:
            return got
        ns = self._next_sym
        n_nt = self.n_nt
        nullable = self._nullable
        first = self._first_dr
        items: set[int] = set()
        nts = {s}
        stack = [d0 * _BIG for d0 in first[s]]
        while stack:
            it = stack.pop()
            if it in items:
                continue
            items.add(it)
            s2 = ns[it >> 32]
            if 0 <= s2 < n_nt:
                if s2 not in nts:
                    nts.add(s2)
                    stack.extend(d0 * _BIG for d0 in first[s2])
                if nullable[s2]:
                    stack.append(it + _BIG)
        got = tuple(sorted(items))
        self._predictions[s] = got
        return got

    def _closure(self, kernel: set[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The kernel closed under completion and nullable skips (items that do not start
        here), and the nonterminals right after its dots (its prediction group closes
        them under prediction)."""
        items = set(kernel)
        stack = list(kernel)
        ns = self._next_sym
        lhs = self._lhs
        n_nt = self.n_nt
        nullable = self._nullable
        predicted: set[int] = set()
        runs = self._runs.chunks
        state_waits = self._state_waits
        waits_done = self._waits_done
        group_waits = self._group_waits
        group_of = self._group_of
        limit = self.max_items_per_set
        while stack:
            it = stack.pop()
            dr = it >> 32
            org = it & 0xFFFFFFFF
            s = ns[dr]
            if s < 0:
                if org:  # completed an item that started in an earlier set
                    a = lhs[dr]
                    if not waits_done[org - 1]:
                        self._index_waiting(org - 1)
                    i = state_waits.get((org - 1) << 32 | a)
                    if i is not None:
                        for w in runs[i >> SHIFT][i & LOW]:
                            new = w + _BIG
                            if new not in items:
                                items.add(new)
                                stack.append(new)
                    i = group_waits.get(group_of[org - 1] << 32 | a)
                    if i is not None:
                        for w in runs[i >> SHIFT][i & LOW]:
                            new = w + _BIG + org
                            if new not in items:
                                items.add(new)
                                stack.append(new)
                    if len(items) > limit:
                        raise _too_many_items(limit)
                continue
            if s >= n_nt:
                continue
            predicted.add(s)
            if nullable[s]:
                new = it + _BIG
                if new not in items:
                    items.add(new)
                    stack.append(new)
                    if len(items) > limit:
                        raise _too_many_items(limit)
        # A completed item has done all it can (its completions are in the set); kept,
        # its origin would tell apart sets whose futures are equal: after `a`, `a b`,
        # `a b c` in `list: "(" ITEM* ")"` the sets differ only by the completed
        # `ITEM` items' origins, and the parse state would count lexemes. The
        # accepting item stays (it marks the set as accepting).
        acc = self._accept_dr
        kept = [it for it in items if ns[it >> 32] >= 0 or it >> 32 == acc]
        return tuple(sorted(kept)), tuple(sorted(predicted))

    def _intern(self, items: tuple[int, ...], predicted: tuple[int, ...]) -> int:
        key = ints_key(items)
        got = self._index.get(key)
        if got is not None:
            return got
        if len(self._sets) >= self.max_states:
            raise limit_error(f"parser limit: more than {self.max_states} distinct parse states",
                              "max_parser_states", self.max_states)
        group = self._group(predicted)
        if len(items) + len(self._groups[group]) > self.max_items_per_set:
            raise _too_many_items(self.max_items_per_set)
        sid = len(self._sets)
        self._group_of.append(group)
        self._index_items(sid, items, group)
        self._sets.append(items)
        self._index[key] = sid
        return sid


def _layout(reduced: dict[str, list[tuple[str, ...]]], terminal_index: dict[str, int], n_nt: int,
            start: int) -> tuple[list[int], list[int], tuple[tuple[int, ...], ...], list[bool]]:
    """The parser's flat tables of ``reduced`` (nonterminals numbered by name, the
    augmented start ``n_nt - 1`` deriving nonterminal ``start``): the symbol after each
    dotted rule, each dotted rule's head, each nonterminal's first dotted rules, and
    which nonterminals derive the empty string."""
    coded = Coded(reduced, terminal_index)
    n_red = coded.n_nt
    if len(coded.symbols) > n_red + len(terminal_index):
        raise KeyError(coded.symbols[n_red + len(terminal_index)])  # neither a rule nor a terminal
    order = np.array(sorted(range(n_red), key=coded.heads.__getitem__), dtype=np.int64)  # by name
    remap = np.empty(len(coded.symbols), dtype=np.int64)
    remap[order] = np.arange(n_red)
    index = coded.index
    remap[np.fromiter((index[t] for t in terminal_index), dtype=np.int64, count=len(terminal_index))] = (
        n_nt + np.fromiter(terminal_index.values(), dtype=np.int64, count=len(terminal_index)))
    next_sym, lhs, slots = parser_layout(coded.rule_off, coded.alt_off, coded.syms, order, remap, start)
    firsts = slots.tolist()
    counts = np.diff(coded.rule_off)[order].tolist()  # alternatives per nonterminal, by name
    first_dr = []
    e = 0
    for c in counts:
        first_dr.append(tuple(firsts[e:e + c]))
        e += c
    first_dr.append((0,))
    empty = nullable_rules(n_red, coded.rule_off, coded.alt_off, coded.syms)
    nullable = empty[order].tolist() + [bool(empty[order[start]])]
    return next_sym.tolist(), lhs.tolist(), tuple(first_dr), nullable


def _too_many_items(limit: int) -> CompileLimitError:
    return limit_error(f"parser limit: an Earley set grew past {limit} items (a highly ambiguous grammar?)",
                       "max_parser_items", limit)


_ONE_RULE = _caches.cache(
    "masking.one_rule_parsers", 256,
    "parsers of one-rule grammars by shape (a regex's: one alternative of one terminal); "
    "a few states each", spec_free=True)


def one_rule_parser(alts: tuple[tuple[int, ...], ...], n_terminals: int,
                    max_states: int = DEFAULT_LIMITS.max_parser_states,
                    max_items_per_set: int = DEFAULT_LIMITS.max_parser_items) -> EarleyParser:
    """The parser of a grammar of one rule whose alternatives are sequences of terminal
    ids (a regex: one alternative of one terminal), shared by every grammar of that shape
    and limits.

    Such a parser depends on nothing but ``alts`` and the number of terminals; what it
    memoizes (its few states and their steps) is the same for all of them.
    """
    key = (alts, n_terminals, max_states, max_items_per_set)
    got = _ONE_RULE.get(key)
    if got is None:
        names = [f"t{i}" for i in range(n_terminals)]
        grammar = Grammar(start="start", rules={"start": [tuple(names[t] for t in alt) for alt in alts]},
                          terminals={n: None for n in names})  # type: ignore[misc]
        got = EarleyParser(grammar, {n: i for i, n in enumerate(names)}, max_states=max_states,
                           max_items_per_set=max_items_per_set, reduced=grammar.rules)
        got = _ONE_RULE.setdefault(key, got)
    return got
