"""Strings: ``pattern``, ``format``, ``minLength``/``maxLength``, excluded values."""

from __future__ import annotations

import re
import warnings

from ...automata import charset as cs
from ...automata.parse import parse
from ...errors import RegexError, SchemaError
from ...grammar.ir import Concat, Difference, Intersect, Lit, Terminal, Union_
from ...grammar.ir import RegexTerm as Regex
from .flat import Flat
from .formats import CONTENT_BASE64, format_terminals


# string contents of a length between two bounds (the upper one may be empty)
_LENGTH = r"[\s\S]{%d,%s}"
_AT_LEAST = re.compile(re.escape(_LENGTH).replace("%d", r"\d+").replace("%s", ""))


def any_content_at_least(term: Terminal) -> bool:
    """Whether ``term`` is the terminal of JSON strings of any content and at least some
    length (what a schema of only ``type: string`` and ``minLength`` compiles to)."""
    return (isinstance(term, Concat) and len(term.parts) == 3 and term.parts[0] == term.parts[2] == Lit('"')
            and isinstance(term.parts[1], Regex) and term.parts[1].json_string
            and _AT_LEAST.fullmatch(term.parts[1].source) is not None)


class StringBuilder:
    """The string terminal of a flattened schema."""

    def _string_contents(self, f: Flat, negated: bool = False) -> list[Terminal]:
        """Terminals, inside the quotes, that every string ``f`` admits matches; with
        ``negated``, for a string ``f`` excludes (formats then over-approximate)."""
        contents: list[Terminal] = []
        for p, pptr in f.patterns:
            check_pattern(p, pptr)
            contents.append(Regex(p, ascii=True, search=True, json_string=True))
        for fmt, fptr in f.formats:
            contents.extend(format_terminals(fmt, negated) or ())
            if fmt == CONTENT_BASE64:
                self.report.add(fptr, "contentEncoding", "enforced", "base64 (RFC 4648, padded, no line breaks)")
            else:
                self.report.add(fptr, "format", "enforced", fmt)
        if f.min_len or f.max_len is not None:
            hi = "" if f.max_len is None else str(f.max_len)
            contents.append(Regex(_LENGTH % (f.min_len, hi), json_string=True))
        return contents

    def string_terminal(self, f: Flat, not_strings: list[str], not_cons: list[tuple[dict, str]] = ()) -> str | None:
        """Terminal of the strings ``f`` admits, less the values ``not_strings`` and the strings
        matching the constraints ``not_cons``; None if none."""
        if f.max_len is not None and f.max_len < f.min_len:
            return None
        contents = self._string_contents(f)
        if not contents and not not_strings and not not_cons:
            return self.b.terminal(self.STRING_TERM, "STRING")
        if contents:
            inner: Terminal = contents[0] if len(contents) == 1 else Intersect(tuple(contents))
            term: Terminal = Concat((Lit('"'), inner, Lit('"')))
        else:
            term = self.STRING_TERM
        excl: list[Terminal] = [Regex(re.escape(s), json_string=True) for s in not_strings]
        for cons, cptr in not_cons:
            sub = Flat(cptr)
            self._merge_keywords(sub, cons, cptr)
            parts = self._string_contents(sub, negated=True)
            if not parts:
                return None
            excl.append(parts[0] if len(parts) == 1 else Intersect(tuple(parts)))
        if excl:
            term = Difference(term, Concat((Lit('"'), excl[0] if len(excl) == 1 else Union_(tuple(excl)), Lit('"'))))
        return self.b.terminal(term)


def content_constraints(s: dict, draft: int, ptr: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """What ``contentEncoding``/``contentMediaType`` of the schema object ``s`` assert:
    (formats a string must have, as ``(name, pointer)``; keywords that cannot be
    enforced, as ``(pointer, keyword, note)``).

    Draft 7 lets validators treat them as assertions (the test suite's optional tests
    do); drafts 2019-09 and later make them annotations, and drafts 4 and 6 do not know
    them: nothing there. In draft 7, ``contentEncoding: base64`` asserts RFC 4648's
    alphabet and padding (a regular language), other encodings nothing checkable;
    ``contentMediaType: application/json`` asserts that the (decoded) string is a JSON
    text, which no regular language is (brackets nest): not enforced (strict mode
    refuses it). Other media types are not checked."""
    if draft != 7:
        return [], []
    formats: list[tuple[str, str]] = []
    unsupported: list[tuple[str, str, str]] = []
    enc = s.get("contentEncoding")
    if isinstance(enc, str) and enc.lower() == "base64":
        formats.append((CONTENT_BASE64, ptr + "/contentEncoding"))
    media = s.get("contentMediaType")
    if isinstance(media, str) and media.split(";")[0].strip().lower() == "application/json":
        inside = " inside base64" if formats else ""
        unsupported.append((ptr + "/contentMediaType", "contentMediaType",
                            f"a JSON document{inside} is not a regular language"))
    return formats, unsupported


_PATTERN_CACHE: dict[str, re.Pattern | None] = {}


def pattern_search(pattern: str, text: str) -> bool:
    """ECMA-style ``pattern`` search approximated with Python's re (ASCII classes)."""
    rx = _PATTERN_CACHE.get(pattern)
    if rx is None and pattern not in _PATTERN_CACHE:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                rx = re.compile(_ecma_to_python(pattern), re.ASCII)
        except (re.error, ValueError):
            rx = None
        _PATTERN_CACHE[pattern] = rx
    if rx is None:
        raise SchemaError(f"pattern {pattern!r} is not a valid regular expression", "")
    return rx.search(text) is not None


def _ecma_to_python(p: str) -> str:
    """``p`` in Python's syntax. ECMA-262 and Python agree on the syntax schemas use in
    practice (``\\uXXXX`` included; ``\\d \\w \\s`` get ECMA's ASCII meaning from
    re.ASCII / Regex(ascii=True)); Unicode property escapes (``\\p{L}``, ``\\P{sc=Grek}``),
    which Python lacks, become classes of their code points; ``$`` outside a class is the
    end of the input (``\\Z``: Python's ``$`` also matches before a final newline). Raises
    ValueError naming an unknown property."""
    if "\\p{" not in p and "\\P{" not in p and "$" not in p:
        return p
    out: list[str] = []
    i, n = 0, len(p)
    opening = -1  # index in ``out`` of the open class's "[" or "[^", -1 outside classes
    members = False  # the open class has a member so far
    while i < n:
        c = p[i]
        if c == "\\" and i + 1 < n:
            if p[i + 1] in "pP" and p.startswith("{", i + 2):
                end = p.find("}", i + 3)
                if end < 0:
                    raise ValueError(f"unterminated Unicode property escape at position {i}")
                r = cs.unicode_property(p[i + 3 : end])
                if p[i + 1] == "P":
                    r = cs.complement(r)
                if opening < 0:
                    out.append("[" + _class_body(r) + "]" if r else _NOTHING)
                elif r:
                    out.append(_class_body(r))
                    members = True
                i = end + 1
                continue
            out.append(p[i : i + 2])
            members = True
            i += 2
            continue
        if c == "$" and opening < 0:
            out.append("\\Z")
            i += 1
            continue
        if c == "[" and opening < 0:
            j = i + 2 if p.startswith("^", i + 1) else i + 1
            opening = len(out)
            out.append(p[i:j])
            members = p.startswith("]", j)  # a leading "]" is a member (Python's reading, as the parser's)
            if members:
                out.append("]")
                j += 1
            i = j
            continue
        if c == "]" and opening >= 0:
            if not members:  # only empty properties: no member at all
                out[opening] = _ANY_CLASS_OPEN if out[opening] == "[^" else _NOTHING_CLASS_OPEN
            opening = -1
        elif opening >= 0:
            members = True
        out.append(c)
        i += 1
    return "".join(out)


_NOTHING = "[^\\x00-\\U0010ffff]"
_NOTHING_CLASS_OPEN = "[^\\x00-\\U0010ffff"  # "[" + "]" closes it: no character
_ANY_CLASS_OPEN = "[\\x00-\\U0010ffff"  # "[^" + "]": every character


def _class_body(r: tuple) -> str:
    """Nonempty ranges of code points as the inside of a Python class."""
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in r)


def check_pattern(p: str, ptr: str) -> None:
    """Raise :class:`SchemaError` at ``ptr`` when ``p`` is not a pattern this front end reads."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(_ecma_to_python(p))
    except re.error as e:
        raise SchemaError(f"pattern {p!r} is not a supported regular expression ({e})", ptr) from None
    except ValueError as e:
        raise SchemaError(f"pattern {p!r}: {e}", ptr) from None
    if "\\p{" in p or "\\P{" in p:
        # Python reads the translation more loosely than ECMA-262 the original ([\p{L}-z]).
        try:
            parse(p, ascii=True, search=True)
        except RegexError as e:
            raise SchemaError(f"pattern {p!r} is not a supported regular expression ({e.msg})", ptr) from None
