"""numba kernels: walk the vocabulary's flat trie through the lexer's product DFA.

The vocabulary is sorted by bytes and laid out as trie nodes in depth-first order, so
a subtree is a contiguous range of nodes (and of sorted tokens) and a dead byte skips
every token below it. A walk reports the tokens that stay alive inside the current lexeme
and the trie nodes where a lexeme may end while the token goes on (events): there the
parser must say which lexeme may start next, and the walk resumes on that subtree.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _caches
from .._hashtable import key_slot, pair_slot

__all__ = [
    "walk", "walk_alloc", "walk_ids", "walk_many", "walk_mask", "walk_patch", "walk_sliced", "same_within",
    "alike_depth", "resolve", "next_table_insert", "scratch",
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
def next_table_insert(keys, offs, cnts, new_keys, new_offs, new_cnts):
    """Insert entries into the open-addressing table ``keys`` (-1: empty slot), whose
    size is a power of two; the caller keeps it at most half full."""
    for i in range(new_keys.shape[0]):
        k = new_keys[i]
        h = key_slot(keys, k)
        keys[h] = k
        offs[h] = new_offs[i]
        cnts[h] = new_cnts[i]


@njit(cache=True, nogil=True)
def _grow_rows(a, n, need=0):
    """``a`` with its first ``n`` rows, room for at least ``need`` rows (or twice as many)."""
    out = np.empty((max(a.shape[0] * 2, need), a.shape[1]), dtype=a.dtype)
    out[:n] = a[:n]
    return out


@njit(cache=True, nogil=True)
def resolve(trans, accept, follow, trie, trie_ids, mask, nx_keys, nx_offs, nx_cnts, nx_p2, nx_c2,
            seen, n_seen, events, n_events, work, max_work, max_len):
    """Add to ``mask`` every token that crosses lexeme boundaries from the given events.

    An event (parse state, lo, hi, depth, lexer state) says: the tokens of sorted range
    ``[lo, hi)`` share their first ``depth`` bytes, along which a lexeme may end in that
    lexer state, with the parser in that parse state. The table ``nx_*`` (see
    ``MaskEngine._next_table``) says, per (parse state, lexer state), which (parse
    state, lexer state) pairs the next lexeme starts from; for each, the subtree is
    walked from there, its tokens that stay inside the lexeme are added, and the
    boundaries it meets are new events, to any depth.

    ``seen`` (rows (parse state << 32 | lexer state, lo << 16 | depth), -1: empty; a
    power-of-two number of rows, at most half full) keeps a subtree from being walked
    twice from one start; it persists across calls for one mask. Events whose entry
    is not in the table yet are returned for the caller to fill it in and call again.

    Returns (status, seen, n_seen, work, pending rows, n_pending): status 1 when more
    than ``max_work`` subtree walks were needed.
    """
    token_node, lcp = trie.token_node, trie.lcp
    n_nodes = trie.nodes.byte.shape[0]
    n_tokens = lcp.shape[0]
    stack = np.empty(max_len + 2, dtype=np.int32)
    todo = np.empty((max(16, 2 * n_events), 5), dtype=np.int64)
    todo[:n_events] = events[:n_events]
    n_todo = n_events
    pending = np.empty((16, 5), dtype=np.int64)
    n_pending = 0
    while n_todo > 0:
        n_todo -= 1
        p = todo[n_todo, 0]
        lo = todo[n_todo, 1]
        hi = todo[n_todo, 2]
        d = todo[n_todo, 3]
        s = todo[n_todo, 4]
        key = (p << 32) | s
        h = key_slot(nx_keys, key)
        if nx_keys[h] == -1:
            if n_pending == pending.shape[0]:
                pending = _grow_rows(pending, n_pending)
            pending[n_pending] = todo[n_todo]
            n_pending += 1
            continue
        off = nx_offs[h]
        a = token_node[lo] + d - lcp[lo]  # the subtree's first node below depth d
        b = token_node[hi] if hi < n_tokens else n_nodes
        where = (lo << 16) | d
        for j in range(off, off + nx_cnts[h]):
            p2 = np.int64(nx_p2[j])
            c2 = nx_c2[j]
            start = (p2 << 32) | c2
            g = pair_slot(seen, start, where)
            if seen[g, 0] != -1:
                continue
            seen[g, 0] = start
            seen[g, 1] = where
            n_seen += 1
            if 2 * n_seen > seen.shape[0]:
                seen = _rehash_seen(seen)
            work += 1
            if work > max_work:
                return 1, seen, n_seen, work, pending, n_pending
            if n_todo + (b - a) > todo.shape[0]:  # room for an event at every node
                todo = _grow_rows(todo, n_todo, n_todo + (b - a))
            n_todo = _walk_events(trans, accept, follow, trie.nodes, trie_ids, mask, stack, a, b, d, c2, p2, todo, n_todo)
    return 0, seen, n_seen, work, pending, n_pending


@njit(cache=True, nogil=True)
def _walk_events(trans, accept, follow, nodes, trie_ids, mask, stack, a, b, d, c2, p2, todo, n_todo):
    """Walk nodes ``[a, b)`` below depth ``d`` from lexer state ``c2``: add the tokens
    that stay inside the lexeme to ``mask``, and a row of ``todo`` (which has room for
    one per node) for each boundary met, with parse state ``p2``. Returns the new count
    of rows. A loop of its own, with no array reassigned around it: numba's code for
    such a loop is several times faster."""
    byte, depth, skip, token, count, node_lo, node_hi = nodes
    stack[d] = c2
    k = a
    while k < b:
        dk = depth[k]
        st = trans[stack[dk - 1], byte[k]]
        if st < 0:
            k = skip[k]  # a dead byte prunes every token below
            continue
        stack[dk] = st
        t = token[k]
        if t >= 0:
            for q in range(max(count[k], 1)):
                tid = trie_ids[t + q]
                mask[tid >> 5] |= np.uint32(1) << np.uint32(tid & 31)
        if accept[st] and _needs_parser(follow, byte, skip, st, k):
            todo[n_todo, 0] = p2
            todo[n_todo, 1] = node_lo[k]
            todo[n_todo, 2] = node_hi[k]
            todo[n_todo, 3] = dk
            todo[n_todo, 4] = st
            n_todo += 1
        k += 1
    return n_todo


@njit(cache=True, nogil=True)
def _rehash_seen(seen):
    out = np.full((seen.shape[0] * 2, 2), -1, dtype=np.int64)
    for i in range(seen.shape[0]):
        if seen[i, 0] != -1:
            g = pair_slot(out, seen[i, 0], seen[i, 1])
            out[g, 0] = seen[i, 0]
            out[g, 1] = seen[i, 1]
    return out
