"""Minimized, trimmed, canonically numbered DFAs over bytes, and set operations on them.

The work runs over byte classes (bytes no automaton involved tells apart) in numba
kernels (:mod:`._product`, :mod:`._determinize`, :mod:`._minimize`); tables are widened
to 256 columns only at the end.

Every :class:`ByteDFA` this module hands out is the unique minimal DFA of its language with
dead transitions written as ``-1`` and states numbered in breadth-first order from the
start (bytes visited 0..255), so two DFAs for the same language have identical tables and
the same :attr:`ByteDFA.key`.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Sequence

import numpy as np

from ..errors import CompileLimitError
from ..limits import DEFAULT_LIMITS, limit_error
from ._byte_classes import column_classes, joint_partition, key_columns
from ._determinize import determinize
from ._jit import clock
from ._minimize import minimize, renumber
from ._product import pair_product

__all__ = [
    "ByteDFA",
    "concat",
    "union",
    "intersect",
    "difference",
    "literal_dfa",
    "literals_dfa",
    "word_trie",
    "empty_dfa",
]


class ByteDFA:
    """An immutable DFA over bytes: ``transitions[state, byte]`` is the next state or -1.

    A DFA may be made from its table over classes of bytes it does not tell apart
    (:meth:`of_classes`: a string of a large ``maxLength`` has tens of thousands of
    states and 44 classes, 14 MB instead of 82 at maxLength 4,000); its 256-column table
    is then made when first asked for, and :meth:`class_table` serves what reads rows
    without it."""

    __slots__ = ("_t", "accepting", "_key", "_cls", "_classes")

    start: int = 0

    def __init__(self, transitions: np.ndarray, accepting: np.ndarray):
        # Internal constructor: callers hand over an already canonical table.
        # Use ByteDFA.from_table to canonicalize an arbitrary one.
        self._set(np.ascontiguousarray(transitions, dtype=np.int32), None, None,
                  np.ascontiguousarray(accepting, dtype=np.bool_))

    def _set(self, table, classes, byte_cls, accepting) -> None:
        """Every slot: the 256-column table or None, the table over byte classes and the
        class of each byte (or None), the accepting flags; the arrays made read-only."""
        for a in (table, classes, byte_cls, accepting):
            if a is not None:
                a.setflags(write=False)
        self._t = table
        self._classes = classes  # the table over the classes of _cls
        self._cls = byte_cls  # a partition of the bytes the DFA respects
        self.accepting = accepting
        self._key = None

    @classmethod
    def of_kernel(cls, table: np.ndarray, accepting: np.ndarray) -> "ByteDFA":
        """The DFA of a canonical table a kernel made: int32 [n, 256] and bool [n],
        contiguous and owned by no one else (made read-only here, not copied)."""
        d = cls.__new__(cls)
        d._set(table, None, None, accepting)
        return d

    @classmethod
    def of_classes(cls, table: np.ndarray, byte_cls: np.ndarray, accepting: np.ndarray) -> "ByteDFA":
        """The DFA of a canonical table over byte classes: int32 [n, k], column ``c`` the
        bytes ``b`` with ``byte_cls[b] == c`` (every class has a byte), and bool [n]; the
        arrays are owned by no one else (made read-only here, not copied)."""
        d = cls.__new__(cls)
        d._set(None, np.ascontiguousarray(table, dtype=np.int32), np.ascontiguousarray(byte_cls, dtype=np.int64),
               accepting)
        return d

    @property
    def transitions(self) -> np.ndarray:
        """int32 [n, 256], read-only."""
        t = self._t
        if t is None:
            # (np.take makes a C-ordered array; fancy indexing would give an F-ordered one)
            t = np.take(self._classes, self._cls, axis=1)
            t.setflags(write=False)
            self._t = t
        return t

    def compact(self) -> tuple[np.ndarray, np.ndarray]:
        """(int32 [n, k] table over byte classes the DFA respects, int64 [256] class of each
        byte, classes numbered 0 .. k-1): the table a DFA made from classes was made from,
        else the distinct columns of the 256-column one."""
        if self._t is None:
            return self._classes, self._cls
        _, reps, inverse = np.unique(self._byte_partition(), return_index=True, return_inverse=True)
        return np.take(self._t, reps, axis=1), inverse.reshape(-1).astype(np.int64)

    def row(self, s: int) -> np.ndarray:
        """The 256 targets of state ``s`` (without making the 256-column table)."""
        if self._t is not None:
            return self._t[s]
        return self._classes[s][self._cls]

    def class_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(int32 [n, k] table over byte classes, int64 [256] class of each byte): row ``s``
        of :attr:`transitions` is ``table[s][classes]``. Read-only; the arrays of a DFA made
        from them, else the identity classes over the 256-column table (no copy)."""
        if self._t is None:
            return self._classes, self._cls
        return self._t, _IDENTITY

    def _byte_partition(self) -> np.ndarray:
        cls = getattr(self, "_cls", None)  # absent on instances restored without it
        if cls is None:
            cls = self._cls = column_classes(self.transitions)
        return cls

    def class_bytes(self) -> np.ndarray:
        """One byte (int64) of each class of bytes the DFA does not tell apart."""
        return np.unique(self._byte_partition(), return_index=True)[1].astype(np.int64)

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
        t32 = np.ascontiguousarray(trans, dtype=np.int32)
        byte_cls = column_classes(t32)
        _, reps = np.unique(byte_cls, return_index=True)
        return finalize(np.take(t32, reps, axis=1), byte_cls, acc, start)

    @property
    def n_states(self) -> int:
        return int((self._t if self._t is not None else self._classes).shape[0])

    @property
    def key(self) -> str:
        """SHA-256 of the canonical table; equal languages give equal keys.

        The table is hashed over its coarsest byte classes (the class of each byte, then
        one column per class), which determine it: a few hundred bytes for a DFA whose
        256-column table is tens of kilobytes."""
        if self._key is None:
            part = getattr(self, "_cls", None)
            if part is None:
                part = self._byte_partition()
            cls, tab = key_columns(self.transitions, part)
            self._key = _dfa_key(self.n_states, self.accepting, cls, tab)
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
        return self.n_states == 1 and not self.accepting[0] and bool((self.row(0) < 0).all())

    def accepts_empty(self) -> bool:
        """True iff the empty string is in the language."""
        return bool(self.accepting[0])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ByteDFA) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"ByteDFA(n_states={self.n_states}, key={self.key[:12]})"


_IDENTITY = np.arange(256, dtype=np.int64)  # every byte a class of its own (see ByteDFA.class_table)
_IDENTITY.setflags(write=False)


def _dfa_key(n_states: int, accepting: np.ndarray, cls: np.ndarray, tab: np.ndarray) -> str:
    """:attr:`ByteDFA.key` from the table's coarsest byte classes (as
    :func:`._byte_classes.key_columns` gives them)."""
    h = hashlib.sha256(b"ByteDFA2")
    h.update(n_states.to_bytes(8, sys.byteorder, signed=True))  # as np.int64(n).tobytes()
    h.update(accepting.tobytes())
    h.update(cls.tobytes())
    h.update(tab.astype("<i4", copy=False).tobytes())
    return h.hexdigest()


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


def word_trie(words) -> tuple[list[dict[int, int]], list[bool]]:
    """The trie of byte strings ``words``: per node (the root 0, a child always after its
    parent) its children by byte, and whether a word ends there."""
    children: list[dict[int, int]] = [{}]
    final = [False]
    for w in words:
        node = 0
        for b in w:
            kids = children[node]
            nxt = kids.get(b)
            if nxt is None:
                nxt = kids[b] = len(children)
                children.append({})
                final.append(False)
            node = nxt
        final[node] = True
    return children, final


def literals_dfa(words: Sequence[bytes], *, max_states: int = DEFAULT_LIMITS.max_regex_states,
                 time_limit: float = DEFAULT_LIMITS.max_regex_seconds) -> ByteDFA:
    """The minimal DFA accepting exactly ``words``: their trie, minimized (an ``enum`` of
    hundreds of strings; a union of as many literal DFAs costs milliseconds in byte
    classes and subset bookkeeping alone)."""
    children, final = word_trie(words)
    used = sorted({b for kids in children for b in kids})
    spare = int(len(used) < 256)  # class 0: the bytes no word has, if any
    byte_cls = np.zeros(256, dtype=np.int64)
    byte_cls[used] = np.arange(spare, len(used) + spare)
    src, col, dst = [], [], []
    for node, kids in enumerate(children):
        for b, nxt in kids.items():
            src.append(node)
            col.append(b)
            dst.append(nxt)
    table = np.full((len(children), len(used) + spare), -1, dtype=np.int32)
    if src:
        table[np.array(src), byte_cls[np.array(col)]] = dst
    t0 = clock()
    out = finalize(table, byte_cls, final, 0, deadline=t0 + time_limit, what="union", time_limit=time_limit)
    if out.n_states > max_states:
        _raise_status(1, "union", max_states, time_limit)
    return out


# ----------------------------------------------------------------------------- core


def finalize(table, byte_cls: np.ndarray, accepting, start: int, deadline: float | None = None,
             what: str = "minimization", time_limit: float | None = None) -> ByteDFA:
    """Trim, minimize and canonically renumber a DFA given over byte classes.

    ``table[s][c]`` is the target of state ``s`` on byte class ``c`` (-1 dead);
    ``byte_cls[b]`` is the class of byte ``b``. Every class must occur in ``byte_cls``.
    """
    rows = np.ascontiguousarray(table, dtype=np.int32)
    if not rows.flags.writeable:  # one numba specialization: writable arrays only
        rows = rows.copy()
    acc = np.array(accepting, dtype=np.bool_)
    n = acc.shape[0]
    if n == 0:
        return empty_dfa()
    byte_cls = np.asarray(byte_cls, dtype=np.int64).reshape(-1)
    k = int(byte_cls.max()) + 1
    rows = rows.reshape(n, k)
    # classes in order of their first byte, so the numbering follows bytes 0..255
    first = np.full(k, 256, dtype=np.int64)
    np.minimum.at(first, byte_cls, np.arange(256, dtype=np.int64))
    col_order = np.argsort(first, kind="stable").astype(np.int64)
    out, out_acc, status = minimize(rows, acc, int(start), col_order,
                                             float("inf") if deadline is None else float(deadline))
    if status == 2 or (deadline is not None and clock() > deadline):
        if time_limit is not None:
            raise limit_error(f"{what}: exceeded time_limit={time_limit}s while minimizing", "max_regex_seconds",
                              time_limit)
        err = CompileLimitError(f"{what}: exceeded the time limit while minimizing")
        err.limit = "max_regex_seconds"
        raise err
    if out.shape[0] == 0:
        return empty_dfa()
    d = ByteDFA(np.take(out, byte_cls, axis=1), out_acc)
    d._cls = byte_cls
    return d


def renumbered(table: np.ndarray, byte_cls: np.ndarray, accepting: np.ndarray, start: int = 0) -> ByteDFA:
    """The canonical DFA of a table over byte classes (as :func:`finalize` takes) that is
    already minimal and trim, by renumbering alone: what :func:`finalize` returns for it,
    without the cost of minimizing (a caller that built the minimal DFA directly)."""
    byte_cls = np.asarray(byte_cls, dtype=np.int64).reshape(-1)
    k = int(byte_cls.max()) + 1
    rows = np.ascontiguousarray(table, dtype=np.int32).reshape(-1, k)
    first = np.full(k, 256, dtype=np.int64)
    np.minimum.at(first, byte_cls, np.arange(256, dtype=np.int64))
    col_order = np.argsort(first, kind="stable").astype(np.int64)
    out, out_acc = renumber(rows, np.ascontiguousarray(accepting, dtype=np.bool_), int(start), col_order)
    # (its 256-column table is made if something asks for it: a lexer reads the rows
    # over classes, as far as tokens go)
    return ByteDFA.of_classes(out, byte_cls, out_acc)


def joint_classes(dfas: Sequence[ByteDFA]) -> tuple[np.ndarray, np.ndarray]:
    """Joint byte classes of several DFAs: (representative byte per class, its first, in
    increasing order; class per byte). One kernel pass over all of them (a lexeme start of
    a few hundred object keys asks for theirs in a mask)."""
    parts = np.empty((len(dfas), 256), dtype=np.int64)
    for i, d in enumerate(dfas):
        parts[i] = d._byte_partition()
    return joint_partition(parts)


def joint_class_bytes(*dfas: ByteDFA) -> np.ndarray:
    """One byte (int64) of each class of bytes that none of ``dfas`` tells apart."""
    return joint_classes(dfas)[0]


def _raise_status(status: int, what: str, max_states: int, time_limit: float) -> None:
    if status == 1:
        raise limit_error(f"{what}: more than {max_states} DFA states (max_states={max_states})",
                          "max_regex_states", max_states)
    if status == 2:
        raise limit_error(f"{what}: exceeded time_limit={time_limit}s", "max_regex_seconds", time_limit)


def _pair(a: ByteDFA, b: ByteDFA, op: int, max_states: int, time_limit: float, what: str) -> ByteDFA:
    reps, byte_cls = joint_classes((a, b))
    t0 = clock()
    rows, acc, status = pair_product(np.take(a.transitions, reps, axis=1),
                                              np.take(b.transitions, reps, axis=1),
                                              np.array(a.accepting), np.array(b.accepting), op, max_states + 1, t0 + time_limit)
    _raise_status(status, what, max_states, time_limit)
    return finalize(rows, byte_cls, acc, 0, deadline=t0 + time_limit, what=what, time_limit=time_limit)


def _subsets(dfas: Sequence[ByteDFA], concat_: bool, max_states: int, time_limit: float, what: str) -> ByteDFA:
    """Subset construction over the disjoint union of ``dfas``: their union, or, with
    ``concat_``, their concatenation (epsilon from each accepting state to the next start)."""
    reps, byte_cls = joint_classes(dfas)
    k = len(reps)
    sizes = [d.n_states for d in dfas]
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_el = int(offs[-1])
    parts = []
    for d, o in zip(dfas, offs[:-1].tolist()):
        t = np.take(d.transitions, reps, axis=1)
        parts.append(np.where(t >= 0, t + np.int32(o), np.int32(-1)))
    tab = np.concatenate(parts, axis=0)
    src, col = np.nonzero(tab >= 0)
    mv_off = np.zeros(n_el + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n_el), out=mv_off[1:])
    mv_c = col.astype(np.int32)
    mv_tgt = tab[src, col].astype(np.int32)
    accs = np.concatenate([d.accepting for d in dfas]).astype(np.bool_)
    if concat_:
        # element of DFA j that accepts -> start of DFA j+1; only the last DFA's accept
        eps_src_l, eps_dst_l = [], []
        for j in range(len(dfas) - 1):
            acc_j = np.flatnonzero(dfas[j].accepting) + offs[j]
            eps_src_l.append(acc_j)
            eps_dst_l.append(np.full(acc_j.shape[0], offs[j + 1], dtype=np.int64))
        eps_src = np.concatenate(eps_src_l) if eps_src_l else np.zeros(0, dtype=np.int64)
        eps_dst = np.concatenate(eps_dst_l) if eps_dst_l else np.zeros(0, dtype=np.int64)
        is_final = np.zeros(n_el, dtype=np.bool_)
        is_final[offs[-2]:] = dfas[-1].accepting
        seeds = [0]
    else:
        eps_src = eps_dst = np.zeros(0, dtype=np.int64)
        is_final = accs
        seeds = offs[:-1].tolist()
    order = np.argsort(eps_src, kind="stable")
    eps_dat = eps_dst[order].astype(np.int32)
    eps_off = np.zeros(n_el + 1, dtype=np.int64)
    np.cumsum(np.bincount(eps_src, minlength=n_el), out=eps_off[1:])
    # start closure
    seen = set(seeds)
    stack = list(seeds)
    while stack:
        x = stack.pop()
        for j in range(int(eps_off[x]), int(eps_off[x + 1])):
            y = int(eps_dat[j])
            if y not in seen:
                seen.add(y)
                stack.append(y)
    start_acc = any(bool(is_final[x]) for x in seen)
    start_set = np.array(sorted(x for x in seen if mv_off[x + 1] > mv_off[x]), dtype=np.int32)
    t0 = clock()
    rows, acc, status = determinize(k, mv_off, mv_c, mv_c, mv_tgt, eps_off, eps_dat, is_final,
                                             start_set, start_acc, max_states + 1, t0 + time_limit)
    _raise_status(status, what, max_states, time_limit)
    return finalize(rows, byte_cls, acc, 0, deadline=t0 + time_limit, what=what, time_limit=time_limit)


def intersect(*dfas: ByteDFA, max_states: int = DEFAULT_LIMITS.max_regex_states,
              time_limit: float = DEFAULT_LIMITS.max_regex_seconds) -> ByteDFA:
    """Strings accepted by every DFA. Raises CompileLimitError past the limits."""
    if not dfas:
        raise ValueError("intersect needs at least one DFA")
    # smallest first keeps the intermediate products small
    order = sorted(dfas, key=lambda d: d.n_states)
    out = order[0]
    for d in order[1:]:
        if out.is_empty():
            return out
        out = _pair(out, d, 0, max_states, time_limit, "intersect")
    return out


def union(*dfas: ByteDFA, max_states: int = DEFAULT_LIMITS.max_regex_states,
          time_limit: float = DEFAULT_LIMITS.max_regex_seconds) -> ByteDFA:
    """Strings accepted by at least one DFA (no arguments: the empty language)."""
    if not dfas:
        return empty_dfa()
    if len(dfas) == 1:
        return dfas[0]
    if len(dfas) == 2:
        return _pair(dfas[0], dfas[1], 2, max_states, time_limit, "union")
    return _subsets(dfas, False, max_states, time_limit, "union")


def difference(a: ByteDFA, b: ByteDFA, *, max_states: int = DEFAULT_LIMITS.max_regex_states,
               time_limit: float = DEFAULT_LIMITS.max_regex_seconds) -> ByteDFA:
    """Strings accepted by ``a`` and not by ``b``."""
    return _pair(a, b, 1, max_states, time_limit, "difference")


def _joined(ta: np.ndarray, acc_a: np.ndarray, tb: np.ndarray, acc_b: np.ndarray):
    """``A·B`` as one table (over shared byte classes) without a subset construction,
    when that is exact: every accepting state of A is a sink (its incoming edges go to B's
    start instead), or B's start has no incoming edges and never competes with an
    accepting state of A for a class (its row is merged into those states).
    Returns (table, accepting) or None."""
    n_a = ta.shape[0]
    if not acc_a.any():
        return None
    out_b = np.where(tb >= 0, tb + np.int32(n_a), np.int32(-1))
    acc_rows = ta[acc_a]
    if not (acc_rows >= 0).any():
        if acc_a[0]:
            return tb, acc_b  # A is the empty string alone
        hit = ta >= 0
        into_acc = np.zeros(ta.shape, dtype=np.bool_)
        into_acc[hit] = acc_a[ta[hit]]
        t = np.where(into_acc, np.int32(n_a), ta)
        return np.concatenate([t, out_b]), np.concatenate([np.zeros(n_a, dtype=np.bool_), acc_b])
    row0 = tb[0]
    if (tb == 0).any() or ((acc_rows >= 0) & (row0 >= 0)[None, :]).any():
        return None
    t = ta.copy()
    t[acc_a] = np.where((row0 >= 0)[None, :], (row0 + np.int32(n_a))[None, :], acc_rows)
    acc = np.concatenate([acc_a & bool(acc_b[0]), acc_b])
    return np.concatenate([t, out_b]), acc


def concat(*dfas: ByteDFA, max_states: int = DEFAULT_LIMITS.max_regex_states,
           time_limit: float = DEFAULT_LIMITS.max_regex_seconds) -> ByteDFA:
    """Concatenation of the languages, in order (no arguments: the empty string)."""
    if not dfas:
        return literal_dfa(b"")
    if len(dfas) == 1:
        return dfas[0]
    t0 = clock()
    if any(d.is_empty() for d in dfas):
        return empty_dfa()
    reps, byte_cls = joint_classes(dfas)
    # join cheaply where exact; a subset construction over the rest
    pending: list = []
    cur = None  # (class table, accepting) of the joined run so far
    for d in dfas:
        tab = (np.take(d.transitions, reps, axis=1), d.accepting)
        if cur is not None:
            j = _joined(cur[0], cur[1], tab[0], tab[1])
            if j is not None and j[0].shape[0] <= 4 * max_states:
                cur = j
                continue
            pending.append(finalize(cur[0], byte_cls, cur[1], 0, deadline=t0 + time_limit, what="concat",
                                    time_limit=time_limit))
        cur = tab
    last = finalize(cur[0], byte_cls, cur[1], 0, deadline=t0 + time_limit, what="concat", time_limit=time_limit)
    if not pending:
        if last.n_states > max_states:
            _raise_status(1, "concat", max_states, time_limit)
        return last
    return _subsets(pending + [last], True, max_states, time_limit, "concat")
