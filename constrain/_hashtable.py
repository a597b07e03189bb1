"""Open-addressing hash tables for the numba kernels (automata, lexer, trie walks).

A table is an integer array whose size is a power of two, ``-1`` marking an empty slot,
kept at most half full by its owner, with linear probing. It holds either the keys
themselves (:func:`key_slot`, :func:`pair_slot`) or ids of entries stored elsewhere,
found again by a hash of their contents (:func:`put`, :func:`first_slot` and
:func:`next_slot` around the caller's own comparison). Hashes are int64 and end in an
xor-shift, so that the low bits a slot takes depend on every bit of the key.
"""

from __future__ import annotations

import numpy as np
from ._kernels import njit

__all__ = [
    "SEED", "mix", "mix_pair", "hash_step", "hash_end", "hash_run",
    "first_slot", "next_slot", "put", "table_of", "key_slot", "key_table", "pair_slot",
]

_MUL = 0x100000001B3  # the FNV-1a 64-bit prime
SEED = -3750763034362895579  # the FNV offset basis as a signed int64


@njit(cache=True, nogil=True)
def hash_end(h):
    return h ^ (h >> np.int64(29))


@njit(cache=True, nogil=True)
def mix(key):
    """The hash of an integer key."""
    return hash_end(np.int64(key) * np.int64(_MUL))


@njit(cache=True, nogil=True)
def mix_pair(k1, k2):
    """The hash of a pair of integer keys."""
    return hash_end(hash_step(hash_step(np.int64(SEED), k1), k2))


@njit(cache=True, nogil=True)
def hash_step(h, x):
    """Hash ``h`` (from :data:`SEED`) extended by the integer ``x``; finish with
    :func:`hash_end`."""
    return (h ^ (np.int64(x) + np.int64(1))) * np.int64(_MUL)


@njit(cache=True, nogil=True)
def hash_run(buf, lo, hi, salt):
    """The hash of ``buf[lo:hi]`` and ``salt``."""
    h = np.int64(SEED) ^ np.int64(salt)
    for i in range(lo, hi):
        h = hash_step(h, buf[i])
    return hash_end(h)


@njit(cache=True, nogil=True)
def first_slot(table, h):
    return h & (table.shape[0] - 1)


@njit(cache=True, nogil=True)
def next_slot(table, slot):
    return (slot + 1) & (table.shape[0] - 1)


@njit(cache=True, nogil=True)
def put(table, h, value):
    """Store ``value`` in the first empty slot from hash ``h``; returns the slot."""
    slot = first_slot(table, h)
    while table[slot] != -1:
        slot = next_slot(table, slot)
    table[slot] = value
    return slot


@njit(cache=True, nogil=True)
def table_of(hashes, n, cap):
    """A table of size ``cap`` holding the ids ``0..n-1`` at their ``hashes``."""
    table = np.full(cap, -1, dtype=np.int32)
    for e in range(n):
        put(table, hashes[e], e)
    return table


@njit(cache=True, nogil=True)
def key_slot(keys, key):
    """The slot of the non-negative ``key`` in ``keys``, or the empty slot it goes in."""
    slot = first_slot(keys, mix(key))
    while keys[slot] != -1 and keys[slot] != key:
        slot = next_slot(keys, slot)
    return slot


@njit(cache=True, nogil=True)
def key_table(keys_in, n, cap):
    """A table of size ``cap`` of the keys ``keys_in[:n]`` (non-negative, distinct), and
    beside it each one's index in ``keys_in``: (keys, ids)."""
    keys = np.full(cap, -1, dtype=np.int64)
    ids = np.empty(cap, dtype=np.int32)
    for e in range(n):
        slot = key_slot(keys, keys_in[e])
        keys[slot] = keys_in[e]
        ids[slot] = e
    return keys, ids


@njit(cache=True, nogil=True)
def pair_slot(rows, k1, k2):
    """:func:`key_slot` for tables of key pairs: ``rows`` [size, 2], ``-1`` in column 0
    marking an empty row."""
    mask = rows.shape[0] - 1
    slot = mix_pair(k1, k2) & mask
    while rows[slot, 0] != -1 and (rows[slot, 0] != k1 or rows[slot, 1] != k2):
        slot = (slot + 1) & mask
    return slot
