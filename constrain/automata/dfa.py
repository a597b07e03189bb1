"""Minimized, trimmed, canonically numbered DFAs over bytes, and set operations on them.

Every :class:`ByteDFA` this module hands out is the unique minimal DFA of its language with
dead transitions written as ``-1`` and states numbered in breadth-first order from the
start (bytes visited 0..255), so two DFAs for the same language have identical tables and
the same :attr:`ByteDFA.key`.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from typing import Callable, Sequence

import numpy as np

from ..errors import CompileLimitError

__all__ = [
    "ByteDFA",
    "concat",
    "union",
    "intersect",
    "difference",
    "literal_dfa",
    "empty_dfa",
]


class ByteDFA:
    """An immutable DFA over bytes: ``transitions[state, byte]`` is the next state or -1."""

    __slots__ = ("transitions", "accepting", "_key")

    start: int = 0

    def __init__(self, transitions: np.ndarray, accepting: np.ndarray):
        # Internal constructor: callers hand over an already canonical table.
        # Use ByteDFA.from_table to canonicalize an arbitrary one.
        t = np.ascontiguousarray(transitions, dtype=np.int32)
        a = np.ascontiguousarray(accepting, dtype=np.bool_)
        t.setflags(write=False)
        a.setflags(write=False)
        self.transitions = t
        self.accepting = a
        self._key: str | None = None

    @classmethod
    def from_table(cls, transitions: np.ndarray, accepting: np.ndarray, start: int = 0) -> "ByteDFA":
        """Trim, minimize and renumber an arbitrary ``[n, 256]`` table (``-1`` = dead)."""
        trans = np.asarray(transitions, dtype=np.int64)
        acc = np.asarray(accepting, dtype=np.bool_)
        if trans.ndim != 2 or trans.shape[1] != 256 or acc.shape != (trans.shape[0],):
            raise ValueError("transitions must have shape [n, 256] and accepting shape [n]")
        if trans.size and (trans.min() < -1 or trans.max() >= trans.shape[0]):
            raise ValueError("transition targets must be -1 or valid state ids")
        if not 0 <= start < max(1, trans.shape[0]):
            raise ValueError("start state out of range")
        if trans.shape[0] == 0:
            return empty_dfa()
        cols, byte_cls = np.unique(trans.T, axis=0, return_inverse=True)
        return finalize(cols.T, np.asarray(byte_cls).reshape(-1), acc, start)

    @property
    def n_states(self) -> int:
        return int(self.transitions.shape[0])

    @property
    def key(self) -> str:
        """SHA-256 of the canonical table; equal languages give equal keys."""
        if self._key is None:
            h = hashlib.sha256()
            h.update(b"ByteDFA1")
            h.update(np.int64(self.n_states).tobytes())
            h.update(self.accepting.astype(np.uint8).tobytes())
            h.update(self.transitions.astype("<i4").tobytes())
            self._key = h.hexdigest()
        return self._key

    def accepts(self, data: bytes) -> bool:
        """True iff ``data`` is in the language."""
        t = self.transitions
        s = 0
        for b in data:
            s = int(t[s, b])
            if s < 0:
                return False
        return bool(self.accepting[s])

    def is_empty(self) -> bool:
        """True iff the language is empty (trimmed DFAs: the start state accepts nothing)."""
        return self.n_states == 1 and not self.accepting[0] and bool((self.transitions[0] < 0).all())

    def accepts_empty(self) -> bool:
        """True iff the empty string is in the language."""
        return bool(self.accepting[0])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ByteDFA) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"ByteDFA(n_states={self.n_states}, key={self.key[:12]})"


def empty_dfa() -> ByteDFA:
    """The DFA of the empty language: one non-accepting state, no transitions."""
    return ByteDFA(np.full((1, 256), -1, dtype=np.int32), np.zeros(1, dtype=np.bool_))


def literal_dfa(data: bytes) -> ByteDFA:
    """The DFA accepting exactly ``data``."""
    n = len(data) + 1
    t = np.full((n, 256), -1, dtype=np.int32)
    for i, b in enumerate(data):
        t[i, b] = i + 1
    acc = np.zeros(n, dtype=np.bool_)
    acc[-1] = True
    return ByteDFA(t, acc)


# ----------------------------------------------------------------------------- core


def finalize(table, byte_cls: np.ndarray, accepting, start: int, deadline: float | None = None,
             what: str = "minimization") -> ByteDFA:
    """Trim, minimize and canonically renumber a DFA given over byte classes.

    ``table[s][c]`` is the target of state ``s`` on byte class ``c`` (-1 dead);
    ``byte_cls[b]`` is the class of byte ``b``.
    """
    rows = table.tolist() if isinstance(table, np.ndarray) else table
    acc = [bool(x) for x in (accepting.tolist() if isinstance(accepting, np.ndarray) else accepting)]
    n = len(rows)
    if n == 0:
        return empty_dfa()
    k = len(rows[0]) if n else 0

    # reachable from start
    reach = [False] * n
    reach[start] = True
    stack = [start]
    while stack:
        s = stack.pop()
        for t in rows[s]:
            if t >= 0 and not reach[t]:
                reach[t] = True
                stack.append(t)
    # co-reachable (can reach an accepting state)
    preds: list[list[int]] = [[] for _ in range(n)]
    for s in range(n):
        if reach[s]:
            for t in set(rows[s]):
                if t >= 0:
                    preds[t].append(s)
    live = [False] * n
    stack = [s for s in range(n) if reach[s] and acc[s]]
    for s in stack:
        live[s] = True
    while stack:
        s = stack.pop()
        for p in preds[s]:
            if not live[p]:
                live[p] = True
                stack.append(p)
    if not live[start]:
        return empty_dfa()
    if not all(live):
        rows = [[(t if t >= 0 and live[t] else -1) for t in r] if live[s] else None for s, r in enumerate(rows)]

    cls = _minimize(rows, acc, live, k, deadline, what)

    # quotient + canonical BFS numbering; classes visited in order of their first byte
    first_byte: dict[int, int] = {}
    for b, c in enumerate(np.asarray(byte_cls).tolist()):
        first_byte.setdefault(c, b)
    col_order = sorted(first_byte, key=first_byte.get)
    rep = {}
    for s in range(n):
        if live[s] and cls[s] not in rep:
            rep[cls[s]] = s
    order: dict[int, int] = {cls[start]: 0}
    queue = deque([cls[start]])
    out_rows = []
    out_acc = []
    while queue:
        c = queue.popleft()
        s = rep[c]
        r = rows[s]
        new_row = [-1] * k
        for col in col_order:
            t = r[col]
            if t >= 0:
                tc = cls[t]
                if tc not in order:
                    order[tc] = len(order)
                    queue.append(tc)
                new_row[col] = order[tc]
        out_rows.append(new_row)
        out_acc.append(acc[s])
    reduced = np.array(out_rows, dtype=np.int32).reshape(len(out_rows), k)
    trans = reduced[:, np.asarray(byte_cls, dtype=np.int64)]
    return ByteDFA(trans, np.array(out_acc, dtype=np.bool_))


def _minimize(rows: list, acc: list, live: list, k: int, deadline: float | None = None,
              what: str = "minimization") -> list:
    """Equivalence class id per live state (None elsewhere).

    States with a finite right language (they cannot reach a cycle) are merged exactly by
    hash-consing in reverse topological order, which is linear; only the remaining states
    go through Moore's partition refinement, with the finite ones as fixed atoms.
    """
    n = len(rows)
    outdeg = [0] * n
    rpreds: list[list[int]] = [[] for _ in range(n)]
    for s in range(n):
        if live[s]:
            targets = set(rows[s])
            targets.discard(-1)
            outdeg[s] = len(targets)
            for t in targets:
                rpreds[t].append(s)
    cls: list = [None] * n
    sigs: dict = {}
    queue = [s for s in range(n) if live[s] and outdeg[s] == 0]
    i = 0
    while i < len(queue):
        s = queue[i]
        i += 1
        r = rows[s]
        sig = (acc[s], tuple([cls[t] if t >= 0 else -1 for t in r]))
        c = sigs.get(sig)
        if c is None:
            c = sigs[sig] = len(sigs)
        cls[s] = c
        for p in rpreds[s]:
            outdeg[p] -= 1
            if outdeg[p] == 0:
                queue.append(p)
    rest = [s for s in range(n) if live[s] and cls[s] is None]
    if not rest:
        return cls
    nf = len(sigs)
    # Moore refinement over the states with infinite right languages.
    idx = {s: j for j, s in enumerate(rest)}
    m = len(rest)
    # target codes: >= 0 -> index into rest; < 0 -> fixed atom (-1 dead, -2-c finite class c)
    tab = np.empty((m, k), dtype=np.int64)
    for j, s in enumerate(rest):
        tab[j] = [idx[t] if t >= 0 and cls[t] is None else (-1 if t < 0 else -2 - cls[t]) for t in rows[s]]
    inner = tab >= 0
    fixed = np.where(inner, 0, -tab)  # dead -> 1, finite class c -> c + 2
    part = np.array([1 if acc[s] else 0 for s in rest], dtype=np.int64)
    _, part = np.unique(part, return_inverse=True)
    part = part.reshape(-1)
    count = int(part.max()) + 1
    big = nf + 2
    while True:
        if deadline is not None and time.perf_counter() > deadline:
            raise CompileLimitError(f"{what}: exceeded the time limit while minimizing")
        tgt = np.where(inner, part[np.where(inner, tab, 0)] + big, fixed)
        sig = np.concatenate([part[:, None], tgt], axis=1)
        _, new = np.unique(sig, axis=0, return_inverse=True)
        new = np.asarray(new).reshape(-1)
        new_count = int(new.max()) + 1
        part = new
        if new_count == count:
            break
        count = new_count
    for j, s in enumerate(rest):
        cls[s] = nf + int(part[j])
    return cls


def _byte_classes(dfas: Sequence[ByteDFA]) -> tuple[np.ndarray, np.ndarray]:
    """Joint byte classes of several DFAs: (representative byte per class, class per byte)."""
    ids = []
    for d in dfas:
        _, inv = np.unique(d.transitions.T, axis=0, return_inverse=True)
        ids.append(np.asarray(inv).reshape(-1))
    joint = np.stack(ids, axis=1)
    _, first, inv = np.unique(joint, axis=0, return_index=True, return_inverse=True)
    return np.asarray(first), np.asarray(inv).reshape(-1)


def _check_limits(count: int, max_states: int, t0: float, time_limit: float, what: str) -> None:
    if count > max_states:
        raise CompileLimitError(f"{what}: more than {max_states} DFA states (max_states={max_states})")
    if time.perf_counter() - t0 > time_limit:
        raise CompileLimitError(f"{what}: exceeded time_limit={time_limit}s")


def _product(dfas: Sequence[ByteDFA], accept: Callable[[tuple], bool], dead: Callable[[tuple], bool],
             max_states: int, time_limit: float, what: str) -> ByteDFA:
    reps, byte_cls = _byte_classes(dfas)
    tabs = [d.transitions[:, reps].tolist() for d in dfas]
    accs = [d.accepting.tolist() for d in dfas]
    k = len(reps)
    start = tuple(0 for _ in dfas)
    ids = {start: 0}
    states = [start]
    rows = []
    t0 = time.perf_counter()
    i = 0
    while i < len(states):
        st = states[i]
        i += 1
        if (i & 255) == 0:
            _check_limits(len(states), max_states, t0, time_limit, what)
        row = [-1] * k
        for c in range(k):
            nxt = tuple(tabs[j][q][c] if q >= 0 else -1 for j, q in enumerate(st))
            if dead(nxt):
                continue
            d = ids.get(nxt)
            if d is None:
                d = ids[nxt] = len(states)
                states.append(nxt)
            row[c] = d
        rows.append(row)
    _check_limits(len(states), max_states, t0, time_limit, what)
    acc = [accept(tuple(accs[j][q] if q >= 0 else False for j, q in enumerate(st))) for st in states]
    return finalize(rows, byte_cls, acc, 0)


def intersect(*dfas: ByteDFA, max_states: int = 100_000, time_limit: float = 10.0) -> ByteDFA:
    """Strings accepted by every DFA. Raises CompileLimitError past the limits."""
    if not dfas:
        raise ValueError("intersect needs at least one DFA")
    if len(dfas) == 1:
        return dfas[0]
    return _product(dfas, all, lambda st: min(st) < 0, max_states, time_limit, "intersect")


def union(*dfas: ByteDFA, max_states: int = 100_000, time_limit: float = 10.0) -> ByteDFA:
    """Strings accepted by at least one DFA (no arguments: the empty language)."""
    if not dfas:
        return empty_dfa()
    if len(dfas) == 1:
        return dfas[0]
    return _product(dfas, any, lambda st: max(st) < 0, max_states, time_limit, "union")


def difference(a: ByteDFA, b: ByteDFA, *, max_states: int = 100_000, time_limit: float = 10.0) -> ByteDFA:
    """Strings accepted by ``a`` and not by ``b``."""
    return _product((a, b), lambda acc: acc[0] and not acc[1], lambda st: st[0] < 0,
                    max_states, time_limit, "difference")


def _concat2(a: ByteDFA, b: ByteDFA, max_states: int, time_limit: float) -> ByteDFA:
    reps, byte_cls = _byte_classes((a, b))
    ta = a.transitions[:, reps].tolist()
    tb = b.transitions[:, reps].tolist()
    acc_a = a.accepting.tolist()
    acc_b = b.accepting.tolist()
    k = len(reps)
    start = (0, frozenset([0]) if acc_a[0] else frozenset())
    ids = {start: 0}
    states = [start]
    rows = []
    t0 = time.perf_counter()
    i = 0
    while i < len(states):
        qa, sb = states[i]
        i += 1
        if (i & 255) == 0:
            _check_limits(len(states), max_states, t0, time_limit, "concat")
        row = [-1] * k
        for c in range(k):
            na = ta[qa][c] if qa >= 0 else -1
            nb = {tb[s][c] for s in sb}
            nb.discard(-1)
            if na >= 0 and acc_a[na]:
                nb.add(0)
            if na < 0 and not nb:
                continue
            key = (na, frozenset(nb))
            d = ids.get(key)
            if d is None:
                d = ids[key] = len(states)
                states.append(key)
            row[c] = d
        rows.append(row)
    _check_limits(len(states), max_states, t0, time_limit, "concat")
    acc = [any(acc_b[s] for s in sb) for _, sb in states]
    return finalize(rows, byte_cls, acc, 0)


def concat(*dfas: ByteDFA, max_states: int = 100_000, time_limit: float = 10.0) -> ByteDFA:
    """Concatenation of the languages, in order (no arguments: the empty string)."""
    if not dfas:
        return literal_dfa(b"")
    out = dfas[0]
    for d in dfas[1:]:
        out = _concat2(out, d, max_states, time_limit)
    return out
