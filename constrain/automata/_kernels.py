"""Numba kernels behind :mod:`.dfa` and :mod:`.regex`: subset construction, pair
products, and trim + minimize + canonical renumbering, all over byte classes.

Tables are ``int32 [n, k]`` over ``k`` byte classes with ``-1`` for the dead state.
Sets of NFA states live in flat buffers and are found again through open-addressing
hash tables keyed on their sorted contents, so no Python object is made per state.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, objmode

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
    table = np.full(cap, -1, dtype=np.int64)
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
def _hash_slice(buf, lo, hi, salt):
    h = np.int64(_SEED) ^ np.int64(salt)
    for i in range(lo, hi):
        h = (h ^ np.int64(buf[i] + 1)) * np.int64(_MUL)
    return h ^ (h >> np.int64(29))


# ----------------------------------------------------------------------------- subsets


@njit(cache=True, nogil=True)
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


@njit(cache=True)
def determinize(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final, start_set, start_acc, max_states,
                deadline):
    """Subset construction over ``k`` classes.

    Element ``x`` moves on classes ``mv_lo[j]..mv_hi[j]`` to ``mv_tgt[j]`` for ``j`` in
    ``mv_off[x]:mv_off[x+1]``; ``eps_*`` is the epsilon graph (CSR); ``is_final`` marks
    accepting elements. Returns (rows int32 [n, k], accepting bool [n], ok); ``ok`` is
    False when more than ``max_states`` states were needed.
    """
    n_el = is_final.shape[0]
    has_moves = np.zeros(n_el, dtype=np.bool_)
    for x in range(n_el):
        has_moves[x] = mv_off[x + 1] > mv_off[x]
    # memoized closures
    cl_start = np.full(n_el, -1, dtype=np.int64)
    cl_len = np.zeros(n_el, dtype=np.int64)
    cl_acc = np.zeros(n_el, dtype=np.bool_)
    cl_dat = np.empty(max(16, n_el), dtype=np.int32)
    cl_used = 0
    mark = np.zeros(n_el, dtype=np.int64)
    stamp = 0
    stack = np.empty(n_el, dtype=np.int32)
    tmp_el = np.empty(n_el, dtype=np.int32)
    memo1 = np.full(n_el, -2, dtype=np.int64)  # -2 unknown, -1 dead, else state id

    # subsets
    sub_off = np.zeros(1024, dtype=np.int64)
    sub_dat = np.empty(max(1024, 4 * start_set.shape[0]), dtype=np.int32)
    n_sub = 0
    rows = np.full((256, k), -1, dtype=np.int32)
    accs = np.zeros(256, dtype=np.bool_)
    cap = 1024
    table = np.full(cap, -1, dtype=np.int64)
    hashes = np.zeros(1024, dtype=np.int64)

    # state 0
    m0 = start_set.shape[0]
    sub_dat[:m0] = start_set
    sub_off[1] = m0
    accs[0] = start_acc
    h0 = _hash_slice(sub_dat, 0, m0, 1 if start_acc else 0)
    hashes[0] = h0
    table[h0 & (cap - 1)] = 0
    n_sub = 1

    head = np.full(k, -1, dtype=np.int64)
    b_next = np.empty(64, dtype=np.int64)
    b_val = np.empty(64, dtype=np.int32)
    cur = np.empty(max(16, n_el), dtype=np.int32)

    i = 0
    while i < n_sub:
        if (i & 255) == 255 and _late(deadline):
            return rows[:n_sub], accs[:n_sub], 2
        # bucket the targets by class
        nb = 0
        for c in range(k):
            head[c] = -1
        for p in range(sub_off[i], sub_off[i + 1]):
            x = sub_dat[p]
            for j in range(mv_off[x], mv_off[x + 1]):
                t = mv_tgt[j]
                for c in range(mv_lo[j], mv_hi[j] + 1):
                    if nb >= b_next.shape[0]:
                        b_next = _grow1(b_next, nb + 1)
                        b_val = _grow1(b_val, nb + 1)
                    b_next[nb] = head[c]
                    b_val[nb] = t
                    head[c] = nb
                    nb += 1
        prev = -1
        for c in range(k):
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
                    rows[i, c] = rows[i, prev]
                    continue
            prev = c
            q = head[c]
            single = b_next[q] < 0
            if single and memo1[b_val[q]] >= -1:
                # the state a lone target leads to is known already
                if memo1[b_val[q]] >= 0:
                    rows[i, c] = memo1[b_val[q]]
                continue
            stamp += 1
            m = 0
            acc = False
            q = head[c]
            while q >= 0:
                y = b_val[q]
                q = b_next[q]
                if cl_start[y] < 0:
                    stamp += 1
                    cnt, a = _closure(y, eps_off, eps_dat, has_moves, is_final, mark, stamp, stack, tmp_el)
                    cl_dat = _grow1(cl_dat, cl_used + cnt)
                    cl_dat[cl_used : cl_used + cnt] = tmp_el[:cnt]
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
            if m == 0 and not acc:
                if single:
                    memo1[b_val[head[c]]] = -1
                continue
            cur[:m].sort()
            h = _hash_slice(cur, 0, m, 1 if acc else 0)
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
                    return rows[:n_sub], accs[:n_sub], 1
                found = n_sub
                n_sub += 1
                sub_off = _grow1(sub_off, n_sub + 1)
                hashes = _grow1(hashes, n_sub)
                if rows.shape[0] < n_sub:
                    rows = _grow_rows(rows, n_sub)
                    accs = _grow1(accs, n_sub)
                base = sub_off[found]
                sub_dat = _grow1(sub_dat, base + m)
                sub_dat[base : base + m] = cur[:m]
                sub_off[found + 1] = base + m
                accs[found] = acc
                hashes[found] = h
                table[slot] = found
                if 2 * n_sub > cap:
                    cap *= 4
                    table = _hash_table(hashes, n_sub, cap)
            rows[i, c] = found
            if single:
                memo1[b_val[head[c]]] = found
        i += 1
    return rows[:n_sub], accs[:n_sub], 0


@njit(cache=True)
def regex_dfa(n, ed, ep, asr, final, max_states, deadline):
    """Minimal DFA of a Thompson NFA with anchors (see :mod:`.regex`).

    ``n`` NFA states; ``ed`` the byte-range edges as four blocks (sources, low bytes, high
    bytes, targets); ``ep`` the epsilon edges as two blocks (sources, targets); ``asr``
    the anchors as three blocks (sources, kind 0 ``bol`` / 1 ``eol`` / 2 ``eoz``,
    targets); ``final`` the accepting NFA state. The byte classes are the intervals between
    consecutive cuts, in byte order. Returns (rows int32 [m, k] of the minimized,
    canonically numbered DFA, accepting [m], byte class of each byte, status): status 1
    past ``max_states`` subsets, 2 past ``deadline`` while determinizing, 3 while
    minimizing; m == 0 is the empty language.

    A subset element is ``state * 3 + mode``: mode 0 normal, 1 a ``$`` matched before a
    final newline (exactly b"\\n" must remain), 2 an end anchor matched (nothing may
    remain). ``bol`` holds at the start only, so it is followed in the start closure.
    """
    ne = ed.shape[0] // 4
    npe = ep.shape[0] // 2
    na = asr.shape[0] // 3
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
    k = c + 1
    nl = byte_cls[10]
    n_el = 3 * n
    # moves as CSR over elements, edges in input order within an element
    mv_off = np.zeros(n_el + 1, dtype=np.int64)
    for e in range(ne):
        x = 3 * ed[e]
        mv_off[x + 1] += 1
        if byte_cls[ed[ne + e]] <= nl and byte_cls[ed[2 * ne + e]] >= nl:
            mv_off[x + 2] += 1
    for x in range(n_el):
        mv_off[x + 1] += mv_off[x]
    n_mv = mv_off[n_el]
    mv_lo = np.empty(n_mv, dtype=np.int32)
    mv_hi = np.empty(n_mv, dtype=np.int32)
    mv_tgt = np.empty(n_mv, dtype=np.int32)
    fill = mv_off[:n_el].copy()
    for e in range(ne):
        x = 3 * ed[e]
        clo = byte_cls[ed[ne + e]]
        chi = byte_cls[ed[2 * ne + e]]
        t = 3 * ed[3 * ne + e]
        j = fill[x]
        fill[x] = j + 1
        mv_lo[j] = clo
        mv_hi[j] = chi
        mv_tgt[j] = t
        if clo <= nl and chi >= nl:
            j = fill[x + 1]
            fill[x + 1] = j + 1
            mv_lo[j] = nl
            mv_hi[j] = nl
            mv_tgt[j] = t + 2
    # epsilon edges in every mode, then the end anchors
    eps_off = np.zeros(n_el + 1, dtype=np.int64)
    for e in range(npe):
        x = 3 * ep[e]
        eps_off[x + 1] += 1
        eps_off[x + 2] += 1
        eps_off[x + 3] += 1
    for e in range(na):
        x = 3 * asr[e]
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
        x = 3 * ep[e]
        t = 3 * ep[npe + e]
        for m in range(3):
            j = fill[x + m]
            fill[x + m] = j + 1
            eps_dat[j] = t + m
    for e in range(na):
        x = 3 * asr[e]
        kind = asr[na + e]
        t = 3 * asr[2 * na + e]
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
    is_final[3 * final] = True
    is_final[3 * final + 2] = True
    # start closure: epsilon edges and start-of-string anchors
    seen = np.zeros(n_el, dtype=np.bool_)
    stack = np.empty(n_el, dtype=np.int64)
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
            if asr[na + e] == 0 and 3 * asr[e] <= x < 3 * asr[e] + 3:
                y = 3 * asr[2 * na + e] + (x - 3 * asr[e])
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
    rows, acc, status = determinize(k, mv_off, mv_lo, mv_hi, mv_tgt, eps_off, eps_dat, is_final, start, start_acc,
                                    max_states, deadline)
    if status == 0 and _late(deadline):
        status = 2
    if status != 0:
        return rows[:0], acc[:0], byte_cls, status
    out, out_acc, st = minimize(rows, acc, 0, np.arange(k), deadline)
    return out, out_acc, byte_cls, 3 if st != 0 else 0


@njit(cache=True, nogil=True)
def row_ranges(rows, byte_cls):
    """The transitions of a table over interval byte classes (``byte_cls`` as
    :func:`regex_dfa` gives it) as byte ranges, neighbouring classes with the same target
    merged: four int64 blocks (sources, low bytes, high bytes, targets)."""
    n, k = rows.shape
    first = np.empty(k + 1, dtype=np.int64)
    for b in range(255, -1, -1):
        first[byte_cls[b]] = b
    first[k] = 256
    src = np.empty(n * k, dtype=np.int64)
    lo = np.empty(n * k, dtype=np.int64)
    hi = np.empty(n * k, dtype=np.int64)
    tgt = np.empty(n * k, dtype=np.int64)
    m = 0
    for s in range(n):
        c = 0
        while c < k:
            t = rows[s, c]
            d = c + 1
            while d < k and rows[s, d] == t:
                d += 1
            if t >= 0:
                src[m] = s
                lo[m] = first[c]
                hi[m] = first[d] - 1
                tgt[m] = t
                m += 1
            c = d
    out = np.empty(4 * m, dtype=np.int64)
    out[:m] = src[:m]
    out[m : 2 * m] = lo[:m]
    out[2 * m : 3 * m] = hi[:m]
    out[3 * m :] = tgt[:m]
    return out


# ----------------------------------------------------------------------------- products


@njit(cache=True, nogil=True)
def _mix(key):
    h = key * np.int64(_MUL)
    return h ^ (h >> np.int64(29))


@njit(cache=True)
def pair_product(ta, tb, acc_a, acc_b, op, max_states, deadline):
    """Product of two DFAs over the same ``k`` classes. ``op``: 0 intersect, 1 difference
    (a and not b), 2 union. Returns (rows, accepting, status) as :func:`determinize`."""
    k = ta.shape[1]
    nb1 = np.int64(tb.shape[0] + 1)
    cap = 1024
    table = np.full(cap, -1, dtype=np.int64)
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


@njit(cache=True, nogil=True)
def _sig_hash(s, rows, tcode_cls, tcode_part, own):
    # signature of state s: own label, then per class the label of its target
    k = rows.shape[1]
    h = np.int64(_SEED) ^ np.int64(own)
    for c in range(k):
        t = rows[s, c]
        if t < 0:
            v = -1
        elif tcode_cls[t] >= 0:
            v = -2 - tcode_cls[t]
        else:
            v = tcode_part[t]
        h = (h ^ np.int64(v + 7)) * np.int64(_MUL)
    return h ^ (h >> np.int64(29))


@njit(cache=True, nogil=True)
def _sig_equal(s, r, rows, cls, part, own_s, own_r):
    if own_s != own_r:
        return False
    k = rows.shape[1]
    for c in range(k):
        t = rows[s, c]
        u = rows[r, c]
        if t < 0 or u < 0:
            if t != u:
                return False
            continue
        ct = cls[t]
        cu = cls[u]
        if ct >= 0 or cu >= 0:
            if ct != cu:
                return False
        elif part[t] != part[u]:
            return False
    return True


@njit(cache=True, nogil=True)
def _intern(s, rows, cls, part, own, table, reps, n_reps):
    """The class of state ``s`` by its signature (``own[s]``, then the class or block of
    each target) in the open-addressing ``table`` of class ids whose representatives
    are ``reps``; a new class when none matches. Returns (class, number of classes)."""
    cap = table.shape[0]
    slot = _sig_hash(s, rows, cls, part, own[s]) & (cap - 1)
    while True:
        e = table[slot]
        if e < 0:
            break
        r = reps[e]
        if _sig_equal(s, r, rows, cls, part, own[s], own[r]):
            return e, n_reps
        slot = (slot + 1) & (cap - 1)
    reps[n_reps] = s
    table[slot] = n_reps
    return n_reps, n_reps + 1


@njit(cache=True)
def _hopcroft(rows, rest, m, cls, part, count, deadline):
    """Refine ``part`` (block per state, ``count`` blocks) over the states ``rest[:m]``
    to the coarsest partition stable under the transitions between them (Hopcroft).
    Targets outside ``rest`` must already be told apart by ``part``. Returns the new
    block count, or -1 past ``deadline``."""
    n, k = rows.shape
    idx = np.full(n, -1, dtype=np.int64)
    for j in range(m):
        idx[rest[j]] = j
    off = np.zeros(m * k + 1, dtype=np.int64)
    for j in range(m):
        s = rest[j]
        for c in range(k):
            t = rows[s, c]
            if t >= 0 and idx[t] >= 0:
                off[idx[t] * k + c + 1] += 1
    for x in range(m * k):
        off[x + 1] += off[x]
    src = np.empty(off[m * k], dtype=np.int32)
    fill = off[: m * k].copy()
    for j in range(m):
        s = rest[j]
        for c in range(k):
            t = rows[s, c]
            if t >= 0 and idx[t] >= 0:
                key = idx[t] * k + c
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
def minimize(rows_in, acc, start, col_order, deadline):
    """Trim, minimize and canonically renumber. Returns (rows int32 [m, k], accepting, status);
    m == 0 means the empty language; status 2 when past ``deadline``, else 0."""
    n, k = rows_in.shape
    # reachable
    reach = np.zeros(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int64)
    sp = 0
    reach[start] = True
    stack[0] = start
    sp = 1
    while sp > 0:
        sp -= 1
        s = stack[sp]
        for c in range(k):
            t = rows_in[s, c]
            if t >= 0 and not reach[t]:
                reach[t] = True
                stack[sp] = t
                sp += 1
    # reverse edges among reachable states
    cnt = np.zeros(n + 1, dtype=np.int64)
    for s in range(n):
        if reach[s]:
            for c in range(k):
                t = rows_in[s, c]
                if t >= 0:
                    cnt[t + 1] += 1
    for s in range(n):
        cnt[s + 1] += cnt[s]
    pred = np.empty(cnt[n], dtype=np.int32)
    fill = cnt[:n].copy()
    for s in range(n):
        if reach[s]:
            for c in range(k):
                t = rows_in[s, c]
                if t >= 0:
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
        return np.full((0, k), -1, dtype=np.int32), np.zeros(0, dtype=np.bool_), 0
    rows = np.full((n, k), -1, dtype=np.int32)
    outdeg = np.zeros(n, dtype=np.int64)
    for s in range(n):
        if live[s]:
            for c in range(k):
                t = rows_in[s, c]
                if t >= 0 and live[t]:
                    rows[s, c] = t
                    outdeg[s] += 1

    # states with finite right languages: hash-consing in reverse topological order
    cls = np.full(n, -1, dtype=np.int64)
    cap = 16
    while cap < 2 * n + 2:
        cap *= 2
    table = np.full(cap, -1, dtype=np.int64)
    rep = np.empty(n, dtype=np.int64)  # representative state of each class
    dummy = np.zeros(n, dtype=np.int64)
    own = acc.astype(np.int64)
    queue = np.empty(n, dtype=np.int64)
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
        cls[s], nf = _intern(s, rows, cls, dummy, own, table, rep, nf)
        # decrement the live predecessors (one per edge)
        for j in range(cnt[s], cnt[s + 1]):
            p = pred[j]
            if live[p]:
                outdeg[p] -= 1
                if outdeg[p] == 0:
                    queue[qn] = p
                    qn += 1

    # the states with infinite right languages: partition refinement
    rest = np.empty(n, dtype=np.int64)
    m = 0
    seen0 = False
    for s in range(n):
        if live[s] and cls[s] < 0:
            rest[m] = s
            m += 1
            seen0 = seen0 or not acc[s]
    if m > 0:
        if _late(deadline):
            return np.full((0, k), -1, dtype=np.int32), np.zeros(0, dtype=np.bool_), 2
        part = np.zeros(n, dtype=np.int64)
        for j in range(m):
            s = rest[j]
            part[s] = 1 if (acc[s] and seen0) else 0
        # one round of signatures separates by the finite targets; Hopcroft does the rest
        table[:] = -1
        newp = np.zeros(n, dtype=np.int64)
        rrep = np.empty(m, dtype=np.int64)
        count = 0
        for j in range(m):
            s = rest[j]
            newp[s], count = _intern(s, rows, cls, part, part, table, rrep, count)
        for j in range(m):
            s = rest[j]
            part[s] = newp[s]
        count = _hopcroft(rows, rest, m, cls, part, count, deadline)
        if count < 0:
            return np.full((0, k), -1, dtype=np.int32), np.zeros(0, dtype=np.bool_), 2
        for j in range(m):
            rrep[part[rest[j]]] = rest[j]
        for j in range(m):
            s = rest[j]
            cls[s] = nf + part[s]
        for e in range(count):
            rep[nf + e] = rrep[e]
        nf += count

    # canonical numbering: BFS from the start class, columns in byte order
    order = np.full(nf, -1, dtype=np.int64)
    bfs = np.empty(nf, dtype=np.int64)
    out = np.full((nf, k), -1, dtype=np.int32)
    out_acc = np.zeros(nf, dtype=np.bool_)
    order[cls[start]] = 0
    bfs[0] = cls[start]
    nq = 1
    qi = 0
    while qi < nq:
        c0 = bfs[qi]
        s = rep[c0]
        out_acc[qi] = acc[s]
        for jj in range(k):
            col = col_order[jj]
            t = rows[s, col]
            if t >= 0:
                tc = cls[t]
                if order[tc] < 0:
                    order[tc] = nq
                    bfs[nq] = tc
                    nq += 1
                out[qi, col] = order[tc]
        qi += 1
    return out[:nq], out_acc[:nq], 0


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
            r = reps[c]
            same = True
            for s in range(n):
                if trans[s, r] != trans[s, b]:
                    same = False
                    break
            if same:
                out[b] = c
                break
        if out[b] < 0:
            reps[nc] = b
            out[b] = nc
            nc += 1
    return out


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
    i64 = np.zeros(0, dtype=np.int64)
    rows, _, cls, _ = regex_dfa(1, i64, i64, i64, 0, 10, float("inf"))
    row_ranges(rows, cls)
    _warm = True
