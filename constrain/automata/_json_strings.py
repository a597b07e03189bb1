"""Two JSON string terminals that real schemas use all the time, built straight as
minimal DFAs instead of through regex compilation, products and minimization.

**A string that is none of a few ASCII names.**

Objects with ``additionalProperties`` need a key terminal "any JSON string except the
declared names". Built as a difference (the names as JSON-string regexes, their union,
the quotes, a product with the string DFA, minimization) it costs 1-6 ms per object,
and real schemas have a hundred such objects. Here the same minimal DFA comes from one
table: the string DFA's states, plus, per trie node of the names, the states inside one
encoding of the next character (raw, a short escape, ``\\u00XX``), whose bytes leave the
trie into the string DFA's own states wherever they spell a character no name continues
with. Nodes of equal futures (names that end alike) share their states, so the table is
minimal as built and is only numbered.

**A string of ``m`` to ``n`` characters** (``minLength``/``maxLength``): ``n`` + 1 layers
of the states inside one character's encoding, each character leading to the next layer.
The general path builds it through an NFA of ``n`` copies (maxLength 4096: 81,923 states,
0.8 s); the layers are the minimal DFA already, so they only need numbering.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .._hashtable import first_slot, hash_run, next_slot
from .._kernels import njit
from .dfa import ByteDFA, renumbered

__all__ = ["JSON_STRING_REGEX", "json_string_except", "json_string_of_length"]

# A JSON string literal, quotes included: the one definition the front ends share.
JSON_STRING_REGEX = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'

_SHORT = {0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 0x08, 0x66: 0x0C, 0x6E: 0x0A, 0x72: 0x0D, 0x74: 0x09}
_QUOTE, _BACKSLASH, _U, _ZERO = 0x22, 0x5C, 0x75, 0x30


def json_string_except(string: ByteDFA, names: Sequence[str]) -> ByteDFA | None:
    """The minimal DFA of the JSON strings (``string``, the DFA of
    :data:`JSON_STRING_REGEX`) that decode to none of ``names``; None where the fast
    construction does not apply (a name that is not ASCII, or a ``string`` DFA of another
    shape): the caller then builds the difference the general way."""
    if not all(n.isascii() for n in names):
        return None
    t = string.transitions
    body = int(t[0, _QUOTE])
    if body < 0 or int(t[body, 0x61]) != body or not string.accepting[t[body, _QUOTE]]:
        return None
    esc = int(t[body, _BACKSLASH])
    u = [int(t[esc, _U])] if esc >= 0 else [-1]
    for _ in range(3):
        u.append(int(t[u[-1], _ZERO]) if u[-1] >= 0 else -1)
    if min(u) < 0 or int(t[u[3], 0x37]) != body:
        return None
    last = int(t[u[2], 0x37])
    if last < 0 or int(t[last, 0x66]) != body or int(t[last, 0x46]) != body:
        return None
    for short in _SHORT:
        if int(t[esc, short]) != body:
            return None

    # The trie of the names (sorted: each node's children come in byte order), its nodes
    # of equal futures merged, and the changed transitions of the table, in one kernel
    # pass (a few hundred trie nodes cost a millisecond in Python).
    words = sorted({name.encode("ascii") for name in names})
    data = np.frombuffer(b"".join(words), dtype=np.uint8)
    off = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum([len(w) for w in words], out=off[1:])
    hex_targets = np.array([int(t[u[2], 0x30 + h]) for h in range(8)], dtype=np.int64)
    n_string = t.shape[0]
    table, byte_cls = _except_table(t, string._byte_partition(), *_except_rows(
        data, off, n_string, body, esc, u[0], u[1], u[2], hex_targets))
    accepting = np.zeros(table.shape[0], dtype=np.bool_)
    accepting[:n_string] = string.accepting
    return renumbered(table, byte_cls, accepting)  # (minimal as built: numbered, not minimized)


def json_string_of_length(char: ByteDFA, m: int, n: int) -> ByteDFA | None:
    """The minimal DFA of ``"`` + ``m`` to ``n`` characters + ``"``, every character one JSON
    encoding of a member of a set: ``char`` is the DFA of one such encoding (the regex of
    the set with ``json_string``). None when ``char`` is not of that shape (one accepting
    state, without transitions, other than the start)."""
    t = char.transitions
    final = np.flatnonzero(char.accepting)
    if final.shape[0] != 1 or final[0] == 0 or (t[final[0]] >= 0).any() or t[0, _QUOTE] >= 0 or not 0 <= m <= n:
        return None
    f = int(final[0])
    inner = np.array([s for s in range(t.shape[0]) if s != f], dtype=np.int64)  # the start first
    k = inner.shape[0]
    local = np.full(t.shape[0], -1, dtype=np.int64)
    local[inner] = np.arange(k)
    local[f] = k  # a character complete: the next layer's start
    # byte classes: the character's, the quote a class of its own
    key = char._byte_partition().astype(np.int64)
    key[_QUOTE] = int(key.max()) + 1
    _, first, byte_cls = np.unique(key, return_index=True, return_inverse=True)
    byte_cls = byte_cls.reshape(-1)
    one = np.take(t[inner], first, axis=1)
    one = np.where(one >= 0, local[np.maximum(one, 0)], -1)  # [k, classes], targets in the layer
    # state 0 before the opening quote; layer i at 1 + i*k; the accepting state last
    size = 1 + n * k + 2
    table = np.empty((size, one.shape[1]), dtype=np.int32)
    table[0] = -1
    table[1 + n * k:] = -1
    if n:
        # written in place, in int32 (temporaries of the layers' size cost more than the
        # arithmetic: page faults)
        body = table[1:1 + n * k].reshape(n, k, one.shape[1])
        np.add((1 + np.arange(n, dtype=np.int32) * np.int32(k))[:, None, None], one.astype(np.int32)[None], out=body)
        body[:, one < 0] = -1
    quote = byte_cls[_QUOTE]
    table[0, quote] = 1
    table[1 + np.arange(m, n + 1) * k, quote] = size - 1
    accepting = np.zeros(size, dtype=np.bool_)
    accepting[size - 1] = True
    return renumbered(table, byte_cls, accepting)


_LETTERS = np.full(128, -1, dtype=np.int64)  # character -> its short escape's letter
for _letter, _meaning in _SHORT.items():
    _LETTERS[_meaning] = _letter


@njit(cache=True, nogil=True)
def _intern_run(off, dat, n, table, run, k):
    """The id of ``run[:k]`` among the ``n`` runs of ``off``/``dat`` (found through
    ``table``, which has room), added as run ``n`` when new: (id, new count)."""
    h = hash_run(run, 0, k, 0)
    slot = first_slot(table, h)
    while table[slot] != -1:
        j = table[slot]
        lo = off[j]
        if off[j + 1] - lo == k:
            same = True
            for x in range(k):
                if dat[lo + x] != run[x]:
                    same = False
                    break
            if same:
                return j, n
        slot = next_slot(table, slot)
    lo = off[n]
    dat[lo:lo + k] = run[:k]
    off[n + 1] = lo + k
    table[slot] = n
    return n, n + 1


@njit(cache=True, nogil=True)
def _except_rows(data, off, n_string, body, esc, u1, u2, u3, hex_targets):
    """The states and transitions :func:`json_string_except` adds to the string DFA's for
    the sorted ASCII names ``data[off[i]:off[i + 1]]``: (the string state each new state
    starts as a copy of, and the changed transitions as rows, bytes, targets). ``body``,
    ``esc``, ``u1``..``u3``: the string DFA's states inside a string, after a backslash,
    after ``\\u``, ``\\u0``, ``\\u00``; ``hex_targets[h]``: its state after ``\\u00h``.

    New states: per class of trie nodes (a node by whether a name ends there and its
    children's classes) one between characters; per set of children, four inside an
    escape (after the backslash, ``\\u``, ``\\u0``, ``\\u00``); per high nibble ``h`` of
    those children and the children below it, one after ``\\u00h``."""
    n_names = off.shape[0] - 1
    cap = off[n_names] + 1
    # the trie: children as sibling lists, in byte order (the names are sorted)
    first = np.full(cap, -1, dtype=np.int64)
    last = np.full(cap, -1, dtype=np.int64)
    sib = np.full(cap, -1, dtype=np.int64)
    byte = np.zeros(cap, dtype=np.int64)
    final = np.zeros(cap, dtype=np.int64)
    n = 1
    for w in range(n_names):
        node = 0
        for x in range(off[w], off[w + 1]):
            b = data[x]
            c = last[node]  # (sorted names: a byte not yet seen here comes after the others)
            if c < 0 or byte[c] != b:
                c = n
                n += 1
                byte[c] = b
                if last[node] < 0:
                    first[node] = c
                else:
                    sib[last[node]] = c
                last[node] = c
            node = c
        final[node] = 1
    size = 1
    while size < 4 * n + 64:
        size *= 2
    run = np.empty(2 * n + 18, dtype=np.int64)
    # classes of nodes, children before parents (they come later in the trie)
    cls = np.empty(n, dtype=np.int64)
    c_off = np.zeros(n + 1, dtype=np.int64)
    c_dat = np.empty(3 * n + 1, dtype=np.int64)
    c_table = np.full(size, -1, dtype=np.int64)
    n_cls = 0
    for node in range(n - 1, -1, -1):
        run[0] = final[node]
        k = 1
        c = first[node]
        while c >= 0:
            run[k] = byte[c]
            run[k + 1] = cls[c]
            k += 2
            c = sib[c]
        cls[node], n_cls = _intern_run(c_off, c_dat, n_cls, c_table, run, k)
    # the sets of children (a class's, without its final flag), in order of the classes
    kid_set = np.full(n_cls, -1, dtype=np.int64)
    k_off = np.zeros(n_cls + 1, dtype=np.int64)
    k_dat = np.empty(3 * n + 1, dtype=np.int64)
    k_table = np.full(size, -1, dtype=np.int64)
    n_kids = 0
    for q in range(n_cls):
        k = c_off[q + 1] - c_off[q] - 1
        if k > 0:
            run[:k] = c_dat[c_off[q] + 1:c_off[q + 1]]
            kid_set[q], n_kids = _intern_run(k_off, k_dat, n_kids, k_table, run, k)
    # new states: a class's is n_string + its id; a set of children's four follow
    u4_max = 8 * n_kids
    row_of = np.empty(n_cls + 4 * n_kids + u4_max, dtype=np.int64)
    row_of[:n_cls] = body
    for j in range(n_kids):
        e = n_cls + 4 * j
        row_of[e] = esc
        row_of[e + 1] = u1
        row_of[e + 2] = u2
        row_of[e + 3] = u3
    n_rows = n_cls + 4 * n_kids
    m = 1 + 2 * n_cls + 3 * n + 4 * n_kids + 8 * n_kids + 4 * n + 16
    rows = np.empty(m, dtype=np.int64)
    cols = np.empty(m, dtype=np.int64)
    targets = np.empty(m, dtype=np.int64)
    rows[0] = 0
    cols[0] = 0x22
    targets[0] = n_string + cls[0]
    e_n = 1
    for q in range(n_cls):
        s = n_string + q
        if c_dat[c_off[q]]:  # exactly a name
            rows[e_n] = s
            cols[e_n] = 0x22
            targets[e_n] = -1
            e_n += 1
        j = kid_set[q]
        if j < 0:
            continue
        rows[e_n] = s
        cols[e_n] = 0x5C
        targets[e_n] = n_string + n_cls + 4 * j
        e_n += 1
        for x in range(c_off[q] + 1, c_off[q + 1], 2):
            ch = c_dat[x]
            if ch >= 0x20 and ch != 0x22 and ch != 0x5C:  # written as itself
                rows[e_n] = s
                cols[e_n] = ch
                targets[e_n] = n_string + c_dat[x + 1]
                e_n += 1
    u_off = np.zeros(u4_max + 1, dtype=np.int64)
    u_dat = np.empty(3 * n + u4_max + 1, dtype=np.int64)
    u_table = np.full(2 * size, -1, dtype=np.int64)
    n_u4 = 0
    for j in range(n_kids):
        e = n_string + n_cls + 4 * j
        rows[e_n] = e
        cols[e_n] = 0x75
        targets[e_n] = e + 1
        rows[e_n + 1] = e + 1
        cols[e_n + 1] = 0x30
        targets[e_n + 1] = e + 2
        rows[e_n + 2] = e + 2
        cols[e_n + 2] = 0x30
        targets[e_n + 2] = e + 3
        e_n += 3
        lo, hi = k_off[j], k_off[j + 1]
        for x in range(lo, hi, 2):
            letter = _LETTERS[k_dat[x]]
            if letter >= 0:
                rows[e_n] = e
                cols[e_n] = letter
                targets[e_n] = n_string + k_dat[x + 1]
                e_n += 1
        x = lo
        while x < hi:  # the children by high nibble (in byte order: nibbles ascending)
            h = k_dat[x] >> 4
            run[0] = hex_targets[h]
            k = 1
            while x < hi and k_dat[x] >> 4 == h:
                run[k] = k_dat[x] & 0xF
                run[k + 1] = k_dat[x + 1]
                k += 2
                x += 2
            u4, n_new = _intern_run(u_off, u_dat, n_u4, u_table, run, k)
            if n_new > n_u4:
                n_u4 = n_new
                row_of[n_rows] = run[0]
                for y in range(1, k, 2):
                    v = run[y]
                    digit = 0x30 + v if v < 10 else 0x61 + v - 10
                    rows[e_n] = n_string + n_rows
                    cols[e_n] = digit
                    targets[e_n] = n_string + run[y + 1]
                    e_n += 1
                    if v >= 10:
                        rows[e_n] = n_string + n_rows
                        cols[e_n] = 0x41 + v - 10
                        targets[e_n] = n_string + run[y + 1]
                        e_n += 1
                n_rows += 1
            rows[e_n] = e + 3
            cols[e_n] = 0x30 + h
            targets[e_n] = n_string + n_cls + 4 * n_kids + u4
            e_n += 1
    return row_of[:n_rows], rows[:e_n], cols[:e_n], targets[:e_n]


@njit(cache=True, nogil=True)
def _except_table(t, part, row_of, rows, cols, targets):
    """The table of :func:`json_string_except` over byte classes (numbered by first
    byte), and the class of each byte: the string DFA's rows (``t``, its byte partition
    ``part``), then a copy of row ``row_of[i]`` for each new state, every byte of a changed
    transition (``rows``, ``cols``, ``targets``) in a class of its own."""
    key = np.empty(256, dtype=np.int64)
    n_keys = 0
    for b in range(256):
        key[b] = part[b]
        n_keys = max(n_keys, part[b] + 1)
    changed = np.zeros(256, dtype=np.bool_)
    for x in range(cols.shape[0]):
        changed[cols[x]] = True
    for b in range(256):
        if changed[b]:
            key[b] = n_keys
            n_keys += 1
    cls_of_key = np.full(n_keys, -1, dtype=np.int64)
    byte_cls = np.empty(256, dtype=np.int64)
    firsts = np.empty(256, dtype=np.int64)
    k = 0
    for b in range(256):
        c = cls_of_key[key[b]]
        if c < 0:
            c = k
            cls_of_key[key[b]] = c
            firsts[c] = b
            k += 1
        byte_cls[b] = c
    n_string = t.shape[0]
    n = n_string + row_of.shape[0]
    table = np.empty((n, k), dtype=np.int32)
    for s in range(n):
        src = s if s < n_string else row_of[s - n_string]
        for c in range(k):
            table[s, c] = t[src, firsts[c]]
    for x in range(rows.shape[0]):
        table[rows[x], byte_cls[cols[x]]] = targets[x]
    return table, byte_cls
