"""What the automata kernels share: work buffers that grow, and the clock."""

from __future__ import annotations

import numpy as np
from numba import objmode

from .._kernels import njit

from . import _jit

__all__ = ["grow1", "grow_rows", "late"]


@njit(cache=True, nogil=True)
def grow1(a, need):
    """``a``, or a copy with room for ``need`` items (at least twice as many)."""
    if need <= a.shape[0]:
        return a
    cap = max(need, 2 * a.shape[0])
    b = np.empty(cap, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def grow_rows(a, need):
    """A transition table with room for ``need`` rows; new rows have no transitions."""
    if need <= a.shape[0]:
        return a
    cap = max(need, 2 * a.shape[0])
    b = np.full((cap, a.shape[1]), -1, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def late(deadline):
    """Whether the limit clock (:func:`._jit.clock`) is past ``deadline``."""
    with objmode(now="float64"):
        now = _jit.clock()
    return now > deadline
