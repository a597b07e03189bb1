"""Trim, minimize and canonically renumber DFAs, in numba.

States whose right languages are finite are merged by hash-consing in reverse
topological order; the rest by Hopcroft's partition refinement. The result is numbered
breadth first from the start, so equal languages give equal tables.
"""

from __future__ import annotations

import numpy as np
from .._kernels import njit

from .._hashtable import SEED, first_slot, hash_end, hash_step, next_slot
from ._byte_classes import rows_of
from ._reach import reachable
from ._support import late

__all__ = ["minimize", "minimize_edges", "renumber"]


@njit(cache=True, nogil=True, inline="always")
def _sig_find(s, e_off, e_col, e_tgt, cls, part, own, table, reps, n_reps):
    """The class of state ``s`` by its signature: ``own[s]``, then for each edge (in
    column order) its column and the class (``cls`` >= 0) or block (``part``) of its
    target; the classes are ids in the open-addressing ``table`` with representatives
    ``reps``. A new class when none matches. Returns (class, number of classes)."""
    h = np.int64(SEED) ^ np.int64(own[s])
    for j in range(e_off[s], e_off[s + 1]):
        t = e_tgt[j]
        v = -2 - cls[t] if cls[t] >= 0 else part[t]
        h = hash_step(hash_step(h, e_col[j]), v + 6)
    slot = first_slot(table, hash_end(h))
    while True:
        e = table[slot]
        if e < 0:
            break
        r = reps[e]
        if own[r] == own[s] and e_off[r + 1] - e_off[r] == e_off[s + 1] - e_off[s]:
            same = True
            jr = e_off[r]
            for j in range(e_off[s], e_off[s + 1]):
                if e_col[j] != e_col[jr]:
                    same = False
                    break
                t = e_tgt[j]
                u = e_tgt[jr]
                ct = cls[t]
                cu = cls[u]
                if ct >= 0 or cu >= 0:
                    if ct != cu:
                        same = False
                        break
                elif part[t] != part[u]:
                    same = False
                    break
                jr += 1
            if same:
                return e, n_reps
        slot = next_slot(table, slot)
    reps[n_reps] = s
    table[slot] = n_reps
    return n_reps, n_reps + 1


@njit(cache=True)
def _hopcroft(e_off, e_col, e_tgt, k, rest, m, cls, part, count, deadline):
    """Refine ``part`` (block per state, ``count`` blocks) over the states ``rest[:m]``
    to the coarsest partition stable under the transitions between them (Hopcroft);
    ``e_*`` are the edges of each state (CSR) over ``k`` columns. Targets outside
    ``rest`` must already be told apart by ``part``. Returns the new block count, or -1
    past ``deadline``."""
    n = e_off.shape[0] - 1
    idx = np.full(n, -1, dtype=np.int64)
    for j in range(m):
        idx[rest[j]] = j
    off = np.zeros(m * k + 1, dtype=np.int64)
    for j in range(m):
        s = rest[j]
        for q in range(e_off[s], e_off[s + 1]):
            t = e_tgt[q]
            if idx[t] >= 0:
                off[idx[t] * k + e_col[q] + 1] += 1
    for x in range(m * k):
        off[x + 1] += off[x]
    src = np.empty(off[m * k], dtype=np.int32)
    fill = off[: m * k].copy()
    for j in range(m):
        s = rest[j]
        for q in range(e_off[s], e_off[s + 1]):
            t = e_tgt[q]
            if idx[t] >= 0:
                key = idx[t] * k + e_col[q]
                src[fill[key]] = j
                fill[key] += 1
    # blocks as contiguous runs of elems
    blk = np.empty(m, dtype=np.int64)
    size = np.zeros(m + 1, dtype=np.int64)
    for j in range(m):
        blk[j] = part[rest[j]]
        size[blk[j]] += 1
    bstart = np.zeros(m + 1, dtype=np.int64)
    bend = np.zeros(m + 1, dtype=np.int64)
    acc_ = 0
    for b in range(count):
        bstart[b] = acc_
        bend[b] = acc_
        acc_ += size[b]
    elems = np.empty(m, dtype=np.int64)
    loc = np.empty(m, dtype=np.int64)
    for j in range(m):
        b = blk[j]
        elems[bend[b]] = j
        loc[j] = bend[b]
        bend[b] += 1
    marked = np.zeros(m + 1, dtype=np.int64)
    touched = np.empty(m + 1, dtype=np.int64)
    in_w = np.zeros(m + 1, dtype=np.bool_)
    work = np.empty(m + 1, dtype=np.int64)
    wtop = 0
    for b in range(count):
        work[wtop] = b
        wtop += 1
        in_w[b] = True
    tmp = np.empty(m, dtype=np.int64)
    nb = count
    pops = 0
    while wtop > 0:
        pops += 1
        if (pops & 63) == 0 and late(deadline):
            return -1
        wtop -= 1
        sp = work[wtop]
        in_w[sp] = False
        sz = bend[sp] - bstart[sp]
        for r in range(sz):
            tmp[r] = elems[bstart[sp] + r]
        for c in range(k):
            nt = 0
            for r in range(sz):
                key = tmp[r] * k + c
                for q in range(off[key], off[key + 1]):
                    x = src[q]
                    b = blk[x]
                    pos = loc[x]
                    dst = bstart[b] + marked[b]
                    other = elems[dst]
                    elems[dst] = x
                    loc[x] = dst
                    elems[pos] = other
                    loc[other] = pos
                    if marked[b] == 0:
                        touched[nt] = b
                        nt += 1
                    marked[b] += 1
            for u in range(nt):
                b = touched[u]
                mk = marked[b]
                marked[b] = 0
                if mk == bend[b] - bstart[b]:
                    continue
                newb = nb
                nb += 1
                bstart[newb] = bstart[b]
                bend[newb] = bstart[b] + mk
                bstart[b] = bstart[b] + mk
                for p in range(bstart[newb], bend[newb]):
                    blk[elems[p]] = newb
                if in_w[b]:
                    work[wtop] = newb
                    wtop += 1
                    in_w[newb] = True
                elif mk <= bend[b] - bstart[b]:
                    work[wtop] = newb
                    wtop += 1
                    in_w[newb] = True
                else:
                    work[wtop] = b
                    wtop += 1
                    in_w[b] = True
    for j in range(m):
        part[rest[j]] = blk[j]
    return nb


@njit(cache=True)
def minimize_edges(k, a_off, a_col, a_tgt, acc, start, deadline):
    """Trim, minimize and canonically renumber a DFA given by its edges: state ``s``
    moves on column ``a_col[j]`` to ``a_tgt[j]`` for ``j`` in ``a_off[s]:a_off[s+1]``,
    the columns of every state in one order (the order of the canonical numbering).
    Returns the result the same way, (off, col, tgt, accepting, status); no states means
    the empty language; status 2 when past ``deadline``, else 0."""
    n = acc.shape[0]
    seeds = np.zeros(n, dtype=np.bool_)
    seeds[start] = True
    reach = reachable(a_off, a_tgt, seeds)
    # reverse edges among reachable states
    cnt = np.zeros(n + 1, dtype=np.int64)
    for s in range(n):
        if reach[s]:
            for j in range(a_off[s], a_off[s + 1]):
                cnt[a_tgt[j] + 1] += 1
    for s in range(n):
        cnt[s + 1] += cnt[s]
    pred = np.empty(cnt[n], dtype=np.int32)
    fill = cnt[:n].copy()
    for s in range(n):
        if reach[s]:
            for j in range(a_off[s], a_off[s + 1]):
                t = a_tgt[j]
                pred[fill[t]] = s
                fill[t] += 1
    live = reachable(cnt, pred, reach & acc)
    if not live[start]:
        return np.zeros(1, dtype=np.int64), a_col[:0], a_tgt[:0], acc[:0], 0
    # the edges between live states
    e_off = np.zeros(n + 1, dtype=np.int64)
    e_col = np.empty(cnt[n], dtype=np.int32)
    e_tgt = np.empty(cnt[n], dtype=np.int32)
    outdeg = np.zeros(n, dtype=np.int32)
    j = 0
    for s in range(n):
        if live[s]:
            for q in range(a_off[s], a_off[s + 1]):
                t = a_tgt[q]
                if live[t]:
                    e_col[j] = a_col[q]
                    e_tgt[j] = t
                    j += 1
            outdeg[s] = j - e_off[s]
        e_off[s + 1] = j

    # states with finite right languages: hash-consing in reverse topological order
    cls = np.full(n, -1, dtype=np.int32)
    cap = 16
    while cap < 2 * n + 2:
        cap *= 2
    table = np.full(cap, -1, dtype=np.int32)
    rep = np.empty(n, dtype=np.int32)  # representative state of each class
    part = np.zeros(n, dtype=np.int32)  # blocks of the states with infinite right languages
    own = acc.astype(np.int32)
    queue = np.empty(n, dtype=np.int32)
    qn = 0
    for s in range(n):
        if live[s] and outdeg[s] == 0:
            queue[qn] = s
            qn += 1
    nf = 0
    qi = 0
    while qi < qn:
        s = queue[qi]
        qi += 1
        cls[s], nf = _sig_find(s, e_off, e_col, e_tgt, cls, part, own, table, rep, nf)
        # decrement the live predecessors (one per edge)
        for j in range(cnt[s], cnt[s + 1]):
            p = pred[j]
            if live[p]:
                outdeg[p] -= 1
                if outdeg[p] == 0:
                    queue[qn] = p
                    qn += 1

    # the states with infinite right languages: partition refinement
    rest = np.empty(n, dtype=np.int32)
    m = 0
    seen0 = False
    for s in range(n):
        if live[s] and cls[s] < 0:
            rest[m] = s
            m += 1
            seen0 = seen0 or not acc[s]
    if m > 0:
        if late(deadline):
            return np.zeros(1, dtype=np.int64), a_col[:0], a_tgt[:0], acc[:0], 2
        for j in range(m):
            s = rest[j]
            part[s] = 1 if (acc[s] and seen0) else 0
        # one round of signatures separates by the finite targets; Hopcroft does the rest
        table[:] = -1
        newp = np.zeros(n, dtype=np.int32)
        rrep = np.empty(m, dtype=np.int32)
        count = 0
        for j in range(m):
            s = rest[j]
            newp[s], count = _sig_find(s, e_off, e_col, e_tgt, cls, part, part, table, rrep, count)
        for j in range(m):
            s = rest[j]
            part[s] = newp[s]
        count = _hopcroft(e_off, e_col, e_tgt, k, rest, m, cls, part, count, deadline)
        if count < 0:
            return np.zeros(1, dtype=np.int64), a_col[:0], a_tgt[:0], acc[:0], 2
        for j in range(m):
            rrep[part[rest[j]]] = rest[j]
        for j in range(m):
            s = rest[j]
            cls[s] = nf + part[s]
        for e in range(count):
            rep[nf + e] = rrep[e]
        nf += count

    # canonical numbering: BFS from the start class, each state's edges in column order
    order = np.full(nf, -1, dtype=np.int32)
    bfs = np.empty(nf, dtype=np.int32)
    o_off = np.empty(nf + 1, dtype=np.int64)
    o_col = np.empty(e_off[n], dtype=np.int32)
    o_tgt = np.empty(e_off[n], dtype=np.int32)
    o_acc = np.zeros(nf, dtype=np.bool_)
    order[cls[start]] = 0
    bfs[0] = cls[start]
    nq = 1
    qi = 0
    j = 0
    o_off[0] = 0
    while qi < nq:
        c0 = bfs[qi]
        s = rep[c0]
        o_acc[qi] = acc[s]
        for q in range(e_off[s], e_off[s + 1]):
            tc = cls[e_tgt[q]]
            if order[tc] < 0:
                order[tc] = nq
                bfs[nq] = tc
                nq += 1
            o_col[j] = e_col[q]
            o_tgt[j] = order[tc]
            j += 1
        qi += 1
        o_off[qi] = j
    return o_off[: nq + 1], o_col[:j], o_tgt[:j], o_acc[:nq], 0


@njit(cache=True)
def minimize(rows_in, acc, start, col_order, deadline):
    """Trim, minimize and canonically renumber a table ``rows_in`` [n, k] (-1 dead), the
    numbering following the columns in ``col_order``. Returns (rows int32 [m, k],
    accepting, status) as :func:`minimize_edges`."""
    n, k = rows_in.shape
    off = np.zeros(n + 1, dtype=np.int64)
    for s in range(n):
        d = 0
        for c in range(k):
            if rows_in[s, c] >= 0:
                d += 1
        off[s + 1] = off[s] + d
    col = np.empty(off[n], dtype=np.int32)
    tgt = np.empty(off[n], dtype=np.int32)
    j = 0
    for s in range(n):
        for jj in range(k):
            c = col_order[jj]
            t = rows_in[s, c]
            if t >= 0:
                col[j] = c
                tgt[j] = t
                j += 1
    o_off, o_col, o_tgt, o_acc, status = minimize_edges(k, off, col, tgt, acc, start, deadline)
    return rows_of(o_off, o_col, o_tgt, k), o_acc, status


@njit(cache=True)
def renumber(rows_in, acc, start, col_order):
    """Canonically renumber a table ``rows_in`` [n, k] that is already minimal and trim:
    breadth first from ``start``, successors in the order of ``col_order``, as
    :func:`minimize` numbers its result. Returns (rows int32 [n, k], accepting)."""
    n, k = rows_in.shape
    new = np.full(n, -1, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    new[start] = 0
    order[0] = start
    m = 1
    qi = 0
    while qi < m:
        s = order[qi]
        qi += 1
        for jj in range(k):
            t = rows_in[s, col_order[jj]]
            if t >= 0 and new[t] < 0:
                new[t] = m
                order[m] = t
                m += 1
    out = np.empty((m, k), dtype=np.int32)
    out_acc = np.empty(m, dtype=np.bool_)
    for i in range(m):
        s = order[i]
        for c in range(k):
            t = rows_in[s, c]
            out[i, c] = -1 if t < 0 else new[t]
        out_acc[i] = acc[s]
    return out, out_acc
