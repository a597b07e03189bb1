"""Regular expressions (Python ``re`` syntax, regular subset) to minimized byte DFAs.

Pipeline: :mod:`.parse` builds an AST over code point sets; each set becomes a small
acyclic byte graph (UTF-8, or JSON string escapes); a Thompson NFA over byte ranges with
anchor edges is determinized over byte classes and minimized in one numba kernel
(:func:`._regex_dfa.regex_dfa`). Big sub-expressions that are repeated, or occur more than
once, are compiled to a minimal DFA first and built as copies of it; the string branches
of a big alternation are built as a trie.
"""

from __future__ import annotations

import re
from itertools import chain

import numpy as np

from .. import _caches
from ..errors import CompileLimitError, RegexError
from ..grammar.ir import Concat, Difference, Intersect, Lit, Union_
from ..grammar.ir import RegexTerm as RegexTerminal
from ..limits import DEFAULT_LIMITS, Limits, limit_error
from . import _ascii
from . import charset as cs
from . import store
from ._byte_classes import edge_ranges
from ._jit import clock
from ._regex_dfa import nfa_table, regex_dfa, trie
from ._json_strings import JSON_STRING_REGEX, json_string_except, json_string_of_length
from .dfa import ByteDFA, concat, difference, empty_dfa, intersect, literal_dfa, literals_dfa, union
from .parse import parse

__all__ = ["compile_regex", "compile_terminal", "escape", "syntax_terminals", "RegexError", "CompileLimitError"]

def escape(text: str) -> str:
    """Escape every regex metacharacter of ``text`` (all non-alphanumerics)."""
    return "".join(ch if ch.isalnum() or ch == "_" else "\\" + ch for ch in text)


class _Limits:
    __slots__ = ("pattern", "max_states", "time_limit", "t0", "max_nfa")

    def __init__(self, pattern: str, max_states: int, time_limit: float):
        self.pattern = pattern
        self.max_states = max_states
        self.time_limit = time_limit
        self.t0 = clock()
        self.max_nfa = max(4 * max_states, 100_000)

    def check_time(self) -> None:
        if clock() - self.t0 > self.time_limit:
            raise self.too_slow(f"compiling regex {self.pattern!r} exceeded time_limit={self.time_limit}s")

    def too_large(self, what: str) -> CompileLimitError:
        return limit_error(what, "max_regex_states", self.max_states)

    def too_slow(self, what: str) -> CompileLimitError:
        return limit_error(what, "max_regex_seconds", self.time_limit)


class _NFA:
    """Thompson NFA: byte-range edges, epsilon edges, and anchor assertions, kept in flat
    append-only lists so that repeated sub-automata can be copied by offsetting.

    The sub-expressions named in ``plan`` (by ``id``) are compiled on their own to a
    minimal DFA, memoized in ``subs`` by their class in the plan (equal sub-expressions
    share one), and built as a copy of that DFA: a big sub-expression that is repeated or
    occurs more than once is determinized once and its copies are as small as its minimal
    DFA. A copy is kept as a record ``(sub, first state, end state)`` in ``dfas`` and only
    laid out as edges, with numpy, when the NFA is handed to the kernel.
    """

    def __init__(self, json_string: bool, limits: _Limits, plan: dict | None = None, subs: dict | None = None):
        self.n = 0
        self.e_src: list[int] = []
        self.e_lo: list[int] = []
        self.e_hi: list[int] = []
        self.e_tgt: list[int] = []
        self.p_src: list[int] = []
        self.p_dst: list[int] = []
        self.asrt: list[tuple[int, str, int]] = []
        self.dfas: list[tuple] = []  # copies of sub-expression DFAs: (sub, first state, end)
        self.set_tmpl: dict = {}  # character set -> template for NFA.copy
        self.json = json_string
        self.limits = limits
        self.plan = plan if plan is not None else {}
        self.subs = subs if subs is not None else {}

    def _check(self) -> None:
        if self.n > self.limits.max_nfa:
            raise self.limits.too_large(
                f"regex {self.limits.pattern!r} needs more than {self.limits.max_nfa} NFA states "
                f"(max_states={self.limits.max_states})")
        self.limits.check_time()

    def new(self) -> int:
        n = self.n
        self.n = n + 1
        if (self.n & 0xFFF) == 0:
            self._check()
        return n

    def eps(self, s: int, t: int) -> None:
        self.p_src.append(s)
        self.p_dst.append(t)

    def copy(self, x: tuple, s: int, tmpl: list) -> int:
        """Build ``x`` from ``s``; the first call records a template in ``tmpl``, later
        calls replay it with shifted state numbers instead of walking ``x`` again."""
        if not tmpl:
            marks = (s, self.n, len(self.e_src), len(self.p_src), len(self.asrt), len(self.dfas))
            end = self.add_set(x[1], s) if x[0] == "set" else self.build(x, s)
            tmpl.extend(marks + (self.n, len(self.e_src), len(self.p_src), len(self.asrt), len(self.dfas), end))
            return end
        s0, n0, e0, p0, a0, d0, n1, e1, p1, a1, d1, end = tmpl
        delta = self.n - n0
        self.n += n1 - n0
        if n1 - n0 > 0xFFF or ((self.n ^ (self.n - (n1 - n0))) >> 12):
            self._check()
        src = self.e_src
        src.extend([s if v == s0 else v + delta for v in src[e0:e1]])
        self.e_lo.extend(self.e_lo[e0:e1])
        self.e_hi.extend(self.e_hi[e0:e1])
        tgt = self.e_tgt
        tgt.extend([s if v == s0 else v + delta for v in tgt[e0:e1]])
        ps = self.p_src
        ps.extend([s if v == s0 else v + delta for v in ps[p0:p1]])
        pd = self.p_dst
        pd.extend([s if v == s0 else v + delta for v in pd[p0:p1]])
        for i in range(a0, a1):
            u, kind, v = self.asrt[i]
            self.asrt.append((s if u == s0 else u + delta, kind, s if v == s0 else v + delta))
        for i in range(d0, d1):
            sub, base, e = self.dfas[i]
            self.dfas.append((sub, base + delta, s if e == s0 else e + delta))
        return s if end == s0 else end + delta

    def build(self, node: tuple, s: int, whole: bool = False) -> int:
        """Add ``node`` starting at state ``s``; return its end state. ``whole``: build
        ``node`` itself even where the plan compiles it on its own."""
        kind = node[0]
        if kind == "set":
            r = node[1]
            if not self.json and r and r[-1][1] < 0x80:
                return self.add_set(r, s)
            tmpl = self.set_tmpl.get(r)
            if tmpl is None:
                tmpl = self.set_tmpl[r] = []
            return self.copy(node, s, tmpl)
        if not whole and id(node) in self.plan:
            sub = self.sub_dfa(node)
            if sub is not None:
                return self.add_dfa(sub, s)
        if kind == "cat":
            json = self.json
            for item in node[1]:
                if item[0] == "set" and not json:
                    r = item[1]
                    if len(r) == 1 and r[0][1] < 0x80:  # one ASCII range: one edge
                        t = self.n
                        self.n = t + 1
                        if (t + 1) & 0xFFF == 0:
                            self._check()
                        self.e_src.append(s)
                        self.e_lo.append(r[0][0])
                        self.e_hi.append(r[0][1])
                        self.e_tgt.append(t)
                        s = t
                        continue
                    if r and r[-1][1] < 0x80:
                        s = self.add_set(r, s)
                        continue
                s = self.build(item, s)
            return s
        if kind == "alt":
            end = self.new()
            branches = node[1]
            if len(branches) >= _TRIE_MIN and not self.json:
                trie, branches = _strings(branches)
                if trie is not None:
                    self.eps(self.add_dfa(trie, s), end)
            p_src, p_dst = self.p_src, self.p_dst
            for branch in branches:
                b = self.new()
                p_src.append(s)
                p_dst.append(b)
                p_src.append(self.build(branch, b))
                p_dst.append(end)
            return end
        if kind == "rep":
            _, x, lo, hi = node
            if x[0] == "set" and not self.json and x[1] and x[1][-1][1] < 0x80:
                return self.rep_ascii(x[1], lo, hi, s)
            tmpl: list = []
            for _ in range(lo):
                s = self.copy(x, s, tmpl)
            if hi is None:
                loop = self.new()
                self.eps(s, loop)
                self.eps(self.copy(x, loop, tmpl), loop)
                return loop
            if hi == lo:
                return s
            end = self.new()
            for _ in range(hi - lo):
                self.eps(s, end)
                s = self.copy(x, s, tmpl)
            self.eps(s, end)
            return end
        end = self.new()
        self.asrt.append((s, kind, end))
        return end

    def rep_ascii(self, r: tuple, lo: int, hi: int | None, s: int) -> int:
        """``[r]{lo,hi}`` for a set of ASCII ranges ``r`` from ``s``, as :meth:`build`
        lays out a repetition, with each copy's edges added directly (no template)."""
        add = self.add_set
        for _ in range(lo):
            s = add(r, s)
        if hi is None:
            loop = self.new()
            self.eps(s, loop)
            self.eps(add(r, loop), loop)
            return loop
        if hi == lo:
            return s
        end = self.new()
        p_src, p_dst = self.p_src, self.p_dst
        for _ in range(hi - lo):
            p_src.append(s)
            p_dst.append(end)
            s = add(r, s)
        p_src.append(s)
        p_dst.append(end)
        return end

    def sub_dfa(self, node: tuple):
        """The minimal DFA of ``node`` as (byte-range edges: sources, low bytes, high
        bytes, targets; accepting states; size), numpy arrays, or None when it has more
        states than ``node``'s NFA (then ``node`` is built as it is)."""
        size, key = self.plan[id(node)]
        got = self.subs.get(key, False)
        if got is not False:
            return got
        sub = _NFA(self.json, self.limits, self.plan, self.subs)
        start = sub.new()
        final = sub.build(node, start, whole=True)
        res = _determinize(sub, final, self.limits, cap=min(size, self.limits.max_states))
        if res is not None:
            off, col, tgt, acc, byte_cls = res
            edges = edge_ranges(off, col, tgt, byte_cls)
            m = edges.shape[0] // 4
            res = (edges[:m], edges[m : 2 * m], edges[2 * m : 3 * m], edges[3 * m :], np.flatnonzero(acc),
                   acc.shape[0])
        self.subs[key] = res
        return res

    def add_dfa(self, sub: tuple, s: int) -> int:
        """A copy of a DFA given by :meth:`sub_dfa`, entered from ``s``; returns its end."""
        size = sub[5]
        base = self.n
        self.n += size
        end = self.new()
        self._check()
        if size:
            self.eps(s, base)
        self.dfas.append((sub, base, end))
        return end

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The byte-range edges (four blocks: sources, low bytes, high bytes, targets) and
        the epsilon edges (two blocks: sources, targets), DFA copies laid out."""
        ne = len(self.e_src)
        npe = len(self.p_src)
        if not self.dfas:
            ed = np.fromiter(chain(self.e_src, self.e_lo, self.e_hi, self.e_tgt), np.int64, 4 * ne)
            ep = np.fromiter(chain(self.p_src, self.p_dst), np.int64, 2 * npe)
            return ed, ep
        m = ne + sum(sub[0].shape[0] for sub, _, _ in self.dfas)
        ed = np.empty(4 * m, dtype=np.int64)
        blocks = [ed[i * m : (i + 1) * m] for i in range(4)]
        for block, lst in zip(blocks, (self.e_src, self.e_lo, self.e_hi, self.e_tgt)):
            block[:ne] = lst
        at = ne
        for sub, base, _ in self.dfas:
            j = at + sub[0].shape[0]
            np.add(sub[0], base, out=blocks[0][at:j])
            blocks[1][at:j] = sub[1]
            blocks[2][at:j] = sub[2]
            np.add(sub[3], base, out=blocks[3][at:j])
            at = j
        # into each copy, and from its accepting states to its end
        q = npe + sum(sub[4].shape[0] for sub, _, _ in self.dfas)
        ep = np.empty(2 * q, dtype=np.int64)
        ep[:npe] = self.p_src
        ep[q : q + npe] = self.p_dst
        at = npe
        for sub, base, end in self.dfas:
            j = at + sub[4].shape[0]
            np.add(sub[4], base, out=ep[at:j])
            ep[q + at : q + j] = end
            at = j
        return ed, ep

    def add_set(self, r: tuple, s: int) -> int:
        end = self.new()
        if not r:
            return end  # empty class: no way through
        if not self.json and r[-1][1] < 0x80:  # ASCII: one byte edge per range
            m = len(r)
            self.e_src.extend([s] * m)
            self.e_lo.extend([lo for lo, _ in r])
            self.e_hi.extend([hi for _, hi in r])
            self.e_tgt.extend([end] * m)
            return end
        nodes, root = cs.encode(r, self.json)
        ids = {0: end, root: s}
        for i in range(len(nodes) - 1, 0, -1):
            if i not in ids:
                ids[i] = self.new()
        e_src, e_lo, e_hi, e_tgt = self.e_src, self.e_lo, self.e_hi, self.e_tgt
        for i, edges in enumerate(nodes):
            if i == 0:
                continue
            src = ids[i]
            for lo, hi, t in edges:
                e_src.append(src)
                e_lo.append(lo)
                e_hi.append(hi)
                e_tgt.append(ids[t])
        return end


def _strings(branches: tuple) -> tuple:
    """The alternatives among ``branches`` that are strings of ASCII characters as a trie
    (a DFA as :meth:`_NFA.sub_dfa` gives it, None when there are none), and the others."""
    seqs = [b[1] if b[0] == "cat" else (b,) for b in branches]
    flat = list(chain.from_iterable(seqs))
    code = {}
    for item in dict.fromkeys(flat):  # the distinct nodes: parse shares a character's node
        r = item[1] if item[0] == "set" else None
        code[item] = r[0][0] if r and len(r) == 1 and r[0][0] == r[0][1] < 0x80 else 256
    codes = np.fromiter(map(code.__getitem__, flat), np.int64, len(flat))
    lens = np.fromiter(map(len, seqs), np.int64, len(seqs))
    edges, accepting, size, taken = trie(codes, lens)
    rest = tuple(b for b, t in zip(branches, taken.tolist()) if not t)
    if len(rest) == len(branches):
        return None, branches
    m = edges.shape[0] // 4
    return (edges[:m], edges[m : 2 * m], edges[2 * m : 3 * m], edges[3 * m :], accepting, size), rest


_ANCHOR_KIND = {"bol": 0, "eol": 1, "eoz": 2}


def _kernel_inputs(nfa: _NFA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The byte-range edges, epsilon edges and anchors of ``nfa`` as the kernels take them."""
    ed, ep = nfa.arrays()
    a = nfa.asrt
    if a:
        asr = np.array([u for u, _, _ in a] + [_ANCHOR_KIND[k] for _, k, _ in a] + [v for _, _, v in a],
                       dtype=np.int64)
    else:
        asr = _NO_ANCHORS
    return ed, ep, asr


_NO_ANCHORS = np.zeros(0, dtype=np.int64)  # empty: nothing for a kernel to write


def _check_status(status: int, limits: _Limits, max_states: int, cap: int | None) -> bool:
    """False when a determinization with ``cap`` ran past it; raises CompileLimitError
    past ``max_states`` (without ``cap``) or the time limit."""
    if status == 1:
        if cap is not None:
            return False
        raise limits.too_large(f"regex {limits.pattern!r} needs more than max_states={max_states} DFA states")
    if status == 2:
        limits.check_time()
    if status == 3 or clock() > limits.t0 + limits.time_limit:
        raise limits.too_slow(f"compiling regex {limits.pattern!r} (time_limit={limits.time_limit}s): "
                              "exceeded the time limit while minimizing")
    return True


def _determinize(nfa: _NFA, final: int, limits: _Limits, cap: int | None = None):
    """(edge offsets, classes and targets, accepting, byte class of each byte) of the
    minimal DFA of ``nfa`` (see :func:`._regex_dfa.regex_dfa`). Past ``max_states`` subset
    states: None when ``cap`` replaces the limit, else CompileLimitError."""
    ed, ep, asr = _kernel_inputs(nfa)
    limits.check_time()
    max_states = limits.max_states if cap is None else cap
    deadline = limits.t0 + limits.time_limit
    off, col, tgt, acc, byte_cls, status = regex_dfa(nfa.n, ed, ep, asr, final, max_states + 1, deadline)
    if not _check_status(status, limits, max_states, cap):
        return None
    return off, col, tgt, acc, byte_cls


# alternations of at least this many branches build their string branches as a trie
_TRIE_MIN = 8

# NFA states from which a sub-expression that is repeated, or occurs more than once, is
# compiled to a DFA on its own
_SUB_MIN = 1000


def _estimate(node: tuple, json_string: bool, cap: int, big: list | None = None, seen: dict | None = None) -> int:
    """Upper bound on the NFA states ``node`` builds (stops counting past ``cap``).

    With ``big``, appends ``(node, copies)`` for each alternation or concatenation of at
    least _SUB_MIN states (copies 1) and each such repeated sub-expression (its copies).
    ``seen`` holds the big ones counted so far, by kind and length: one equal to one of
    them is not walked again, and its parts are left out of ``big`` (equal sub-expressions
    without anchors are compiled on their own, so their parts are not built)."""
    kind = node[0]
    if kind == "set":
        r = node[1]
        if not json_string and len(r) == 1 and r[0][1] < 0x80:
            return 1
        return len(cs.encode(r, json_string)[0])
    if kind in ("cat", "alt"):
        items = node[1]
        same = None
        if len(items) >= 32 and seen is not None and big is not None:
            same = seen.setdefault((kind, len(items)), [])
            for other, total in same:
                if other == node:  # parse shares characters' nodes: mostly identity checks
                    big.append((node, 1, total))
                    return total
        total = 2 * len(items)
        for item in items:
            if item[0] == "set":  # as above, without a call per character
                r = item[1]
                if not json_string and len(r) == 1 and r[0][1] < 0x80:
                    total += 1
                    continue
                total += len(cs.encode(r, json_string)[0])
            else:
                total += _estimate(item, json_string, cap, big, seen)
            if total > cap:
                break
        if big is not None and total >= _SUB_MIN:
            big.append((node, 1, total))
            if same is not None:
                same.append((node, total))
        return total
    if kind == "rep":
        _, x, lo, hi = node
        copies = max(lo, 1) + 1 if hi is None else max(hi, 1)
        inner = _estimate(x, json_string, cap, big, seen)
        if big is not None and inner >= _SUB_MIN and x[0] != "set":
            built = lo + (1 if hi is None else hi - lo)  # copies the NFA holds
            if built >= 2:
                big.append((x, built, inner))
        return copies * (inner + 1) + 2
    return 1


def _anchored(node: tuple) -> bool:
    kind = node[0]
    if kind == "set":
        return False
    if kind in ("cat", "alt"):
        return any(_anchored(item) for item in node[1])
    if kind == "rep":
        return _anchored(node[1])
    return True


def _plan(big: list, anchors: bool, json_string: bool) -> dict:
    """``id`` -> (estimated NFA states, class) of the sub-expressions to compile on their
    own: those repeated or occurring more than once (by value), without anchors. Equal
    sub-expressions get the same class."""
    if not big:
        return {}
    # equal nodes have the same kind and estimate: compare by value only within those
    # groups (hashing a big tuple walks all of it, every time)
    groups: dict = {}
    found = []
    for node, copies, size in big:
        group = groups.setdefault((node[0], size), [])
        for cls in group:
            if cls[0] is node or cls[0] == node:
                cls[1] += copies
                break
        else:
            cls = [node, copies, len(found)]
            group.append(cls)
        found.append((node, size, cls))
    plan = {}
    for node, size, cls in found:
        if cls[1] >= 2 and not (anchors and _anchored(node)):
            plan[id(node)] = (size, cls[2])
    if not json_string:
        # one-byte-range characters then a planned sub-expression: built as it is, that is
        # a chain of single edges into a copy of the planned DFA, already deterministic,
        # so determinizing it on its own would gain nothing
        for node, _, _ in found:
            if node[0] == "cat" and id(node) in plan and id(node[1][-1]) in plan and all(
                    item[0] == "set" and len(item[1]) == 1 and item[1][0][1] < 0x80 for item in node[1][:-1]):
                del plan[id(node)]
    return plan


def compile_regex(pattern: str, *, ascii: bool = False, ignore_case: bool = False, search: bool = False,
                  json_string: bool = False, max_states: int = DEFAULT_LIMITS.max_regex_states,
                  time_limit: float = DEFAULT_LIMITS.max_regex_seconds) -> ByteDFA:
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
    if not (ignore_case or search or json_string) and pattern.isascii():
        dfa = _compile_ascii(pattern, ascii, limits)
        if dfa is not None:
            return dfa
    ast = parse(pattern, ascii=ascii, ignore_case=ignore_case, search=search)
    if search:
        anything = ("rep", ("set", cs.FULL), 0, None)
        ast = ("cat", (anything, ast, anything))
    return _compile_ast(ast, pattern, json_string, limits, _may_anchor(pattern))


def _may_anchor(source: str) -> bool:
    """False when ``source`` cannot parse to an anchor."""
    return "^" in source or "$" in source or "\\A" in source or "\\Z" in source


def _compile_ast(ast: tuple, pattern: str, json_string: bool, limits: _Limits, anchors: bool = True) -> ByteDFA:
    max_states = limits.max_states
    big: list = []
    size = _estimate(ast, json_string, limits.max_nfa, big, {})
    if size > limits.max_nfa:
        raise limits.too_large(
            f"regex {pattern!r} needs about {size} NFA states, more than {limits.max_nfa} "
            f"(4 x max_states={max_states})")
    nfa = _NFA(json_string, limits, _plan(big, anchors, json_string))
    start = nfa.new()
    try:
        final = nfa.build(ast, start)
    except RecursionError:
        raise RegexError("pattern is nested too deeply", pattern, 0) from None
    limits.check_time()
    # the minimal DFA as a byte table, in one kernel call
    ed, ep, asr = _kernel_inputs(nfa)
    limits.check_time()
    return _table_dfa(limits, *nfa_table(
        nfa.n, ed, ep, asr, final, max_states + 1, limits.t0 + limits.time_limit))


def _compile_ascii(pattern: str, ecma: bool, limits: _Limits) -> ByteDFA | None:
    """The DFA of an ASCII pattern that :func:`._ascii.ascii_nfa` reads (parsed and laid
    out as an NFA in one numba call), else None."""
    ok, *got = _ascii.ascii_table(np.frombuffer(pattern.encode("ascii"), dtype=np.uint8), ecma,
                                  limits.max_states + 1, limits.t0 + limits.time_limit, *_ascii.wide_templates())
    return _table_dfa(limits, *got) if ok else None


def _table_dfa(limits: _Limits, table, acc, byte_cls, status) -> ByteDFA:
    """The ByteDFA of what :func:`._regex_dfa.nfa_table` returned; raises past a limit. Its
    key is computed when first asked for."""
    _check_status(status, limits, limits.max_states, None)
    if acc.shape[0] == 0:
        return empty_dfa()
    d = ByteDFA.of_kernel(table, acc)
    d._cls = byte_cls
    return d


# ----------------------------------------------------------------------------- terminals

_TERMINALS = _caches.cache(
    "automata.terminals", 4096,
    "minimal byte DFA per grammar terminal (and per regex limits, where not the defaults); "
    "thousands of small tables, a few MB in all")


# Terminals of a front end's own syntax (JSON's punctuation with its whitespace, strings,
# numbers): the same for every spec, so their DFAs stay when spec caches are cleared.
_SYNTAX = _caches.cache(
    "automata.syntax_terminals", 256,
    "minimal byte DFA of each terminal a front end declares part of its fixed syntax "
    "(JSON punctuation, strings, numbers); the same for every spec", spec_free=True)
_SYNTAX_TERMS: set = set()
_SYNTAX_MAX = 256
# Content keys (ByteDFA.key) of the DFAs of those terminals built in this process: a
# lexer state made of such DFAs alone depends on no spec (see is_syntax_key).
_SYNTAX_KEYS: set = set()


def syntax_terminals(*terms) -> None:
    """Declare ``terms`` part of a front end's fixed syntax: their DFAs depend on no spec
    and are kept by :func:`constrain.clear_caches` (at most a few hundred are kept)."""
    for term in terms:
        if len(_SYNTAX_TERMS) < _SYNTAX_MAX:
            _SYNTAX_TERMS.add(repr(term))


def is_syntax_key(key: str) -> bool:
    """Whether ``key`` (a :attr:`ByteDFA.key`) is that of a syntax terminal's DFA (see
    :func:`syntax_terminals`) built in this process."""
    return key in _SYNTAX_KEYS


def _lit_dfa(text, ignore_case: bool, limits: Limits) -> ByteDFA:
    if isinstance(text, str):
        if not ignore_case:
            return literal_dfa(text.encode("utf-8"))
        return compile_regex(escape(text), ignore_case=True, **_regex_limits(limits))
    data = bytes(text)
    if not ignore_case:
        return literal_dfa(data)
    try:
        return compile_regex(escape(data.decode("utf-8")), ignore_case=True, **_regex_limits(limits))
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


def _union_dfa(parts: tuple, limits: Limits) -> ByteDFA:
    """Union of terminals; the full-match Regex parts that share their flags are parsed one
    by one and compiled as one alternation (one NFA instead of a DFA each and a wide union)."""
    groups: dict = {}
    rest: list = []
    words: list[bytes] = []
    for p in parts:
        if isinstance(p, RegexTerminal) and not p.search:
            groups.setdefault((p.ascii, p.ignore_case, p.json_string), []).append(p)
        elif isinstance(p, Lit) and not p.ignore_case:
            words.append(p.text.encode("utf-8") if isinstance(p.text, str) else bytes(p.text))
        else:
            rest.append(p)
    dfas = [compile_terminal(p, limits) for p in rest]
    if len(words) == 1:
        dfas.append(literal_dfa(words[0]))
    elif words:
        # (an enum's values: one trie, not a DFA each and a union of them)
        dfas.append(literals_dfa(words, **_regex_limits(limits)))
    for (asc, icase, js), regs in groups.items():
        if len(regs) == 1:
            dfas.append(compile_terminal(regs[0], limits))
            continue
        label = "|".join(r.source for r in regs)
        if len(label) > 200:
            label = label[:200] + "..."
        ast = ("alt", tuple(parse(r.source, ascii=asc, ignore_case=icase, search=False) for r in regs))
        dfas.append(_compile_ast(ast, label, js, _Limits(label, limits.max_regex_states, limits.max_regex_seconds)))
    return union(*dfas, **_regex_limits(limits))


def _regex_limits(limits: Limits) -> dict:
    return {"max_states": limits.max_regex_states, "time_limit": limits.max_regex_seconds}


def _terminal_dfa(term, limits: Limits = DEFAULT_LIMITS) -> ByteDFA:
    if isinstance(term, RegexTerminal):
        return compile_regex(term.source, ascii=term.ascii, ignore_case=term.ignore_case, search=term.search,
                             json_string=term.json_string, **_regex_limits(limits))
    if isinstance(term, Lit):
        return _lit_dfa(term.text, term.ignore_case, limits)
    if isinstance(term, Concat):
        dfa = _quoted_length(term, limits)
        if dfa is not None:
            return dfa
        return concat(*[compile_terminal(p, limits) for p in term.parts], **_regex_limits(limits))
    if isinstance(term, Union_):
        return _union_dfa(term.parts, limits)
    if isinstance(term, Intersect):
        return intersect(*[compile_terminal(p, limits) for p in term.parts], **_regex_limits(limits))
    if isinstance(term, Difference):
        names = _excluded_names(term)
        if names is not None:
            left = compile_terminal(term.left, limits)
            dfa = json_string_except(left, names)
            if dfa is not None and dfa.n_states <= limits.max_regex_states:
                return dfa
        return difference(compile_terminal(term.left, limits), compile_terminal(term.right, limits),
                          **_regex_limits(limits))
    raise TypeError(f"not a grammar terminal: {term!r}")


_LENGTH = re.compile(r"\[\\s\\S\]\{(\d+),(\d+)\}")


def _quoted_length(term: Concat, limits: Limits) -> ByteDFA | None:
    """The DFA of a JSON string of ``m`` to ``n`` characters (``"[\\s\\S]{m,n}"``),
    built layer by layer, or None for another terminal."""
    parts = term.parts
    if not (len(parts) == 3 and all(isinstance(q, Lit) and q.text in ('"', b'"') and not q.ignore_case
                                    for q in (parts[0], parts[2]))):
        return None
    body = parts[1]
    if not (isinstance(body, RegexTerminal) and body.json_string and not body.search and not body.ignore_case):
        return None
    got = _LENGTH.fullmatch(body.source)
    if got is None:
        return None
    m, n = int(got.group(1)), int(got.group(2))
    char = compile_terminal(RegexTerminal("[\\s\\S]", ascii=body.ascii, json_string=True), limits)
    if n * (char.n_states - 1) + 3 > limits.max_regex_states and json_string_of_length(char, 0, 0) is not None:
        # (its minimal DFA has that many states: the general path would say so after
        # building most of them, hundreds of milliseconds)
        raise limit_error(f"a JSON string of at most {n} characters: more than {limits.max_regex_states} DFA "
                          f"states (max_states={limits.max_regex_states})", "max_regex_states",
                          limits.max_regex_states)
    return json_string_of_length(char, m, n)


_ESCAPED = re.compile(r"\\(.)", re.S)


def _name(part) -> str | None:
    """The string a JSON-string regex matches when it is one literal, else None."""
    if not (isinstance(part, RegexTerminal) and part.json_string) or part.search or part.ignore_case:
        return None
    source = part.source
    plain = _ESCAPED.sub(r"\1", source) if "\\" in source else source
    if re.escape(plain) == source:  # (how the front ends write a name: no parse needed)
        return plain
    return _parsed_name(part)


def _parsed_name(part) -> str | None:
    try:
        ast = parse(part.source, ascii=part.ascii, ignore_case=False, search=False)
    except RegexError:
        return None
    items = ast[1] if ast[0] == "cat" else (ast,)
    chars = []
    for item in items:
        if item[0] != "set" or len(item[1]) != 1 or item[1][0][0] != item[1][0][1]:
            return None
        chars.append(chr(item[1][0][0]))
    return "".join(chars)


def _excluded_names(term: Difference) -> list[str] | None:
    """The names of a "JSON string except these names" terminal (the key of an object
    with extra properties, a string with excluded values), or None for another shape."""
    left, right = term.left, term.right
    if not (isinstance(left, RegexTerminal) and left.source == JSON_STRING_REGEX and not left.json_string
            and not left.search and not left.ignore_case and not left.ascii):
        return None
    if not (isinstance(right, Concat) and len(right.parts) == 3
            and all(isinstance(q, Lit) and q.text in ('"', b'"') and not q.ignore_case
                    for q in (right.parts[0], right.parts[2]))):
        return None
    inner = right.parts[1]
    names = []
    for part in inner.parts if isinstance(inner, Union_) else (inner,):
        name = _name(part)
        if name is None:
            return None
        names.append(name)
    return names


def _worth_a_lookup(term) -> bool:
    """Whether the on-disk cache may hold ``term``: not for a literal or a short ASCII
    pattern, which build in microseconds, faster than a lookup that misses."""
    if isinstance(term, Lit):
        return False
    if isinstance(term, RegexTerminal):
        return (term.ignore_case or term.search or term.json_string or len(term.source) > 256
                or not term.source.isascii())
    return True


def compile_terminal(term, limits: Limits = DEFAULT_LIMITS) -> ByteDFA:
    """The minimal byte DFA of a grammar IR terminal, built within ``limits``
    (``max_regex_states``, ``max_regex_seconds``); memoized per process (bounded LRU)
    and on disk (:mod:`constrain.automata.store`), per terminal and limits.

    Raises what :func:`compile_regex` raises, and TypeError for a non-terminal.
    """
    # (a DFA built under other limits might not have been built under these)
    key = term if limits is DEFAULT_LIMITS or (
        limits.max_regex_states == DEFAULT_LIMITS.max_regex_states
        and limits.max_regex_seconds == DEFAULT_LIMITS.max_regex_seconds
    ) else (term, limits.max_regex_states, limits.max_regex_seconds)
    # The memos are keyed by the terminal's text (the IR's dataclass repr: equal exactly
    # where the terminals are), a string the cyclic collector never reads through; the
    # IR objects themselves as keys were thousands of tracked objects, read at every
    # full collection (half of one's time after a few hundred schemas).
    text = repr(key)
    memo = _SYNTAX if text in _SYNTAX_TERMS else _TERMINALS
    got = memo.get(text)
    if got is not None:
        return got
    if _worth_a_lookup(term) and store.enabled():
        dfa = store.load(key)
        if dfa is None:
            t0 = clock()
            dfa = _terminal_dfa(term, limits)
            if store.worth_storing(clock() - t0):
                store.save(key, dfa)
    else:
        dfa = _terminal_dfa(term, limits)
    memo.put(text, dfa)
    if memo is _SYNTAX and len(_SYNTAX_KEYS) < 2 * _SYNTAX_MAX:
        _SYNTAX_KEYS.add(dfa.key)
    return dfa
