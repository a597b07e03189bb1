"""numba kernels: walk the vocabulary's flat trie through the lexer's product DFA.

The vocabulary is sorted by bytes; ``lcp[i]`` is the prefix token ``i`` shares with
token ``i - 1``, so a trie node is a contiguous range and a dead byte skips every
token below it. A walk reports the tokens that stay alive inside the current lexeme
and the trie nodes where a lexeme may end while the token goes on (events): there the
parser must say which lexeme may start next, and the walk resumes on that subtree.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["walk", "walk_alloc", "walk_many", "set_bits", "bits_from_ids"]


@njit(cache=True, nogil=True)
def walk_alloc(trans, accept, follow, data, offsets, lcp, first, lo, hi, depth0, start, max_len):
    """:func:`walk` with its own buffers: returns (indices, final states, ev_lo, ev_hi,
    ev_depth, ev_state) trimmed to size.

    ``first[b]..first[b + 1]`` is the block of tokens starting with byte ``b``: a
    whole-vocabulary walk visits only the blocks of bytes the lexer can take.
    """
    if depth0 == 0 and lo == 0 and hi == first[256]:
        los = np.empty(256, dtype=np.int64)
        his = np.empty(256, dtype=np.int64)
        k = 0
        for b in range(256):
            if trans[start, b] >= 0 and first[b] < first[b + 1]:
                los[k] = first[b]
                his[k] = first[b + 1]
                k += 1
        return walk_many(trans, accept, follow, data, offsets, lcp, los[:k], his[:k], np.zeros(k, np.int32), start, max_len)
    return walk_many(
        trans, accept, follow, data, offsets, lcp,
        np.full(1, lo, np.int64), np.full(1, hi, np.int64), np.full(1, depth0, np.int32), start, max_len,
    )


@njit(cache=True, nogil=True)
def walk(trans, accept, follow, data, offsets, lcp, lo, hi, depth0, start, max_len, out, out_state, ev_lo, ev_hi, ev_depth, ev_state):
    """Walk sorted tokens ``[lo, hi)`` (all sharing their first ``depth0`` bytes) from
    lexer state ``start`` at depth ``depth0``.

    Writes the sorted indices of tokens whose bytes all keep the lexer alive to ``out``
    (their final lexer states to ``out_state``) and the events (subtree range, depth, lexer state) to the ``ev_*`` arrays. Returns
    (n_out, n_events), or n_events = -1 when the event buffers were too small.
    """
    stack = np.empty(max_len + 2, dtype=np.int32)
    stack[depth0] = start
    valid = depth0
    n_out = 0
    n_ev = 0
    cap_ev = ev_lo.shape[0]
    i = lo
    while i < hi:
        base = offsets[i]
        length = offsets[i + 1] - base
        if i == lo:
            d = depth0
        else:
            d = lcp[i]
            if d > valid:
                d = valid
            if d < depth0:
                d = depth0
        alive = True
        while d < length:
            s = trans[stack[d], data[base + d]]
            if s < 0:
                valid = d
                i += 1
                while i < hi and lcp[i] > d:
                    i += 1
                alive = False
                break
            d += 1
            stack[d] = s
            if accept[s]:
                first = i if length > d else i + 1
                j = i + 1
                while j < hi and lcp[j] >= d:
                    j += 1
                # Only nodes whose subtree goes on with a byte that may start a lexeme
                # after this one need the parser.
                wanted = False
                k = first
                while k < j:
                    if follow[s, data[offsets[k] + d]]:
                        wanted = True
                        break
                    k += 1
                if wanted:
                    if n_ev >= cap_ev:
                        return n_out, -1
                    ev_lo[n_ev] = first
                    ev_hi[n_ev] = j
                    ev_depth[n_ev] = d
                    ev_state[n_ev] = s
                    n_ev += 1
        if alive:
            valid = length
            out[n_out] = i
            out_state[n_out] = stack[length]
            n_out += 1
            i += 1
    return n_out, n_ev


@njit(cache=True, nogil=True)
def walk_many(trans, accept, follow, data, offsets, lcp, los, his, depths, start, max_len):
    """Walk several subtrees ``[los[k], his[k])`` at ``depths[k]``, all from lexer state
    ``start``; returns (indices, final states, ev_lo, ev_hi, ev_depth, ev_state) over all
    of them."""
    n = 1
    for k in range(los.shape[0]):
        n += his[k] - los[k]
    out = np.empty(n, dtype=np.int32)
    out_state = np.empty(n, dtype=np.int32)
    cap = 16
    while True:
        ev_lo = np.empty(cap, dtype=np.int32)
        ev_hi = np.empty(cap, dtype=np.int32)
        ev_depth = np.empty(cap, dtype=np.int32)
        ev_state = np.empty(cap, dtype=np.int32)
        n_out = 0
        n_ev = 0
        for k in range(los.shape[0]):
            k_out, k_ev = walk(
                trans, accept, follow, data, offsets, lcp, los[k], his[k], depths[k], start, max_len,
                out[n_out:], out_state[n_out:], ev_lo[n_ev:], ev_hi[n_ev:], ev_depth[n_ev:], ev_state[n_ev:],
            )
            n_out += k_out
            if k_ev < 0:
                n_ev = -1
                break
            n_ev += k_ev
        if n_ev >= 0:
            return (
                out[:n_out].copy(), out_state[:n_out].copy(),
                ev_lo[:n_ev].copy(), ev_hi[:n_ev].copy(), ev_depth[:n_ev].copy(), ev_state[:n_ev].copy(),
            )
        cap *= 8


@njit(cache=True, nogil=True)
def set_bits(words, ids):
    for k in range(ids.shape[0]):
        t = ids[k]
        words[t >> 5] |= np.uint32(1) << np.uint32(t & 31)


@njit(cache=True, nogil=True)
def bits_from_ids(n_words, sorted_idx, trie_ids):
    words = np.zeros(n_words, dtype=np.uint32)
    for k in range(sorted_idx.shape[0]):
        t = trie_ids[sorted_idx[k]]
        words[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    return words
