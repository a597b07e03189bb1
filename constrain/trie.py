"""The usable tokens of a vocabulary as a flat trie: the form the numba walks take.

Tokens sorted by bytes, each with the length of the prefix it shares with its
predecessor, form a trie laid flat: nodes in depth-first order (one per distinct token
prefix), so a subtree is a contiguous range of nodes and of sorted tokens. The arrays
go into numba as named tuples (attribute access there costs nothing).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from ._kernels import njit

__all__ = ["Trie", "TrieNodes", "build_trie", "deepest", "longer_nodes"]


class TrieNodes(NamedTuple):
    """Per node: its byte, its depth, the node after its subtree, the sorted token ending
    there (-1 if none; ``count`` consecutive sorted tokens when several share those
    bytes), and the sorted tokens below it that go on past it (``[lo, hi)``)."""

    byte: np.ndarray  # uint8
    depth: np.ndarray  # int32, as the rest
    skip: np.ndarray
    token: np.ndarray
    count: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


class Trie(NamedTuple):
    """The nodes, and per sorted token its first node of its own (``token_node``) and
    the length of the prefix it shares with its predecessor (``lcp``); ``root``: the
    root's child for each first byte (-1: none)."""

    nodes: TrieNodes
    token_node: np.ndarray
    lcp: np.ndarray
    root: np.ndarray


def build_trie(data: np.ndarray, offsets: np.ndarray) -> Trie:
    """The trie of the sorted tokens ``data[offsets[i]:offsets[i + 1]]``."""
    lcp = _lcp(data, offsets)
    *nodes, token_node = _trie_nodes(data, offsets, lcp)
    nodes = TrieNodes(*nodes)
    # A whole-vocabulary walk looks at the first bytes its state takes, not at every
    # child of the root (they lie far apart).
    root = np.full(256, -1, dtype=np.int32)
    top = np.nonzero(nodes.depth == 1)[0]
    root[nodes.byte[top]] = top
    return Trie(nodes, token_node, lcp, root)


def longer_nodes(nodes: TrieNodes, deepest: np.ndarray, cut: int) -> tuple[TrieNodes, int]:
    """The trie of the tokens longer than ``cut`` bytes (token ranges are the full
    trie's; nodes at most ``cut`` deep end no token), and their number. ``deepest``:
    :func:`deepest` of ``nodes``."""
    keep = deepest > cut
    idx = np.nonzero(keep)[0]
    before = np.zeros(len(keep) + 1, dtype=np.int32)
    np.cumsum(keep, out=before[1:])
    depth = nodes.depth[idx]
    short = depth <= cut
    token = nodes.token[idx].copy()
    token[short] = -1
    count = nodes.count[idx].copy()
    count[short] = 0
    out = TrieNodes(nodes.byte[idx], depth, before[nodes.skip[idx]], token, count, nodes.lo[idx], nodes.hi[idx])
    return out, int(count.sum())


@njit(cache=True)
def _lcp(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    n = len(offsets) - 1
    out = np.zeros(max(n, 0), dtype=np.int32)
    for i in range(1, n):
        a, b = offsets[i - 1], offsets[i]
        limit = min(offsets[i] - a, offsets[i + 1] - b)
        k = 0
        while k < limit and data[a + k] == data[b + k]:
            k += 1
        out[i] = k
    return out


@njit(cache=True)
def deepest(depth: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """Per trie node, the depth of the deepest node at or below it."""
    n = depth.shape[0]
    out = depth.copy()
    for k in range(n - 1, -1, -1):
        m = k + 1
        while m < skip[k]:
            if out[m] > out[k]:
                out[k] = out[m]
            m = skip[m]
    return out


@njit(cache=True)
def _trie_nodes(data: np.ndarray, offsets: np.ndarray, lcp: np.ndarray):
    n = len(offsets) - 1
    total = 0
    for i in range(n):
        total += offsets[i + 1] - offsets[i] - lcp[i]
    byte = np.empty(total, dtype=np.uint8)
    depth = np.empty(total, dtype=np.int32)
    skip = np.empty(total, dtype=np.int32)
    token = np.full(total, -1, dtype=np.int32)
    count = np.zeros(total, dtype=np.int32)
    lo = np.empty(total, dtype=np.int32)
    hi = np.empty(total, dtype=np.int32)
    owner = np.empty(total + 1, dtype=np.int32)
    token_node = np.empty(n + 1, dtype=np.int32)
    max_len = 0
    for i in range(n):
        max_len = max(max_len, offsets[i + 1] - offsets[i])
    at_depth = np.empty(max_len + 1, dtype=np.int64)
    k = 0
    for i in range(n):
        base = offsets[i]
        length = offsets[i + 1] - base
        token_node[i] = k
        for d in range(lcp[i], length):
            byte[k] = data[base + d]
            depth[k] = d + 1
            lo[k] = i
            owner[k] = i
            at_depth[d + 1] = k
            k += 1
        end = at_depth[length]
        if token[end] < 0:
            token[end] = i
        count[end] += 1
    token_node[n] = total
    owner[total] = n
    # The node after a subtree: the next node no deeper than it.
    stack = np.empty(max_len + 1, dtype=np.int64)
    sp = 0
    for j in range(total):
        while sp > 0 and depth[stack[sp - 1]] >= depth[j]:
            skip[stack[sp - 1]] = j
            sp -= 1
        stack[sp] = j
        sp += 1
    while sp > 0:
        skip[stack[sp - 1]] = total
        sp -= 1
    for j in range(total):
        hi[j] = owner[skip[j]]
        lo[j] += count[j]  # tokens ending here sort first; the rest go on past it
    return byte, depth, skip, token, count, lo, hi, token_node


