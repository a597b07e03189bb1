"""``uniqueItems`` checked while matching, for arrays whose items take too many values to
be compiled into states.

The JSON Schema front door compiles such an array without its uniqueness, its opening
bracket a terminal named with a mark (see
:data:`constrain.frontends.json_schema.arrays.UNIQUE_MARK`). A :class:`UniqueChecker`
follows the JSON text of one sequence (containers, strings, escapes, where each item of an
array begins and ends) as an immutable *track*. When an array opens it asks the parse
whether that bracket was the marked terminal; in such an array, each item, when it ends,
is read as a JSON value and compared with the earlier items by JSON equality (``1``
equals ``1.0``, objects ignore key order, strings compare by code points), and an item
equal to an earlier one is refused. The memoized per-state masks stay as they are: the
check removes from them only the tokens that would end a duplicate item. Where the parse
cannot tell (a text that is, in different branches, an array checked and one not), the
array is checked: tokens may be refused that some branch allowed, none is allowed that no
branch does.

An item is refused where it ends (``true``, ``false`` and ``null`` at their first letter,
which says which), so a prefix of an item may have no completion left that is new: a
number item whose digits fix its value while the grammar lets it go on forever (``0``
then ``.0`` then ``0``... for integers), a string of a fixed-length ``pattern``, an object
``{"id":0`` or ``{"k":"x"`` when only ``}`` may follow and that item was written. Such
a prefix is refused where it is made (:meth:`UniqueChecker._stuck_number`,
:meth:`UniqueChecker._stuck_string`, :meth:`UniqueChecker._stuck_item`, each a bounded
search), and so is a comma after which no new item can be written. Where a search cannot
tell, the prefix is let through; should the masks then run empty,
:meth:`UniqueChecker.filter` says so with a :class:`~constrain.errors.MatcherError`.
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from itertools import product
from bisect import bisect_left
from typing import Any, Callable, Sequence

import numpy as np

from .._caches import LRU, cache
from ..bitmask import ids_from_words
from ..errors import MatcherError
from ..vocabulary import Vocabulary

__all__ = ["UniqueChecker", "Track", "MARK", "START", "feed", "unescape", "budget_slack", "fresh_completion"]

MARK = "\0u"  # the prefix of marked symbol names (the JSON Schema front door's UNIQUE_MARK)
_BRACKET = MARK + "LBRACK"  # a marked bracket, then (JSON) the strings its items are drawn from, if known
PLAIN = ":string"  # ... or this: its items are strings of any content (the front door's PLAIN_STRINGS)

# A track: (frames, mode, text, at). frames: one entry per open container, None for an
# object, (checked, used, start, domain) for an array (checked: whether its items are
# compared; used: the canonical values of its items so far; start: where its current item
# began, -1 between items, _AFTER_COMMA after a comma; domain: the index of the strings its
# items are drawn from, PLAIN_CHECKED for strings of any content, -1 when not known).
# mode: outside strings, in a string, just after a backslash in one.
# at: the offset of the next byte in the whole text; text: the bytes from the start of
# the earliest item still being written of a checked array up to ``at`` (empty when none).
Track = tuple
_OUT, _STR, _STR_ESC = range(3)
_AFTER_COMMA = -2
UNCHECKED, CHECKED = -2, -1  # what marked() says of an array that is not, or is, compared
PLAIN_CHECKED = -3  # ... compared, its items strings of any content (a minLength aside)
Domain = tuple  # (UTF-8 bytes of the values, sorted; the values in the same order)


def _domain(values) -> Domain:
    pairs = sorted((v.encode("utf-8", "surrogatepass"), v) for v in values)
    return tuple(e for e, _ in pairs), tuple(v for _, v in pairs)
START: Track = ((), _OUT, b"", 0)

_QUOTE, _BSLASH = 0x22, 0x5C
_WS = frozenset(b" \t\n\r")
_DELIM = _WS | {0x2C}  # a scalar item ends before one of these, or before ']'
_ENDERS = _DELIM | {_QUOTE, 0x5D, 0x7D}  # bytes at which some item may end
_INDEX = cache("masking.unique_token_index", 8,
               "per vocabulary: the tokens that may end an array item, by kind, for the uniqueItems check",
               spec_free=True)

_NUMBER_LEAD = frozenset(b"-0123456789")
_NUMBER_BYTES = frozenset(b"-+.0123456789eE")
_ITEM_END = frozenset(b",] \t\n\r")
_STUCK_DEPTH, _STUCK_WIDTH = 4, 256  # the search for a new value of a number item begun
_STUCK_ORDER = b"0123456789+-.Ee"  # the number bytes, digits first
_OBJ_TAG, _ARR_TAG, _BOOL_TAG = object(), object(), object()
_NULL = ("null",)
_LITERALS = {0x74: (_BOOL_TAG, True), 0x66: (_BOOL_TAG, False), 0x6E: _NULL}  # t f n


def canonical(text: bytes) -> Any:
    """A hashable value of the JSON text of one item, equal for JSON-equal texts."""
    return _canon(json.loads(text.decode("utf-8", "surrogatepass"), parse_float=_number, parse_int=_number))


_NUM_TAG = object()


def _number(text: str) -> tuple:
    """The value of a JSON number as (tag, sign, significant digits, exponent), exact
    for any length of digits or exponent (``1`` = ``1.0`` = ``10e-1``, ``-0`` = ``0``)."""
    neg = text.startswith("-")
    mant, _, exp = text.lstrip("-").lower().partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    if not digits:
        return _NUM_TAG, 0, "", 0
    sig = digits.rstrip("0")
    return _NUM_TAG, -1 if neg else 1, sig, _int(exp) - len(frac) + len(digits) - len(sig)


@lru_cache(maxsize=4096)
def _number_of(text: bytes) -> tuple:
    """:func:`_number` of ASCII bytes, memoized (the check asks again for each token)."""
    return _number(text.decode("ascii"))


def _int(text: str) -> int:
    """``int(text)`` for a signed decimal integer of any length ('' is 0); Python's own
    refuses more than a few thousand digits."""
    if not text:
        return 0
    sign = -1 if text[0] == "-" else 1
    text = text.lstrip("+-")
    value = 0
    for i in range(0, len(text), 1000):
        chunk = text[i:i + 1000]
        value = value * 10 ** len(chunk) + int(chunk)
    return sign * value


class _Written(tuple):
    """The canonical value of an object or array item, equal to it (and hashing alike),
    that also keeps the text it was first written as (see UniqueChecker._stuck_item)."""
    text: bytes

    def normal(self) -> bytes:
        """:func:`_normal` of the text (made once)."""
        got = self.__dict__.get("_normal")
        if got is None:
            got = self.__dict__["_normal"] = _normal_text(self.text)
        return got


@lru_cache(maxsize=256)
def _normal_text(text: bytes) -> bytes:
    """:func:`_normal` of the whole text of an item, by one regular-expression pass."""
    return _NORMAL_PARTS.sub(_normal_part, text)


# strings (kept as written), numbers (spelt canonically), whitespace (dropped)
_NORMAL_PARTS = re.compile(rb'("(?:[^"\\]|\\.)*")|(-?[0-9][0-9.eE+-]*)|[ \t\n\r]+', re.S)


def _normal_part(m: re.Match) -> bytes:
    if m.group(1) is not None:
        return m.group(1)
    if m.group(2) is not None:
        return _spelt(m.group(2))
    return b""


def _canon(v: Any) -> Any:
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return _OBJ_TAG, frozenset((k, _canon(x)) for k, x in v.items())
    if isinstance(v, list):
        return _ARR_TAG, tuple(_canon(x) for x in v)
    if v is True or v is False:
        return _BOOL_TAG, v
    if v is None:
        return _NULL
    return v  # a number (see _number): equal numbers are equal whatever their spelling


def feed(track: Track, data: bytes, marked: Callable[[int], int], domains: Sequence[Domain] = ()) -> Track | None:
    """The track after ``data``, or None where ``data`` ends an item equal to an earlier
    one of its array, or begins one that no unused value of its array's domain completes.
    ``marked(i)``: for the array opening at byte ``i`` of ``data`` (asked once per array),
    :data:`UNCHECKED`, :data:`CHECKED`, :data:`PLAIN_CHECKED`, or the index in
    ``domains`` of the strings its items are drawn from."""
    frames, mode, text, at = track
    base = at - len(text)  # the offset of text[0] in the whole text
    buf = text + data if text else data
    stack = list(frames)
    for i, b in enumerate(data):
        pos = at + i
        if mode == _STR:
            if b == _BSLASH:
                mode = _STR_ESC
            elif b == _QUOTE:
                mode = _OUT
                top = stack[-1] if stack else None
                if top is not None and top[2] >= 0:  # the string was the array's item
                    if not _end(stack, top, buf, base, pos + 1):
                        return None
            continue
        if mode == _STR_ESC:
            mode = _STR
            continue
        top = stack[-1] if stack else None
        if b in _DELIM:
            if top is not None and top[2] >= 0:  # a number, true, false or null ends
                if not _end(stack, top, buf, base, pos):
                    return None
            if b == 0x2C and top is not None:  # an item must follow
                top = stack[-1]
                stack[-1] = (top[0], top[1], _AFTER_COMMA, top[3])
            continue
        if b == 0x5D or b == 0x7D:  # ] }
            if b == 0x5D and top is not None and top[2] >= 0:
                if not _end(stack, top, buf, base, pos):
                    return None
            if stack:
                stack.pop()
            parent = stack[-1] if stack else None
            if parent is not None and parent[2] >= 0:  # the container was the parent's item
                if not _end(stack, parent, buf, base, pos + 1):
                    return None
            continue
        if top is not None and top[2] < 0:  # an item of the enclosing array begins
            if top[0] and b in _LITERALS and _LITERALS[b] in top[1]:
                return None  # true, false or null again: its first letter says which
            stack[-1] = (top[0], top[1], pos, top[3])
        if b == _QUOTE:
            mode = _STR
        elif b == 0x5B:  # [
            how = marked(i)
            stack.append((how != UNCHECKED, frozenset(), -1, how if how >= 0 or how == PLAIN_CHECKED else -1))
        elif b == 0x7B:  # {
            stack.append(None)
    top = stack[-1] if stack else None
    if top is not None and top[3] >= 0:
        # an array of strings from a known set: the item begun must have an unused completion
        used = top[1]
        if top[2] == _AFTER_COMMA:
            if not _unused_with(domains[top[3]], b"", used):
                return None
        elif mode != _OUT and top[2] >= 0:
            raw = buf[top[2] - base + 1:]
            if not _pending(raw) and not _unused_with(domains[top[3]], unescape(raw), used):  # type: ignore[arg-type]
                return None
    at += len(data)
    # keep the text from the earliest item still being written in a checked array
    first = min((f[2] for f in stack if f is not None and f[0] and f[2] >= 0), default=-1)
    if first < 0:
        return tuple(stack), mode, b"", at
    return tuple(stack), mode, buf[first - base:], at


def _unused_with(domain: Domain, head: bytes, used: frozenset) -> bool:
    """Whether a value of ``domain`` not in ``used`` begins with ``head``."""
    encoded, values = domain
    i = bisect_left(encoded, head)
    while i < len(encoded) and encoded[i].startswith(head):
        if values[i] not in used:
            return True
        i += 1
    return False


def _end(stack: list, frame: tuple, text: bytes, base: int, end: int) -> bool:
    """The current item of ``frame`` (the top of ``stack``) ends before offset ``end``:
    False when it equals an earlier item of a checked array, else True (the frame updated)."""
    checked, used, start, domain = frame
    if checked:
        raw = text[start - base:end - base]
        value = canonical(raw)
        if value in used:
            return False
        if type(value) is tuple and (value[0] is _OBJ_TAG or value[0] is _ARR_TAG):
            value = _Written(value)
            value.text = raw
        used = used | {value}
    stack[-1] = (checked, used, -1, domain)
    return True


def unescape(raw: bytes) -> bytes | None:
    """The UTF-8 bytes of the JSON string contents ``raw`` (lone surrogates kept, as
    'surrogatepass' writes them); None when ``raw`` ends inside an escape."""
    if _BSLASH not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b != _BSLASH:
            out.append(b)
            i += 1
            continue
        if i + 1 >= n:
            return None
        e = raw[i + 1]
        if e != 0x75:  # u
            out += _SIMPLE.get(e, bytes([e]))
            i += 2
            continue
        if i + 6 > n:
            return None
        cp = int(raw[i + 2:i + 6], 16)
        i += 6
        if 0xD800 <= cp < 0xDC00 and i + 6 <= n and raw[i] == _BSLASH and raw[i + 1] == 0x75:
            lo = int(raw[i + 2:i + 6], 16)
            if 0xDC00 <= lo < 0xE000:
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                i += 6
        out += chr(cp).encode("utf-8", "surrogatepass")
    return bytes(out)


_SIMPLE = {0x22: b'"', 0x5C: b"\\", 0x2F: b"/", 0x62: b"\b", 0x66: b"\f", 0x6E: b"\n", 0x72: b"\r", 0x74: b"\t"}


def _pending(raw: bytes) -> bool:
    """Whether ``raw`` ends inside an escape (so the next bytes may belong to it)."""
    j = raw.rfind(b"\\")
    if j < 0:
        return False
    k = j
    while k > 0 and raw[k - 1] == _BSLASH:
        k -= 1
    if (j - k) % 2:  # the last backslash is itself escaped
        return False
    rest = raw[j + 1:]
    return not rest or (rest[:1] == b"u" and len(rest) < 5)


class _TokenIndex:
    """The tokens of a vocabulary that may end an array item, by what they hold. A token
    can end an item only at a quote (a string), a closing bracket (a container), or a
    comma, whitespace or ']' (a number, true, false, null); which of them matter depends
    on where the text is (see :meth:`UniqueChecker._candidates`)."""

    def __init__(self, vocab: Vocabulary):
        # one pass of array operations over the vocabulary's bytes (a loop over 150k tokens
        # in Python would cost most of a second)
        data, off, n = vocab.token_data, vocab.token_offsets, vocab.size
        lengths = np.diff(off)
        tok = np.repeat(np.arange(n), lengths)  # the token of each byte
        pos = np.arange(data.shape[0])
        never = data.shape[0] + 1
        live = ~np.asarray(vocab.special_mask[:n], dtype=bool)
        starts = off[:-1][lengths > 0]

        def first(where: np.ndarray) -> np.ndarray:  # per token, the first such byte's offset
            out = np.full(n, never, dtype=np.int64)
            if len(starts):
                out[lengths > 0] = np.minimum.reduceat(np.where(where, pos, never), starts)
            return out

        def count(where: np.ndarray) -> np.ndarray:
            return np.bincount(tok[where], minlength=n)

        def after(where: np.ndarray, at: np.ndarray) -> np.ndarray:  # such a byte after ``at``
            return count(where & (pos > at[tok])) > 0

        quote = data == _QUOTE
        delim = np.isin(data, list(_DELIM))
        ender = np.isin(data, list(_ENDERS))
        bracket = np.isin(data, list(b"[]}"))
        fq = first(quote)
        simple = live & (count(quote) == 1) & (count(data == _BSLASH) == 0) & ~after(~delim, fq)
        lead = first(~delim)
        literal = np.zeros(n, dtype=bool)
        has_lead = lead < never
        literal[has_lead] = np.isin(data[lead[has_lead]], list(_LITERALS))
        groups = {
            "quoted": live & (fq < never) & ~simple,
            "quote_nest": live & after(bracket, fq),
            "enders": live & (count(ender) > 0),
            "begin_end": live & has_lead & (after(ender, lead) | literal),
            "brackets": live & (count(bracket) > 0),
            "open_end": live & after(ender, first(data == 0x5B)),
            # tokens of number bytes (and separators) only: they begin or go on with a number item
            "numeric": live & has_lead & (count(~np.isin(data, list(_NUMBER_BYTES | _DELIM))) == 0),
            # tokens with a comma; and with a comma after a closing bracket (an item ends, another is due)
            "commas": live & (count(data == 0x2C) > 0),
            "close_commas": live & after(data == 0x2C, first(np.isin(data, list(b"]}")))),
        }
        # tokens of string content only (no quote, no backslash): inside a string they
        # only lengthen it (see UniqueChecker._string_head)
        self.plain = live & (count(quote) == 0) & (count(data == _BSLASH) == 0)
        by_head: dict[bytes, list[int]] = {}
        for t in np.flatnonzero(simple).tolist():
            # ends the string being written with the bytes before its quote, then separators
            by_head.setdefault(data[off[t]:fq[t]].tobytes(), []).append(t)
        self.by_head = {k: np.asarray(v, dtype=np.int64) for k, v in by_head.items()}
        for name, flags in groups.items():
            setattr(self, name, np.flatnonzero(flags).astype(np.int64))


def token_index(vocab: Vocabulary) -> _TokenIndex:
    got = _INDEX.get(vocab.fingerprint)
    if got is None:
        got = _INDEX.setdefault(vocab.fingerprint, _TokenIndex(vocab))
    return got


def prepare_index(vocab: Vocabulary) -> bool:
    """Make the check's per-vocabulary tables (:class:`_TokenIndex`, and the vocabulary's
    own lookups it reads) ahead of any grammar that needs them; whether any was missing."""
    missing = _INDEX.get(vocab.fingerprint) is None
    token_index(vocab)
    return vocab.prepare_tables() or missing


class UniqueChecker:
    """The uniqueItems check of one compiled grammar (None from :meth:`of` when the
    grammar marks no array). Thread-safe; its memo is bounded."""

    def __init__(self, engine, terminal_names: list[str], marks: frozenset[int]):
        self.engine = engine
        self.vocab: Vocabulary = engine.vocab
        self.marks = marks  # terminal ids
        # the strings the items of a marked array are drawn from, where its bracket's name says
        self.domains: list[Domain] = []
        self._domain_of: dict[int, int] = {}
        self._unions: dict[frozenset, int] = {}
        self._plain: set[int] = set()  # marked brackets whose items are strings of any content
        for t in sorted(marks):
            rest = terminal_names[t][len(_BRACKET):] if terminal_names[t].startswith(_BRACKET) else ""
            if rest == PLAIN:
                self._plain.add(t)
            elif rest:
                values = json.loads(rest)
                self._domain_of[t] = len(self.domains)
                self.domains.append(_domain(values))
        # the per-vocabulary tables the check reads, made now rather than in a mask
        self._index: _TokenIndex = token_index(self.vocab)
        self._comma_set = frozenset(self._index.commas.tolist())
        self._close_comma_set = frozenset(self._index.close_commas.tolist())
        self.vocab.prepare_tables()
        self._masks = LRU(1024)
        self._stuck = LRU(1024)
        self._encoded = LRU(256)
        self._normals = LRU(64)
        self._walks = LRU(1024)  # per (hid, track): the tokens a trap is looked for after
        self._fresh = LRU(256)  # per (hid, track, tokens left): fresh_only's masks
        self._costs: dict[int, int] = {}  # per domain: tokens of its longest value, and a comma
        self._lock = threading.Lock()

    @classmethod
    def of(cls, engine, terminal_names: list[str]) -> "UniqueChecker | None":
        marks = frozenset(t for t, name in enumerate(terminal_names) if name.startswith(MARK))
        return cls(engine, terminal_names, marks) if marks else None

    @property
    def keeps_budgets(self) -> bool:
        """Whether a token budget is kept with a proven reserve (see "token budgets"
        below): every marked array's items are strings of any content (a ``minLength``
        aside), at most one of them required."""
        return len(self._plain) == len(self.marks)

    def reserve(self, track: Track) -> int:
        """Tokens a budget keeps in reserve at ``track`` so that a repeated item can still
        be made new: :func:`budget_slack` where every checked array holds strings of any
        content (a proven bound, see "token budgets" below); where an open array's items
        are drawn from known strings, also the tokens of the longest of them (another
        value may be that long); elsewhere a few tokens more (the search of
        :func:`_rewritten`, which has no bound to promise)."""
        slack = budget_slack(self.used_count(track))
        if self.keeps_budgets:
            return slack
        extra = _GENERAL_RESERVE
        for f in track[0]:
            if f is not None and f[0] and f[3] >= 0:
                extra = max(extra, self._domain_cost(f[3]))
        return slack + extra

    def _domain_cost(self, i: int) -> int:
        got = self._costs.get(i)
        if got is None:
            spell = self.vocab.fewest_tokens
            got = 1 + max((len(spell(json.dumps(v).encode("utf-8", "surrogatepass"), max_span=24) or ())
                           for v in self.domains[i][1]), default=0)
            self._costs[i] = got
        return got

    @staticmethod
    def used_count(track: Track) -> int:
        """Items already written in the checked arrays open in ``track``."""
        return sum(len(f[1]) for f in track[0] if f is not None and f[0])

    def first_repeat(self, hid: int, track: Track, data: bytes) -> int | None:
        """The length of the shortest prefix of ``data`` that :meth:`feed` refuses (its
        last byte ends a repeated item), or None when it takes all of ``data``. (A
        refusal is where a byte ends an item: a longer prefix is refused too.)"""
        if self.feed(hid, track, data) is not None:
            return None
        lo, hi = 0, len(data)  # feed takes data[:lo], refuses data[:hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.feed(hid, track, data[:mid]) is None:
                hi = mid
            else:
                lo = mid
        return hi

    @property
    def index(self) -> _TokenIndex:
        return self._index

    # ------------------------------------------------------------------ the parse
    def marked_after(self, hid: int, data: bytes) -> int:
        """What, from hypothesis set ``hid``, the bracket that is the last byte of ``data``
        opens: :data:`UNCHECKED` unless it may end a lexeme of a marked terminal that the
        parse takes there; then :data:`PLAIN_CHECKED` when every such terminal is of
        strings of any content, the index of its items' domain when every one names one
        (their union where several do), else :data:`CHECKED`."""
        engine = self.engine
        h = engine.step_bytes(hid, data)
        if h < 0:
            return CHECKED  # not reachable: whatever is answered, the grammar refuses the text
        completes = engine.lexer.completes
        advance = engine.parser.advance
        found = set()
        for p, c in engine.hyps(h):
            if c < 0:
                continue
            for t in completes(c):
                if t in self.marks and advance(p, t) >= 0:
                    found.add(t)
        if not found:
            return UNCHECKED
        if found <= self._plain:
            return PLAIN_CHECKED
        if not all(t in self._domain_of for t in found):
            return CHECKED
        ids = frozenset(self._domain_of[t] for t in found)
        if len(ids) == 1:
            return next(iter(ids))
        with self._lock:
            got = self._unions.get(ids)
            if got is None:
                merged = {v for i in ids for v in self.domains[i][1]}
                got = self._unions[ids] = len(self.domains)
                self.domains.append(_domain(merged))
        return got

    def feed(self, hid: int, track: Track, data: bytes) -> Track | None:
        """:func:`feed` from the matcher state (``hid``, ``track``); also None where
        ``data`` leaves a number item that can only end equal to an earlier item (see
        :meth:`_stuck_number`)."""
        got = feed(track, data, lambda i: self.marked_after(hid, data[:i + 1]), self.domains)
        if got is not None:
            if got[1] == _OUT:
                if self._stuck_number(hid, got, data):
                    return None
            elif got[1] == _STR and self._stuck_string(hid, got, data):
                return None
            if self._traps(hid, track, got, data):
                return None
        return got

    def _traps(self, hid: int, track: Track, got: Track, data: bytes) -> bool:
        """Whether the token ``data`` (from ``hid``, ``track``; ``got`` after it) is one of
        :meth:`_item_candidates` there and leaves an item that can only repeat (see
        :meth:`_stuck_item`). Asked of the candidates only, so that the mask (which tries
        them) and an advance agree on every token."""
        found = self._container_item(got)
        if found is None:
            return False
        t = self.vocab.token_of(data)
        if t is None:
            return False
        if t not in self._walked(hid, track)[1] and not (t in self._close_comma_set and self._comma_due(track)):
            return False
        return self._stuck_item(hid, got, data, found)

    def _comma_due(self, track: Track) -> bool:
        """Whether the outermost checked array open in ``track`` has an item being
        written and short object or array items before it: then a token may end the
        item and, with a comma, call for another that has nowhere new to go (tokens with
        a comma after a bracket are among the mask's candidates there)."""
        f = _outermost(track)[1]
        return f is not None and f[2] >= 0 and bool(self._written(f[1])) and _short(f[1])

    def _walked(self, hid: int, track: Track) -> tuple[np.ndarray | None, frozenset]:
        """The tokens a trap is looked for after, at (``hid``, ``track``), and as a set
        (memoized): between items of short objects or arrays, those with a comma; else
        :meth:`_item_candidates`."""
        key = _key(hid, track)
        got = self._walks.get(key)
        if got is None:
            f = _outermost(track)[1]
            if f is not None and f[2] == -1 and self._written(f[1]) and _short(f[1]):
                got = (self.index.commas, self._comma_set)  # between items: a comma may leave nothing new to write
            else:
                ids = self._item_candidates(hid, track)
                got = (ids, frozenset(() if ids is None else ids.tolist()))
            with self._lock:
                self._walks.put(key, got)
        return got

    def _stuck_string(self, hid: int, track: Track, data: bytes) -> bool:
        """Whether ``track`` (after ``data`` from ``hid``) ends inside a string item of a
        checked array that the grammar lets end only as earlier items (a ``pattern`` of
        fixed length, a ``maxLength``: ``"#ff000`` when only ``"#ff0000"`` can follow and
        was written). Exact: looked at only where the text of the item so far begins an
        earlier item, and a search follows only the bytes that keep it so (any other
        byte the grammar takes makes a new item)."""
        frames, _, text, at = track
        top = frames[-1] if frames else None
        if top is None or not top[0] or top[2] < 0 or top[3] >= 0 or top[3] == PLAIN_CHECKED:
            return False  # (strings from a known set: feed looks at them; strings of any content go on)
        raw = text[top[2] - (at - len(text)) + 1:]
        if _BSLASH in raw:
            return False  # escapes: not looked at (a trap stays possible, none is made)
        earlier = _beginning(self._used_strings(top[1]), raw)
        if not earlier:
            return False
        h = self.engine.step_bytes(hid, data)
        if h < 0:
            return False
        key = (h, raw, top[1])
        got = self._stuck.get(key)
        if got is None:
            got = self._search_stuck_string(h, raw, earlier)
            with self._lock:
                self._stuck.put(key, got)
        return got

    def _used_strings(self, used: frozenset) -> list[bytes]:
        """The UTF-8 bytes of the strings in ``used``, sorted (memoized per set)."""
        got = self._encoded.get(used)
        if got is None:
            got = sorted(u.encode("utf-8", "surrogatepass") for u in used if isinstance(u, str))
            with self._lock:
                self._encoded.put(used, got)
        return got

    def _search_stuck_string(self, h: int, raw: bytes, earlier: list[bytes]) -> bool:
        engine = self.engine
        written = set(earlier)
        todo = [(raw, h)]
        while todo:
            q, hq = todo.pop()
            for b in engine.viable_bytes(hq):
                if b == _QUOTE:
                    if q not in written:
                        return False  # the item may end here, new
                    continue
                if b == _BSLASH:
                    return False  # an escape: not followed (counted as a way out)
                q2 = q + bytes((b,))
                if not any(u.startswith(q2) for u in earlier):
                    return False  # a string no earlier item begins with
                h2 = engine.step_bytes(hq, bytes((b,)))
                if h2 >= 0:
                    todo.append((q2, h2))
        return True

    def _stuck_number(self, hid: int, track: Track, data: bytes) -> bool:
        """Whether ``track`` (after ``data`` from ``hid``) ends inside a number item of a
        checked array whose every way to end, in the grammar, is an earlier item: ``0``
        when ``0`` was written, under a grammar whose integers may go on only as
        ``0.0...``; a bounded range's largest value; ``0e`` under any exponent. Without
        this, such a prefix would be a trap: the masks never empty, no item can end.

        Looked at only where the value the item has so far (its digits, a trailing
        point, exponent mark or sign aside) was written before, or it is a lone sign;
        then a search of up to :data:`_STUCK_DEPTH` more number bytes for an end with a
        new value."""
        frames, _, text, at = track
        top = frames[-1] if frames else None
        if top is None or not top[0] or top[2] < 0:
            return False
        item = text[top[2] - (at - len(text)):]
        if not item or item[0] not in _NUMBER_LEAD:
            return False
        natural = item.rstrip(b".eE+-")
        if natural and natural != b"-" and _number_of(natural) not in top[1]:
            return False
        engine = self.engine
        h = engine.step_bytes(hid, data)
        if h < 0:
            return False  # the grammar refuses the text anyway
        key = (h, item, top[1])
        got = self._stuck.get(key)
        if got is None:
            got = self._search_stuck(h, item, top[1])
            with self._lock:
                self._stuck.put(key, got)
        return got

    def _search_stuck(self, h: int, item: bytes, used: frozenset) -> bool:
        """Breadth first over up to _STUCK_DEPTH more number bytes (digits first, each
        looked at as it is made): False at the first text that may end with a new value."""
        engine = self.engine
        viable = set(engine.viable_bytes(h))
        if not viable.isdisjoint(_ITEM_END) and _number_of(item) not in used:
            return False
        level = [(item, h, viable)]
        for _ in range(_STUCK_DEPTH):
            nxt = []
            for text, hx, vx in level:
                for b, h2 in _one_byte_more(engine, hx, vx, _STUCK_ORDER):
                    t2 = text + bytes((b,))
                    v2 = set(engine.viable_bytes(h2))
                    if not v2.isdisjoint(_ITEM_END) and _number_of(t2) not in used:
                        return False
                    nxt.append((t2, h2, v2))
            level = nxt[:_STUCK_WIDTH]
            if not level:
                break
        return True

    # An object or array item can be a trap too: ``{"id":0`` when ``{"id":0}`` was
    # written, and the grammar lets the integer go on only as ``0.0...``; ``{"a":"x"``
    # when only ``}`` may follow. Such a prefix is refused where it is made, like a stuck
    # number: where the item so far may still become an earlier item (its text, with
    # whitespace dropped and numbers spelt canonically, begins an earlier item's), a
    # search follows the bytes that keep it so; any other byte the grammar takes, or an
    # end of the item that is new, is a way out. Objects written with their members in
    # another order than before, and strings with escapes, are not followed (a trap
    # stays possible there, none is made); a number may go on only _STUCK_DEPTH bytes.
    def _container_item(self, track: Track) -> tuple[int, bytes, list[bytes]] | None:
        """(the frame index, the text so far, the earlier items' normal texts) of the
        outermost item of a checked array being written (or due, after a comma), where
        it is an object or an array and some earlier item of that array was one; else
        None."""
        k, f = _outermost(track)
        if f is None or f[2] == -1:
            return None  # (between items nothing deeper is open)
        if f[2] == _AFTER_COMMA:
            # an item must follow, and may have nowhere new to go: that takes few items
            # of few values, so long items are not looked at (their texts would be made
            # afresh for each token that ends one)
            if not _short(f[1]):
                return None
            item = b""
        else:
            text, at = track[2], track[3]
            item = text[f[2] - (at - len(text)):]
            if item[0] != 0x7B and item[0] != 0x5B:
                return None
        written = self._written(f[1])
        return (k, item, written) if written else None

    def _written(self, used: frozenset) -> list[bytes]:
        """The normal texts (see :func:`_normal`) of the object and array items in
        ``used``, sorted (memoized per set)."""
        key = ("written", used)
        got = self._encoded.get(key)
        if got is None:
            got = sorted(u.normal() for u in used if type(u) is _Written)
            with self._lock:
                self._encoded.put(key, got)
        return got

    def _stuck_item(self, hid: int, track: Track, data: bytes, found: tuple) -> bool:
        """Whether ``track`` (after ``data`` from ``hid``) ends inside an object or array
        item of a checked array that can only end as an earlier item (see above);
        ``found``: :meth:`_container_item` of ``track``."""
        k, item, written = found
        out, state = self._normal_after(item, len(data))
        if not _consistent(out, state, written):
            return False
        h = self.engine.step_bytes(hid, data)
        if h < 0:
            return False  # the grammar refuses the text anyway
        key = (h, track[0], out, state)
        got = self._stuck.get(key)
        if got is None:
            got = self._search_stuck_item(h, track, k, out, state, written)
            with self._lock:
                self._stuck.put(key, got)
        return got

    def _normal_after(self, item: bytes, n: int) -> tuple[bytes, tuple]:
        """:func:`_normal` of ``item``, whose last ``n`` bytes were just fed: the rest is
        the same for every token tried at one place, so its part is memoized."""
        if len(item) <= n + 16:
            return _normal(item)
        head = item[:-n]
        got = self._normals.get(head)
        if got is None:
            got = _normal(head)
            with self._lock:
                self._normals.put(head, got)
        out, state = _normal(item[-n:], got[1])
        return got[0] + out, state

    def _search_stuck_item(self, h: int, track: Track, k: int, out: bytes, state: tuple,
                           written: list[bytes]) -> bool:
        """Depth first over the bytes that keep the item a possible earlier one: False at
        the first way out (a byte after which it cannot be, an end that is new), True
        when there is none. Bounded: False (no trap assumed) past _ITEM_EFFORT steps."""
        engine = self.engine
        todo = [(h, track, out, state, 0)]
        seen = set()
        effort = _ITEM_EFFORT
        while todo:
            hx, tx, ox, sx, digits = todo.pop()
            for b in engine.viable_bytes(hx):
                if sx[0] == _OUT and b in _WS:
                    continue  # whitespace changes no value (the same bytes follow it)
                if sx[0] != _OUT and b == _BSLASH:
                    return False  # an escape: not followed (counted as a way out)
                effort -= 1
                if effort < 0:
                    return False
                one = bytes((b,))
                t2 = feed(tx, one, lambda i: self.marked_after(hx, one), self.domains)
                if t2 is None:
                    continue  # ends an earlier item (this one, or one inside it)
                if t2[0][k][2] < 0:
                    return False  # the item ends, new
                h2 = engine.step_bytes(hx, one)
                if h2 < 0:
                    continue
                o2, s2 = _normal(one, sx)
                o2 = ox + o2
                if not _consistent(o2, s2, written):
                    return False  # no longer the beginning of an earlier item: ends new
                d2 = digits + 1 if s2[1] else 0
                # a number being written counts by its value (0.0 and 0.00 alike), so a
                # number that cannot change its value is not followed in every spelling
                at = (h2, o2, s2[0], _spelt(s2[1]) if s2[1] else b"")
                if d2 > _STUCK_DEPTH or at in seen:
                    continue
                seen.add(at)
                todo.append((h2, t2, o2, s2, d2))
        return True

    def _item_candidates(self, hid: int, track: Track) -> np.ndarray | None:
        """Tokens that may leave the object or array item being written unable to end
        but as an earlier item (see :meth:`_stuck_item`): those after which the item may
        still become an earlier one, by :func:`_consistent` (whitespace between tokens
        taken anywhere, any number bytes where a number is due, the number then equal
        to the earlier item's); None where the item so far can no longer be one."""
        found = self._container_item(track)
        if found is None:
            return None
        _, item, written = found
        out, state = _normal(item)
        if not _consistent(out, state, written):
            return None
        vocab, engine = self.vocab, self.engine
        got: list[int] = []
        n, run = len(out), state[1]
        todo = [(b"", hid, frozenset((e, n, run) for e in _beginning(written, out)
                                      if not run or (len(e) > n and e[n] in _NUMBER_LEAD)))]
        effort = _WALK_EFFORT
        while todo and effort > 0:
            head, h, at = todo.pop()
            tried: set[int] = set()
            effort -= len(at)
            for e, i, r in at:
                tried.update(_next_bytes(e, i, r))
            for b in tried:
                effort -= len(at)
                where = frozenset(x for e, i, r in at for x in _along(e, i, r, b))
                if not where:
                    continue
                h2 = head + bytes((b,))
                t = vocab.token_of(h2)
                longer = len(h2) < _STUCK_SPAN and vocab.extends_token(h2)
                if t is None and not longer:
                    continue
                hb = engine.step_bytes(h, h2[-1:])
                if hb < 0:
                    continue  # the grammar refuses these bytes here
                if t is not None:
                    got.append(t)
                if longer:
                    todo.append((h2, hb, where))
        return np.asarray(got, dtype=np.int64)

    def fresh_only(self, hid: int, track: Track, words: np.ndarray, cap: int, planner) -> np.ndarray:
        """``words`` less the tokens after which the item being written (or begun) can
        no longer be made new in ``cap`` tokens: looked at are the tokens that may go on
        as an earlier item (:meth:`_candidates`, :meth:`_item_candidates`) whose
        planner's completion repeats one; a token stays where :func:`fresh_completion`
        finds a completion that fits."""
        key = (_key(hid, track), cap)
        got = self._fresh.get(key)
        if got is not None and got[0] is words:
            return got[1]
        cands, _ = self._candidates(track)
        more = self._walked(hid, track)[0]
        parts = [] if cands is _ALL else [cands]
        if more is not None:
            parts.append(more)
        removed = []
        if parts:
            ids = np.concatenate(parts)
            ids = np.unique(ids[_allowed(words, ids)]) if len(ids) else ids
            engine, tb = self.engine, self.vocab.token_bytes
            for t in ids.tolist():
                h2 = engine.step(hid, t)
                if h2 < 0:
                    continue
                tr2 = self.feed(hid, track, tb(t))
                if tr2 is None:
                    continue  # (the filter takes it out)
                rest = planner.plan(h2)[1]
                if rest is None or self.first_repeat(h2, tr2, rest) is None:
                    continue
                if fresh_completion(self, h2, tr2, rest, cap, planner) is None:
                    removed.append(t)
        out = _without(words, removed) if removed else words
        with self._lock:
            self._fresh.put(key, (words, out))
        return out

    # ------------------------------------------------------------------ masks
    def filter(self, hid: int, track: Track, words: np.ndarray) -> np.ndarray:
        """``words`` (the grammar's mask at ``hid``) less the tokens that end an item equal
        to an earlier one of its array. Returns ``words`` itself when none does. Raises
        MatcherError when that leaves no token while the grammar allowed some: every way
        on from here repeats an item."""
        key = _key(hid, track)
        got = self._masks.get(key)
        if got is not None and got[0] is words:
            return got[1]
        removed = self._duplicates(hid, track, words)
        if removed:
            out = _without(words, removed)
            if not out.any():
                raise MatcherError(
                    "uniqueItems: every continuation of the item being written repeats an earlier item of its "
                    "array (nothing new can follow this text)")
        else:
            out = words
        with self._lock:
            self._masks.put(key, (words, out))
        return out

    def _candidates(self, track: Track) -> tuple[np.ndarray, bool]:
        """(tokens that may end a duplicate item from here, whether the string being
        written is an item of a checked array whose one-quote endings are looked up by
        their heads instead)."""
        frames, mode, text, at = track
        idx = self.index
        if not any(f is not None and f[0] for f in frames):
            return idx.open_end, False  # a checked array must open first
        top = frames[-1]
        if top is not None and top[0] and top[3] >= 0:
            # strings from a known set: a token may also begin one that no unused value completes
            return _ALL, False
        if mode != _OUT:
            if top is not None and top[0] and top[2] >= 0:
                if mode == _STR and not _pending(text[top[2] - (at - len(text)) + 1:]):
                    return np.concatenate([idx.quoted, idx.quote_nest]), True
                return np.concatenate([idx.quoted, *idx.by_head.values()]), False
            return idx.quote_nest, False  # the string is inside an item: a bracket must follow
        if top is not None and top[0]:
            got = idx.enders if top[2] >= 0 else np.concatenate([idx.begin_end, idx.brackets])
            if any(type(u) is tuple and u[0] is _NUM_TAG for u in top[1]):
                got = np.concatenate([got, idx.numeric])  # a number may get stuck (see _stuck_number)
            return got, False
        return np.concatenate([idx.brackets, idx.open_end]), False

    def _duplicates(self, hid: int, track: Track, words: np.ndarray) -> list[int]:
        cands, heads = self._candidates(track)
        out: list[int] = []
        if heads:
            frames, _, text, at = track
            top = frames[-1]
            head = unescape(text[top[2] - (at - len(text)) + 1:])
            n = len(head)  # type: ignore[arg-type]
            token_of = self.vocab.token_of
            inside: list[int] = []
            for u8 in _beginning(self._used_strings(top[1]), head):  # type: ignore[arg-type]
                ids = self.index.by_head.get(u8[n:])
                if ids is not None:
                    out.extend(int(t) for t in ids[_allowed(words, ids)])
                # tokens that go on inside this earlier item: they may leave a string
                # that can only end as one (see _stuck_string; never strings of any content)
                if top[3] == PLAIN_CHECKED:
                    continue
                rest = u8[n:]
                for j in range(1, min(len(rest), _STUCK_SPAN) + 1):
                    t = token_of(rest[:j])
                    if t is not None:
                        inside.append(t)  # (filtered by the mask with the other candidates)
            if inside:
                cands = np.concatenate([cands, np.asarray(inside, dtype=np.int64)])
        if cands is not _ALL:
            more = self._walked(hid, track)[0]
            if more is not None:
                cands = np.concatenate([cands, more])
            if self._comma_due(track):
                cands = np.concatenate([cands, self.index.close_commas])
        if cands is _ALL:
            cands = ids_from_words(words, self.vocab.size)
        elif len(cands):
            cands = np.unique(cands[_allowed(words, cands)])
        tb = self.vocab.token_bytes
        fast = self._string_head(track) if len(cands) else None
        if fast is not None:
            # inside a string item from a known set: a token of string content only
            # lengthens the item, which stays new while an unused value begins with it
            # (what feed would answer, without its walk)
            head, rest = fast
            plain = self.index.plain[cands]
            n = len(rest)
            for t in cands[plain].tolist():
                item = head + tb(t)
                k = bisect_left(rest, item)
                if k == n or not rest[k].startswith(item):
                    out.append(t)
            cands = cands[~plain]
        for t in cands.tolist():
            if self.feed(hid, track, tb(t)) is None:
                out.append(t)
        return out

    def _string_head(self, track: Track) -> tuple[bytes, list[bytes]] | None:
        """Where the text is inside a string item, free of escapes, of the one checked
        array open, whose items are drawn from known strings: (the item's bytes so far,
        the UTF-8 bytes of the unused values that begin with them, sorted); else None.
        There, :meth:`feed` of a token without quote or backslash answers as its domain
        check does (no other check looks at such an item: no trap is made inside a string
        of a known set, nor inside a string of an array that no checked array encloses)."""
        frames, mode, text, at = track
        if mode != _STR or not frames:
            return None
        top = frames[-1]
        if top is None or not top[0] or top[3] < 0 or top[2] < 0 or _outermost(track)[0] != len(frames) - 1:
            return None
        head = text[top[2] - (at - len(text)) + 1:]
        if _BSLASH in head:
            return None
        encoded, values = self.domains[top[3]]
        used = top[1]
        # the values that begin with head: from head to head + 0xFF (a byte no UTF-8 has)
        i, j = bisect_left(encoded, head), bisect_left(encoded, head + b"\xff")
        return head, [e for e, v in zip(encoded[i:j], values[i:j]) if v not in used]


_ALL = np.zeros(0, dtype=np.int64)  # every allowed token a candidate
_STUCK_SPAN = 32  # the longest token looked up inside an earlier item


def _key(hid: int, track: Track) -> tuple:
    """A memo key of the check at (``hid``, ``track``) that leaves out where the text
    is: what the check says of a token depends on the offsets of a track only through
    their distances from its end (the items' starts are compared with one another and
    with the bytes kept, never with the start of the text), so a key with the starts
    counted back from the end serves every place the same state recurs at (the string
    of an object's key read at each of its members, say)."""
    frames, mode, text, at = track
    return hid, tuple(f if f is None or f[2] < 0 else (f[0], f[1], f[2] - at, f[3]) for f in frames), mode, text


def _beginning(encoded: list[bytes], head: bytes) -> list[bytes]:
    """The entries of the sorted ``encoded`` that begin with ``head``."""
    i = bisect_left(encoded, head)
    j = i
    while j < len(encoded) and encoded[j].startswith(head):
        j += 1
    return encoded[i:j]



_NUMBER_TEXT = re.compile(rb"-?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?|-")
_ITEM_EFFORT = 4096  # bytes tried, at most, by one search of _search_stuck_item
_SHORT_ITEM = 128  # the longest earlier items (bytes) a comma is checked against
_WALK_EFFORT = 20_000  # steps of one walk of _item_candidates, at most (past them, traps may go unseen)


def _normal(data: bytes, state: tuple = (_OUT, b"")) -> tuple[bytes, tuple]:
    """``data``, the JSON text of an item or part of one, with what JSON equality
    ignores taken out: whitespace between tokens dropped, each number that has ended
    spelt canonically. ``state``: (mode, the number being written) before ``data``;
    returns (the bytes out, the state after): a number still being written is in the
    state, not out."""
    mode, run = state
    out = bytearray()
    for b in data:
        if mode == _STR:
            out.append(b)
            if b == _BSLASH:
                mode = _STR_ESC
            elif b == _QUOTE:
                mode = _OUT
            continue
        if mode == _STR_ESC:
            out.append(b)
            mode = _STR
            continue
        if run:
            if b in _NUMBER_BYTES:
                run += bytes((b,))
                continue
            out += _spelt(run)
            run = b""
        if b in _NUMBER_LEAD:
            run = bytes((b,))
        elif b not in _WS:
            out.append(b)
            if b == _QUOTE:
                mode = _STR
    return bytes(out), (mode, run)


def _spelt(number: bytes) -> bytes:
    """One spelling of each number value (``1``, ``1.0`` and ``10e-1`` alike); bytes
    that are no number (``1e+-``, met looking ahead) spell as themselves."""
    if _NUMBER_TEXT.fullmatch(number) is None:
        return number
    _, sign, sig, exp = _number_of(number)
    if not sig:
        return b"0"
    return (b"-" if sign < 0 else b"") + sig.encode() + b"e" + str(exp).encode()


def _consistent(out: bytes, state: tuple, written: list[bytes]) -> bool:
    """Whether the item whose normal text so far is ``out``, ``state`` after it (see
    :func:`_normal`), may still become one of ``written`` (normal texts, sorted): ``out``
    begins one, and where a number is being written, a number follows there; where
    ``out`` ends with a number (or ``true``...) that ended, it ends there too."""
    n = len(out)
    if state[1]:
        return any(len(e) > n and e[n] in _NUMBER_LEAD for e in _beginning(written, out))
    if state[0] == _OUT and n and out[-1] in _NUMBER_BYTES:
        return any(len(e) == n or e[n] not in _NUMBER_BYTES for e in _beginning(written, out))
    i = bisect_left(written, out)
    return i < len(written) and written[i].startswith(out)


def _outermost(track: Track) -> tuple[int, tuple | None]:
    """(index, frame) of the outermost checked array open in ``track``; (-1, None) when
    none is."""
    for k, f in enumerate(track[0]):
        if f is not None and f[0]:
            return k, f
    return -1, None


def _short(used: frozenset) -> bool:
    """Whether every object or array item in ``used`` is at most _SHORT_ITEM bytes."""
    return all(len(u.text) <= _SHORT_ITEM for u in used if type(u) is _Written)


def _next_bytes(e: bytes, i: int, run: bytes):
    """The bytes that may keep an item whose normal text so far is ``e[:i]`` then the
    number ``run`` being written the beginning of ``e`` (a superset: see _along)."""
    if run:
        j = _number_end(e, i)
        yield from _NUMBER_BYTES
        yield from _WS
        if j < len(e):
            yield e[j]
        return
    if _outside(e)[i]:
        yield from _WS
        if i < len(e) and e[i] in _NUMBER_LEAD:
            yield from _NUMBER_LEAD
    if i < len(e):
        yield e[i]


def _along(e: bytes, i: int, run: bytes, b: int) -> list[tuple[bytes, int, bytes]]:
    """The ways (``e``, offset, number being written) that the byte ``b`` keeps the item
    at (``e``, ``i``, ``run``) the beginning of ``e``, as :func:`_consistent` sees it."""
    if run:
        if b in _NUMBER_BYTES:
            return [(e, i, run + bytes((b,)))]
        j = _number_end(e, i)
        if e[i:j] != _spelt(run):
            return []  # the number ended, not the earlier item's
        i = j
    if not _outside(e)[i]:
        return [(e, i + 1, b"")] if i < len(e) and e[i] == b else []
    if b in _WS:
        return [(e, i, b"")]
    if i < len(e):
        if b in _NUMBER_LEAD and e[i] in _NUMBER_LEAD:
            return [(e, i, bytes((b,)))]
        if e[i] == b:
            return [(e, i + 1, b"")]
    return []


def _number_end(e: bytes, i: int) -> int:
    while i < len(e) and e[i] in _NUMBER_BYTES:
        i += 1
    return i


@lru_cache(maxsize=4096)
def _outside(text: bytes) -> bytes:
    """Per offset of the normal text ``text`` (and its end): 1 where the next byte is
    outside a string (whitespace may come there), else 0."""
    out = bytearray(len(text) + 1)
    mode = _OUT
    for i, b in enumerate(text):
        out[i] = mode == _OUT
        if mode == _STR:
            mode = _STR_ESC if b == _BSLASH else _OUT if b == _QUOTE else _STR
        elif mode == _STR_ESC:
            mode = _STR
        elif b == _QUOTE:
            mode = _STR
    out[len(text)] = mode == _OUT
    return bytes(out)


def _without(words: np.ndarray, ids: list[int]) -> np.ndarray:
    """A read-only copy of the bitmask ``words`` with the bits of tokens ``ids`` cleared."""
    out = words.copy()
    for t in ids:
        out[t >> 5] &= ~np.uint32(1 << (t & 31))
    out.setflags(write=False)
    return out


def _allowed(words: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return ((words[ids >> 5] >> (ids & 31).astype(np.uint32)) & 1).astype(bool)


# ---------------------------------------------------------------------- token budgets
#
# Under a token budget the planner keeps a way to finish the document in the tokens left
# (see masking.budget), but the shortest way may repeat an item: the planner's completion
# of an item just begun is its shortest string, which may have been written before. For
# arrays of strings of any content (or of any content and a least length) there is always
# a way out at a small, bounded price: insert ``w`` into the repeated item, for ``w``
# among the strings of ``m`` printable bytes (such strings take any bytes anywhere in
# their content); distinct ``w`` at one place make distinct items, so among ``n + 1`` of
# them one is new when ``n`` items were written, and ``93**m >= n + 1`` suffices. Spelt
# with ``w`` as single bytes, that costs at most ``m`` tokens more than the planner's
# completion where ``w`` goes in at a boundary of its spelling inside the item, and
# ``m + 2`` where it must split a token (an item's opening and closing quotes in one
# token). So the matcher keeps, under a budget, the tokens after which the planner's
# completion fits ``budget_slack`` tokens early, plus the first token of a completion it
# has checked (the *commit*, which then carries on): the mask is never empty, and every
# token it allows can still finish with new items in time.
#
# Items of other kinds have no such bound (the value after a repeated enum value may be
# much longer; an object's repeated members may be booleans). There the reserve is larger
# (UniqueChecker.reserve) and, once it binds, the matcher allows only the commit (and EOS
# on a complete text), found by rewriting repeated items one after another (_rewritten):
# the mask never lets a repeat through, and raises MatcherError should the search, which
# is bounded, find nothing that fits.

# bytes tried as insertions, most natural first (no quote, no backslash: no escapes)
_FILLERS = bytes(b for b in b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-. " +
                 bytes(range(0x21, 0x7F)) if b not in (_QUOTE, _BSLASH))
_FILLERS = bytes(dict.fromkeys(_FILLERS))
# Reserve beyond budget_slack where a checked array's items are not plain strings (see
# UniqueChecker.reserve).
_GENERAL_RESERVE = 3
# A token may end several items at once (``"a","b","``): the slack counts that many more.
_ITEMS_PER_TOKEN = 32


def budget_slack(used: int) -> int:
    """Tokens a budget keeps in reserve so that, with ``used`` items written, a repeated
    item can still be made new (see above)."""
    need = used + _ITEMS_PER_TOKEN + 1
    m = 1
    while len(_FILLERS) ** m < need:
        m += 1
    return m + 2


def _insertions(limit: int):
    """Strings of 1, then 2, ... filler bytes, at most ``limit`` of them."""
    count = 0
    m = 1
    while True:
        for combo in product(_FILLERS, repeat=m):
            yield bytes(combo)
            count += 1
            if count >= limit:
                return
        m += 1


def fresh_completion(checker: UniqueChecker, hid: int, track: Track, data: bytes | None,
                     cap: int, planner) -> tuple[bytes, list[int]] | None:
    """A completion of the text at (``hid``, ``track``) that repeats no item, spelt in
    at most ``cap`` tokens: ``data`` (a completion of the grammar) when it repeats
    nothing, else ``data`` with bytes inserted into the repeated string item (at a
    boundary of its spelling inside the item, else before its closing quote), else, for
    items of any kind, ``data`` changed inside the repeated item: cut short, a few bytes
    the grammar takes there, then ``planner``'s completion of that (see
    :func:`_rewritten`). (bytes, their fewest-token spelling), or None when none is
    found."""
    if data is None:
        return None
    vocab = checker.vocab

    def spelt(text: bytes) -> list[int] | None:
        ids = vocab.fewest_tokens(text, max_span=24)
        return ids if ids is not None and len(ids) <= cap else None

    k = checker.first_repeat(hid, track, data)
    if k is None:
        ids = spelt(data)
        return None if ids is None else (data, ids)
    if data[k - 1] == _QUOTE:  # the byte that ended the repeated item closes a string
        got = _inserted(checker, hid, track, data, k - 1, spelt)
        if got is not None:
            return got
    return _rewritten(checker, planner, hid, track, data, k, spelt)


def _inserted(checker: UniqueChecker, hid: int, track: Track, data: bytes, at: int,
              spelt: Callable[[bytes], list[int] | None]) -> tuple[bytes, list[int]] | None:
    """``data`` with filler bytes inserted into the repeated string item whose closing
    quote is ``data[at]``, repeating nothing, spelt in time; None when none is."""
    engine, vocab = checker.engine, checker.vocab
    # Where to insert: the token boundaries of the completion's spelling inside the item
    # (nothing split: at most m tokens more), nearest the quote first, then the quote.
    ids = vocab.fewest_tokens(data, max_span=24) or []
    bounds, off = [], 0
    for t in ids:
        bounds.append(off)
        off += len(vocab.token_bytes(t))
    opening = _opening_quote(data, at)
    points = [p for p in reversed(bounds) if opening < p < at] + [at]
    tries = 4 * (checker.used_count(track) + _ITEMS_PER_TOKEN) + 64
    for p in points:
        for w in _insertions(tries):
            cand = data[:p] + w + data[p:]
            end = engine.step_bytes(hid, cand)
            if end < 0 or not engine.accepting(end) or checker.first_repeat(hid, track, cand) is not None:
                continue
            got = spelt(cand)
            if got is not None:
                return cand, got
    return None


# Bytes tried first where an item is rewritten: fillers, then the JSON punctuation an
# item of any kind may need.
_REWRITE_ORDER = _FILLERS + bytes(b for b in b'"{}[],:' if b not in _FILLERS)
_REWRITE_POINTS = 48  # offsets tried, nearest the repeat first
_REWRITE_EFFORT = 4000  # candidate completions checked, at most, per call
_REWRITE_ROUNDS = 64  # repeated items rewritten, at most, per call


def _rewritten(checker: UniqueChecker, planner, hid: int, track: Track, data: bytes, k: int,
               spelt: Callable[[bytes], list[int] | None]) -> tuple[bytes, list[int]] | None:
    """A completion repeating no item, made from ``data`` (whose first ``k`` bytes end a
    repeated item) by rewriting one repeated item after another: for offsets ``p``
    before its end, nearest first, and strings ``w`` of 1, 2, ... bytes the grammar
    takes after ``data[:p]``, ``data[:p] + w`` then the planner's completion of that,
    kept when more items are written before the first repeat than before. So a number
    takes another digit, a string of an enum another value, an object another member
    value, and the shortest items of an array that needs several differ. A bounded
    search: None when nothing is found in it."""
    effort = [_REWRITE_EFFORT]
    for _ in range(_REWRITE_ROUNDS):
        data = _rewrite_one(checker, planner, hid, track, data, k, effort, spelt)  # type: ignore[assignment]
        if data is None:
            return None
        k = checker.first_repeat(hid, track, data)  # type: ignore[assignment]
        if k is None:
            ids = spelt(data)
            return None if ids is None else (data, ids)
    return None


def _one_byte_more(engine, h: int, viable: set[int], order: bytes):
    """(byte, state after it) for each byte of ``order``, in that order, that the
    grammar takes after hypothesis set ``h`` (``viable``: its viable bytes)."""
    for b in order:
        if b in viable:
            h2 = engine.step_bytes(h, bytes((b,)))
            if h2 >= 0:
                yield b, h2


def _items_before(checker: UniqueChecker, hid: int, track: Track, data: bytes, k: int | None) -> int:
    """Items written, in the checked arrays open there, before ``data[:k]`` is refused
    (``k`` None: all of ``data`` is taken)."""
    if k is None:
        return 1 << 30
    got = checker.feed(hid, track, data[:k - 1])
    return -1 if got is None else checker.used_count(got)


def _rewrite_one(checker: UniqueChecker, planner, hid: int, track: Track, data: bytes, k: int,
                 effort: list[int], spelt: Callable[[bytes], list[int] | None]) -> bytes | None:
    """:func:`_rewritten`'s step: a completion from ``data`` with more items before its
    first repeat that ``spelt`` takes (fits the tokens left), or None."""
    engine = checker.engine
    before = _items_before(checker, hid, track, data, k)
    per_point = 4 * (checker.used_count(track) + _ITEMS_PER_TOKEN) + 64
    for p in range(k - 1, max(-1, k - 1 - _REWRITE_POINTS), -1):
        h = engine.step_bytes(hid, data[:p])
        if h < 0:
            continue
        # breadth first over the bytes the grammar takes, in _REWRITE_ORDER
        level: list[tuple[bytes, int]] = [(b"", h)]
        tried = 0
        while level and tried < per_point:
            nxt: list[tuple[bytes, int]] = []
            for w, hw in level:
                for b, h2 in _one_byte_more(engine, hw, set(engine.viable_bytes(hw)), _REWRITE_ORDER):
                    w2 = w + bytes((b,))
                    nxt.append((w2, h2))
                    tried += 1
                    effort[0] -= 1
                    if effort[0] < 0:
                        return None
                    rest = planner.plan(h2)[1]
                    if rest is None:
                        continue
                    cand = data[:p] + w2 + rest
                    end = engine.step_bytes(hid, cand)
                    if end < 0 or not engine.accepting(end):
                        continue
                    if (_items_before(checker, hid, track, cand, checker.first_repeat(hid, track, cand)) > before
                            and spelt(cand) is not None):
                        return cand
                    if tried >= per_point:
                        break
                if tried >= per_point:
                    break
            level = nxt
    return None


def _opening_quote(data: bytes, at: int) -> int:
    """The offset of the quote that opens the string closed at ``at`` (-1 when it opened
    before ``data``)."""
    i = at - 1
    while i >= 0:
        if data[i] == _QUOTE:
            j = i
            while j > 0 and data[j - 1] == _BSLASH:
                j -= 1
            if (i - j) % 2 == 0:  # not escaped
                return i
        i -= 1
    return -1
