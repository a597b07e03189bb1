"""Byte classes in numba: the classes of bytes a DFA's table does not tell apart, and
DFAs over byte classes as edges (CSR: ``off``, ``cls``, ``tgt``) or as byte tables."""

from __future__ import annotations

import numpy as np
from .._kernels import njit

from .._hashtable import SEED, hash_step

__all__ = ["column_classes", "edge_ranges", "joint_partition", "key_columns", "rows_of", "widen"]


@njit(cache=True, nogil=True)
def edge_ranges(off, col, tgt, byte_cls):
    """The edges of a DFA over interval byte classes (as :func:`._regex_dfa.regex_dfa` gives it) as
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
def rows_of(off, col, tgt, k):
    """The table int32 [n, k] (-1 dead) of a DFA given by its edges over ``k`` classes."""
    n = off.shape[0] - 1
    rows = np.full((n, k), -1, dtype=np.int32)
    for s in range(n):
        for j in range(off[s], off[s + 1]):
            rows[s, col[j]] = tgt[j]
    return rows


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
    hs = np.full(256, np.int64(SEED), dtype=np.int64)
    for s in range(n):  # row-major: the table is C-ordered
        for b in range(256):
            hs[b] = hash_step(hs[b], trans[s, b] + 1)
    out, reps = _first_alike(trans, hs, False)
    # equal hashes must mean equal columns; on a collision, compare columns exactly
    for s in range(n):
        for b in range(256):
            if trans[s, b] != trans[s, reps[out[b]]]:
                return _first_alike(trans, hs, True)[0]
    return out


@njit(cache=True, nogil=True)
def _first_alike(trans, hs, exact):
    """(class id per byte, first byte of each class): a byte joins the first class whose
    first byte's column has the same hash ``hs`` (``exact``: and is the same)."""
    out = np.full(256, -1, dtype=np.int64)
    reps = np.empty(256, dtype=np.int64)
    nc = 0
    for b in range(256):
        for c in range(nc):
            if hs[reps[c]] == hs[b] and (not exact or _same_column(trans, reps[c], b)):
                out[b] = c
                break
        if out[b] < 0:
            reps[nc] = b
            out[b] = nc
            nc += 1
    return out, reps


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
    hs = np.full(kf, np.int64(SEED), dtype=np.int64)
    for s in range(n):
        for c in range(kf):
            hs[c] = hash_step(hs[c], trans[s, rep[c]] + 1)
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


@njit(cache=True, nogil=True)
def joint_partition(parts):
    """The classes of bytes that none of the partitions ``parts`` (int64 ``[k, 256]``, a
    class below 256 per byte in each row) tells apart: (one byte of each class, the
    class of each byte), classes numbered in the order of their first bytes. One pass
    over the bytes per row, each refining the classes so far (a pair of labels names a
    class; labels are given in byte order, so the last pass's are in first-byte order)."""
    joint = np.zeros(256, dtype=np.int64)
    stamp = np.full(65536, -1, dtype=np.int64)  # pair seen in pass i: stamp == i
    label = np.empty(65536, dtype=np.int64)
    n = 1
    for i in range(parts.shape[0]):
        n = 0
        for b in range(256):
            key = joint[b] * 256 + parts[i, b]
            if stamp[key] != i:
                stamp[key] = i
                label[key] = n
                n += 1
            joint[b] = label[key]
    reps = np.full(n, -1, dtype=np.int64)
    for b in range(256):
        if reps[joint[b]] < 0:
            reps[joint[b]] = b
    return reps, joint
