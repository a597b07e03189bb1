"""The automata kernels loaded (or JIT-compiled) once per process, before any time limit
starts.

numba compiles a kernel on its first call, or loads it from its on-disk cache: seconds
on a fresh install. A compile limit counts from :func:`clock`, which first loads every
kernel on tiny inputs, so the JIT never spends a caller's time limit.
"""

from __future__ import annotations

import time

import numpy as np

from ._ascii import ascii_table, wide_templates
from ._byte_classes import column_classes, edge_ranges, key_columns, widen
from ._determinize import determinize
from ._minimize import minimize
from ._product import pair_product
from ._regex_dfa import nfa_table, regex_dfa, regex_table, trie

__all__ = ["clock"]

_loaded = False


def _load() -> None:
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
    wide = wide_templates()
    ascii_table(np.frombuffer(b"(a|[b-c.]){2,}", dtype=np.uint8), True, 10, float("inf"), *wide)
    ascii_table(np.frombuffer(b"^", dtype=np.uint8), True, 10, float("inf"), *wide)


def clock() -> float:
    """``time.perf_counter()``, read after the kernels are loaded (the first call loads
    them): the time a compile limit counts from."""
    global _loaded
    if not _loaded:
        _load()
        _loaded = True
    return time.perf_counter()
