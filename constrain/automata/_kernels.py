"""Numba kernels behind :mod:`.dfa` and :mod:`.regex`: subset construction, pair
products, and trim + minimize + canonical renumbering, all over byte classes.

Tables are ``int32 [n, k]`` over ``k`` byte classes with ``-1`` for the dead state; the
regex path keeps a DFA as edge lists instead (CSR: ``off``, ``cls``, ``tgt``), since
its DFAs have few edges per state. Sets of NFA states live in flat buffers and are
found again through open-addressing hash tables keyed on their sorted contents, so no
Python object is made per state. Hot loops take no array from a call that may
reallocate it: numba would count references (atomic operations) on every iteration.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, objmode

from ._bitset_dfa import MAX_NFA, bitset_table, edge_classes

_MUL = 0x100000001B3
_SEED = -3750763034362895579  # FNV offset basis as a signed int64


@njit(cache=True, nogil=True)
def _grow1(a, need):
    if need <= a.shape[0]:
        return a
    cap = max(need, 2 * a.shape[0])
    b = np.empty(cap, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _grow_rows(a, need):
    """A transition table with room for ``need`` rows; new rows have no transitions."""
    if need <= a.shape[0]:
        return a
    cap = max(need, 2 * a.shape[0])
    b = np.full((cap, a.shape[1]), -1, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _hash_table(hashes, n, cap):
    """An open-addressing table of size ``cap`` (a power of two) holding ids ``0..n``
    at their ``hashes``."""
    table = np.full(cap, -1, dtype=np.int32)
    for e in range(n):
        sl = hashes[e] & (cap - 1)
        while table[sl] >= 0:
            sl = (sl + 1) & (cap - 1)
        table[sl] = e
    return table


@njit(cache=True)
def _late(deadline):
    with objmode(now="float64"):
        now = time.perf_counter()
    return now > deadline


@njit(cache=True, nogil=True)
def _mix(key):
    h = key * np.int64(_MUL)
    return h ^ (h >> np.int64(29))


@njit(cache=True, nogil=True)
def _hash_slice(buf, lo, hi, salt):
    h = np.int64(_SEED) ^ np.int64(salt)
    for i in range(lo, hi):
        h = (h ^ np.int64(buf[i] + 1)) * np.int64(_MUL)
    return h ^ (h >> np.int64(29))


# ----------------------------------------------------------------------------- subsets


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
                    h = np.int64(_SEED) ^ np.int64(1 if acc else 0)
                    for r in range(m):
                        h = (h ^ np.int64(cur[r] + 1)) * np.int64(_MUL)
                    h = h ^ (h >> np.int64(29))
                    slot = h & (cap - 1)
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
                        slot = (slot + 1) & (cap - 1)
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
    h0 = _hash_slice(sub_dat, 0, m0, 1 if start_acc else 0)
    hashes[0] = h0
    table[h0 & (cap - 1)] = 0
    st = np.zeros(9, dtype=np.int64)
    st[_N] = 1

    while True:
        code = _subsets(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final, has_moves, det, cl_start,
                        cl_len, cl_acc, cl_dat, mark, stack, tmp_el, memo1, cur, head, b_next, b_val, sub_off,
                        sub_dat, hashes, table, t_off, t_col, t_tgt, accs, st, max_states)
        n_sub = st[_N]
        if code == 0:
            return t_off[: n_sub + 1], t_col, t_tgt, accs[:n_sub], 0
        if code == 1 or (code == 3 and _late(deadline)):
            return t_off[:1], t_col[:0], t_tgt[:0], accs[:0], 1 if code == 1 else 2
        if code == 3:
            continue
        if st[_NEED_N] > room:
            room = max(st[_NEED_N], 2 * room)
            accs = _grow1(accs, room)
            hashes = _grow1(hashes, room)
            sub_off = _grow1(sub_off, room + 1)
            t_off = _grow1(t_off, room + 1)
        if 2 * st[_NEED_N] > cap:
            while 2 * st[_NEED_N] > cap:
                cap *= 4
            table = _hash_table(hashes, n_sub, cap)
        sub_dat = _grow1(sub_dat, st[_NEED_DAT])
        cl_dat = _grow1(cl_dat, st[_NEED_CL])
        if st[_NEED_B] > b_next.shape[0]:
            b_next = _grow1(b_next, st[_NEED_B])
            b_val = _grow1(b_val, st[_NEED_B])
        if st[_NEED_E] > t_col.shape[0]:
            t_col = _grow1(t_col, st[_NEED_E])
            t_tgt = _grow1(t_tgt, st[_NEED_E])


@njit(cache=True)
def determinize(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final, start_set, start_acc, max_states,
                deadline):
    """:func:`determinize_edges` as a table: (rows int32 [n, k], accepting bool [n], status)."""
    off, col, tgt, accs, status = determinize_edges(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final,
                                                    start_set, start_acc, max_states, deadline)
    n = accs.shape[0]
    rows = np.full((n, k), -1, dtype=np.int32)
    for s in range(n):
        for j in range(off[s], off[s + 1]):
            rows[s, col[j]] = tgt[j]
    return rows, accs, status


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
    # start closure: epsilon edges and start-of-string anchors
    seen = np.zeros(n_el, dtype=np.bool_)
    stack = np.empty(n_el, dtype=np.int32)
    seen[0] = True
    stack[0] = 0
    sp = 1
    start_acc = False
    n_start = 0
    while sp > 0:
        sp -= 1
        x = stack[sp]
        if is_final[x]:
            start_acc = True
        if mv_off[x + 1] > mv_off[x]:
            n_start += 1
        for j in range(eps_off[x], eps_off[x + 1]):
            y = eps_dat[j]
            if not seen[y]:
                seen[y] = True
                stack[sp] = y
                sp += 1
        for e in range(na):
            if asr[na + e] == 0 and modes * asr[e] <= x < modes * asr[e] + modes:
                y = modes * asr[2 * na + e] + (x - modes * asr[e])
                if not seen[y]:
                    seen[y] = True
                    stack[sp] = y
                    sp += 1
    start = np.empty(n_start, dtype=np.int32)
    j = 0
    for x in range(n_el):
        if seen[x] and mv_off[x + 1] > mv_off[x]:
            start[j] = x
            j += 1
    off, col, tgt, acc, status = determinize_edges(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final,
                                                   start, start_acc, max_states, deadline)
    if status == 0 and _late(deadline):
        status = 2
    if status != 0:
        return off[:1], col[:0], tgt[:0], acc[:0], byte_cls, status
    off, col, tgt, acc, st = minimize_edges(k, off, col, tgt, acc, 0, deadline)
    return off, col, tgt, acc, byte_cls, 3 if st != 0 else 0


@njit(cache=True)
def regex_table(n, ed, ep, asr, final, max_states, deadline):
    """:func:`regex_dfa` in one call with :func:`widen`: (the byte table int32 [m, 256],
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
def edge_ranges(off, col, tgt, byte_cls):
    """The edges of a DFA over interval byte classes (as :func:`regex_dfa` gives it) as
    byte ranges, neighbouring classes with the same target merged: four int64 blocks
    (sources, low bytes, high bytes, targets)."""
    n = off.shape[0] - 1
    k = byte_cls[255] + 1
    first = np.empty(k + 1, dtype=np.int64)
    for b in range(255, -1, -1):
        first[byte_cls[b]] = b
    first[k] = 256
    ne = off[n]
    src = np.empty(ne, dtype=np.int64)
    lo = np.empty(ne, dtype=np.int64)
    hi = np.empty(ne, dtype=np.int64)
    to = np.empty(ne, dtype=np.int64)
    m = 0
    for s in range(n):
        j = off[s]
        while j < off[s + 1]:
            c = col[j]
            t = tgt[j]
            d = j + 1
            while d < off[s + 1] and tgt[d] == t and col[d] == col[d - 1] + 1:
                d += 1
            src[m] = s
            lo[m] = first[c]
            hi[m] = first[col[d - 1] + 1] - 1
            to[m] = t
            m += 1
            j = d
    out = np.empty(4 * m, dtype=np.int64)
    out[:m] = src[:m]
    out[m : 2 * m] = lo[:m]
    out[2 * m : 3 * m] = hi[:m]
    out[3 * m :] = to[:m]
    return out


@njit(cache=True, nogil=True)
def widen(off, col, tgt, byte_cls, out):
    """Fill ``out`` [n, 256] with the byte table of a DFA given by its edges over byte
    classes (-1 dead)."""
    n = off.shape[0] - 1
    k = 0
    for b in range(256):
        k = max(k, byte_cls[b] + 1)
    # the bytes of each class, grouped
    cnt = np.zeros(k + 1, dtype=np.int64)
    for b in range(256):
        cnt[byte_cls[b] + 1] += 1
    for c in range(k):
        cnt[c + 1] += cnt[c]
    members = np.empty(256, dtype=np.int64)
    fill = cnt[:k].copy()
    for b in range(256):
        members[fill[byte_cls[b]]] = b
        fill[byte_cls[b]] += 1
    for s in range(n):
        for b in range(256):
            out[s, b] = -1
        for j in range(off[s], off[s + 1]):
            t = tgt[j]
            c = col[j]
            for r in range(cnt[c], cnt[c + 1]):
                out[s, members[r]] = t


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
            slot = _mix(key) & (cap - 1)
            while keys[slot] >= 0 and keys[slot] != key:
                slot = (slot + 1) & (cap - 1)
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


# ----------------------------------------------------------------------------- products


@njit(cache=True)
def pair_product(ta, tb, acc_a, acc_b, op, max_states, deadline):
    """Product of two DFAs over the same ``k`` classes. ``op``: 0 intersect, 1 difference
    (a and not b), 2 union. Returns (rows, accepting, status) as :func:`determinize`."""
    k = ta.shape[1]
    nb1 = np.int64(tb.shape[0] + 1)
    cap = 1024
    table = np.full(cap, -1, dtype=np.int32)
    codes = np.empty(256, dtype=np.int64)
    hashes = np.empty(256, dtype=np.int64)
    rows = np.full((256, k), -1, dtype=np.int32)
    n = 1
    codes[0] = nb1 + 1  # (a=0, b=0) as (a+1)*(nb+1) + (b+1)
    hashes[0] = _mix(codes[0])
    table[hashes[0] & (cap - 1)] = 0
    i = 0
    while i < n:
        if (i & 1023) == 1023 and _late(deadline):
            return rows[:n], np.zeros(n, dtype=np.bool_), 2
        code = codes[i]
        a = code // nb1 - 1
        b = code % nb1 - 1
        for c in range(k):
            na = ta[a, c] if a >= 0 else -1
            nbb = tb[b, c] if b >= 0 else -1
            if op == 0:
                if na < 0 or nbb < 0:
                    continue
            elif op == 1:
                if na < 0:
                    continue
            elif na < 0 and nbb < 0:
                continue
            key = (np.int64(na) + 1) * nb1 + np.int64(nbb) + 1
            slot_hash = _mix(key)
            slot = slot_hash & (cap - 1)
            found = -1
            while True:
                e = table[slot]
                if e < 0:
                    break
                if codes[e] == key:
                    found = e
                    break
                slot = (slot + 1) & (cap - 1)
            if found < 0:
                if n >= max_states:
                    return rows[:n], np.zeros(n, dtype=np.bool_), 1
                found = n
                n += 1
                codes = _grow1(codes, n)
                hashes = _grow1(hashes, n)
                rows = _grow_rows(rows, n)
                codes[found] = key
                hashes[found] = slot_hash
                table[slot] = found
                if 2 * n > cap:
                    cap *= 4
                    table = _hash_table(hashes, n, cap)
            rows[i, c] = found
        i += 1
    accs = np.zeros(n, dtype=np.bool_)
    for s in range(n):
        a = codes[s] // nb1 - 1
        b = codes[s] % nb1 - 1
        xa = a >= 0 and acc_a[a]
        xb = b >= 0 and acc_b[b]
        if op == 0:
            accs[s] = xa and xb
        elif op == 1:
            accs[s] = xa and not xb
        else:
            accs[s] = xa or xb
    return rows[:n], accs, 0


# ----------------------------------------------------------------------------- minimize


@njit(cache=True, nogil=True, inline="always")
def _sig_find(s, e_off, e_col, e_tgt, cls, part, own, table, reps, n_reps):
    """The class of state ``s`` by its signature: ``own[s]``, then for each edge (in
    column order) its column and the class (``cls`` >= 0) or block (``part``) of its
    target; the classes are ids in the open-addressing ``table`` with representatives
    ``reps``. A new class when none matches. Returns (class, number of classes)."""
    h = np.int64(_SEED) ^ np.int64(own[s])
    for j in range(e_off[s], e_off[s + 1]):
        t = e_tgt[j]
        v = -2 - cls[t] if cls[t] >= 0 else part[t]
        h = (h ^ np.int64(e_col[j] + 1)) * np.int64(_MUL)
        h = (h ^ np.int64(v + 7)) * np.int64(_MUL)
    h = h ^ (h >> np.int64(29))
    cap = table.shape[0]
    slot = h & (cap - 1)
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
        slot = (slot + 1) & (cap - 1)
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
        if (pops & 63) == 0 and _late(deadline):
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
    # reachable states
    reach = np.zeros(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int32)
    reach[start] = True
    stack[0] = start
    sp = 1
    while sp > 0:
        sp -= 1
        s = stack[sp]
        for j in range(a_off[s], a_off[s + 1]):
            t = a_tgt[j]
            if not reach[t]:
                reach[t] = True
                stack[sp] = t
                sp += 1
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
    live = np.zeros(n, dtype=np.bool_)
    sp = 0
    for s in range(n):
        if reach[s] and acc[s]:
            live[s] = True
            stack[sp] = s
            sp += 1
    while sp > 0:
        sp -= 1
        s = stack[sp]
        for j in range(cnt[s], cnt[s + 1]):
            p = pred[j]
            if not live[p]:
                live[p] = True
                stack[sp] = p
                sp += 1
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
    queue = stack
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
        if _late(deadline):
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
    m = o_acc.shape[0]
    out = np.full((m, k), -1, dtype=np.int32)
    for s in range(m):
        for j in range(o_off[s], o_off[s + 1]):
            out[s, o_col[j]] = o_tgt[j]
    return out, o_acc, status


@njit(cache=True, nogil=True)
def _same_column(trans, a, b):
    """Whether columns ``a`` and ``b`` of ``trans`` [n, 256] are equal."""
    for s in range(trans.shape[0]):
        if trans[s, a] != trans[s, b]:
            return False
    return True


@njit(cache=True, nogil=True)
def column_classes(trans):
    """Class id per byte: bytes whose columns of ``trans`` [n, 256] are equal share one."""
    n = trans.shape[0]
    hs = np.full(256, np.int64(_SEED), dtype=np.int64)
    for s in range(n):  # row-major: the table is C-ordered
        for b in range(256):
            hs[b] = (hs[b] ^ np.int64(trans[s, b] + 2)) * np.int64(_MUL)
    out = np.full(256, -1, dtype=np.int64)
    reps = np.empty(256, dtype=np.int64)
    nc = 0
    for b in range(256):
        for c in range(nc):
            if hs[reps[c]] == hs[b]:
                out[b] = c
                break
        if out[b] < 0:
            reps[nc] = b
            out[b] = nc
            nc += 1
    # equal hashes must mean equal columns; on a collision, compare columns exactly
    ok = True
    for s in range(n):
        for b in range(256):
            if trans[s, b] != trans[s, reps[out[b]]]:
                ok = False
                break
        if not ok:
            break
    if ok:
        return out
    out[:] = -1
    nc = 0
    for b in range(256):
        for c in range(nc):
            if _same_column(trans, reps[c], b):
                out[b] = c
                break
        if out[b] < 0:
            reps[nc] = b
            out[b] = nc
            nc += 1
    return out


@njit(cache=True, nogil=True)
def key_columns(trans, part):
    """The table ``trans`` [n, 256] as its coarsest byte classes, the form
    :attr:`.dfa.ByteDFA.key` hashes: (class of each byte, uint8, classes numbered in
    order of their first byte; the table over the classes, int32 [n, k]). ``part``: a
    partition of the bytes the table respects (class ids from 0), so that only one
    column per part is read."""
    n = trans.shape[0]
    kf = 0
    for b in range(256):
        kf = max(kf, part[b] + 1)
    rep = np.full(kf, -1, dtype=np.int64)
    for b in range(256):
        if rep[part[b]] < 0:
            rep[part[b]] = b
    hs = np.full(kf, np.int64(_SEED), dtype=np.int64)
    for s in range(n):
        for c in range(kf):
            hs[c] = (hs[c] ^ np.int64(trans[s, rep[c]] + 2)) * np.int64(_MUL)
    coarse = np.full(kf, -1, dtype=np.int64)
    creps = np.empty(kf, dtype=np.int64)
    chash = np.empty(kf, dtype=np.int64)
    nc = 0
    for b in range(256):
        c = part[b]
        if rep[c] != b:
            continue
        for d in range(nc):
            if chash[d] == hs[c] and _same_column(trans, creps[d], b):
                coarse[c] = d
                break
        if coarse[c] < 0:
            creps[nc] = b
            chash[nc] = hs[c]
            coarse[c] = nc
            nc += 1
    cls = np.empty(256, dtype=np.uint8)
    for b in range(256):
        cls[b] = coarse[part[b]]
    tab = np.empty((n, nc), dtype=np.int32)
    for s in range(n):
        for d in range(nc):
            tab[s, d] = trans[s, creps[d]]
    return cls, tab


_warm = False


def warm() -> None:
    """Compile (or load from numba's cache) every kernel on a tiny input, so that the
    first real call does not spend its time limit in the JIT."""
    global _warm
    if _warm:
        return
    one = np.zeros((1, 1), dtype=np.int32)
    acc = np.ones(1, dtype=np.bool_)
    determinize(1, np.array([0, 1], dtype=np.int64), np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int32),
                np.zeros(1, dtype=np.int32), np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int32), acc,
                np.zeros(1, dtype=np.int32), True, 10, float("inf"))
    pair_product(one, one, acc, acc, 0, 10, float("inf"))
    minimize(one, acc, 0, np.zeros(1, dtype=np.int64), float("inf"))
    column_classes(np.zeros((1, 256), dtype=np.int32))
    frozen = np.zeros((1, 256), dtype=np.int32)
    frozen.setflags(write=False)  # as a ByteDFA's table
    key_columns(frozen, np.zeros(256, dtype=np.int64))
    i64 = np.zeros(0, dtype=np.int64)
    off, col, tgt, _, cls, _ = regex_dfa(1, i64, i64, i64, 0, 10, float("inf"))
    edge_ranges(off, col, tgt, cls)
    widen(off, col, tgt, cls, np.empty((off.shape[0] - 1, 256), dtype=np.int32))
    regex_table(1, i64, i64, i64, 0, 10, float("inf"))
    nfa_table(1, i64, i64, i64, 0, 10, float("inf"))
    trie(np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64))
    from ._ascii import ascii_table, wide_templates

    wide = wide_templates()
    ascii_table(np.frombuffer(b"(a|[b-c.]){2,}", dtype=np.uint8), True, 10, float("inf"), *wide)
    ascii_table(np.frombuffer(b"^", dtype=np.uint8), True, 10, float("inf"), *wide)
    _warm = True
