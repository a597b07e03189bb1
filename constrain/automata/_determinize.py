"""Subset construction over byte classes: NFAs (and unions or concatenations of DFAs)
to DFAs, in numba.

Sets of NFA states live in flat buffers and are found again through an open-addressing
table keyed on their sorted contents, so no Python object is made per state. Hot loops
take no array from a call that may reallocate it: numba would count references (atomic
operations) on every iteration.
"""

from __future__ import annotations

import numpy as np
from .._kernels import njit

from .._hashtable import first_slot, hash_run, next_slot, table_of
from ._byte_classes import rows_of
from ._support import grow1, late

__all__ = ["determinize", "determinize_edges"]


@njit(cache=True, nogil=True, inline="always")
def _closure(y, eps_off, eps_dat, has_moves, is_final, mark, stamp, stack, out):
    """Epsilon closure of element ``y``: writes the elements with moves into ``out``
    (unsorted), returns (count, accepting)."""
    n_out = 0
    acc = False
    sp = 0
    stack[sp] = y
    sp += 1
    mark[y] = stamp
    while sp > 0:
        sp -= 1
        x = stack[sp]
        if is_final[x]:
            acc = True
        if has_moves[x]:
            out[n_out] = x
            n_out += 1
        for j in range(eps_off[x], eps_off[x + 1]):
            z = eps_dat[j]
            if mark[z] != stamp:
                mark[z] = stamp
                stack[sp] = z
                sp += 1
    return n_out, acc


# slots of the scalar state that _subsets keeps between calls
_I, _N, _CL, _STAMP, _NEED_N, _NEED_DAT, _NEED_CL, _NEED_B, _NEED_E = 0, 1, 2, 3, 4, 5, 6, 7, 8


@njit(cache=True, nogil=True)
def _subsets(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final, has_moves, det, cl_start, cl_len,
             cl_acc, cl_dat, mark, stack, tmp_el, memo1, cur, head, b_next, b_val, sub_off, sub_dat, hashes, table,
             t_off, t_col, t_tgt, accs, st, max_states):
    """The subset construction of :func:`determinize_edges`, from state ``st[_I]`` on,
    over buffers it never reallocates (so that the loop carries no reference counting).
    Returns 0 when done, 1 past ``max_states``, 2 when a buffer must grow (``st`` says
    how much; the state in progress is then redone), 3 every 256 states for the clock."""
    i = st[_I]
    n_sub = st[_N]
    cl_used = st[_CL]
    stamp = st[_STAMP]
    cap = table.shape[0]
    room = accs.shape[0]
    stop = (i | 255) + 1
    code = 0
    while i < n_sub:
        if i == stop:
            code = 3
            break
        used = t_off[i]
        if used + k > t_col.shape[0]:
            st[_NEED_E] = used + k
            code = 2
            break
        p0 = sub_off[i]
        single_el = sub_off[i + 1] - p0 == 1 and det[sub_dat[p0]]
        if single_el:
            # one element whose moves are disjoint: each move is one bucket of one target
            x = sub_dat[p0]
            j0 = mv_off[x]
            j1 = mv_off[x + 1]
        else:
            # bucket the targets by class
            nb = 0
            for c in range(k):
                head[c] = -1
            need = 0
            for p in range(p0, sub_off[i + 1]):
                x = sub_dat[p]
                for j in range(mv_off[x], mv_off[x + 1]):
                    need += mv_hi[j] - mv_lo[j] + 1
            if need > b_next.shape[0]:
                st[_NEED_B] = need
                code = 2
                break
            for p in range(p0, sub_off[i + 1]):
                x = sub_dat[p]
                for j in range(mv_off[x], mv_off[x + 1]):
                    t = mv_tgt[j]
                    for c in range(mv_lo[j], mv_hi[j] + 1):
                        b_next[nb] = head[c]
                        b_val[nb] = t
                        head[c] = nb
                        nb += 1
            j0 = 0
            j1 = k
        prev = -1
        last = -1
        for jc in range(j0, j1):
            if single_el:
                q = -1
                y1 = mv_tgt[jc]
                single = True
            else:
                c = jc
                if head[c] < 0:
                    continue
                if prev >= 0:
                    # classes covered by the same edges have equal buckets: same target
                    q1 = head[c]
                    q2 = head[prev]
                    while q1 >= 0 and q2 >= 0 and b_val[q1] == b_val[q2]:
                        q1 = b_next[q1]
                        q2 = b_next[q2]
                    if q1 < 0 and q2 < 0:
                        if last >= 0:
                            t_col[used] = c
                            t_tgt[used] = last
                            used += 1
                        continue
                prev = c
                q = head[c]
                y1 = b_val[q]
                single = b_next[q] < 0
            if single and memo1[y1] >= -1:
                # the state a lone target leads to is known already
                found = memo1[y1]
            else:
                stamp += 1
                m = 0
                acc = False
                y = y1
                while True:
                    if cl_start[y] < 0:
                        stamp += 1
                        cnt, a = _closure(y, eps_off, eps_dat, has_moves, is_final, mark, stamp, stack, tmp_el)
                        if cl_used + cnt > cl_dat.shape[0]:
                            st[_NEED_CL] = cl_used + cnt
                            code = 2
                            break
                        for r in range(cnt):
                            cl_dat[cl_used + r] = tmp_el[r]
                        cl_start[y] = cl_used
                        cl_len[y] = cnt
                        cl_acc[y] = a
                        cl_used += cnt
                        stamp += 1
                        # re-mark what is already in cur under the new stamp
                        for r in range(m):
                            mark[cur[r]] = stamp
                    if cl_acc[y]:
                        acc = True
                    s0 = cl_start[y]
                    for r in range(s0, s0 + cl_len[y]):
                        z = cl_dat[r]
                        if mark[z] != stamp:
                            mark[z] = stamp
                            cur[m] = z
                            m += 1
                    if q < 0:
                        break
                    q = b_next[q]
                    if q < 0:
                        break
                    y = b_val[q]
                if code != 0:
                    break
                if m == 0 and not acc:
                    found = -1
                else:
                    if m > 1:
                        cur[:m].sort()
                    h = hash_run(cur, 0, m, 1 if acc else 0)
                    slot = first_slot(table, h)
                    found = -1
                    while True:
                        e = table[slot]
                        if e < 0:
                            break
                        if hashes[e] == h and accs[e] == acc and sub_off[e + 1] - sub_off[e] == m:
                            same = True
                            base = sub_off[e]
                            for r in range(m):
                                if sub_dat[base + r] != cur[r]:
                                    same = False
                                    break
                            if same:
                                found = e
                                break
                        slot = next_slot(table, slot)
                    if found < 0:
                        if n_sub >= max_states:
                            code = 1
                            break
                        base = sub_off[n_sub]
                        if n_sub + 1 > room or 2 * (n_sub + 1) > cap or base + m > sub_dat.shape[0]:
                            st[_NEED_N] = n_sub + 1
                            st[_NEED_DAT] = base + m
                            code = 2
                            break
                        found = n_sub
                        n_sub += 1
                        for r in range(m):
                            sub_dat[base + r] = cur[r]
                        sub_off[n_sub] = base + m
                        accs[found] = acc
                        hashes[found] = h
                        table[slot] = found
                if single:
                    memo1[y1] = found
            if found >= 0:
                if single_el:
                    for c in range(mv_lo[jc], mv_hi[jc] + 1):
                        t_col[used] = c
                        t_tgt[used] = found
                        used += 1
                else:
                    t_col[used] = c
                    t_tgt[used] = found
                    used += 1
            last = found
        if code != 0:
            break
        if single_el:
            # moves in class order (insertion sort: they mostly are already)
            for r in range(t_off[i] + 1, used):
                cc = t_col[r]
                tt = t_tgt[r]
                u = r - 1
                while u >= t_off[i] and t_col[u] > cc:
                    t_col[u + 1] = t_col[u]
                    t_tgt[u + 1] = t_tgt[u]
                    u -= 1
                t_col[u + 1] = cc
                t_tgt[u + 1] = tt
        t_off[i + 1] = used
        i += 1
    st[_I] = i
    st[_N] = n_sub
    st[_CL] = cl_used
    st[_STAMP] = stamp
    return code


@njit(cache=True)
def determinize_edges(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final, start_set, start_acc,
                      max_states, deadline):
    """Subset construction over ``k`` classes.

    Element ``x`` moves on classes ``mv_lo[j]..mv_hi[j]`` to ``mv_tgt[j]`` for ``j`` in
    ``mv_off[x]:mv_off[x+1]``; ``eps_*`` is the epsilon graph (CSR); ``is_final`` marks
    accepting elements. Returns (off, cls, tgt, accepting, status): state ``s`` moves on
    class ``cls[j]`` to ``tgt[j]`` for ``j`` in ``off[s]:off[s+1]``, in class order;
    status 1 when more than ``max_states`` states were needed, 2 past ``deadline`` (then
    no states), else 0.
    """
    n_el = is_final.shape[0]
    has_moves = np.zeros(n_el, dtype=np.bool_)
    # det: the element's moves cover disjoint classes (each class has one target)
    det = np.zeros(n_el, dtype=np.bool_)
    seen = np.full(k, -1, dtype=np.int64)
    n_moving = 0
    for x in range(n_el):
        has_moves[x] = mv_off[x + 1] > mv_off[x]
        n_moving += has_moves[x]
        ok = True
        for j in range(mv_off[x], mv_off[x + 1]):
            for c in range(mv_lo[j], mv_hi[j] + 1):
                if seen[c] == x:
                    ok = False
                seen[c] = x
        det[x] = ok
    # memoized closures
    cl_start = np.full(n_el, -1, dtype=np.int64)
    cl_len = np.zeros(n_el, dtype=np.int32)
    cl_acc = np.zeros(n_el, dtype=np.bool_)
    cl_dat = np.empty(max(16, n_el), dtype=np.int32)
    mark = np.zeros(n_el, dtype=np.int64)
    stack = np.empty(max(1, n_el), dtype=np.int32)
    tmp_el = np.empty(max(1, n_el), dtype=np.int32)
    memo1 = np.full(n_el, -2, dtype=np.int32)  # -2 unknown, -1 dead, else state id
    cur = np.empty(max(16, n_el), dtype=np.int32)
    head = np.full(k, -1, dtype=np.int64)
    b_next = np.empty(64, dtype=np.int64)
    b_val = np.empty(64, dtype=np.int32)

    # subsets; room for about as many states as elements with moves, allocated but not
    # touched past what is used
    room = max(256, min(max_states, n_moving + 1))
    sub_off = np.empty(room + 1, dtype=np.int64)
    sub_dat = np.empty(max(1024, 4 * start_set.shape[0]), dtype=np.int32)
    accs = np.empty(room, dtype=np.bool_)
    hashes = np.empty(room, dtype=np.int64)
    t_off = np.empty(room + 1, dtype=np.int64)
    t_col = np.empty(max(4 * k, n_moving + k), dtype=np.int32)
    t_tgt = np.empty(t_col.shape[0], dtype=np.int32)
    cap = 1024
    while cap < 2 * room:
        cap *= 2
    table = np.full(cap, -1, dtype=np.int32)

    # state 0
    m0 = start_set.shape[0]
    sub_dat[:m0] = start_set
    sub_off[0] = 0
    sub_off[1] = m0
    t_off[0] = 0
    accs[0] = start_acc
    h0 = hash_run(sub_dat, 0, m0, 1 if start_acc else 0)
    hashes[0] = h0
    table[first_slot(table, h0)] = 0
    st = np.zeros(9, dtype=np.int64)
    st[_N] = 1

    while True:
        code = _subsets(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final, has_moves, det, cl_start,
                        cl_len, cl_acc, cl_dat, mark, stack, tmp_el, memo1, cur, head, b_next, b_val, sub_off,
                        sub_dat, hashes, table, t_off, t_col, t_tgt, accs, st, max_states)
        n_sub = st[_N]
        if code == 0:
            return t_off[: n_sub + 1], t_col, t_tgt, accs[:n_sub], 0
        if code == 1 or (code == 3 and late(deadline)):
            return t_off[:1], t_col[:0], t_tgt[:0], accs[:0], 1 if code == 1 else 2
        if code == 3:
            continue
        if st[_NEED_N] > room:
            room = max(st[_NEED_N], 2 * room)
            accs = grow1(accs, room)
            hashes = grow1(hashes, room)
            sub_off = grow1(sub_off, room + 1)
            t_off = grow1(t_off, room + 1)
        if 2 * st[_NEED_N] > cap:
            while 2 * st[_NEED_N] > cap:
                cap *= 4
            table = table_of(hashes, n_sub, cap)
        sub_dat = grow1(sub_dat, st[_NEED_DAT])
        cl_dat = grow1(cl_dat, st[_NEED_CL])
        if st[_NEED_B] > b_next.shape[0]:
            b_next = grow1(b_next, st[_NEED_B])
            b_val = grow1(b_val, st[_NEED_B])
        if st[_NEED_E] > t_col.shape[0]:
            t_col = grow1(t_col, st[_NEED_E])
            t_tgt = grow1(t_tgt, st[_NEED_E])


@njit(cache=True)
def determinize(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final, start_set, start_acc, max_states,
                deadline):
    """:func:`determinize_edges` as a table: (rows int32 [n, k], accepting bool [n], status)."""
    off, col, tgt, accs, status = determinize_edges(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final,
                                                    start_set, start_acc, max_states, deadline)
    return rows_of(off, col, tgt, k), accs, status
