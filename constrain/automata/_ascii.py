"""Thompson NFAs of small ASCII patterns, parsed and built in one numba call.

Most patterns people write (dates, identifiers, numbers, codes) use ASCII characters,
classes (negated or not), ``.``, groups, alternation and counted repeats only. For such a
pattern, parsing to an AST and building the NFA in Python costs several times the
determinization itself; :func:`ascii_nfa` reads the pattern's bytes and lays the NFA out
directly, in the form :func:`._regex_dfa.regex_dfa` takes (the non-ASCII characters that
``.`` and negated classes match are a copy of the general encoder's byte graph). The
minimal DFA is canonical, so it is the same table the general path (:mod:`.parse`,
:mod:`.regex`) gives for the pattern.

It declines (returns ``ok`` False, and the general path compiles the pattern, reporting
any error with its position) on everything else: anchors, ``\\s``, Unicode
``\\d``/``\\w``, escapes other than of one literal character, inline flags and special
groups, possessive quantifiers, malformed input, and NFAs past a few thousand states
(where the general path compiles repeated sub-expressions once).
"""

from __future__ import annotations

import numpy as np
from .._kernels import njit

from .. import _caches
from ._regex_dfa import nfa_table

__all__ = ["ascii_nfa", "ascii_table", "nfa", "wide_templates"]

_MAX_STATES = 4096
_MAX_EDGES = 16384
_MAX_COUNT = 1000  # repeat counts above this are left to the general path

# ASCII codes
_BSL, _LBR, _RBR, _LPA, _RPA = 92, 91, 93, 40, 41
_BAR, _STAR, _PLUS, _QM, _LCB, _RCB = 124, 42, 43, 63, 123, 125
_CARET, _DOLLAR, _DOT, _DASH, _COMMA, _COLON = 94, 36, 46, 45, 44, 58


@njit(cache=True, nogil=True, inline="always")
def _is_alnum(c):
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


@njit(cache=True, nogil=True)
def _escape(pat, i, ecma, in_class, mem):
    """The escape at ``pat[i]`` (the byte after the backslash): -1 when not handled, else
    the code of the one character it stands for, or 256 when it is a class (``\\d``,
    ``\\w`` with ``ecma``), whose members are then added to ``mem``."""
    d = pat[i]
    if d == 110:  # n
        return 10
    if d == 116:  # t
        return 9
    if d == 114:  # r
        return 13
    if d == 102:  # f
        return 12
    if d == 118:  # v
        return 11
    if d == 97:  # a
        return 7
    if d == 98:  # b: backspace in a class, a word boundary outside
        return 8 if in_class else -1
    if ecma and d == 100:  # d
        for c in range(48, 58):
            mem[c] = True
        return 256
    if ecma and d == 119:  # w
        for c in range(48, 58):
            mem[c] = True
        for c in range(65, 91):
            mem[c] = True
        for c in range(97, 123):
            mem[c] = True
        mem[95] = True
        return 256
    if _is_alnum(d) or d >= 128:
        return -1
    return d


@njit(cache=True, nogil=True)
def _class_item(pat, j, ecma, mem):
    """The character (or class: 256, members added to ``mem``) at ``pat[j]`` inside a
    class, and the index after it; -1 when not handled."""
    c = pat[j]
    if c >= 128 or c == _LBR:
        return -1, j
    if c != _BSL:
        return c, j + 1
    if j + 1 >= pat.shape[0]:
        return -1, j
    return _escape(pat, j + 1, ecma, True, mem), j + 2


@njit(cache=True, nogil=True)
def _class(pat, i, ecma, mem):
    """Members (in ``mem``) of the class opening at ``pat[i]`` (``[``), read as Python's
    ``re`` reads it, its ASCII members only when negated: returns (the index after its
    ``]`` or -1 when not handled, whether it is negated)."""
    n = pat.shape[0]
    j = i + 1
    neg = j < n and pat[j] == _CARET
    if neg:
        j += 1
    if j < n and pat[j] == _LBR:
        return -1, neg
    r = _class_body(pat, j, ecma, mem)
    return r, neg


@njit(cache=True, nogil=True)
def _class_body(pat, j, ecma, mem):
    n = pat.shape[0]
    items = 0
    while True:
        if j >= n:
            return -1
        c = pat[j]
        j += 1
        if c == _RBR and items > 0:
            return j
        lo, j = _class_item(pat, j - 1, ecma, mem)
        if lo < 0:
            return -1
        items += 1
        if j < n and pat[j] == _DASH:
            if j + 1 >= n:
                return -1
            if pat[j + 1] == _RBR:
                if lo < 256:
                    mem[lo] = True
                mem[_DASH] = True
                return j + 2
            hi, j = _class_item(pat, j + 1, ecma, mem)
            if lo >= 256 or hi < 0 or hi >= 256 or hi < lo:
                return -1
            for x in range(lo, hi + 1):
                mem[x] = True
        elif lo < 256:
            mem[lo] = True
    return -1


@njit(cache=True, nogil=True)
def _count(pat, j):
    """The decimal number at ``pat[j]``: (value, its digits, index after it); reading
    stops past :data:`_MAX_COUNT`."""
    n = pat.shape[0]
    value = 0
    digits = 0
    while j < n and 48 <= pat[j] <= 57 and value <= _MAX_COUNT:
        value = value * 10 + (pat[j] - 48)
        digits += 1
        j += 1
    return value, digits, j


@njit(cache=True, nogil=True)
def _repeat(pat, i):
    """The quantifier at ``pat[i]``: (lo, hi (-1: none), index after it); lo -1 when not
    handled (a ``{`` that is no quantifier, a count past the limit, two quantifiers)."""
    n = pat.shape[0]
    c = pat[i]
    j = i + 1
    if c == _STAR:
        lo, hi = 0, -1
    elif c == _PLUS:
        lo, hi = 1, -1
    elif c == _QM:
        lo, hi = 0, 1
    else:
        lo, digits, j = _count(pat, j)
        if lo > _MAX_COUNT:
            return -1, 0, j
        if j < n and pat[j] == _COMMA:
            hi, hdigits, j = _count(pat, j + 1)
            if hi > _MAX_COUNT:
                return -1, 0, j
            if hdigits == 0:
                hi = -1
        else:
            if digits == 0:
                return -1, 0, j
            hi = lo
        if j >= n or pat[j] != _RCB:
            return -1, 0, j
        j += 1
        if hi >= 0 and hi < lo:
            return -1, 0, j
    if j < n and pat[j] == _QM:  # lazy: the same language
        j += 1
    if j < n and (pat[j] == _STAR or pat[j] == _PLUS or pat[j] == _QM or pat[j] == _LCB):
        return -1, 0, j
    return lo, hi, j


@njit(cache=True, nogil=True)
def ascii_nfa(pat, ecma, wide_all, wide_ecma):
    """Thompson NFA of the ASCII pattern ``pat`` (uint8): (ok, states, byte-range edges as
    four blocks, epsilon edges as two blocks, accepting state), the start state 0, as
    :func:`._regex_dfa.regex_dfa` takes them. ``ecma``: ``\\d`` and ``\\w`` are ASCII
    classes (else those are left to the general path) and ``.`` excludes ``\\r``,
    U+2028 and U+2029 too. ``ok`` False: not handled here. ``wide_all``, ``wide_ecma``:
    the UTF-8 byte graphs of every non-ASCII character, and of those but U+2028 and U+2029
    (see :func:`wide_templates`), which ``.`` and negated classes take.

    Every fragment's start state has no edge into it from inside the fragment, so a
    repeat may skip a fragment from a fresh state before it; a fragment's states and
    edges are contiguous, so a repeat copies them by offset."""
    L = pat.shape[0]
    e_src = np.empty(_MAX_EDGES, dtype=np.int64)
    e_lo = np.empty(_MAX_EDGES, dtype=np.int64)
    e_hi = np.empty(_MAX_EDGES, dtype=np.int64)
    e_tgt = np.empty(_MAX_EDGES, dtype=np.int64)
    p_src = np.empty(_MAX_EDGES, dtype=np.int64)
    p_dst = np.empty(_MAX_EDGES, dtype=np.int64)
    # items of the open sequences (start, end, and the counts when each began), the
    # finished alternatives of open groups, and the open groups
    it = np.empty((L + 2, 5), dtype=np.int64)
    al = np.empty((L + 2, 2), dtype=np.int64)
    fr = np.empty((L + 2, 5), dtype=np.int64)
    mem = np.zeros(128, dtype=np.bool_)
    fail = (False, 0, e_src[:0], p_src[:0], 0)
    n = 1  # state 0: the start
    ne = 0
    npe = 0
    top = 0
    atop = 0
    depth = 0
    ib = 0  # first item of the current sequence
    ab = 0  # first alternative of the current group
    atom = False
    i = 0
    while True:
        c = pat[i] if i < L else 0
        if i >= L or c == _BAR or c == _RPA:
            # end of a sequence: chain its items
            if top == ib:
                s = n
                e = n
                n += 1
            else:
                if npe + top - ib >= _MAX_EDGES:
                    return fail
                for j in range(ib, top - 1):
                    p_src[npe] = it[j, 1]
                    p_dst[npe] = it[j + 1, 0]
                    npe += 1
                s = it[ib, 0]
                e = it[top - 1, 1]
            top = ib
            al[atop, 0] = s
            al[atop, 1] = e
            atop += 1
            if c == _BAR and i < L:
                i += 1
                atom = False
                continue
            # end of a group (or of the pattern): its alternatives
            if i < L and depth == 0:
                return fail  # unbalanced ")"
            if i >= L and depth > 0:
                return fail  # missing ")"
            if atop - ab == 1:
                s = al[ab, 0]
                e = al[ab, 1]
            else:
                if npe + 2 * (atop - ab) >= _MAX_EDGES or n + 2 >= _MAX_STATES:
                    return fail
                s = n
                e = n + 1
                n += 2
                for k in range(ab, atop):
                    p_src[npe] = s
                    p_dst[npe] = al[k, 0]
                    p_src[npe + 1] = al[k, 1]
                    p_dst[npe + 1] = e
                    npe += 2
            atop = ab
            if i >= L:
                p_src[npe] = 0
                p_dst[npe] = s
                npe += 1
                ed = np.empty(4 * ne, dtype=np.int64)
                ed[:ne] = e_src[:ne]
                ed[ne : 2 * ne] = e_lo[:ne]
                ed[2 * ne : 3 * ne] = e_hi[:ne]
                ed[3 * ne :] = e_tgt[:ne]
                ep = np.empty(2 * npe, dtype=np.int64)
                ep[:npe] = p_src[:npe]
                ep[npe:] = p_dst[:npe]
                return True, n, ed, ep, e
            depth -= 1
            ib = fr[depth, 0]
            ab = fr[depth, 1]
            it[top, 0] = s
            it[top, 1] = e
            it[top, 2] = fr[depth, 2]
            it[top, 3] = fr[depth, 3]
            it[top, 4] = fr[depth, 4]
            top += 1
            i += 1
            atom = True
            continue
        if c >= 128 or c == _CARET or c == _DOLLAR:
            return fail
        if c == _LPA:
            i += 1
            if i < L and pat[i] == _QM:
                if i + 1 < L and pat[i + 1] == _COLON:
                    i += 2
                else:
                    return fail
            fr[depth, 0] = ib
            fr[depth, 1] = ab
            fr[depth, 2] = n
            fr[depth, 3] = ne
            fr[depth, 4] = npe
            depth += 1
            ib = top
            ab = atop
            atom = False
            continue
        if c == _STAR or c == _PLUS or c == _QM or c == _LCB:
            if not atom:
                return fail
            lo, hi, i = _repeat(pat, i)
            if lo < 0:
                return fail
            atom = False
            if lo == 1 and hi == 1:
                continue
            k = top - 1
            s0 = it[k, 0]
            e0 = it[k, 1]
            size_n = n - it[k, 2]
            me = it[k, 3]
            size_e = ne - me
            mp = it[k, 4]
            size_p = npe - mp
            count = lo + 1 if hi < 0 else hi
            if (n + size_n * count + 3 >= _MAX_STATES or ne + size_e * count >= _MAX_EDGES
                    or npe + size_p * count + 2 * count + 3 >= _MAX_EDGES):
                return fail
            # copies 1 .. count-1 of the fragment, each shifted past the last
            first = n - it[k, 2]  # shift of copy 1
            for _ in range(1, count):
                delta = n - it[k, 2]
                for j in range(me, me + size_e):
                    e_src[ne] = e_src[j] + delta
                    e_lo[ne] = e_lo[j]
                    e_hi[ne] = e_hi[j]
                    e_tgt[ne] = e_tgt[j] + delta
                    ne += 1
                for j in range(mp, mp + size_p):
                    p_src[npe] = p_src[j] + delta
                    p_dst[npe] = p_dst[j] + delta
                    npe += 1
                n += size_n
            if count == 0:
                s = n
                e = n
                n += 1
            elif hi < 0:
                s = n
                cur = n
                n += 1
                for q in range(lo):
                    shift = 0 if q == 0 else first + (q - 1) * size_n
                    p_src[npe] = cur
                    p_dst[npe] = s0 + shift
                    npe += 1
                    cur = e0 + shift
                loop = n
                n += 1
                shift = 0 if lo == 0 else first + (lo - 1) * size_n
                p_src[npe] = cur
                p_dst[npe] = loop
                p_src[npe + 1] = loop
                p_dst[npe + 1] = s0 + shift
                p_src[npe + 2] = e0 + shift
                p_dst[npe + 2] = loop
                npe += 3
                e = loop
            else:
                s = n
                e = n + 1
                n += 2
                cur = s
                for q in range(hi):
                    shift = 0 if q == 0 else first + (q - 1) * size_n
                    if q >= lo:
                        p_src[npe] = cur
                        p_dst[npe] = e
                        npe += 1
                    p_src[npe] = cur
                    p_dst[npe] = s0 + shift
                    npe += 1
                    cur = e0 + shift
                p_src[npe] = cur
                p_dst[npe] = e
                npe += 1
            it[k, 0] = s
            it[k, 1] = e
            continue
        # an atom: one character or a class (``wide``: with every non-ASCII character
        # too, 2 in ECMA's "." that excludes U+2028 and U+2029)
        for b in range(128):
            mem[b] = False
        wide = 0
        if c == _DOT:
            for b in range(128):
                mem[b] = b != 10 and not (ecma and b == 13)
            wide = 2 if ecma else 1
            i += 1
        elif c == _BSL:
            if i + 1 >= L:
                return fail
            code = _escape(pat, i + 1, ecma, False, mem)
            if code < 0:
                return fail
            if code < 256:
                mem[code] = True
            i += 2
        elif c == _LBR:
            i, neg = _class(pat, i, ecma, mem)
            if i < 0:
                return fail
            if neg:
                for b in range(128):
                    mem[b] = not mem[b]
                wide = 1
        else:
            mem[c] = True
            i += 1
        tm = wide_ecma if wide == 2 else wide_all
        if n + 2 + tm.shape[0] >= _MAX_STATES or ne + 64 + tm.shape[0] >= _MAX_EDGES:
            return fail
        s = n
        e = n + 1
        n += 2
        it[top, 0] = s
        it[top, 1] = e
        it[top, 2] = s
        it[top, 3] = ne
        it[top, 4] = npe
        top += 1
        b = 0
        while b < 128:
            if mem[b]:
                r = b
                while r + 1 < 128 and mem[r + 1]:
                    r += 1
                e_src[ne] = s
                e_lo[ne] = b
                e_hi[ne] = r
                e_tgt[ne] = e
                ne += 1
                b = r + 1
            else:
                b += 1
        if wide:
            # the non-ASCII characters: a copy of the template's byte graph from s to e
            base = n
            inner = 0
            for q in range(tm.shape[0]):
                inner = max(inner, tm[q, 0] - 1, tm[q, 3] - 1)
            n += inner
            for q in range(tm.shape[0]):
                a = tm[q, 0]
                z = tm[q, 3]
                e_src[ne] = s if a == 1 else (e if a == 0 else base + a - 2)
                e_lo[ne] = tm[q, 1]
                e_hi[ne] = tm[q, 2]
                e_tgt[ne] = s if z == 1 else (e if z == 0 else base + z - 2)
                ne += 1
        atom = True


@njit(cache=True)
def ascii_table(pat, ecma, max_states, deadline, wide_all, wide_ecma):
    """:func:`ascii_nfa` then :func:`._regex_dfa.nfa_table` in one call: (ok, table,
    accepting, byte classes, status); ``ok`` False when the pattern is left to the
    general path (the rest is then empty)."""
    ok, n, ed, ep, final = ascii_nfa(pat, ecma, wide_all, wide_ecma)
    if not ok:
        return False, np.empty((0, 256), dtype=np.int32), np.empty(0, dtype=np.bool_), np.empty(256, dtype=np.int64), 0
    table, acc, byte_cls, status = nfa_table(n, ed, ep, np.empty(0, dtype=np.int64), final, max_states, deadline)
    return True, table, acc, byte_cls, status


_WIDE = _caches.cache("automata.ascii_wide_templates", 1,
                      "the byte graphs of wide_templates, made once", spec_free=True)


def wide_templates() -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 byte graphs of every non-ASCII character, and of those but U+2028 and
    U+2029, as int64 [m, 4] edges (source, low byte, high byte, target) over local nodes:
    0 the exit, 1 the entry, the others inner. Made once per process from the general
    path's encoder, so that both paths spell characters alike."""
    got = _WIDE.get(None)
    if got is None:
        from . import charset as cs

        def graph(ranges):
            nodes, root = cs.encode(ranges, False)
            ids = {0: 0, root: 1}
            for i in range(1, len(nodes)):
                if i not in ids:
                    ids[i] = len(ids)
            rows = [(ids[i], lo, hi, ids[t]) for i, edges in enumerate(nodes) if i for lo, hi, t in edges]
            return np.array(rows, dtype=np.int64).reshape(-1, 4)

        beyond = ((0x80, cs.MAX_CP),)
        got = _WIDE.setdefault(None, (graph(beyond), graph(cs.subtract(beyond, ((0x2028, 0x2029),)))))
    return got


def nfa(pattern: str, ecma: bool = False):
    """:func:`ascii_nfa` of a str pattern (for tests and tools)."""
    return ascii_nfa(np.frombuffer(pattern.encode("ascii"), dtype=np.uint8), ecma, *wide_templates())
