"""Reachability in graphs given as edge lists (CSR), for trimming DFAs."""

from __future__ import annotations

import numpy as np
from .._kernels import njit

__all__ = ["reachable"]


@njit(cache=True, nogil=True)
def reachable(off, tgt, seeds):
    """Which nodes the nodes where ``seeds`` is True reach (themselves included) along
    the edges ``tgt[off[x]:off[x+1]]`` of each node ``x``: bool [len(off) - 1]. Run over
    reversed edges, it is which nodes reach the seeds."""
    n = off.shape[0] - 1
    seen = np.zeros(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int64)
    sp = 0
    for x in range(n):
        if seeds[x]:
            seen[x] = True
            stack[sp] = x
            sp += 1
    while sp > 0:
        sp -= 1
        x = stack[sp]
        for j in range(off[x], off[x + 1]):
            y = tgt[j]
            if not seen[y]:
                seen[y] = True
                stack[sp] = y
                sp += 1
    return seen
