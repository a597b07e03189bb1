"""Products of two DFAs over the same byte classes (intersection, difference, union),
in numba."""

from __future__ import annotations

import numpy as np
from .._kernels import njit

from .._hashtable import key_slot, key_table
from ._support import grow1, grow_rows, late

__all__ = ["pair_product"]


@njit(cache=True)
def pair_product(ta, tb, acc_a, acc_b, op, max_states, deadline):
    """Product of two DFAs over the same ``k`` classes. ``op``: 0 intersect, 1 difference
    (a and not b), 2 union. Returns (rows, accepting, status) as :func:`._determinize.determinize`."""
    k = ta.shape[1]
    nb1 = np.int64(tb.shape[0] + 1)
    codes = np.empty(256, dtype=np.int64)
    rows = np.full((256, k), -1, dtype=np.int32)
    n = 1
    codes[0] = nb1 + 1  # (a=0, b=0) as (a+1)*(nb+1) + (b+1)
    cap = 1024
    keys, ids = key_table(codes, n, cap)  # code -> state
    i = 0
    while i < n:
        if (i & 1023) == 1023 and late(deadline):
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
            slot = key_slot(keys, key)
            if keys[slot] == key:
                found = ids[slot]
            else:
                if n >= max_states:
                    return rows[:n], np.zeros(n, dtype=np.bool_), 1
                found = n
                n += 1
                codes = grow1(codes, n)
                rows = grow_rows(rows, n)
                codes[found] = key
                keys[slot] = key
                ids[slot] = found
                if 2 * n > cap:
                    cap *= 4
                    keys, ids = key_table(codes, n, cap)
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
