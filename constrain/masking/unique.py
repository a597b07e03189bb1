"""``uniqueItems`` checked while matching, for arrays whose items are plain strings.

The JSON Schema front door compiles such an array without its uniqueness, its item
terminals and tail rules named with a mark (see
:data:`constrain.frontends.json_schema.arrays.UNIQUE_MARK`). A :class:`UniqueChecker`
follows the JSON text of one sequence (containers, strings, escapes) as an immutable
*track*; when a string that is an item of an array ends, it asks the parse whether that
string was one of the marked terminals (the first time, per array), and from then on
refuses an item equal to an earlier one of the same array (strings equal after
unescaping). The memoized per-state masks stay as they are: the check removes from them
only the tokens that would end a duplicate item. Where the parse cannot tell (a text
that is, in different branches, an array checked and one not), the array is checked:
tokens may be refused that some branch allowed, none is allowed that no branch does.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from .._caches import LRU, cache
from ..vocabulary import Vocabulary

__all__ = ["UniqueChecker", "Track", "MARK"]

MARK = "\0u"  # the prefix of marked symbol names (the JSON Schema front door's UNIQUE_MARK)

# A track: (frames, mode, raw). frames: one entry per open container, None for an object,
# (checked, used) for an array (checked: None until its first string item ends, then
# whether the parse marks its items; used: the item values so far, unescaped UTF-8).
# mode: outside a string, in a string not followed, in a followed item string (its raw
# bytes so far in raw), each of the last two just after a backslash or not.
Track = tuple
_OUT, _STR, _STR_ESC, _ITEM, _ITEM_ESC = range(5)
START: Track = ((), _OUT, b"")

_QUOTE, _BSLASH = 0x22, 0x5C
_INDEX = cache("masking.unique_token_index", 8,
               "per vocabulary: the tokens with a quote, sorted for the uniqueItems check", spec_free=True)


def feed(track: Track, data: bytes, marked: Callable[[int], bool]) -> Track | None:
    """The track after ``data``, or None where ``data`` ends an item equal to an earlier
    one. ``marked(i)``: whether the string item ending at byte ``i`` of ``data`` is a
    marked one (asked once per array)."""
    frames, mode, raw = track
    start = 0  # where the followed string's bytes in data begin
    n = len(data)
    i = 0
    while i < n:
        b = data[i]
        if mode == _OUT:
            if b == _QUOTE:
                top = frames[-1] if frames else None
                if top is not None and top[0] is not False:
                    mode, raw, start = _ITEM, b"", i + 1
                else:
                    mode = _STR
            elif b == 0x5B:  # [
                frames = frames + ((None, frozenset()),)
            elif b == 0x7B:  # {
                frames = frames + (None,)
            elif b == 0x5D or b == 0x7D:
                frames = frames[:-1]
        elif mode == _STR:
            if b == _BSLASH:
                mode = _STR_ESC
            elif b == _QUOTE:
                mode = _OUT
        elif mode == _STR_ESC:
            mode = _STR
        elif mode == _ITEM:
            if b == _BSLASH:
                mode = _ITEM_ESC
            elif b == _QUOTE:
                checked, used = frames[-1]
                if checked is None:
                    checked = marked(i)
                if checked:
                    value = unescape(raw + data[start:i])
                    if value in used:
                        return None
                    used = used | {value}
                frames = frames[:-1] + ((checked, used),)
                mode, raw = _OUT, b""
        else:  # _ITEM_ESC
            mode = _ITEM
        i += 1
    if mode == _ITEM or mode == _ITEM_ESC:
        raw = raw + data[start:]
    return frames, mode, raw


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
    """The tokens of a vocabulary that hold a quote: those with one quote and no
    backslash, by their bytes before it (the token ends the string being written with
    exactly those bytes), and the others, by whether they could also open an array and
    end two of its items."""

    def __init__(self, vocab: Vocabulary):
        by_head: dict[bytes, list[int]] = {}
        several: list[int] = []
        nested: list[int] = []
        for t in range(vocab.size):
            if vocab.special_mask[t]:
                continue
            data = vocab.token_bytes(t)
            q = data.count(b'"')
            if not q:
                continue
            if q == 1 and b"\\" not in data:
                by_head.setdefault(data[:data.index(b'"')], []).append(t)
                continue
            several.append(t)
            if q >= 4 and b"[" in data:
                nested.append(t)
        self.by_head = {k: np.asarray(v, dtype=np.int64) for k, v in by_head.items()}
        self.single = np.sort(np.concatenate(list(self.by_head.values()))) if by_head else np.zeros(0, np.int64)
        self.several = np.asarray(several, dtype=np.int64)
        self.nested = np.asarray(nested, dtype=np.int64)


def token_index(vocab: Vocabulary) -> _TokenIndex:
    got = _INDEX.get(vocab.fingerprint)
    if got is None:
        got = _INDEX.setdefault(vocab.fingerprint, _TokenIndex(vocab))
    return got


class UniqueChecker:
    """The uniqueItems check of one compiled grammar (None from :meth:`of` when the
    grammar marks no array). Thread-safe; its memo is bounded."""

    def __init__(self, engine, terminal_names: list[str], marks: frozenset[int]):
        self.engine = engine
        self.vocab: Vocabulary = engine.vocab
        self.marks = marks  # terminal ids
        self._masks = LRU(1024)
        self._lock = threading.Lock()
        self._index: _TokenIndex | None = None

    @classmethod
    def of(cls, engine, terminal_names: list[str]) -> "UniqueChecker | None":
        marks = frozenset(t for t, name in enumerate(terminal_names) if name.startswith(MARK))
        return cls(engine, terminal_names, marks) if marks else None

    @property
    def index(self) -> _TokenIndex:
        if self._index is None:
            self._index = token_index(self.vocab)
        return self._index

    # ------------------------------------------------------------------ the parse
    def marked_after(self, hid: int, data: bytes) -> bool:
        """Whether, from hypothesis set ``hid``, the string ending with the last byte of
        ``data`` may be a lexeme of a marked terminal that the parse takes there."""
        engine = self.engine
        h = engine.step_bytes(hid, data)
        if h < 0:
            return True  # not reachable: whatever is answered, the grammar refuses the text
        completed = engine.lexer.completed
        advance = engine.parser.advance
        for p, c in engine.hyps(h):
            if c < 0:
                continue
            for t in completed[c]:
                if t in self.marks and advance(p, t) >= 0:
                    return True
        return False

    def feed(self, hid: int, track: Track, data: bytes) -> Track | None:
        """:func:`feed` from the matcher state (``hid``, ``track``)."""
        return feed(track, data, lambda i: self.marked_after(hid, data[:i + 1]))

    # ------------------------------------------------------------------ masks
    def filter(self, hid: int, track: Track, words: np.ndarray) -> np.ndarray:
        """``words`` (the grammar's mask at ``hid``) less the tokens that end an item equal
        to an earlier one of its array. Returns ``words`` itself when none does."""
        key = (hid, track)
        got = self._masks.get(key)
        if got is not None and got[0] is words:
            return got[1]
        removed = self._duplicates(hid, track, words)
        if removed:
            out = words.copy()
            for t in removed:
                out[t >> 5] &= ~np.uint32(1 << (t & 31))
            out.setflags(write=False)
        else:
            out = words
        with self._lock:
            self._masks.put(key, (words, out))
        return out

    def _duplicates(self, hid: int, track: Track, words: np.ndarray) -> list[int]:
        frames, mode, raw = track
        idx = self.index
        top = frames[-1] if frames else None
        followed = top is not None and top[0] is not False
        if not followed:
            slow = idx.nested
        elif mode == _OUT:
            slow = idx.several
        elif mode == _ITEM and top[0] and top[1] and not _pending(raw):
            slow = idx.several
        else:
            # inside an item (before its array is known to be checked, or in an escape)
            slow = idx.several if not top[1] else np.concatenate([idx.several, idx.single])
        out: list[int] = []
        if mode == _ITEM and top is not None and top[0] and top[1] and not _pending(raw):
            head = unescape(raw)
            n = len(head)  # type: ignore[arg-type]
            for u in top[1]:
                if u.startswith(head):
                    ids = idx.by_head.get(u[n:])
                    if ids is not None:
                        out.extend(int(t) for t in ids[_allowed(words, ids)])
        cands = slow[_allowed(words, slow)] if len(slow) else slow
        if len(cands):
            tb = self.vocab.token_bytes
            for t in cands.tolist():
                if self.feed(hid, track, tb(t)) is None:
                    out.append(t)
        return out


def _allowed(words: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return ((words[ids >> 5] >> (ids & 31).astype(np.uint32)) & 1).astype(bool)
