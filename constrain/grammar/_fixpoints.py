"""The grammar analyses' loops as numba kernels over rules coded as integers.

Rules come as flat arrays (see :class:`constrain.grammar.analysis.Coded`): nonterminals
are symbols ``0 .. n_nt - 1`` (rule ``r``'s alternatives are ``rule_off[r] ..
rule_off[r + 1] - 1``), every other symbol comes after them; alternative ``a``'s symbols
are ``syms[alt_off[a]:alt_off[a + 1]]``. Sets of terminals are rows of uint64 words, bit
``i`` for the ``i``-th terminal of the analysis (``bitpos`` maps a symbol to its bit, -1
for none). A large schema's grammar has thousands of rules and ten thousand symbol uses;
the same loops in Python over names took tens of milliseconds each, several per compile.
"""

from __future__ import annotations

import numpy as np

from .._kernels import njit

__all__ = ["productive_kept", "nullable_rules", "first_sets", "follow_sets", "follow_first_bytes", "parser_layout"]


@njit(cache=True, nogil=True)
def _uses(n_nt, alt_off, syms, n_alts):
    """Per nonterminal, the alternatives that use it (once per use): CSR offsets and
    alternative ids."""
    off = np.zeros(n_nt + 1, dtype=np.int64)
    for a in range(n_alts):
        for j in range(alt_off[a], alt_off[a + 1]):
            s = syms[j]
            if s < n_nt:
                off[s + 1] += 1
    for s in range(n_nt):
        off[s + 1] += off[s]
    fill = off[:-1].copy()
    alts = np.empty(off[n_nt], dtype=np.int64)
    for a in range(n_alts):
        for j in range(alt_off[a], alt_off[a + 1]):
            s = syms[j]
            if s < n_nt:
                alts[fill[s]] = a
                fill[s] += 1
    return off, alts


@njit(cache=True, nogil=True)
def _derives(n_nt, rule_off, alt_off, syms, live):
    """Which nonterminals derive a string of live terminals (``live[s]`` for a symbol
    ``s >= n_nt``; with none live, the nonterminals that derive the empty string): each
    alternative counts down its nonterminals not yet known to, one with a dead terminal
    never does."""
    n_alts = alt_off.shape[0] - 1
    head = np.empty(n_alts, dtype=np.int64)
    for r in range(n_nt):
        for a in range(rule_off[r], rule_off[r + 1]):
            head[a] = r
    missing = np.zeros(n_alts, dtype=np.int64)
    out = np.zeros(n_nt, dtype=np.bool_)
    ready = np.empty(n_nt, dtype=np.int64)
    n_ready = 0
    for a in range(n_alts):
        need = 0
        for j in range(alt_off[a], alt_off[a + 1]):
            s = syms[j]
            if s < n_nt:
                need += 1
            elif not live[s]:
                need = -1  # a dead or unknown terminal: never
                break
        missing[a] = need
        if need == 0 and not out[head[a]]:
            out[head[a]] = True
            ready[n_ready] = head[a]
            n_ready += 1
    off, uses = _uses(n_nt, alt_off, syms, n_alts)
    while n_ready > 0:
        n_ready -= 1
        s = ready[n_ready]
        for k in range(off[s], off[s + 1]):
            a = uses[k]
            if missing[a] > 0:
                missing[a] -= 1
                if missing[a] == 0 and not out[head[a]]:
                    out[head[a]] = True
                    ready[n_ready] = head[a]
                    n_ready += 1
    return out


@njit(cache=True, nogil=True)
def productive_kept(n_nt, rule_off, alt_off, syms, live, start):
    """The reduction from ``start``: the rules it reaches through alternatives of live
    symbols only (productive rules, terminals with ``live[s]``), in the order a
    depth-first walk meets them (the last symbol pushed is the next taken), and which
    alternatives stay. Returns (order, n_kept, alternative kept); n_kept is 0 when the
    start derives no finite string."""
    n_alts = alt_off.shape[0] - 1
    productive = _derives(n_nt, rule_off, alt_off, syms, live)
    kept = np.zeros(n_alts, dtype=np.bool_)
    order = np.empty(n_nt, dtype=np.int64)
    n_kept = 0
    if not productive[start]:
        return order, 0, kept
    seen = np.zeros(n_nt, dtype=np.bool_)
    todo = np.empty(alt_off[n_alts] + 1, dtype=np.int64)  # (each push is one use of a symbol)
    todo[0] = start
    sp = 1
    while sp > 0:
        sp -= 1
        r = todo[sp]
        if seen[r]:
            continue
        seen[r] = True
        order[n_kept] = r
        n_kept += 1
        for a in range(rule_off[r], rule_off[r + 1]):
            ok = True
            for j in range(alt_off[a], alt_off[a + 1]):
                s = syms[j]
                if (s < n_nt and not productive[s]) or (s >= n_nt and not live[s]):
                    ok = False
                    break
            kept[a] = ok
            if ok:
                for j in range(alt_off[a], alt_off[a + 1]):
                    s = syms[j]
                    if s < n_nt and not seen[s]:
                        todo[sp] = s
                        sp += 1
    return order, n_kept, kept


@njit(cache=True, nogil=True)
def nullable_rules(n_nt, rule_off, alt_off, syms):
    """Which nonterminals derive the empty string: those that derive a string when no
    terminal is live."""
    n_sym = n_nt
    for s in syms:
        if s >= n_sym:
            n_sym = s + 1
    return _derives(n_nt, rule_off, alt_off, syms, np.zeros(n_sym, dtype=np.bool_))


@njit(cache=True, nogil=True)
def _least_union(roots, dep_off, deps, const, value):
    """Fill ``value`` (zeros on entry) with the least rows such that ``value[n] =
    const[n] | value[d]`` for every ``d`` in ``deps[dep_off[n]:dep_off[n + 1]]``, for the
    nodes reachable from ``roots``: each strongly connected component solved once,
    dependencies first (Tarjan's algorithm, its recursion kept in arrays)."""
    n, w = const.shape
    index = np.full(n, -1, dtype=np.int64)
    low = np.zeros(n, dtype=np.int64)
    on = np.zeros(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int64)
    work = np.empty(n, dtype=np.int64)
    edge = np.empty(n, dtype=np.int64)
    acc = np.empty(w, dtype=np.uint64)
    counter = 0
    sp = 0
    for root in roots:
        if index[root] >= 0:
            continue
        index[root] = counter
        low[root] = counter
        counter += 1
        stack[sp] = root
        sp += 1
        on[root] = True
        work[0] = root
        edge[0] = dep_off[root]
        wp = 1
        while wp > 0:
            v = work[wp - 1]
            e = edge[wp - 1]
            descended = False
            while e < dep_off[v + 1]:
                u = deps[e]
                e += 1
                if index[u] < 0:
                    edge[wp - 1] = e
                    index[u] = counter
                    low[u] = counter
                    counter += 1
                    stack[sp] = u
                    sp += 1
                    on[u] = True
                    work[wp] = u
                    edge[wp] = dep_off[u]
                    wp += 1
                    descended = True
                    break
                if on[u] and index[u] < low[v]:
                    low[v] = index[u]
            if descended:
                continue
            wp -= 1
            if wp > 0:
                p = work[wp - 1]
                if low[v] < low[p]:
                    low[p] = low[v]
            if low[v] == index[v]:
                k = sp - 1
                while stack[k] != v:
                    k -= 1
                for i in range(w):
                    acc[i] = 0
                for j in range(k, sp):
                    x = stack[j]
                    for i in range(w):
                        acc[i] |= const[x, i]
                    for f in range(dep_off[x], dep_off[x + 1]):
                        d = deps[f]  # (a member of this component: still zeros)
                        for i in range(w):
                            acc[i] |= value[d, i]
                for j in range(k, sp):
                    x = stack[j]
                    on[x] = False
                    for i in range(w):
                        value[x, i] = acc[i]
                sp = k


@njit(cache=True, nogil=True)
def first_sets(n_nt, rule_off, alt_off, syms, nullable, bitpos, w):
    """Per nonterminal, the terminals its strings may start with (rows of ``w`` words)."""
    const = np.zeros((n_nt, w), dtype=np.uint64)
    off = np.zeros(n_nt + 1, dtype=np.int64)
    deps = np.empty(0, dtype=np.int64)
    fill = off[:-1].copy()
    for step in range(2):  # count the dependencies, then write them
        if step == 1:
            for r in range(n_nt):
                off[r + 1] += off[r]
            deps = np.empty(off[n_nt], dtype=np.int64)
            fill = off[:-1].copy()
        for r in range(n_nt):
            for a in range(rule_off[r], rule_off[r + 1]):
                for j in range(alt_off[a], alt_off[a + 1]):
                    s = syms[j]
                    if s < n_nt:
                        if step == 0:
                            off[r + 1] += 1
                        else:
                            deps[fill[r]] = s
                            fill[r] += 1
                        if not nullable[s]:
                            break
                    else:
                        b = bitpos[s]
                        if b >= 0 and step == 0:
                            const[r, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
                        break
    value = np.zeros((n_nt, w), dtype=np.uint64)
    _least_union(np.arange(n_nt), off, deps, const, value)
    return value


@njit(cache=True, nogil=True)
def follow_sets(n_nt, rule_off, alt_off, syms, nullable, first, bitpos, roots, w):
    """Per terminal of ``roots`` (symbols, in bit order): the terminals that may come
    right after one of its lexemes. What comes after a symbol inside an alternative is
    its own; where only nullable symbols follow it, everything that follows the
    alternative's head follows it too."""
    n_sym = bitpos.shape[0]
    const = np.zeros((n_sym, w), dtype=np.uint64)
    off = np.zeros(n_sym + 1, dtype=np.int64)
    tail = np.zeros(w, dtype=np.uint64)
    deps = np.empty(0, dtype=np.int64)
    fill = off[:-1].copy()
    for step in range(2):  # count the dependencies, then write them
        if step == 1:
            for s in range(n_sym):
                off[s + 1] += off[s]
            deps = np.empty(off[n_sym], dtype=np.int64)
            fill = off[:-1].copy()
        for r in range(n_nt):
            for a in range(rule_off[r], rule_off[r + 1]):
                for i in range(w):
                    tail[i] = 0
                empty = True  # no bit in tail
                tail_nullable = True
                for j in range(alt_off[a + 1] - 1, alt_off[a] - 1, -1):
                    x = syms[j]
                    if step == 0 and not empty:
                        for i in range(w):
                            const[x, i] |= tail[i]
                    if tail_nullable:
                        if step == 0:
                            off[x + 1] += 1
                        else:
                            deps[fill[x]] = r
                            fill[x] += 1
                    if x < n_nt:
                        if not nullable[x]:
                            for i in range(w):
                                tail[i] = 0
                            tail_nullable = False
                        for i in range(w):
                            tail[i] |= first[x, i]
                    else:
                        for i in range(w):
                            tail[i] = 0
                        b = bitpos[x]
                        if b >= 0:
                            tail[b >> 6] = np.uint64(1) << np.uint64(b & 63)
                        tail_nullable = False
                    empty = True
                    for i in range(w):
                        if tail[i]:
                            empty = False
                            break
    value = np.zeros((n_sym, w), dtype=np.uint64)
    _least_union(roots, off, deps, const, value)
    out = np.empty((roots.shape[0], w), dtype=np.uint64)
    for k in range(roots.shape[0]):
        out[k] = value[roots[k]]
    return out


@njit(cache=True, nogil=True)
def follow_first_bytes(follow, firsts, group_of, n_groups):
    """Per terminal (a row of ``follow``, bit ``i`` for terminal ``i``): the bytes the
    lexemes of the terminals that may follow it start with. Terminals come in
    ``n_groups`` groups of equal first bytes (``firsts[i]``, bool ``[256]``): one test
    of a row against each group's bits."""
    n, w = follow.shape
    bits = np.zeros((n_groups, w), dtype=np.uint64)
    rep = np.full(n_groups, -1, dtype=np.int64)
    for i in range(n):
        g = group_of[i]
        bits[g, i >> 6] |= np.uint64(1) << np.uint64(i & 63)
        if rep[g] < 0:
            rep[g] = i
    out = np.zeros((n, 256), dtype=np.bool_)
    for t in range(n):
        for g in range(n_groups):
            hit = False
            for k in range(w):
                if follow[t, k] & bits[g, k]:
                    hit = True
                    break
            if hit:
                r = rep[g]
                for b in range(256):
                    if firsts[r, b]:
                        out[t, b] = True
    return out


@njit(cache=True, nogil=True)
def parser_layout(rule_off, alt_off, syms, order, remap, start):
    """An Earley parser's dotted rules laid out flat: the augmented start's rule (slot 0:
    ``start``, slot 1: its end), then the alternatives of nonterminal ``order[0]``,
    ``order[1]``, ..., each its symbols (through ``remap``) and -1. Returns (the symbol
    after each dotted rule, the head of each: the rank in ``order``, the augmented start
    ``len(order)``; the first slot of each alternative in that order)."""
    n_red = order.shape[0]
    total = 2
    n_alts = 0
    for k in range(n_red):
        r = order[k]
        total += alt_off[rule_off[r + 1]] - alt_off[rule_off[r]] + rule_off[r + 1] - rule_off[r]
        n_alts += rule_off[r + 1] - rule_off[r]
    next_sym = np.empty(total, dtype=np.int64)
    lhs = np.empty(total, dtype=np.int64)
    firsts = np.empty(n_alts, dtype=np.int64)
    next_sym[0] = start
    next_sym[1] = -1
    lhs[0] = n_red
    lhs[1] = n_red
    pos = 2
    a_i = 0
    for k in range(n_red):
        r = order[k]
        for a in range(rule_off[r], rule_off[r + 1]):
            firsts[a_i] = pos
            a_i += 1
            for j in range(alt_off[a], alt_off[a + 1]):
                next_sym[pos] = remap[syms[j]]
                lhs[pos] = k
                pos += 1
            next_sym[pos] = -1
            lhs[pos] = k
            pos += 1
    return next_sym, lhs, firsts
