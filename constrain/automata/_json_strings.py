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

from .dfa import ByteDFA, renumbered, word_trie

__all__ = ["JSON_STRING_REGEX", "json_string_except", "json_string_of_length"]

# A JSON string literal, quotes included: the one definition the front ends share.
JSON_STRING_REGEX = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'

_SHORT = {0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 0x08, 0x66: 0x0C, 0x6E: 0x0A, 0x72: 0x0D, 0x74: 0x09}
_LETTER = {meaning: letter for letter, meaning in _SHORT.items()}  # character -> its short escape
_DIGITS = [(0x30 + v,) if v < 10 else (0x61 + v - 10, 0x41 + v - 10) for v in range(16)]  # hex digits of a value
_QUOTE, _BACKSLASH, _U, _ZERO = 0x22, 0x5C, 0x75, 0x30


def _raw(c: int) -> bool:
    """Whether JSON writes character ``c`` (ASCII) as itself inside a string."""
    return c >= 0x20 and c != _QUOTE and c != _BACKSLASH


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

    # the trie of the names, one node per decoded prefix
    children, final = word_trie(name.encode("ascii") for name in names)

    # Trie nodes with equal futures share states (the minimal DFA has one for each): a
    # node by whether a name ends there and its children's classes, the states inside an
    # escape after it by its children alone, the last hex digit's state by the children
    # that one high nibble leads to. Children are made after their parents.
    n_nodes = len(children)
    node_cls = [0] * n_nodes
    node_ids: dict[tuple, int] = {}
    node_kids: list[tuple] = []  # per node class: its children (character, class), sorted
    node_final: list[bool] = []
    for node in range(n_nodes - 1, -1, -1):
        kids = tuple(sorted((ch, node_cls[child]) for ch, child in children[node].items()))
        key = (final[node], kids)
        got = node_ids.get(key)
        if got is None:
            got = node_ids[key] = len(node_kids)
            node_kids.append(kids)
            node_final.append(final[node])
        node_cls[node] = got

    # states: the string DFA's, then per node class T (between characters), per set of
    # children E (after a backslash), U1..U3 (after \u, \u0, \u00), and U4 (after \u00h)
    # per set of children below one high nibble h
    n_string = t.shape[0]
    row_of: list[int] = []  # the string state each new state starts as a copy of
    node_state = []
    for _ in node_kids:
        node_state.append(n_string + len(row_of))
        row_of.append(body)
    escape_state: dict[tuple, int] = {}
    for kids in dict.fromkeys(node_kids):
        if kids:
            escape_state[kids] = n_string + len(row_of)
            row_of.extend((esc, u[0], u[1], u[2]))
    rows: list[int] = [0]  # the changed transitions: (state, byte) -> target
    cols: list[int] = [_QUOTE]
    targets: list[int] = [node_state[node_cls[0]]]
    u4_of: dict[tuple, int] = {}
    for c, kids in enumerate(node_kids):
        s = node_state[c]
        if node_final[c]:
            rows.append(s), cols.append(_QUOTE), targets.append(-1)  # exactly a name
        if not kids:
            continue
        e = escape_state[kids]
        rows.append(s), cols.append(_BACKSLASH), targets.append(e)
        for ch, child in kids:
            if _raw(ch):
                rows.append(s), cols.append(ch), targets.append(node_state[child])
    for kids, e in escape_state.items():
        u1, u2, u3 = e + 1, e + 2, e + 3
        rows += (e, u1, u2)
        cols += (_U, _ZERO, _ZERO)
        targets += (u1, u2, u3)
        by_high: dict[int, list[tuple[int, int]]] = {}
        for ch, child in kids:
            letter = _LETTER.get(ch)
            if letter is not None:
                rows.append(e), cols.append(letter), targets.append(node_state[child])
            by_high.setdefault(ch >> 4, []).append((ch & 0xF, child))
        for h, low in by_high.items():
            key = (int(t[u[2], 0x30 + h]), tuple(low))
            u4 = u4_of.get(key)
            if u4 is None:
                u4 = u4_of[key] = n_string + len(row_of)
                row_of.append(key[0])
                for lo, child in low:
                    for digit in _DIGITS[lo]:
                        rows.append(u4), cols.append(digit), targets.append(node_state[child])
            rows.append(u3), cols.append(0x30 + h), targets.append(u4)

    # over byte classes: the string DFA's, with every byte changed above a class of its own
    part = string._byte_partition()
    changed = np.unique(np.array(cols, dtype=np.int64))
    key = part.astype(np.int64)
    key[changed] = int(key.max()) + 1 + np.arange(changed.shape[0])
    _, first, byte_cls = np.unique(key, return_index=True, return_inverse=True)
    byte_cls = byte_cls.reshape(-1)
    base = np.take(t, first, axis=1)
    table = np.take(base, np.concatenate((np.arange(n_string), np.array(row_of, dtype=np.int64))), axis=0)
    table[np.array(rows, dtype=np.int64), byte_cls[np.array(cols, dtype=np.int64)]] = targets
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
