"""Code point sets as sorted range tuples, Unicode class tables, case folding, and the
byte-level encodings of a set (UTF-8, or the body of a JSON string).

A set is a tuple of disjoint, non-adjacent ``(lo, hi)`` pairs in increasing order.
Surrogates (U+D800..U+DFFF) never appear in encodings: they are not valid UTF-8.
"""

from __future__ import annotations

import bisect
from functools import lru_cache

from .. import _caches

MAX_CP = 0x10FFFF
SURROGATES = ((0xD800, 0xDFFF),)
FULL = ((0, MAX_CP),)

Ranges = tuple  # tuple[tuple[int, int], ...]


def normalize(pairs) -> Ranges:
    """Sort and merge overlapping or adjacent ranges."""
    out: list[list[int]] = []
    for lo, hi in sorted(pairs):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def complement(r: Ranges) -> Ranges:
    out = []
    prev = 0
    for lo, hi in r:
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_CP:
        out.append((prev, MAX_CP))
    return tuple(out)


def subtract(a: Ranges, b: Ranges) -> Ranges:
    return intersect(a, complement(b))


def intersect(a: Ranges, b: Ranges) -> Ranges:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def contains(r: Ranges, c: int) -> bool:
    i = bisect.bisect_right(r, (c, MAX_CP + 1)) - 1
    return i >= 0 and r[i][0] <= c <= r[i][1]


def _runs(pred, lo: int, hi: int) -> list:
    out = []
    start = None
    for c in range(lo, hi + 1):
        if pred(chr(c)):
            if start is None:
                start = c
        elif start is not None:
            out.append((start, c - 1))
            start = None
    if start is not None:
        out.append((start, hi))
    return out


# Planes 4..13 are unassigned and 15..16 are private use: no letters, digits or spaces
# there, so the scans skip them (tests check this against a full scan).
_SCAN = ((0, 0x3FFFF), (0xE0000, 0xE0FFF))


@lru_cache(maxsize=None)
def unicode_class(name: str) -> Ranges:
    """Python ``re`` Unicode classes: 'd' (str.isdecimal), 'w' (isalnum or '_'), 's' (isspace)."""
    if name == "d":
        pred = str.isdecimal
    elif name == "w":
        pred = lambda ch: ch.isalnum() or ch == "_"  # noqa: E731
    elif name == "s":
        pred = str.isspace
    else:
        raise KeyError(name)
    pairs = []
    for lo, hi in _SCAN:
        pairs.extend(_runs(pred, lo, hi))
    return normalize(pairs)


ASCII_CLASSES = {
    "d": ((0x30, 0x39),),
    "w": normalize([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]),
    "s": normalize([(0x09, 0x0D), (0x20, 0x20)]),
}

# ECMA-262 WhiteSpace + LineTerminator (what \s means in a JSON Schema pattern).
ECMA_SPACE = normalize([(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                        (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
                        (0xFEFF, 0xFEFF)])


# ----------------------------------------------------------------------------- case folding


def _simple_lower(ch: str) -> str:
    low = ch.lower()
    return low[0] if low else ch


@lru_cache(maxsize=1)
def _case_classes() -> tuple[tuple[int, ...], dict[int, int]]:
    """Case-equivalence classes as Python's ``re`` IGNORECASE sees them.

    Two characters match each other when they share a simple lowercase, or when their
    uppercases coincide (re's extra equivalences such as 's'/'ſ', 'i'/'ı', 'µ'/'μ').
    Returns (sorted members of non-trivial classes, member -> class id).
    """
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def join(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    multi_upper: dict[str, int] = {}
    for c in range(0x20000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        low = _simple_lower(ch)
        if low != ch:
            join(c, ord(low))
        up = ch.upper()
        if len(up) == 1:
            if up != ch:
                join(c, ord(up))
        else:
            # same full uppercase ('ΐ' and 'ΐ', 'ﬅ' and 'ﬆ'): re treats them as equal
            first = multi_upper.setdefault(up, c)
            if first != c:
                join(first, c)
    members = sorted(set(parent) | {find(x) for x in parent})
    cid = {m: find(m) for m in members}
    return tuple(members), cid


@lru_cache(maxsize=4096)
def fold(r: Ranges, ascii_only: bool = False) -> Ranges:
    """Close ``r`` under case equivalence (ASCII letters only when ``ascii_only``)."""
    extra = []
    if ascii_only:
        for lo, hi in intersect(r, ((0x41, 0x5A), (0x61, 0x7A))):
            extra.append((lo ^ 0x20, hi ^ 0x20))
        return normalize(list(r) + extra)
    members, cid = _case_classes()
    groups: dict[int, list[int]] = {}
    for m in members:
        groups.setdefault(cid[m], []).append(m)
    hit = set()
    for lo, hi in r:
        i = bisect.bisect_left(members, lo)
        while i < len(members) and members[i] <= hi:
            hit.add(cid[members[i]])
            i += 1
    for g in hit:
        extra.extend((m, m) for m in groups[g])
    return normalize(list(r) + extra) if extra else r


# ----------------------------------------------------------------------------- encodings
#
# An encoding of a set is an acyclic byte graph: node 0 is the exit, the root is returned
# by the builder, and every node is a list of (byte_lo, byte_hi, target) edges.  Nodes are
# hash-consed, so equal sub-languages share one node.


class ByteGraph:
    __slots__ = ("nodes", "_memo")

    def __init__(self) -> None:
        self.nodes: list[tuple] = [()]  # node 0: exit
        self._memo: dict = {}

    def node(self, edges) -> int:
        edges = _merge_edges(edges)
        key = tuple(edges)
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = len(self.nodes)
            self.nodes.append(key)
        return got


def _merge_edges(edges) -> list:
    out: list[list[int]] = []
    for lo, hi, t in sorted(edges):
        if out and out[-1][2] == t and out[-1][1] + 1 == lo:
            out[-1][1] = hi
        else:
            out.append([lo, hi, t])
    return [tuple(e) for e in out]


def _split(items, shift: int) -> list:
    """Group labelled ranges ``(lo, hi, label)`` by ``value >> shift``.

    Returns ``(top_lo, top_hi, sub_items)`` with sub-values masked to ``shift`` bits; runs of
    full tops are returned as one entry.
    """
    mask = (1 << shift) - 1
    out: list = []
    for lo, hi, lab in items:
        tl, th = lo >> shift, hi >> shift
        if tl == th:
            part = (lo & mask, hi & mask, lab)
            if out and out[-1][0] == out[-1][1] == tl:
                out[-1][2].append(part)
            else:
                out.append((tl, tl, [part]))
            continue
        if out and out[-1][0] == out[-1][1] == tl:
            out[-1][2].append((lo & mask, mask, lab))
        else:
            out.append((tl, tl, [(lo & mask, mask, lab)]))
        if th - tl > 1:
            out.append((tl + 1, th - 1, [(0, mask, lab)]))
        out.append((th, th, [(0, hi & mask, lab)]))
    return [(a, b, tuple(c)) for a, b, c in out]


_UTF8_BLOCKS = ((1, 0, 0x7F, 0x00), (2, 0x80, 0x7FF, 0xC0), (3, 0x800, 0xFFFF, 0xE0), (4, 0x10000, MAX_CP, 0xF0))


def _utf8_cont(g: ByteGraph, items, m: int, memo: dict) -> int:
    """Node for ``m`` continuation bytes encoding the labelled values in ``items``."""
    if m == 0:
        return items[0][2]
    key = (items, m)
    got = memo.get(key)
    if got is None:
        edges = []
        for tl, th, sub in _split(items, 6 * (m - 1)):
            edges.append((0x80 | tl, 0x80 | th, _utf8_cont(g, sub, m - 1, memo)))
        got = memo[key] = g.node(edges)
    return got


def _utf8_edges(g: ByteGraph, r: Ranges, target: int, memo: dict) -> list:
    edges = []
    r = subtract(r, SURROGATES)
    for nbytes, blo, bhi, lead in _UTF8_BLOCKS:
        sub = intersect(r, ((blo, bhi),))
        if not sub:
            continue
        shift = 6 * (nbytes - 1)
        items = tuple((lo, hi, target) for lo, hi in sub)
        for tl, th, rest in _split(items, shift):
            edges.append((lead | tl, lead | th, _utf8_cont(g, rest, nbytes - 1, memo)))
    return edges


def _hex_edges(v_lo: int, v_hi: int, target: int) -> list:
    """Byte edges for hex digits with values v_lo..v_hi, either case."""
    out = []
    a, b = max(v_lo, 0), min(v_hi, 9)
    if a <= b:
        out.append((0x30 + a, 0x30 + b, target))
    a, b = max(v_lo, 10), min(v_hi, 15)
    if a <= b:
        out.append((0x41 + a - 10, 0x41 + b - 10, target))
        out.append((0x61 + a - 10, 0x61 + b - 10, target))
    return out


def _hex_node(g: ByteGraph, items, k: int, memo: dict) -> int:
    """Node for ``k`` hex digits spelling the labelled 4k-bit values in ``items``."""
    if k == 0:
        return items[0][2]
    key = ("hex", items, k)
    got = memo.get(key)
    if got is None:
        edges = []
        for tl, th, sub in _split(items, 4 * (k - 1)):
            edges.extend(_hex_edges(tl, th, _hex_node(g, sub, k - 1, memo)))
        got = memo[key] = g.node(edges)
    return got


_JSON_SHORT = {0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x08: 0x62, 0x0C: 0x66, 0x0A: 0x6E, 0x0D: 0x72, 0x09: 0x74}
_JSON_RAW_EXCLUDED = ((0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C))


def _json_edges(g: ByteGraph, r: Ranges, memo: dict) -> list:
    r = subtract(r, SURROGATES)
    edges = _utf8_edges(g, subtract(r, _JSON_RAW_EXCLUDED), 0, memo)
    esc = []
    for cp, letter in _JSON_SHORT.items():
        if contains(r, cp):
            esc.append((letter, letter, 0))
    items = [(lo, hi, 0) for lo, hi in intersect(r, ((0, 0xFFFF),))]
    astral = intersect(r, ((0x10000, MAX_CP),))
    if astral:
        shifted = tuple((lo - 0x10000, hi - 0x10000, 0) for lo, hi in astral)
        for tl, th, low in _split(shifted, 10):
            low_items = tuple((0xDC00 + a, 0xDC00 + b, lab) for a, b, lab in low)
            low_hex = _hex_node(g, low_items, 4, memo)
            u = g.node([(0x75, 0x75, low_hex)])
            backslash = g.node([(0x5C, 0x5C, u)])
            items.append((0xD800 + tl, 0xD800 + th, backslash))
    if items:
        items.sort()
        esc.append((0x75, 0x75, _hex_node(g, tuple(items), 4, memo)))
    if esc:
        edges.append((0x5C, 0x5C, g.node(esc)))
    return edges


@lru_cache(maxsize=2048)
def encode(r: Ranges, json_string: bool = False) -> tuple:
    """Acyclic byte graph of the encodings of the characters in ``r``.

    Returns ``(nodes, root)``: ``nodes[i]`` is a tuple of ``(lo, hi, target)`` edges, node 0
    is the exit.  UTF-8 by default; with ``json_string``, every way JSON can write each
    character inside a string literal (raw, short escapes, ``\\uXXXX`` and surrogate pairs).
    """
    g = ByteGraph()
    memo: dict = {}
    edges = _json_edges(g, r, memo) if json_string else _utf8_edges(g, r, 0, memo)
    root = g.node(edges)
    return tuple(g.nodes), root


# ----------------------------------------------------------------------------- Unicode properties
#
# ECMA-262's \p{...} with the u flag: General_Category values, Script and
# Script_Extensions values, and the binary properties of ECMA-262's table, named exactly
# as ECMA-262 names them (long or short). The code points come from the ``regex``
# package's Unicode data, one scan of every code point per property, cached.

_GC_NAMES = {
    "C": ("C", "Other"), "Cc": ("Cc", "Control", "cntrl"), "Cf": ("Cf", "Format"),
    "Cn": ("Cn", "Unassigned"), "Co": ("Co", "Private_Use"), "Cs": ("Cs", "Surrogate"),
    "L": ("L", "Letter"), "LC": ("LC", "Cased_Letter"), "Ll": ("Ll", "Lowercase_Letter"),
    "Lm": ("Lm", "Modifier_Letter"), "Lo": ("Lo", "Other_Letter"), "Lt": ("Lt", "Titlecase_Letter"),
    "Lu": ("Lu", "Uppercase_Letter"), "M": ("M", "Mark", "Combining_Mark"), "Mc": ("Mc", "Spacing_Mark"),
    "Me": ("Me", "Enclosing_Mark"), "Mn": ("Mn", "Nonspacing_Mark"), "N": ("N", "Number"),
    "Nd": ("Nd", "Decimal_Number", "digit"), "Nl": ("Nl", "Letter_Number"), "No": ("No", "Other_Number"),
    "P": ("P", "Punctuation", "punct"), "Pc": ("Pc", "Connector_Punctuation"),
    "Pd": ("Pd", "Dash_Punctuation"), "Pe": ("Pe", "Close_Punctuation"), "Pf": ("Pf", "Final_Punctuation"),
    "Pi": ("Pi", "Initial_Punctuation"), "Po": ("Po", "Other_Punctuation"), "Ps": ("Ps", "Open_Punctuation"),
    "S": ("S", "Symbol"), "Sc": ("Sc", "Currency_Symbol"), "Sk": ("Sk", "Modifier_Symbol"),
    "Sm": ("Sm", "Math_Symbol"), "So": ("So", "Other_Symbol"), "Z": ("Z", "Separator"),
    "Zl": ("Zl", "Line_Separator"), "Zp": ("Zp", "Paragraph_Separator"), "Zs": ("Zs", "Space_Separator"),
}
_GC = {alias: code for code, aliases in _GC_NAMES.items() for alias in aliases}

# ECMA-262's binary properties: short name -> long name (as the regex package spells it).
_BINARY_NAMES = {
    "ASCII": "ASCII", "AHex": "ASCII_Hex_Digit", "Alpha": "Alphabetic", "Any": "Any", "Assigned": "Assigned",
    "Bidi_C": "Bidi_Control", "Bidi_M": "Bidi_Mirrored", "CI": "Case_Ignorable", "Cased": "Cased",
    "CWCF": "Changes_When_Casefolded", "CWCM": "Changes_When_Casemapped", "CWL": "Changes_When_Lowercased",
    "CWKCF": "Changes_When_NFKC_Casefolded", "CWT": "Changes_When_Titlecased", "CWU": "Changes_When_Uppercased",
    "Dash": "Dash", "DI": "Default_Ignorable_Code_Point", "Dep": "Deprecated", "Dia": "Diacritic",
    "Emoji": "Emoji", "EComp": "Emoji_Component", "EMod": "Emoji_Modifier", "EBase": "Emoji_Modifier_Base",
    "EPres": "Emoji_Presentation", "ExtPict": "Extended_Pictographic", "Ext": "Extender",
    "Gr_Base": "Grapheme_Base", "Gr_Ext": "Grapheme_Extend", "Hex": "Hex_Digit", "IDSB": "IDS_Binary_Operator",
    "IDST": "IDS_Trinary_Operator", "IDC": "ID_Continue", "IDS": "ID_Start", "Ideo": "Ideographic",
    "Join_C": "Join_Control", "LOE": "Logical_Order_Exception", "Lower": "Lowercase", "Math": "Math",
    "NChar": "Noncharacter_Code_Point", "Pat_Syn": "Pattern_Syntax", "Pat_WS": "Pattern_White_Space",
    "QMark": "Quotation_Mark", "Radical": "Radical", "RI": "Regional_Indicator", "STerm": "Sentence_Terminal",
    "SD": "Soft_Dotted", "Term": "Terminal_Punctuation", "UIdeo": "Unified_Ideograph", "Upper": "Uppercase",
    "VS": "Variation_Selector", "space": "White_Space", "XIDC": "XID_Continue", "XIDS": "XID_Start",
}
_BINARY = {**_BINARY_NAMES, **{long: long for long in _BINARY_NAMES.values()}}
_NON_BINARY = {"General_Category": "gc", "gc": "gc", "Script": "Script", "sc": "Script",
               "Script_Extensions": "Script_Extensions", "scx": "Script_Extensions"}
# Script names as PropertyValueAliases.txt writes them: a capital, then letters, digits
# and underscores (the regex package then matches them regardless of case).
_VALUE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


_PROPERTIES = _caches.cache("automata.unicode_properties", 256,
                            "code point ranges of Unicode properties (\\p{...}): a scan of every code "
                            "point each (10-40 ms); patterns name few", spec_free=True)


def _scan(query: str) -> Ranges:
    """The code points the ``regex`` package's ``\\p{query}`` matches, as ranges."""
    try:
        import regex
    except ImportError:
        raise ValueError("Unicode property escapes need the 'regex' package (pip install regex)") from None
    import numpy as np

    every = np.arange(MAX_CP + 1, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    try:
        rx = regex.compile(r"\p{%s}+" % query)
    except regex.error:
        return None  # type: ignore[return-value]
    return tuple((m.start(), m.end() - 1) for m in rx.finditer(every))


def unicode_property(spec: str) -> Ranges:
    """The code points of ``\\p{spec}`` in an ECMA-262 pattern with the ``u`` flag:
    ``L``, ``Letter``, ``General_Category=Letter``, ``gc=Lu``, ``Script=Greek``, ``sc=Grek``,
    ``scx=Grek``, or a binary property (``Alphabetic``, ``White_Space``, ``Any``, ...).

    Raises ValueError naming the property when ECMA-262 does not know it or its data is
    not available (``Changes_When_NFKC_Casefolded``)."""
    name, eq, value = spec.partition("=")
    if eq:
        prop = _NON_BINARY.get(name)
        if prop is None:
            raise ValueError(f"unknown Unicode property {name!r} (a value needs General_Category, gc, "
                             "Script, sc, Script_Extensions or scx)")
        if prop == "gc":
            code = _GC.get(value)
            if code is None:
                raise ValueError(f"unknown General_Category value {value!r}")
            key = ("gc", code)
        else:
            if not value or not value[0].isupper() or not set(value) <= _VALUE_CHARS:
                raise ValueError(f"unknown {prop} value {value!r}")
            key = (prop, value)
    elif spec in _GC:
        key = ("gc", _GC[spec])
    elif spec in _BINARY:
        key = ("binary", _BINARY[spec])
    else:
        raise ValueError(f"unknown Unicode property {spec!r} (ECMA-262 names a General_Category value, "
                         "a binary property, or Script=/Script_Extensions= with a script)")
    got = _PROPERTIES.get(key)
    if got is None:
        got = _PROPERTIES.setdefault(key, _property_ranges(*key))
    return got


def _property_ranges(kind: str, value: str) -> Ranges:
    if kind == "binary":
        if value == "Any":
            return FULL
        if value == "ASCII":
            return ((0, 0x7F),)
        if value == "Assigned":
            return complement(_property_ranges("gc", "Cn"))
        if value == "Changes_When_NFKC_Casefolded":
            raise ValueError(f"Unicode property {value!r} is not available (no data for it)")
        got = _scan(value + "=Yes")
    elif kind == "gc":
        got = _scan("General_Category=" + value)
    else:
        got = _scan(f"{kind}={value}")
    if got is None:
        what = "General_Category" if kind == "gc" else kind
        raise ValueError(f"unknown {what} value {value!r}" if kind != "binary"
                         else f"Unicode property {value!r} is not available")
    return got
