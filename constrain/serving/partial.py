"""Partial values of a JSON text that is still being streamed.

A container shows up as soon as it opens and holds its complete members (or items), plus
the last one when that is itself an open container, partial in turn. Strings and literals
show up once complete; a number once a character that cannot continue it follows, or at
:meth:`PartialJson.finish`. So each partial value is a prefix of the final value (of what
``json.loads`` returns) and only grows as text is fed.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

__all__ = ["MISSING", "PartialJson", "partial_value"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()
"""What :meth:`PartialJson.value` returns while no part of the value is known (``None`` is JSON null)."""

# Modes: what the next character may be.
_VALUE, _ARRAY_FIRST, _OBJECT_FIRST, _OBJECT_KEY, _COLON, _AFTER_VALUE, _STRING, _NUMBER, _LITERAL = range(9)

# Number states (after "-", "0", "12", "1.", "1.5", "1e", "1e+", "1e5").
_N_SIGN, _N_ZERO, _N_INT, _N_DOT, _N_FRAC, _N_E, _N_ESIGN, _N_EXP = range(8)
_N_COMPLETE: Final = frozenset({_N_ZERO, _N_INT, _N_FRAC, _N_EXP})
_N_INTEGRAL: Final = frozenset({_N_ZERO, _N_INT})
_N_START: Final = {"-": _N_SIGN, "0": _N_ZERO, **{d: _N_INT for d in "123456789"}}


def _number_table() -> dict[tuple[int, str], int]:
    digits = "0123456789"
    rules = [
        (_N_SIGN, "0", _N_ZERO), (_N_SIGN, "123456789", _N_INT),
        (_N_ZERO, ".", _N_DOT), (_N_ZERO, "eE", _N_E),
        (_N_INT, digits, _N_INT), (_N_INT, ".", _N_DOT), (_N_INT, "eE", _N_E),
        (_N_DOT, digits, _N_FRAC),
        (_N_FRAC, digits, _N_FRAC), (_N_FRAC, "eE", _N_E),
        (_N_E, "+-", _N_ESIGN), (_N_E, digits, _N_EXP),
        (_N_ESIGN, digits, _N_EXP),
        (_N_EXP, digits, _N_EXP),
    ]
    return {(state, c): nxt for state, chars, nxt in rules for c in chars}


_NUMBER_NEXT: Final = _number_table()
_WS: Final = frozenset(" \t\n\r")
_ESCAPES: Final = frozenset('"\\/bfnrt')
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_PLAIN: Final = re.compile(r'[^"\\\x00-\x1f]+')
_LITERALS: Final = {"t": ("true", True), "f": ("false", False), "n": ("null", None)}


class _Frame:
    """An open container: its complete members or items, and the key of the member being written."""

    __slots__ = ("items", "key", "closer")

    def __init__(self, items: dict[str, Any] | list[Any]):
        self.items = items
        self.key: str | None = None
        self.closer = "}" if isinstance(items, dict) else "]"


class PartialJson:
    """Incremental parser of a streamed JSON text.

    :meth:`feed` appends text and only scans the new characters; :meth:`value` returns the
    partial value of all text fed so far (:data:`MISSING` while nothing is complete).
    Values returned share complete sub-values with later ones: treat them as read-only.
    It never raises on bad text: from the first character that cannot extend a JSON text
    on, input is ignored, :attr:`error` says where, and :meth:`value` keeps the partial
    value of the text before it.
    """

    def __init__(self) -> None:
        self.error: str | None = None
        self._offset = 0
        self._finished = False
        self._mode = _VALUE
        self._stack: list[_Frame] = []
        self._top: Any = MISSING
        self._buf: list[str] = []  # raw text of the string or number being scanned
        self._is_key = False
        self._esc = 0  # in a string: 0 plain, 1 after "\", 2-5 before the 1st-4th hex digit of \uXXXX
        self._num = _N_SIGN
        self._literal = ""
        self._literal_value: Any = None
        self._literal_pos = 0
        self._version = 0
        self._cached_version = -1
        self._cached: Any = MISSING

    def feed(self, delta: str) -> None:
        """Append ``delta`` to the text."""
        if self.error is not None:
            return
        if self._finished:
            if delta:
                self.error = f"text fed after finish() at offset {self._offset}"
            return
        i, n = 0, len(delta)
        while i < n:
            if self._mode == _STRING:
                i = self._scan_string(delta, i)
                if i < 0:
                    return
            elif self._step(delta[i], self._offset + i):
                i += 1
            else:
                if self.error is None:
                    self.error = f"invalid JSON at offset {self._offset + i}: unexpected {delta[i]!r}"
                return
        self._offset += n

    def finish(self) -> None:
        """Mark the end of the text: a trailing top-level number completes; a truncated text sets :attr:`error`."""
        if self._finished:
            return
        self._finished = True
        if self.error is not None:
            return
        if self._mode == _NUMBER and not self._stack and self._num in _N_COMPLETE:
            if not self._end_number(self._offset):
                return
        if self._stack or self._mode != _AFTER_VALUE:
            self.error = f"unexpected end of input at offset {self._offset}"

    def value(self) -> Any:
        """The partial value of the text fed so far (before :attr:`error`, if any)."""
        if self._cached_version != self._version:
            self._cached = self._build()
            self._cached_version = self._version
        return self._cached

    def _build(self) -> Any:
        stack = self._stack
        if not stack:
            return self._top
        partial: Any = stack[-1].items.copy()
        for frame in reversed(stack[:-1]):
            outer = frame.items.copy()
            if isinstance(outer, dict):
                outer[frame.key] = partial
            else:
                outer.append(partial)
            partial = outer
        return partial

    def _step(self, c: str, pos: int) -> bool:
        """Consume one character outside a string; False when it cannot extend the text."""
        mode = self._mode
        if mode == _NUMBER:
            nxt = _NUMBER_NEXT.get((self._num, c))
            if nxt is not None:
                self._num = nxt
                self._buf.append(c)
                return True
            # Only a character that may follow the number completes it, so that on bad
            # text value() still shows the partial value of the text before it.
            follows = c in _WS or (bool(self._stack) and (c == "," or c == self._stack[-1].closer))
            if self._num not in _N_COMPLETE or not follows or not self._end_number(pos):
                return False
            mode = self._mode
        if mode == _LITERAL:
            if c != self._literal[self._literal_pos]:
                return False
            self._literal_pos += 1
            if self._literal_pos == len(self._literal):
                self._emit(self._literal_value)
            return True
        if c in _WS:
            return True
        if mode == _VALUE or mode == _ARRAY_FIRST:
            if c == "]" and mode == _ARRAY_FIRST:
                self._close()
                return True
            return self._start_value(c)
        if mode == _OBJECT_FIRST or mode == _OBJECT_KEY:
            if c == '"':
                self._start_string(is_key=True)
                return True
            if c == "}" and mode == _OBJECT_FIRST:
                self._close()
                return True
            return False
        if mode == _COLON:
            if c != ":":
                return False
            self._mode = _VALUE
            return True
        if not self._stack:  # after the top-level value, only whitespace
            return False
        frame = self._stack[-1]
        if c == ",":
            self._mode = _OBJECT_KEY if frame.closer == "}" else _VALUE
            return True
        if c == frame.closer:
            self._close()
            return True
        return False

    def _start_value(self, c: str) -> bool:
        if c == '"':
            self._start_string(is_key=False)
        elif c == "{" or c == "[":
            self._stack.append(_Frame({} if c == "{" else []))
            self._mode = _OBJECT_FIRST if c == "{" else _ARRAY_FIRST
            self._version += 1
        elif c in _N_START:
            self._mode = _NUMBER
            self._num = _N_START[c]
            self._buf = [c]
        elif c in _LITERALS:
            self._mode = _LITERAL
            self._literal, self._literal_value = _LITERALS[c]
            self._literal_pos = 1
        else:
            return False
        return True

    def _start_string(self, *, is_key: bool) -> None:
        self._mode = _STRING
        self._is_key = is_key
        self._esc = 0
        self._buf = []

    def _scan_string(self, text: str, i: int) -> int:
        """Scan string characters from ``text[i]``; the index after them, or -1 (and :attr:`error` set)."""
        buf, n = self._buf, len(text)
        while i < n:
            esc = self._esc
            if esc == 0:
                m = _PLAIN.match(text, i)
                if m is not None:
                    buf.append(m.group())
                    i = m.end()
                    continue
                c = text[i]
                if c == '"':
                    self._end_string()
                    return i + 1
                if c != "\\":
                    self.error = f"invalid JSON at offset {self._offset + i}: control character {c!r} in string"
                    return -1
                self._esc = 1
            else:
                c = text[i]
                if esc == 1 and c == "u":
                    self._esc = 2
                elif esc == 1 and c in _ESCAPES:
                    self._esc = 0
                elif esc >= 2 and c in _HEX:
                    self._esc = 0 if esc == 5 else esc + 1
                else:
                    self.error = f"invalid JSON at offset {self._offset + i}: bad escape character {c!r} in string"
                    return -1
            buf.append(c)
            i += 1
        return i

    def _end_string(self) -> None:
        raw = "".join(self._buf)
        # The escapes are validated, so json.loads decodes them (surrogate pairs included) exactly.
        s = json.loads(f'"{raw}"') if "\\" in raw else raw
        if self._is_key:
            self._stack[-1].key = s
            self._mode = _COLON
        else:
            self._emit(s)

    def _end_number(self, end: int) -> bool:
        """Complete the number that ends before offset ``end``; False (and :attr:`error` set) if it is too long."""
        text = "".join(self._buf)
        try:
            number = int(text) if self._num in _N_INTEGRAL else float(text)
        except ValueError:  # past sys.get_int_max_str_digits(), as json.loads is
            self.error = f"invalid JSON at offset {end - len(text)}: integer too long"
            return False
        self._emit(number)
        return True

    def _close(self) -> None:
        self._emit(self._stack.pop().items)

    def _emit(self, value: Any) -> None:
        """Record a complete value as the top-level value, or the next member or item."""
        self._mode = _AFTER_VALUE
        self._version += 1
        if not self._stack:
            self._top = value
            return
        frame = self._stack[-1]
        if isinstance(frame.items, dict):
            frame.items[frame.key] = value  # type: ignore[index]
            frame.key = None
        else:
            frame.items.append(value)


def partial_value(text: str) -> Any:
    """The partial value of ``text``, a prefix of a JSON text (see :class:`PartialJson`)."""
    parser = PartialJson()
    parser.feed(text)
    return parser.value()
