"""Regular expressions (Python ``re`` syntax, regular subset) to minimized byte DFAs.

Pipeline: :mod:`.parse` builds an AST over code point sets; each set becomes a small
acyclic byte graph (UTF-8, or JSON string escapes); a Thompson NFA over byte ranges with
anchor edges is determinized over byte classes and handed to :func:`.dfa.finalize`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import numpy as np

from ..errors import CompileLimitError, RegexError
from . import charset as cs
from .dfa import ByteDFA, concat, difference, finalize, intersect, literal_dfa, union
from .parse import parse

__all__ = ["compile_regex", "compile_terminal", "escape", "RegexError", "CompileLimitError"]

# modes of an NFA state in the subset construction (see _Determinizer)
_NORMAL, _NEWLINE_LEFT, _AT_END = 0, 1, 2


def escape(text: str) -> str:
    """Escape every regex metacharacter of ``text`` (all non-alphanumerics)."""
    return "".join(ch if ch.isalnum() or ch == "_" else "\\" + ch for ch in text)


class _Limits:
    __slots__ = ("pattern", "max_states", "time_limit", "t0", "max_nfa")

    def __init__(self, pattern: str, max_states: int, time_limit: float):
        self.pattern = pattern
        self.max_states = max_states
        self.time_limit = time_limit
        self.t0 = time.perf_counter()
        self.max_nfa = max(4 * max_states, 100_000)

    def check_time(self) -> None:
        if time.perf_counter() - self.t0 > self.time_limit:
            raise CompileLimitError(f"compiling regex {self.pattern!r} exceeded time_limit={self.time_limit}s")


class _NFA:
    """Thompson NFA: byte-range edges, epsilon edges, and anchor assertions."""

    def __init__(self, json_string: bool, limits: _Limits):
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[int, int, int]]] = []
        self.asrt: list[list[tuple[str, int]]] = []
        self.json = json_string
        self.limits = limits

    def new(self) -> int:
        self.eps.append([])
        self.edges.append([])
        self.asrt.append([])
        n = len(self.eps)
        if (n & 0xFFF) == 0:
            if n > self.limits.max_nfa:
                raise CompileLimitError(
                    f"regex {self.limits.pattern!r} needs more than {self.limits.max_nfa} NFA states "
                    f"(max_states={self.limits.max_states})")
            self.limits.check_time()
        return n - 1

    def build(self, node: tuple, s: int) -> int:
        """Add ``node`` starting at state ``s``; return its end state."""
        kind = node[0]
        if kind == "set":
            return self.add_set(node[1], s)
        if kind == "cat":
            for item in node[1]:
                s = self.build(item, s)
            return s
        if kind == "alt":
            end = self.new()
            for branch in node[1]:
                b = self.new()
                self.eps[s].append(b)
                self.eps[self.build(branch, b)].append(end)
            return end
        if kind == "rep":
            _, x, lo, hi = node
            for _ in range(lo):
                s = self.build(x, s)
            if hi is None:
                loop = self.new()
                self.eps[s].append(loop)
                self.eps[self.build(x, loop)].append(loop)
                return loop
            if hi == lo:
                return s
            end = self.new()
            for _ in range(hi - lo):
                self.eps[s].append(end)
                s = self.build(x, s)
            self.eps[s].append(end)
            return end
        end = self.new()
        self.asrt[s].append((kind, end))
        return end

    def add_set(self, r: tuple, s: int) -> int:
        end = self.new()
        if not r:
            return end  # empty class: no way through
        if not self.json and len(r) == 1 and r[0][1] < 0x80:
            self.edges[s].append((r[0][0], r[0][1], end))
            return end
        nodes, root = cs.encode(r, self.json)
        ids = {0: end, root: s}
        for i in range(len(nodes) - 1, 0, -1):
            if i not in ids:
                ids[i] = self.new()
        for i, edges in enumerate(nodes):
            if i == 0:
                continue
            src = ids[i]
            out = self.edges[src]
            for lo, hi, t in edges:
                out.append((lo, hi, ids[t]))
        return end


class _Determinizer:
    """Subset construction over byte classes.

    A subset element is ``state * 3 + mode``: mode _NORMAL, _NEWLINE_LEFT (a Python ``$``
    matched before a final newline, so exactly b"\\n" must remain), or _AT_END (an end
    anchor matched; no input may remain).
    """

    def __init__(self, nfa: _NFA, final: int, limits: _Limits):
        self.nfa = nfa
        self.final = final
        self.limits = limits
        bounds = {0, 256, 0x0A, 0x0B}
        for edges in nfa.edges:
            for lo, hi, _ in edges:
                bounds.add(lo)
                bounds.add(hi + 1)
        cuts = sorted(bounds)
        self.k = len(cuts) - 1
        cls_of = np.empty(256, dtype=np.int64)
        for c in range(self.k):
            cls_of[cuts[c] : cuts[c + 1]] = c
        self.byte_cls = cls_of
        self.nl_class = int(cls_of[0x0A])
        self.cmoves = [[(int(cls_of[lo]), int(cls_of[hi]), t) for lo, hi, t in edges] for edges in nfa.edges]
        self._closure_memo: dict[int, tuple[frozenset, bool]] = {}

    def closure(self, seeds, at_start: bool) -> tuple[frozenset, bool]:
        eps, asrt, edges = self.nfa.eps, self.nfa.asrt, self.nfa.edges
        seen = set(seeds)
        stack = list(seeds)
        while stack:
            x = stack.pop()
            s, m = divmod(x, 3)
            nxt = [t * 3 + m for t in eps[s]]
            for kind, t in asrt[s]:
                if kind == "bol":
                    if at_start:
                        nxt.append(t * 3 + m)
                elif kind == "eoz":
                    if m != _NEWLINE_LEFT:
                        nxt.append(t * 3 + _AT_END)
                else:  # Python '$': at the end, or before a final newline
                    if m == _NORMAL:
                        nxt.append(t * 3 + _AT_END)
                        nxt.append(t * 3 + _NEWLINE_LEFT)
                    else:
                        nxt.append(t * 3 + m)
            for y in nxt:
                if y not in seen:
                    seen.add(y)
                    stack.append(y)
        final = self.final
        accepting = (final * 3 + _NORMAL) in seen or (final * 3 + _AT_END) in seen
        important = frozenset(x for x in seen if x % 3 != _AT_END and edges[x // 3])
        return important, accepting

    def closure1(self, x: int) -> tuple[frozenset, bool]:
        got = self._closure_memo.get(x)
        if got is None:
            got = self._closure_memo[x] = self.closure((x,), False)
        return got

    def run(self) -> ByteDFA:
        k = self.k
        nl = self.nl_class
        cmoves = self.cmoves
        start_set, start_acc = self.closure((0,), True)
        key0 = (start_set, start_acc)
        ids = {key0: 0}
        states = [key0]
        rows: list[list[int]] = []
        by_targets: dict[frozenset, int] = {}
        max_states = self.limits.max_states
        i = 0
        while i < len(states):
            subset, _ = states[i]
            i += 1
            if (i & 127) == 0:
                self.limits.check_time()
            buckets: list = [None] * k
            for x in subset:
                s, m = divmod(x, 3)
                if m == _NORMAL:
                    for clo, chi, t in cmoves[s]:
                        for c in range(clo, chi + 1):
                            b = buckets[c]
                            if b is None:
                                buckets[c] = b = set()
                            b.add(t * 3)
                elif m == _NEWLINE_LEFT:
                    for clo, chi, t in cmoves[s]:
                        if clo <= nl <= chi:
                            b = buckets[nl]
                            if b is None:
                                buckets[nl] = b = set()
                            b.add(t * 3 + _AT_END)
            row = [-1] * k
            for c in range(k):
                b = buckets[c]
                if not b:
                    continue
                fb = frozenset(b)
                d = by_targets.get(fb)
                if d is None:
                    members: set = set()
                    acc = False
                    for x in fb:
                        imp, a = self.closure1(x)
                        members |= imp
                        acc = acc or a
                    key = (frozenset(members), acc)
                    d = ids.get(key)
                    if d is None:
                        if not members and not acc:
                            d = -1
                        else:
                            d = ids[key] = len(states)
                            states.append(key)
                            if len(states) > max_states:
                                raise CompileLimitError(
                                    f"regex {self.limits.pattern!r} needs more than max_states={max_states} DFA states")
                    by_targets[fb] = d
                row[c] = d
            rows.append(row)
        acc = [a for _, a in states]
        self.limits.check_time()
        lim = self.limits
        return finalize(rows, self.byte_cls, acc, 0, deadline=lim.t0 + lim.time_limit,
                        what=f"compiling regex {lim.pattern!r} (time_limit={lim.time_limit}s)")


def _estimate(node: tuple, json_string: bool, cap: int) -> int:
    """Upper bound on the NFA states ``node`` builds (stops counting past ``cap``)."""
    kind = node[0]
    if kind == "set":
        r = node[1]
        if not json_string and len(r) == 1 and r[0][1] < 0x80:
            return 1
        return len(cs.encode(r, json_string)[0])
    if kind in ("cat", "alt"):
        total = 2 * len(node[1])
        for item in node[1]:
            total += _estimate(item, json_string, cap)
            if total > cap:
                break
        return total
    if kind == "rep":
        _, x, lo, hi = node
        copies = max(lo, 1) + 1 if hi is None else max(hi, 1)
        return copies * (_estimate(x, json_string, cap) + 1) + 2
    return 1


def compile_regex(pattern: str, *, ascii: bool = False, ignore_case: bool = False, search: bool = False,
                  json_string: bool = False, max_states: int = 100_000, time_limit: float = 10.0) -> ByteDFA:
    """Compile ``pattern`` (Python ``re`` syntax) to the minimal DFA over bytes of its language.

    Default: the UTF-8 encodings of the strings ``s`` with ``re.fullmatch(pattern, s)``.
    ``search``: strings containing a match (JSON Schema ``pattern``; ``^``/``$`` anchor at
    the ends of the string only). ``ascii``: ECMA-262 classes (``\\d`` = [0-9], ``\\w`` =
    [A-Za-z0-9_], ``\\s`` = ECMA white space and line terminators, ``.`` excludes
    ``\\n \\r \\u2028 \\u2029``, ASCII-only case folding). ``json_string``: the language of
    JSON string bodies (without quotes) that decode to a member.

    Raises RegexError for malformed or non-regular constructs (with the position) and
    CompileLimitError past ``max_states`` DFA states or ``time_limit`` seconds.
    """
    if not isinstance(pattern, str):
        raise RegexError(f"pattern must be str, not {type(pattern).__name__}")
    limits = _Limits(pattern, max_states, time_limit)
    ast = parse(pattern, ascii=ascii, ignore_case=ignore_case, search=search)
    if search:
        anything = ("rep", ("set", cs.FULL), 0, None)
        ast = ("cat", (anything, ast, anything))
    size = _estimate(ast, json_string, limits.max_nfa)
    if size > limits.max_nfa:
        raise CompileLimitError(
            f"regex {pattern!r} needs about {size} NFA states, more than {limits.max_nfa} "
            f"(4 x max_states={max_states})")
    nfa = _NFA(json_string, limits)
    start = nfa.new()
    try:
        final = nfa.build(ast, start)
    except RecursionError:
        raise RegexError("pattern is nested too deeply", pattern, 0) from None
    limits.check_time()
    return _Determinizer(nfa, final, limits).run()


# ----------------------------------------------------------------------------- terminals

_TERMINAL_CACHE: "OrderedDict[Any, ByteDFA]" = OrderedDict()
_TERMINAL_CACHE_SIZE = 4096


def _lit_dfa(text, ignore_case: bool) -> ByteDFA:
    if isinstance(text, str):
        if not ignore_case:
            return literal_dfa(text.encode("utf-8"))
        return compile_regex(escape(text), ignore_case=True)
    data = bytes(text)
    if not ignore_case:
        return literal_dfa(data)
    try:
        return compile_regex(escape(data.decode("utf-8")), ignore_case=True)
    except UnicodeDecodeError:
        # not text: fold ASCII letters byte by byte
        n = len(data) + 1
        t = np.full((n, 256), -1, dtype=np.int64)
        for i, b in enumerate(data):
            t[i, b] = i + 1
            if 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A:
                t[i, b ^ 0x20] = i + 1
        accepting = np.zeros(n, dtype=np.bool_)
        accepting[-1] = True
        return ByteDFA.from_table(t, accepting)


def _terminal_dfa(term) -> ByteDFA:
    from ..grammar.ir import Concat, Difference, Intersect, Lit, Regex, Union_

    if isinstance(term, Lit):
        return _lit_dfa(term.text, term.ignore_case)
    if isinstance(term, Regex):
        return compile_regex(term.source, ascii=term.ascii, ignore_case=term.ignore_case, search=term.search,
                             json_string=term.json_string)
    if isinstance(term, Concat):
        return concat(*[compile_terminal(p) for p in term.parts])
    if isinstance(term, Union_):
        return union(*[compile_terminal(p) for p in term.parts])
    if isinstance(term, Intersect):
        return intersect(*[compile_terminal(p) for p in term.parts])
    if isinstance(term, Difference):
        return difference(compile_terminal(term.left), compile_terminal(term.right))
    raise TypeError(f"not a grammar terminal: {term!r}")


def compile_terminal(term) -> ByteDFA:
    """The minimal byte DFA of a grammar IR terminal; memoized per process (bounded LRU).

    Raises what :func:`compile_regex` raises, and TypeError for a non-terminal.
    """
    got = _TERMINAL_CACHE.get(term)
    if got is not None:
        _TERMINAL_CACHE.move_to_end(term)
        return got
    dfa = _terminal_dfa(term)
    _TERMINAL_CACHE[term] = dfa
    if len(_TERMINAL_CACHE) > _TERMINAL_CACHE_SIZE:
        _TERMINAL_CACHE.popitem(last=False)
    return dfa
