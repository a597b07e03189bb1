"""numba kernels: walk the vocabulary's flat trie through the lexer's product DFA.

The vocabulary is sorted by bytes and laid out as trie nodes in depth-first order, so
a subtree is a contiguous range of nodes (and of sorted tokens) and a dead byte skips
every token below it. A walk reports the tokens that stay alive inside the current lexeme
and the trie nodes where a lexeme may end while the token goes on (events): there the
parser must say which lexeme may start next, and the walk resumes on that subtree.
"""

from __future__ import annotations

import numpy as np
from .._kernels import njit

from .. import _caches
from .._hashtable import key_slot, mix

__all__ = [
    "walk", "walk_alloc", "walk_ids", "walk_many", "walk_mask", "walk_patch", "walk_sliced", "same_within",
    "alike_depth", "resolve", "merge_events", "next_table_insert", "pair_table_insert", "scratch",
]


_local = _caches.per_thread(
    "masking.walk_buffers",
    "six int32 work buffers per thread, as long as the largest vocabulary (tokens) and trie "
    "(events) walked in it")


def scratch(n_tokens: int, n_nodes: int) -> tuple[np.ndarray, ...]:
    """Six int32 work buffers of this thread for the walks: two of at least
    ``n_tokens + 1`` items (tokens found and their lexer states), four of at least
    ``n_nodes + 1`` (events). Kernels return copies of what they used, so one set serves
    every call; a whole-vocabulary buffer allocated per call costs more than the walk
    of a narrow state (the allocator maps and unmaps it)."""
    got = getattr(_local, "bufs", None)
    if got is None or got[0].shape[0] <= n_tokens or got[2].shape[0] <= n_nodes:
        a = max(n_tokens + 1, got[0].shape[0] if got else 0)
        b = max(n_nodes + 1, got[2].shape[0] if got else 0)
        got = _local.bufs = tuple(np.empty(a if i < 2 else b, dtype=np.int32) for i in range(6))
    return got


@njit(cache=True, nogil=True)
def _buffers(buf, n_tokens, n_nodes):
    """The work buffers ``buf`` (see :func:`scratch`), or new ones where they are too
    small for ``n_tokens`` tokens and ``n_nodes`` events."""
    out, out_state, ev_lo, ev_hi, ev_depth, ev_state = buf
    if out.shape[0] <= n_tokens or ev_lo.shape[0] <= n_nodes:
        out = np.empty(n_tokens + 1, dtype=np.int32)
        out_state = np.empty(n_tokens + 1, dtype=np.int32)
        ev_lo = np.empty(n_nodes + 1, dtype=np.int32)
        ev_hi = np.empty(n_nodes + 1, dtype=np.int32)
        ev_depth = np.empty(n_nodes + 1, dtype=np.int32)
        ev_state = np.empty(n_nodes + 1, dtype=np.int32)
    return out, out_state, ev_lo, ev_hi, ev_depth, ev_state


@njit(cache=True, nogil=True)
def walk_alloc(trans, accept, follow, trie, lo, hi, depth0, start, max_len, buf):
    """:func:`walk_many` over the single subtree ``[lo, hi)`` at ``depth0`` (``buf``: see
    :func:`scratch`)."""
    return walk_many(
        trans, accept, follow, trie,
        np.full(1, lo, np.int64), np.full(1, hi, np.int64), np.full(1, depth0, np.int32), start, max_len,
        buf[0], buf[1],
    )


@njit(cache=True, nogil=True)
def _packed(ev_lo, ev_hi, ev_depth, ev_state):
    ev = np.empty((4, ev_lo.shape[0]), dtype=np.int32)
    ev[0] = ev_lo
    ev[1] = ev_hi
    ev[2] = ev_depth
    ev[3] = ev_state
    return ev


@njit(cache=True, nogil=True)
def walk_mask(trans, accept, follow, trie, trie_ids, n_words, start, max_len, buf):
    """The whole-vocabulary walk from ``start`` as (its mask as uint32 words, events as one
    int32 [4, n] array: lo, hi, depth, state). Two arrays where :func:`walk_alloc`
    returns six: each array handed back to Python costs about as much as a narrow walk."""
    nodes = trie.nodes
    out, out_state, ev_lo, ev_hi, ev_depth, ev_state = _buffers(buf, trie_ids.shape[0], nodes.byte.shape[0])
    skip, root = nodes.skip, trie.root
    stack = np.empty(max_len + 2, dtype=np.int32)
    n_out = 0
    n_ev = 0
    # the subtrees of the first bytes ``start`` takes; at most one event per node, so
    # the event buffers never run out
    for b0 in range(256):
        a = root[b0]
        if a < 0 or trans[start, b0] < 0:
            continue
        k_out, k_ev = _walk_nodes(
            trans, accept, follow, nodes, a, skip[a], 0, start, out[n_out:], out_state[n_out:],
            ev_lo[n_ev:], ev_hi[n_ev:], ev_depth[n_ev:], ev_state[n_ev:], stack,
        )
        n_out += k_out
        n_ev += k_ev
    mask = np.zeros(n_words, dtype=np.uint32)
    for k in range(n_out):
        t = trie_ids[out[k]]
        mask[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    return mask, _packed(ev_lo[:n_ev], ev_hi[:n_ev], ev_depth[:n_ev], ev_state[:n_ev])


@njit(cache=True, nogil=True)
def walk_ids(trans, accept, follow, trie, trie_ids, lo, hi, depth0, start, max_len, buf):
    """The walk of subtree ``[lo, hi)`` at ``depth0`` as (token ids, events as one int32
    [4, n] array), as :func:`walk_mask`."""
    idx, _, ev_lo, ev_hi, ev_depth, ev_state = walk_alloc(
        trans, accept, follow, trie, lo, hi, depth0, start, max_len, buf)
    ids = np.empty(idx.shape[0], dtype=np.int32)
    for k in range(idx.shape[0]):
        ids[k] = trie_ids[idx[k]]
    return ids, _packed(ev_lo, ev_hi, ev_depth, ev_state)


@njit(cache=True, nogil=True)
def walk(trans, accept, follow, nodes, a, b, depth0, start, max_len, out, out_state, ev_lo, ev_hi, ev_depth, ev_state):
    """Walk trie nodes ``[a, b)`` (a subtree below depth ``depth0``) from lexer state ``start``.

    Writes the sorted indices of tokens whose bytes all keep the lexer alive to ``out``
    (their final lexer states to ``out_state``) and the events (sorted token range of the
    subtree going on past the node, depth, lexer state) to the ``ev_*`` arrays. Returns
    (n_out, n_events), or n_events = -1 when the event buffers were too small.
    """
    stack = np.empty(max_len + 2, dtype=np.int32)
    return _walk_nodes(trans, accept, follow, nodes, a, b, depth0, start, out, out_state, ev_lo, ev_hi, ev_depth,
                       ev_state, stack)


@njit(cache=True, nogil=True)
def _walk_nodes(trans, accept, follow, nodes, a, b, depth0, start, out, out_state, ev_lo, ev_hi, ev_depth, ev_state,
                stack):
    """:func:`walk` with its stack of lexer states given (``max_len + 2`` items)."""
    byte, depth, skip, token, count, lo, hi = nodes
    stack[depth0] = start
    n_out = 0
    n_ev = 0
    cap_ev = ev_lo.shape[0]
    k = a
    while k < b:
        d = depth[k]
        s = trans[stack[d - 1], byte[k]]
        if s < 0:
            k = skip[k]  # a dead byte prunes every token below
            continue
        stack[d] = s
        # Branch-free: most nodes end no token or one; several tokens with equal bytes
        # (rare) take the predictable branch below.
        t = token[k]
        out[n_out] = t
        out_state[n_out] = s
        n_out += t >= 0
        c = count[k]
        if c > 1:
            for q in range(1, c):
                out[n_out] = t + q
                out_state[n_out] = s
                n_out += 1
        if accept[s] and _needs_parser(follow, byte, skip, s, k):
            if n_ev >= cap_ev:
                return n_out, -1
            ev_lo[n_ev] = lo[k]
            ev_hi[n_ev] = hi[k]
            ev_depth[n_ev] = d
            ev_state[n_ev] = s
            n_ev += 1
        k += 1
    return n_out, n_ev


@njit(cache=True, nogil=True)
def _needs_parser(follow, byte, skip, s, k):
    """Whether node ``k``, where a lexeme may end in lexer state ``s``, has a child byte
    that may start the next lexeme: only such nodes need the parser."""
    end = skip[k]
    m = k + 1
    while m < end:
        if follow[s, byte[m]]:
            return True
        m = skip[m]
    return False


@njit(cache=True, nogil=True)
def walk_many(trans, accept, follow, trie, los, his, depths, start, max_len, out, out_state):
    """Walk several subtrees (sorted tokens ``[los[k], his[k])`` sharing their first
    ``depths[k]`` bytes), all from lexer state ``start``; returns (indices, final
    states, ev_lo, ev_hi, ev_depth, ev_state) over all of them.

    ``trie`` is the vocabulary's :class:`~constrain.trie.Trie`; ``out`` and
    ``out_state`` are work buffers (replaced when too small).
    """
    nodes = trie.nodes
    token_node, lcp, root = trie.token_node, trie.lcp, trie.root
    skip = nodes.skip
    n_nodes = nodes.byte.shape[0]
    n_tokens = lcp.shape[0]
    n = 1
    for k in range(los.shape[0]):
        n += his[k] - los[k]
    if out.shape[0] < n or out_state.shape[0] < n:
        out = np.empty(n, dtype=np.int32)
        out_state = np.empty(n, dtype=np.int32)
    stack = np.empty(max_len + 2, dtype=np.int32)
    cap = 16
    while True:
        ev_lo = np.empty(cap, dtype=np.int32)
        ev_hi = np.empty(cap, dtype=np.int32)
        ev_depth = np.empty(cap, dtype=np.int32)
        ev_state = np.empty(cap, dtype=np.int32)
        n_out = 0
        n_ev = 0
        for k in range(los.shape[0]):
            lo, hi, d = los[k], his[k], depths[k]
            if lo >= hi:
                continue
            if d == 0 and lo == 0 and hi == n_tokens:
                # the whole trie: the subtrees of the first bytes ``start`` takes
                for b0 in range(256):
                    a = root[b0]
                    if a < 0 or trans[start, b0] < 0:
                        continue
                    k_out, k_ev = _walk_nodes(
                        trans, accept, follow, nodes, a, skip[a], 0, start,
                        out[n_out:], out_state[n_out:], ev_lo[n_ev:], ev_hi[n_ev:], ev_depth[n_ev:],
                        ev_state[n_ev:], stack,
                    )
                    n_out += k_out
                    if k_ev < 0:
                        n_ev = -1
                        break
                    n_ev += k_ev
                if n_ev < 0:
                    break
                continue
            # The subtree's first node below depth d is token lo's node at depth d + 1.
            a = token_node[lo] + d - lcp[lo]
            b = token_node[hi] if hi < n_tokens else n_nodes
            k_out, k_ev = _walk_nodes(
                trans, accept, follow, nodes, a, b, d, start,
                out[n_out:], out_state[n_out:], ev_lo[n_ev:], ev_hi[n_ev:], ev_depth[n_ev:], ev_state[n_ev:], stack,
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
def same_within(trans, accepting, reps, a, b, depth, max_pairs):
    """Whether DFA states ``a`` and ``b`` behave alike on every string of at most
    ``depth`` bytes: the same bytes keep them alive and the same prefixes accept.

    Walks of the vocabulary from two such states allow the same tokens and report the
    same boundaries, so one may stand for the other. See :func:`alike_depth`.
    """
    return alike_depth(trans, accepting, reps, a, b, depth, max_pairs) >= depth


@njit(cache=True, nogil=True)
def alike_depth(trans, accepting, reps, a, b, depth, max_pairs):
    """The largest ``d <= depth`` such that DFA states ``a`` and ``b`` behave alike on
    every string of at most ``d`` bytes (-1 when they differ at once).

    Explores the pairs of states both reach, breadth first (``reps``: one byte of each
    class of bytes the DFA does not tell apart). Past ``max_pairs`` pairs it answers
    the depth it fully checked.
    """
    if a == b:
        return depth
    n = trans.shape[0]
    qx = np.empty(max_pairs, dtype=np.int64)  # every pair seen, level after level
    qy = np.empty(max_pairs, dtype=np.int64)
    qx[0] = a
    qy[0] = b
    lo = 0
    hi = 1
    cap = 256
    table = np.full(cap, -1, dtype=np.int64)  # the pairs seen, open addressing
    for d in range(depth + 1):
        # Room in the table for all this level may add (at most half full), made here
        # so that the level's loop, a function of its own, never grows an array.
        need = min(hi + (hi - lo) * reps.shape[0], max_pairs)
        if 2 * need > cap:
            while 2 * need > cap:
                cap *= 2
            table = np.full(cap, -1, dtype=np.int64)
            for j in range(hi):
                key = qx[j] * n + qy[j]
                table[key_slot(table, key)] = key
        code, end = _alike_level(trans, accepting, reps, n, qx, qy, lo, hi, table, max_pairs, d == depth)
        if code == 1 or code == 3:
            return d - 1  # some string of d bytes tells them apart / level d not fully checked
        if code == 2:
            return d  # ... of d + 1 bytes
        if end == hi:
            return depth
        lo = hi
        hi = end
    return depth


@njit(cache=True, nogil=True)
def _alike_level(trans, accepting, reps, n, qx, qy, lo, hi, table, max_pairs, last):
    """One level of :func:`alike_depth`: checks the pairs ``(qx, qy)[lo:hi]`` and appends
    the new pairs they reach. Returns (code, end of the queue): code 0 go on, 1 a pair
    differs in acceptance, 2 a pair differs on the next byte, 3 past ``max_pairs``."""
    end = hi
    for i in range(lo, hi):
        x = qx[i]
        y = qy[i]
        if accepting[x] != accepting[y]:
            return 1, end
        if last:
            continue
        for r in range(reps.shape[0]):
            c = reps[r]
            x2 = trans[x, c]
            y2 = trans[y, c]
            if (x2 < 0) != (y2 < 0):
                return 2, end
            if x2 < 0 or x2 == y2:
                continue
            key = x2 * n + y2
            h = key_slot(table, key)
            if table[h] == key:
                continue
            if end >= max_pairs:
                return 3, end
            table[h] = key
            qx[end] = x2
            qy[end] = y2
            end += 1
    return 0, end


@njit(cache=True, nogil=True)
def walk_sliced(trans, accept, follow, long_nodes, long_mask, n_long, trie_ids, q, cut,
                r_mask, r_ev_lo, r_ev_hi, r_ev_depth, r_ev_state, max_len, buf):
    """The whole-vocabulary walk from lexer state ``q``, from the walk of a state ``r``
    that behaves like ``q`` on every string of at most ``cut`` bytes.

    Tokens of at most ``cut`` bytes and boundaries above depth ``cut`` are ``r``'s; the
    rest comes from walking ``q`` over ``long_nodes``, the trie of the ``n_long``
    tokens longer than ``cut`` bytes (``long_mask``: their bitmask). Returns (mask,
    ev_lo, ev_hi, ev_depth, ev_state).
    """
    n_nodes = long_nodes.byte.shape[0]
    out, out_state, ev_lo, ev_hi, ev_depth, ev_state = _buffers(buf, n_long, n_nodes)
    k_out, k_ev = walk(trans, accept, follow, long_nodes, 0, n_nodes, 0, q, max_len,
                       out, out_state, ev_lo, ev_hi, ev_depth, ev_state)
    mask = r_mask & ~long_mask
    for i in range(k_out):
        t = trie_ids[out[i]]
        mask[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    n_keep = 0
    for e in range(r_ev_lo.shape[0]):
        if r_ev_depth[e] < cut:
            n_keep += 1
    for e in range(k_ev):
        if ev_depth[e] >= cut:
            n_keep += 1
    o_lo = np.empty(n_keep, dtype=np.int32)
    o_hi = np.empty(n_keep, dtype=np.int32)
    o_depth = np.empty(n_keep, dtype=np.int32)
    o_state = np.empty(n_keep, dtype=np.int32)
    j = 0
    for e in range(r_ev_lo.shape[0]):
        if r_ev_depth[e] < cut:
            o_lo[j] = r_ev_lo[e]
            o_hi[j] = r_ev_hi[e]
            o_depth[j] = r_ev_depth[e]
            o_state[j] = r_ev_state[e]
            j += 1
    for e in range(k_ev):
        if ev_depth[e] >= cut:
            o_lo[j] = ev_lo[e]
            o_hi[j] = ev_hi[e]
            o_depth[j] = ev_depth[e]
            o_state[j] = ev_state[e]
            j += 1
    return mask, o_lo, o_hi, o_depth, o_state


@njit(cache=True, nogil=True)
def walk_patch(trans, accept, follow, trie, trie_ids, q, r, r_mask, r_ev_lo, r_ev_hi, r_ev_depth, r_ev_state,
               max_len, budget, eq, eq_lo, buf):
    """The whole-vocabulary walk from lexer state ``q``, patched from the walk of state
    ``r`` (its mask and events).

    Both states are walked together; below a node where they reach the same state (or
    both die) the walks agree and nothing is visited. So they do where ``r``'s state
    ``s`` has an equivalent ``eq[s - eq_lo]`` (same language from there, same bytes
    after a lexeme) and ``q`` is in it: ``r``'s events there are renamed through ``eq``.
    Where only ``r`` lives its tokens and events are dropped, where only ``q`` lives its
    subtree is walked, and where both live in different states the node's own event is
    taken from ``q``. Returns (ok, mask, ev_lo, ev_hi, ev_depth, ev_state); ok is False
    when more than ``budget`` nodes would be visited (the states differ too widely to
    gain anything).
    """
    n_eq = eq.shape[0]
    nodes = trie.nodes
    byte, depth, skip, token, count, lo, hi = nodes
    n_nodes = byte.shape[0]
    n_tokens = trie_ids.shape[0]
    mask = r_mask.copy()
    empty = np.empty(0, dtype=np.int32)
    sq_stack = np.empty(max_len + 2, dtype=np.int32)
    sr_stack = np.empty(max_len + 2, dtype=np.int32)
    walk_stack = np.empty(max_len + 2, dtype=np.int32)
    sq_stack[0] = q
    sr_stack[0] = r
    # Dropped: single events of r (node's first continuing token, depth) and whole
    # subtrees (token range, depth). Added: q's tokens and events.
    # Each node visited adds at most one of either, and at most ``budget`` nodes are
    # visited: sized once, never grown. (An array reassigned inside the loop below, to
    # grow it, made numba's code for the whole loop several times slower.)
    cap_loop = budget + 2
    drop_lo = np.empty(cap_loop, dtype=np.int32)
    drop_depth = np.empty(cap_loop, dtype=np.int32)
    n_drop = 0
    reg_lo = np.empty(cap_loop, dtype=np.int32)
    reg_hi = np.empty(cap_loop, dtype=np.int32)
    reg_depth = np.empty(cap_loop, dtype=np.int32)
    n_reg = 0
    add, add_state, ev_lo, ev_hi, ev_depth, ev_state = _buffers(buf, n_tokens, n_nodes)
    n_add = 0
    n_ev = 0
    visits = 0
    root = trie.root
    for b0 in range(256):
        # the root's children where q and r part (the others are never looked at)
        k = root[b0]
        if k < 0:
            continue
        sq = trans[q, b0]
        sr = trans[r, b0]
        if sq == sr or (sq >= 0 and eq_lo <= sr < eq_lo + n_eq and eq[sr - eq_lo] == sq):
            continue
        end = skip[k]
        while k < end:
            visits += 1
            if visits > budget:
                return False, mask, empty, empty, empty, empty
            d = depth[k]
            b = byte[k]
            pq = sq_stack[d - 1]
            pr = sr_stack[d - 1]
            sq = trans[pq, b] if pq >= 0 else -1
            sr = trans[pr, b] if pr >= 0 else -1
            if sq == sr or (sq >= 0 and eq_lo <= sr < eq_lo + n_eq and eq[sr - eq_lo] == sq):
                k = skip[k]
                continue
            if sq < 0:
                reg_lo[n_reg] = lo[k] - count[k]
                reg_hi[n_reg] = hi[k]
                reg_depth[n_reg] = d
                n_reg += 1
                k = skip[k]
                continue
            if sr < 0:
                visits += skip[k] - k
                if visits > budget:
                    return False, mask, empty, empty, empty, empty
                k_out, k_ev = _walk_nodes(
                    trans, accept, follow, nodes, k, skip[k], d - 1, pq,
                    add[n_add:], add_state[n_add:], ev_lo[n_ev:], ev_hi[n_ev:], ev_depth[n_ev:], ev_state[n_ev:],
                    walk_stack,
                )
                n_add += k_out
                n_ev += k_ev
                k = skip[k]
                continue
            sq_stack[d] = sq
            sr_stack[d] = sr
            if accept[sr] and _needs_parser(follow, byte, skip, sr, k):  # r's event here goes
                drop_lo[n_drop] = lo[k]
                drop_depth[n_drop] = d
                n_drop += 1
            if accept[sq] and _needs_parser(follow, byte, skip, sq, k):  # q's comes instead
                ev_lo[n_ev] = lo[k]
                ev_hi[n_ev] = hi[k]
                ev_depth[n_ev] = d
                ev_state[n_ev] = sq
                n_ev += 1
            k += 1
    for g in range(n_reg):
        for i in range(reg_lo[g], reg_hi[g]):
            t = trie_ids[i]
            mask[t >> 5] &= ~(np.uint32(1) << np.uint32(t & 31))
    for i in range(n_add):
        t = trie_ids[add[i]]
        mask[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    # r's events outside what was dropped, then q's own.
    n_r = r_ev_lo.shape[0]
    out_lo = np.empty(n_r + n_ev, dtype=np.int32)
    out_hi = np.empty(n_r + n_ev, dtype=np.int32)
    out_depth = np.empty(n_r + n_ev, dtype=np.int32)
    out_state = np.empty(n_r + n_ev, dtype=np.int32)
    n_out = 0
    for e in range(n_r):
        keep = True
        for g in range(n_drop):
            if r_ev_lo[e] == drop_lo[g] and r_ev_depth[e] == drop_depth[g]:
                keep = False
                break
        if keep:
            for g in range(n_reg):
                if reg_lo[g] <= r_ev_lo[e] < reg_hi[g] and r_ev_depth[e] >= reg_depth[g]:
                    keep = False
                    break
        if keep:
            s = r_ev_state[e]
            if eq_lo <= s < eq_lo + n_eq:
                s = eq[s - eq_lo]
                if s < 0:
                    return False, mask, empty, empty, empty, empty
            out_lo[n_out] = r_ev_lo[e]
            out_hi[n_out] = r_ev_hi[e]
            out_depth[n_out] = r_ev_depth[e]
            out_state[n_out] = s
            n_out += 1
    for e in range(n_ev):
        out_lo[n_out] = ev_lo[e]
        out_hi[n_out] = ev_hi[e]
        out_depth[n_out] = ev_depth[e]
        out_state[n_out] = ev_state[e]
        n_out += 1
    return True, mask, out_lo[:n_out].copy(), out_hi[:n_out].copy(), out_depth[:n_out].copy(), out_state[:n_out].copy()


# ---------------------------------------------------------------------------------------
# Lexeme boundaries inside tokens, resolved in one call


@njit(cache=True, nogil=True)
def _probe(keys, key):
    """The slot of the non-negative ``key`` in the open-addressing table ``keys`` (-1:
    empty slot; a power-of-two size), or the empty slot it goes in: linear probing from
    its hash. :func:`resolve` writes this probe out where it looks keys up."""
    size = keys.shape[0] - 1
    h = mix(key) & size
    while keys[h] != -1 and keys[h] != key:
        h = (h + 1) & size
    return h


@njit(cache=True, nogil=True)
def next_table_insert(keys, offs, cnts, new_keys, new_offs, new_cnts):
    """Insert entries into the open-addressing table ``keys`` (-1: empty slot), whose
    size is a power of two; the caller keeps it at most half full."""
    for i in range(new_keys.shape[0]):
        k = new_keys[i]
        h = _probe(keys, k)
        keys[h] = k
        offs[h] = new_offs[i]
        cnts[h] = new_cnts[i]


@njit(cache=True, nogil=True)
def pair_table_insert(keys, vals, new_keys, new_vals):
    """Insert ``new_keys`` -> ``new_vals`` into the open-addressing table ``keys`` / ``vals``
    (-1: empty slot; a power-of-two size, kept at most half full by the caller)."""
    for i in range(new_keys.shape[0]):
        k = new_keys[i]
        h = _probe(keys, k)
        keys[h] = k
        vals[h] = new_vals[i]


@njit(cache=True, nogil=True)
def merge_events(nodes, states, run_end, run_set):
    """The events of several walks in the trie's depth-first order, for :func:`resolve`:
    walk r's events are ``nodes``/``states[run_end[r - 1]:run_end[r]]`` (each walk's in
    that order already), its parse set ``run_set[r]``. Returns (nodes, rows of parse
    set, lexer state, kind 0)."""
    n = nodes.shape[0]
    k = run_end.shape[0]
    head = np.empty(k, dtype=np.int64)
    for r in range(k):
        head[r] = 0 if r == 0 else run_end[r - 1]
    out_node = np.empty(n, dtype=np.int64)
    out = np.zeros((n, 3), dtype=np.int64)
    for i in range(n):
        best = -1
        for r in range(k):
            if head[r] < run_end[r] and (best < 0 or nodes[head[r]] < nodes[head[best]]):
                best = r
        j = head[best]
        out_node[i] = nodes[j]
        out[i, 0] = run_set[best]
        out[i, 1] = states[j]
        head[best] = j + 1
    return out_node, out


# Nodes whose subtrees are at most this large are put off to a later pass when they
# wait for the parser (copying their events costs little); a pass stops before larger ones.
_PUT_OFF_MAX = 1000000000


@njit(cache=True, nogil=True)
def resolve(trans, accept, follow, nodes, trie_ids, mask, nx_keys, nx_offs, nx_cnts, nx_s2, nx_c2, max_nx,
            un_keys, un_vals, ev_node, ev, lvl_lo, lvl_hi, lvl_s, lvl_c, stage, req, dfr_node, dfr, cur, max_work,
            co_keys, co_vals, best):
    """Add to ``mask`` every token that crosses lexeme boundaries from the given events.

    An event (``ev_node``: a trie node in depth-first order; ``ev``: parse set, lexer
    state, kind) of kind 0 says: a lexeme may end at that node in that lexer state, the
    parser in any of the parse states of that set (sets of parse states are interned by
    the caller); of kind 1: that configuration reaches the node from its parent (the
    node's byte not read yet). The table ``nx_*`` says, per (parse set << 32 | lexer
    state), where the next lexeme starts: (parse set, lexer state) pairs, at most
    ``max_nx`` of them, one per start state. ``un_keys`` / ``un_vals`` map
    (a << 32 | b), a < b, to the set a | b.

    One depth-first pass over the trie below the events carries, per node, the
    configurations (parse set, lexer state) alive there, one per lexer state: ways of
    splitting the node's bytes into lexemes that reach the same lexer state are merged
    (their parse sets joined), so each node is visited once per lexer state, however
    many splits lead to it (a run of letters that may be one name or several has
    exponentially many). A node's tokens are allowed when any configuration lives;
    where one may end a lexeme, the next lexeme's starts join the configurations of the
    node's children.

    A node that needs a table entry or a join of sets not made yet is put off: what
    reaches it is written to ``dfr_node`` / ``dfr`` as events of the next pass, what it
    needs to ``req`` (rows (0, set, lexer state) or (1, a, b)), and the pass goes on
    past its subtree. ``lvl_*`` hold the configurations per depth along the current
    path: those reading the children of the node at depth j are
    ``lvl_s``/``lvl_c[lvl_lo[j]:lvl_hi[j]]``; ``stage`` (rows: parse set, lexer state)
    holds a node's candidates before they are joined. ``cur`` is the cursor (next node,
    next event, end of the current subtree, subtree walks so far, requests; counts of
    nodes and configurations visited; nodes put off), so that a call can stop before a
    node and the next go on from it.

    With ``best`` (int64 per sorted token; empty: not asked for), each token's cost is
    also written there, the least of the configurations it ends in: ``co_keys`` /
    ``co_vals`` map (parse set << 32 | lexer state) to a cost; a missing one is asked for
    as (2, parse set, lexer state).

    A node whose subtree is larger than ``_PUT_OFF_MAX`` nodes is not put off: the pass
    stops before it instead, and goes on from it once ``req`` is met.

    Returns 0 when done; 1 past ``max_work`` subtrees where new lexemes start; 5 at the
    end of a pass that put nodes off (meet ``req[:cur[4]]``, then run the events
    ``dfr[:cur[7]]``); before a node: 2 when the levels or the stage may not have room,
    4 when ``req`` or ``dfr`` may not (grow them, call again), 3 when the node waits
    for ``req[:cur[4]]`` (meet it, call again).

    The helpers this loop needs are written out in it: a call that takes arrays counts
    references to each of them, which cost more than the rest of a node.
    """
    byte, depth, skip, token, count, node_lo, node_hi = nodes
    k = cur[0]
    ei = cur[1]
    end = cur[2]
    work = cur[3]
    n_req = cur[4]
    n_dfr = cur[7]
    n_ev = ev_node.shape[0]
    nx_mask = nx_keys.shape[0] - 1
    un_mask = un_keys.shape[0] - 1
    asked_nx = np.full(1024, -1, dtype=np.int64)  # the requests made lately
    asked_un = np.full(1024, -1, dtype=np.int64)
    code = 0
    while True:
        if k >= end:
            # a new region: the subtree of the next event's node, nothing alive above it
            if ei >= n_ev:
                if n_dfr:
                    code = 5
                break
            k = ev_node[ei]
            end = skip[k]
            lvl_lo[depth[k] - 1] = 0
            lvl_hi[depth[k] - 1] = 0
        dk = depth[k]
        plo = lvl_lo[dk - 1]
        phi = lvl_hi[dk - 1]
        nev = 0
        while ei + nev < n_ev and ev_node[ei + nev] == k:
            nev += 1
        need = (phi - plo + nev) * (1 + max_nx)
        if phi + need > lvl_s.shape[0] or need > stage.shape[0]:
            code = 2
            break
        if n_req + need + phi - plo + nev > req.shape[0] or n_dfr + phi - plo + nev > dfr.shape[0]:
            code = 4
            break
        b = byte[k]
        top = phi
        lo = phi
        alive = phi
        asked = n_req
        missed = False
        for phase in range(2):
            n_stage = 0
            if phase == 0:
                # the configurations at node k: its parent's (and those the events bring)
                # through its byte
                for i in range(plo, phi + nev):
                    if i < phi:
                        s = lvl_s[i]
                        c = lvl_c[i]
                    else:
                        if ev[ei + i - phi, 2] != 1:
                            continue
                        s = ev[ei + i - phi, 0]
                        c = ev[ei + i - phi, 1]
                    st = trans[c, b]
                    if st >= 0:
                        stage[n_stage, 0] = s
                        stage[n_stage, 1] = st
                        n_stage += 1
            else:
                # lexemes that may end at node k (and the events there): the next
                # lexemes' starts, for k's children
                alive = top
                lo = top
                for i in range(phi, alive + nev):
                    if i < alive:
                        s = lvl_s[i]
                        st = lvl_c[i]
                        if not accept[st]:
                            continue
                        # _needs_parser: does a child's byte start a lexeme after this one?
                        m = k + 1
                        while m < skip[k] and not follow[st, byte[m]]:
                            m = skip[m]
                        if m >= skip[k]:
                            continue
                    else:
                        if ev[ei + i - alive, 2] != 0:
                            continue
                        s = ev[ei + i - alive, 0]
                        st = ev[ei + i - alive, 1]
                    key = (s << 32) | st
                    h = mix(key) & nx_mask  # the probe of _probe
                    while nx_keys[h] != -1 and nx_keys[h] != key:
                        h = (h + 1) & nx_mask
                    if nx_keys[h] == -1:
                        r = mix(key) & 1023
                        if asked_nx[r] != key:  # (most repeats of a request are left out)
                            asked_nx[r] = key
                            req[n_req, 0] = 0
                            req[n_req, 1] = s
                            req[n_req, 2] = st
                            n_req += 1
                        missed = True
                        continue
                    for j in range(nx_offs[h], nx_offs[h] + nx_cnts[h]):
                        stage[n_stage, 0] = nx_s2[j]
                        stage[n_stage, 1] = nx_c2[j]
                        n_stage += 1
            # Join the candidates into the level [lo, top): one configuration per lexer
            # state, the parse sets of candidates in the same state joined.
            for g in range(n_stage):
                s = stage[g, 0]
                st = stage[g, 1]
                q = lo
                while q < top and lvl_c[q] != st:
                    q += 1
                if q == top:
                    lvl_s[top] = s
                    lvl_c[top] = st
                    top += 1
                elif lvl_s[q] != s:
                    a = min(s, lvl_s[q])
                    z = max(s, lvl_s[q])
                    key = (a << 32) | z
                    h = mix(key) & un_mask  # the probe of _probe
                    while un_keys[h] != -1 and un_keys[h] != key:
                        h = (h + 1) & un_mask
                    if un_keys[h] == -1:
                        r = mix(key) & 1023
                        if asked_un[r] != key:
                            asked_un[r] = key
                            req[n_req, 0] = 1
                            req[n_req, 1] = a
                            req[n_req, 2] = z
                            n_req += 1
                        missed = True
                    else:
                        lvl_s[q] = un_vals[h]
        cost = np.int64(1) << 62
        if best.shape[0] and alive > phi and token[k] >= 0:
            # the cost of the tokens ending here: the least of the configurations alive
            co_mask = co_keys.shape[0] - 1
            for i in range(phi, alive):
                key = (lvl_s[i] << 32) | lvl_c[i]
                h = mix(key) & co_mask  # the probe of _probe
                while co_keys[h] != -1 and co_keys[h] != key:
                    h = (h + 1) & co_mask
                if co_keys[h] == -1:
                    req[n_req, 0] = 2
                    req[n_req, 1] = lvl_s[i]
                    req[n_req, 2] = lvl_c[i]
                    n_req += 1
                    missed = True
                elif co_vals[h] < cost:
                    cost = co_vals[h]
        if missed and skip[k] - k > _PUT_OFF_MAX:
            # a large subtree: stop before it, go on from it once the requests are met
            code = 3
            break
        if missed:
            # Put node k off to the next pass: what reaches it, its events and those
            # below it (taken up there together, merged).
            below = ei + nev
            while below < n_ev and ev_node[below] < skip[k]:
                below += 1
            if n_dfr + phi - plo + below - ei > dfr.shape[0]:
                n_req = asked
                code = 4
                break
            for i in range(plo, phi + nev):
                dfr_node[n_dfr] = k
                if i < phi:
                    dfr[n_dfr, 0] = lvl_s[i]
                    dfr[n_dfr, 1] = lvl_c[i]
                    dfr[n_dfr, 2] = 1
                else:
                    dfr[n_dfr, 0] = ev[ei + i - phi, 0]
                    dfr[n_dfr, 1] = ev[ei + i - phi, 1]
                    dfr[n_dfr, 2] = ev[ei + i - phi, 2]
                n_dfr += 1
            for e in range(ei + nev, below):
                dfr_node[n_dfr] = ev_node[e]
                dfr[n_dfr, 0] = ev[e, 0]
                dfr[n_dfr, 1] = ev[e, 1]
                dfr[n_dfr, 2] = ev[e, 2]
                n_dfr += 1
            nev = below - ei
            top = phi
        else:
            cur[5] += 1
            cur[6] += top - phi
            if top > phi:
                t = token[k]
                if alive > phi and t >= 0:
                    for q in range(max(count[k], 1)):
                        tid = trie_ids[t + q]
                        mask[tid >> 5] |= np.uint32(1) << np.uint32(tid & 31)
                        if best.shape[0] and cost < best[t + q]:
                            best[t + q] = cost
                if top > alive:
                    work += 1
                    if work > max_work:
                        code = 1
                        break
        ei += nev
        lvl_lo[dk] = phi
        lvl_hi[dk] = top
        if top > phi:
            k += 1
            continue
        # nothing alive below k: on to the node after its subtree, or to the next event
        # inside it (every level down to that event's empty)
        nk = skip[k]
        if ei < n_ev and ev_node[ei] < nk:
            nk = ev_node[ei]
            for j in range(dk, depth[nk]):
                lvl_lo[j] = phi
                lvl_hi[j] = phi
        k = nk
    cur[0] = k
    cur[1] = ei
    cur[2] = end
    cur[3] = work
    cur[4] = n_req
    cur[7] = n_dfr
    return code
