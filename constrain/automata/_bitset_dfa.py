"""Minimal DFAs of small NFAs, with subsets as bitsets: one compact numba kernel.

Most patterns make NFAs of at most a few hundred states. For those, a subset of NFA
states fits in a few 64-bit words: closures and moves are word-wise ORs, subsets are
found by hashing their words, and Moore's partition refinement minimizes the few states
there are. The result is the canonical table :func:`._regex_dfa.regex_dfa` and
:func:`._byte_classes.widen` give (trimmed, minimal, numbered breadth-first from the start
in byte order, byte classes cut where the NFA's edges are): the minimal DFA of a
language is unique, and so is that numbering. Larger NFAs, NFAs with anchors, and
subset constructions past :data:`MAX_SUBSETS` states are left to the general kernels.
"""

from __future__ import annotations

import numpy as np
from .._kernels import njit

from .._hashtable import SEED, first_slot, hash_end, hash_step, next_slot
from ._reach import reachable

__all__ = ["bitset_table", "MAX_NFA", "MAX_SUBSETS"]

MAX_NFA = 512  # NFA states (eight words per subset)
MAX_SUBSETS = 4096


@njit(cache=True, nogil=True, inline="always")
def _hash_words(x, W):
    h = np.int64(SEED)
    for w in range(W):
        # mixed after every word: a word's high bits must reach the slot's low bits
        h = hash_end(hash_step(h, np.int64(x[w])))
    return h


@njit(cache=True, nogil=True)
def edge_classes(ed):
    """Byte classes of the byte-range edges ``ed`` (four blocks: sources, low bytes, high
    bytes, targets): the intervals between cuts at 0, at the newline (10 and 11: end
    anchors tell it apart) and at each edge's ends. Returns (class of each byte, number
    of classes)."""
    ne = ed.shape[0] // 4
    cut = np.zeros(257, dtype=np.bool_)
    cut[0] = True
    cut[10] = True
    cut[11] = True
    cut[256] = True
    for e in range(ne):
        cut[ed[ne + e]] = True
        cut[ed[2 * ne + e] + 1] = True
    byte_cls = np.empty(256, dtype=np.int64)
    c = -1
    for b in range(256):
        if cut[b]:
            c += 1
        byte_cls[b] = c
    return byte_cls, c + 1


@njit(cache=True, nogil=True)
def _by_source(src, m, n):
    """The ``m`` edges whose sources are ``src[:m]`` (states below ``n``) grouped by
    source: (offsets [n + 1], the edges' indices in that order, input order within a
    source)."""
    off = np.zeros(n + 1, dtype=np.int64)
    for e in range(m):
        off[src[e] + 1] += 1
    for s in range(n):
        off[s + 1] += off[s]
    pos = np.empty(max(m, 1), dtype=np.int64)
    fill = off[:n].copy()
    for e in range(m):
        pos[fill[src[e]]] = e
        fill[src[e]] += 1
    return off, pos


@njit(cache=True, nogil=True)
def bitset_table(n, ed, ep, final, max_subsets):
    """(ok, table int32 [m, 256], accepting [m], byte class of each byte) of the minimal
    DFA of a Thompson NFA without anchors: ``n`` states, start 0, accepting ``final``,
    byte-range edges ``ed`` (four blocks: sources, low bytes, high bytes, targets) and
    epsilon edges ``ep`` (two blocks: sources, targets), as :func:`._regex_dfa.regex_dfa`
    takes them. m == 0 is the empty language. ``ok`` False (nothing else meaningful):
    more than :data:`MAX_NFA` NFA states, or more subsets than ``max_subsets``,
    :data:`MAX_SUBSETS` or four per NFA state."""
    ne = ed.shape[0] // 4
    npe = ep.shape[0] // 2
    byte_cls = np.empty(256, dtype=np.int64)
    if n > MAX_NFA:
        return False, np.empty((0, 256), dtype=np.int32), np.empty(0, dtype=np.bool_), byte_cls
    W = (n + 63) >> 6
    byte_cls, k = edge_classes(ed)
    # epsilon closures as bitsets
    eoff, pos = _by_source(ep, npe, n)
    edat = np.empty(max(npe, 1), dtype=np.int64)
    for j in range(npe):
        edat[j] = ep[npe + pos[j]]
    cl = np.zeros((n, W), dtype=np.uint64)
    mark = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    for s in range(n):
        stack[0] = s
        sp = 1
        mark[s] = s
        while sp > 0:
            sp -= 1
            x = stack[sp]
            cl[s, x >> 6] |= np.uint64(1) << np.uint64(x & 63)
            for j in range(eoff[x], eoff[x + 1]):
                y = edat[j]
                if mark[y] != s:
                    mark[y] = s
                    stack[sp] = y
                    sp += 1
    # moves by source: class span and target
    moff, pos = _by_source(ed, ne, n)
    m_lo = np.empty(max(ne, 1), dtype=np.int64)
    m_hi = np.empty(max(ne, 1), dtype=np.int64)
    m_tgt = np.empty(max(ne, 1), dtype=np.int64)
    for j in range(ne):
        e = pos[j]
        m_lo[j] = byte_cls[ed[ne + e]]
        m_hi[j] = byte_cls[ed[2 * ne + e]]
        m_tgt[j] = ed[3 * ne + e]
    # subset construction, in arrays sized once (growing one inside the loop would slow
    # numba's code for all of it): past them, the general kernels take over
    cap = min(MAX_SUBSETS, max_subsets, 4 * n + 64)
    sets = np.empty((cap, W), dtype=np.uint64)
    dtr = np.empty((cap, k), dtype=np.int64)
    hashes = np.empty(cap, dtype=np.int64)
    size = 16
    while size < 2 * cap:
        size *= 2
    slots = np.full(size, -1, dtype=np.int64)
    sets[0] = cl[0]
    h = _hash_words(sets[0], W)
    hashes[0] = h
    slots[first_slot(slots, h)] = 0
    n_sub = 1
    tmp = np.empty((k, W), dtype=np.uint64)
    i = 0
    while i < n_sub:
        tmp[:] = 0
        for w in range(W):
            word = sets[i, w]
            if word == 0:
                continue
            for b in range(64):
                if (word >> np.uint64(b)) & np.uint64(1):
                    s = w * 64 + b
                    for j in range(moff[s], moff[s + 1]):
                        t = m_tgt[j]
                        for cc in range(m_lo[j], m_hi[j] + 1):
                            for v in range(W):
                                tmp[cc, v] |= cl[t, v]
        for cc in range(k):
            empty = True
            for v in range(W):
                if tmp[cc, v] != 0:
                    empty = False
                    break
            if empty:
                dtr[i, cc] = -1
                continue
            h = _hash_words(tmp[cc], W)
            sl = first_slot(slots, h)
            found = -1
            while True:
                e = slots[sl]
                if e < 0:
                    break
                if hashes[e] == h:
                    same = True
                    for v in range(W):
                        if sets[e, v] != tmp[cc, v]:
                            same = False
                            break
                    if same:
                        found = e
                        break
                sl = next_slot(slots, sl)
            if found < 0:
                if n_sub >= cap:
                    return False, np.empty((0, 256), dtype=np.int32), np.empty(0, dtype=np.bool_), byte_cls
                found = n_sub
                sets[found] = tmp[cc]
                hashes[found] = h
                slots[sl] = found
                n_sub += 1
            dtr[i, cc] = found
        i += 1
    m = n_sub
    fw = final >> 6
    fb = np.uint64(1) << np.uint64(final & 63)
    acc = np.empty(m, dtype=np.bool_)
    for s in range(m):
        acc[s] = (sets[s, fw] & fb) != 0
    # trim: the states from which an accepting state is reachable
    roff = np.zeros(m + 1, dtype=np.int64)
    for s in range(m):
        for cc in range(k):
            t = dtr[s, cc]
            if t >= 0:
                roff[t + 1] += 1
    for s in range(m):
        roff[s + 1] += roff[s]
    rdat = np.empty(max(roff[m], 1), dtype=np.int64)
    fill = roff[:m].copy()
    for s in range(m):
        for cc in range(k):
            t = dtr[s, cc]
            if t >= 0:
                rdat[fill[t]] = s
                fill[t] += 1
    live = reachable(roff, rdat, acc)
    queue = np.empty(m, dtype=np.int64)
    if not live[0]:
        return True, np.empty((0, 256), dtype=np.int32), np.empty(0, dtype=np.bool_), byte_cls
    part = np.full(m, -1, dtype=np.int64)
    rep = np.empty(m, dtype=np.int64)
    tsize = 16
    while tsize < 2 * m:
        tsize *= 2
    tslots = np.empty(tsize, dtype=np.int64)
    # Acyclic (a finite language, as most patterns are): each state's block follows from
    # its targets' blocks, so one pass in reverse topological order minimizes.
    indeg = np.zeros(m, dtype=np.int64)
    for s in range(m):
        if live[s]:
            for cc in range(k):
                t = dtr[s, cc]
                if t >= 0 and live[t]:
                    indeg[t] += 1
    qn = 0
    for s in range(m):
        if live[s] and indeg[s] == 0:
            queue[qn] = s
            qn += 1
    qi = 0
    while qi < qn:
        s = queue[qi]
        qi += 1
        for cc in range(k):
            t = dtr[s, cc]
            if t >= 0 and live[t]:
                indeg[t] -= 1
                if indeg[t] == 0:
                    queue[qn] = t
                    qn += 1
    n_live = 0
    for s in range(m):
        if live[s]:
            n_live += 1
    if qn == n_live:
        tslots[:] = -1
        count = 0
        for qi in range(qn - 1, -1, -1):
            count = _assign(queue[qi], acc, dtr, k, live, part, part, tslots, rep, count)
        return _numbered(dtr, k, live, acc, part, rep, count, byte_cls)
    # Moore refinement over the live states (a dead target is block -1)
    has_acc = False
    has_rej = False
    for s in range(m):
        if live[s]:
            if acc[s]:
                has_acc = True
            else:
                has_rej = True
    for s in range(m):
        if live[s]:
            part[s] = 1 if (acc[s] and has_rej) else 0
    count = 2 if (has_acc and has_rej) else 1
    newp = np.full(m, -1, dtype=np.int64)
    while True:
        tslots[:] = -1
        nb = 0
        for s in range(m):
            if live[s]:
                nb = _assign(s, part, dtr, k, live, part, newp, tslots, rep, nb)
        done = nb == count
        for s in range(m):
            part[s] = newp[s]
        count = nb
        if done:
            break
    return _numbered(dtr, k, live, acc, part, rep, count, byte_cls)


@njit(cache=True, nogil=True)
def _assign(s, owns, dtr, k, live, part, out, tslots, rep, nb):
    """Give state ``s`` the block of the first state seen with its signature (``owns[s]``,
    its accepting flag or its block so far, and the blocks ``part`` of its targets, -1
    for dead ones), else block ``nb`` (``rep[nb] = s``); written to ``out[s]``. Returns
    the number of blocks. ``tslots``: an open-addressing table of the states seen."""
    h = hash_step(np.int64(SEED), owns[s])
    for cc in range(k):
        t = dtr[s, cc]
        bt = part[t] if (t >= 0 and live[t]) else -1
        h = hash_end(hash_step(h, bt + 1))
    sl = first_slot(tslots, h)
    while True:
        r = tslots[sl]
        if r < 0:
            tslots[sl] = s
            rep[nb] = s
            out[s] = nb
            return nb + 1
        if owns[r] == owns[s]:
            same = True
            for cc in range(k):
                t1 = dtr[s, cc]
                t2 = dtr[r, cc]
                b1 = part[t1] if (t1 >= 0 and live[t1]) else -1
                b2 = part[t2] if (t2 >= 0 and live[t2]) else -1
                if b1 != b2:
                    same = False
                    break
            if same:
                out[s] = out[r]
                return nb
        sl = next_slot(tslots, sl)


@njit(cache=True, nogil=True)
def _numbered(dtr, k, live, acc, part, rep, count, byte_cls):
    """The result of :func:`bitset_table` from the blocks ``part`` (``rep``: one state of
    each): numbered breadth first from the start's block, classes in byte order."""
    order = np.full(count, -1, dtype=np.int64)
    bfs = np.empty(count, dtype=np.int64)
    order[part[0]] = 0
    bfs[0] = part[0]
    nq = 1
    qi = 0
    while qi < nq:
        r = rep[bfs[qi]]
        qi += 1
        for cc in range(k):
            t = dtr[r, cc]
            if t >= 0 and live[t]:
                bt = part[t]
                if order[bt] < 0:
                    order[bt] = nq
                    bfs[nq] = bt
                    nq += 1
    # classes are intervals of bytes: each row is a few runs
    first = np.empty(k + 1, dtype=np.int64)
    for b in range(255, -1, -1):
        first[byte_cls[b]] = b
    first[k] = 256
    table = np.empty((nq, 256), dtype=np.int32)
    out_acc = np.empty(nq, dtype=np.bool_)
    for q in range(nq):
        r = rep[bfs[q]]
        out_acc[q] = acc[r]
        for cc in range(k):
            t = dtr[r, cc]
            v = order[part[t]] if (t >= 0 and live[t]) else -1
            table[q, first[cc] : first[cc + 1]] = v
    return True, table, out_acc, byte_cls
