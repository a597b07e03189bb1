"""Thompson NFAs over byte ranges (with anchors) to canonical minimal DFAs, in numba:
the kernels behind :mod:`.regex`, and the trie its big alternations of strings become.
"""

from __future__ import annotations

import numpy as np
from .._kernels import njit

from .._hashtable import key_slot
from ._bitset_dfa import MAX_NFA, bitset_table, edge_classes
from ._byte_classes import widen
from ._determinize import determinize_edges
from ._minimize import minimize_edges
from ._reach import reachable
from ._support import late

__all__ = ["nfa_table", "regex_dfa", "regex_table", "trie"]


@njit(cache=True)
def regex_dfa(n, ed, ep, asr, final, max_states, deadline):
    """Minimal DFA of a Thompson NFA with anchors (see :mod:`.regex`).

    ``n`` NFA states; ``ed`` the byte-range edges as four blocks (sources, low bytes, high
    bytes, targets); ``ep`` the epsilon edges as two blocks (sources, targets); ``asr``
    the anchors as three blocks (sources, kind 0 ``bol`` / 1 ``eol`` / 2 ``eoz``,
    targets); ``final`` the accepting NFA state. The byte classes are the intervals between
    consecutive cuts, in byte order. Returns (off, cls, tgt, accepting [m], byte class of
    each byte, status): the minimized, canonically numbered DFA as edges (state ``s``
    moves on class ``cls[j]`` to ``tgt[j]`` for ``j`` in ``off[s]:off[s+1]``, in class
    order); status 1 past ``max_states`` subsets, 2 past ``deadline`` while
    determinizing, 3 while minimizing; m == 0 is the empty language.

    With end anchors a subset element is ``state * 3 + mode``: mode 0 normal, 1 a ``$``
    matched before a final newline (exactly b"\\n" must remain), 2 an end anchor matched
    (nothing may remain); without, modes 1 and 2 cannot occur and an element is a state.
    ``bol`` holds at the start only, so it is followed in the start closure.
    """
    ne = ed.shape[0] // 4
    npe = ep.shape[0] // 2
    na = asr.shape[0] // 3
    byte_cls, k = edge_classes(ed)
    nl = byte_cls[10]
    modes = 1
    for e in range(na):
        if asr[na + e] != 0:
            modes = 3
    n_el = modes * n
    # moves as CSR over elements, edges in input order within an element
    mv_off = np.zeros(n_el + 1, dtype=np.int64)
    for e in range(ne):
        x = modes * ed[e]
        mv_off[x + 1] += 1
        if modes == 3 and byte_cls[ed[ne + e]] <= nl and byte_cls[ed[2 * ne + e]] >= nl:
            mv_off[x + 2] += 1
    for x in range(n_el):
        mv_off[x + 1] += mv_off[x]
    n_mv = mv_off[n_el]
    mv_lo = np.empty(n_mv, dtype=np.int32)
    mv_hi = np.empty(n_mv, dtype=np.int32)
    mv_tgt = np.empty(n_mv, dtype=np.int32)
    fill = mv_off[:n_el].copy()
    for e in range(ne):
        x = modes * ed[e]
        clo = byte_cls[ed[ne + e]]
        chi = byte_cls[ed[2 * ne + e]]
        t = modes * ed[3 * ne + e]
        j = fill[x]
        fill[x] = j + 1
        mv_lo[j] = clo
        mv_hi[j] = chi
        mv_tgt[j] = t
        if modes == 3 and clo <= nl and chi >= nl:
            j = fill[x + 1]
            fill[x + 1] = j + 1
            mv_lo[j] = nl
            mv_hi[j] = nl
            mv_tgt[j] = t + 2
    # epsilon edges in every mode, then the end anchors
    eps_off = np.zeros(n_el + 1, dtype=np.int64)
    for e in range(npe):
        x = modes * ep[e]
        for m in range(modes):
            eps_off[x + m + 1] += 1
    for e in range(na):
        x = modes * asr[e]
        kind = asr[na + e]
        if kind == 2:
            eps_off[x + 1] += 1
            eps_off[x + 3] += 1
        elif kind == 1:
            eps_off[x + 1] += 2
            eps_off[x + 2] += 1
            eps_off[x + 3] += 1
    for x in range(n_el):
        eps_off[x + 1] += eps_off[x]
    eps_dat = np.empty(eps_off[n_el], dtype=np.int32)
    fill = eps_off[:n_el].copy()
    for e in range(npe):
        x = modes * ep[e]
        t = modes * ep[npe + e]
        for m in range(modes):
            j = fill[x + m]
            fill[x + m] = j + 1
            eps_dat[j] = t + m
    for e in range(na):
        x = modes * asr[e]
        kind = asr[na + e]
        t = modes * asr[2 * na + e]
        if kind == 0:
            continue
        j = fill[x]
        eps_dat[j] = t + 2
        j += 1
        if kind == 1:
            eps_dat[j] = t + 1
            j += 1
            jj = fill[x + 1]
            fill[x + 1] = jj + 1
            eps_dat[jj] = t + 1
        fill[x] = j
        jj = fill[x + 2]
        fill[x + 2] = jj + 1
        eps_dat[jj] = t + 2
    is_final = np.zeros(n_el, dtype=np.bool_)
    is_final[modes * final] = True
    if modes == 3:
        is_final[3 * final + 2] = True
    # start closure: epsilon edges and start-of-string anchors (few: closed over again
    # from each one newly taken)
    seeds = np.zeros(n_el, dtype=np.bool_)
    seeds[0] = True
    while True:
        seen = reachable(eps_off, eps_dat, seeds)
        grew = False
        for e in range(na):
            if asr[na + e] == 0:
                for m in range(modes):
                    y = modes * asr[2 * na + e] + m
                    if seen[modes * asr[e] + m] and not seen[y]:
                        seeds[y] = True
                        grew = True
        if not grew:
            break
    start_acc = False
    n_start = 0
    for x in range(n_el):
        if seen[x]:
            start_acc = start_acc or is_final[x]
            n_start += mv_off[x + 1] > mv_off[x]
    start = np.empty(n_start, dtype=np.int32)
    j = 0
    for x in range(n_el):
        if seen[x] and mv_off[x + 1] > mv_off[x]:
            start[j] = x
            j += 1
    off, col, tgt, acc, status = determinize_edges(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final,
                                                   start, start_acc, max_states, deadline)
    if status == 0 and late(deadline):
        status = 2
    if status != 0:
        return off[:1], col[:0], tgt[:0], acc[:0], byte_cls, status
    off, col, tgt, acc, st = minimize_edges(k, off, col, tgt, acc, 0, deadline)
    return off, col, tgt, acc, byte_cls, 3 if st != 0 else 0


@njit(cache=True)
def regex_table(n, ed, ep, asr, final, max_states, deadline):
    """:func:`regex_dfa` in one call with :func:`._byte_classes.widen`: (the byte table int32 [m, 256],
    accepting [m], byte class of each byte, status). The table has no rows when status
    is not 0."""
    off, col, tgt, acc, byte_cls, status = regex_dfa(n, ed, ep, asr, final, max_states, deadline)
    table = np.empty((off.shape[0] - 1, 256), dtype=np.int32)
    widen(off, col, tgt, byte_cls, table)
    return table, acc, byte_cls, status


@njit(cache=True)
def nfa_table(n, ed, ep, asr, final, max_states, deadline):
    """:func:`regex_table`, small NFAs without anchors by :func:`._bitset_dfa.bitset_table`
    (the same table: a canonical minimal DFA)."""
    if asr.shape[0] == 0 and n <= MAX_NFA:
        ok, table, acc, byte_cls = bitset_table(n, ed, ep, final, max_states)
        if ok:
            return table, acc, byte_cls, 0
    return regex_table(n, ed, ep, asr, final, max_states, deadline)


@njit(cache=True, nogil=True)
def trie(codes, lens):
    """A trie of strings given one after the other in ``codes`` (string ``i`` has
    ``lens[i]`` codes); a string with a code past 255 is left out. Returns (edges as four
    int64 blocks: sources, low bytes, high bytes (the same), targets; accepting states;
    number of states, the root 0; which strings are in)."""
    total = codes.shape[0]
    cap = 16
    while cap < 2 * total + 2:
        cap *= 2
    keys = np.full(cap, -1, dtype=np.int64)  # (state, byte) -> child, open addressing
    vals = np.empty(cap, dtype=np.int64)
    ends = np.empty(total, dtype=np.int64)
    final = np.zeros(total + 1, dtype=np.bool_)
    taken = np.zeros(lens.shape[0], dtype=np.bool_)
    n = 1
    pos = 0
    for i in range(lens.shape[0]):
        a = pos
        pos += lens[i]
        ok = True
        for j in range(a, pos):
            if codes[j] < 0 or codes[j] > 255:
                ok = False
                break
        if not ok:
            continue
        taken[i] = True
        node = 0
        for j in range(a, pos):
            key = node * 256 + codes[j]
            slot = key_slot(keys, key)
            if keys[slot] < 0:
                keys[slot] = key
                vals[slot] = n
                ends[n - 1] = key
                n += 1
            node = vals[slot]
        final[node] = True
    # the edge into state t is key ends[t - 1]: its source and byte
    m = n - 1
    out = np.empty(4 * m, dtype=np.int64)
    for t in range(1, n):
        key = ends[t - 1]
        out[t - 1] = key // 256
        out[m + t - 1] = key % 256
        out[2 * m + t - 1] = key % 256
        out[3 * m + t - 1] = t
    return out, np.flatnonzero(final[:n]), n, taken
