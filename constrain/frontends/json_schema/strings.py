"""Strings: ``pattern``, ``format``, ``minLength``/``maxLength``, excluded values."""

from __future__ import annotations

import re
import warnings

from ...errors import SchemaError
from ...grammar.ir import Concat, Difference, Intersect, Lit, Terminal, Union_
from ...grammar.ir import RegexTerm as Regex
from .flat import Flat
from .formats import format_regexes


class StringBuilder:
    """The string terminal of a flattened schema."""

    def _string_contents(self, f: Flat) -> list[Terminal]:
        """Terminals, inside the quotes, that every string ``f`` admits matches."""
        contents: list[Terminal] = []
        for p, pptr in f.patterns:
            check_pattern(p, pptr)
            contents.append(Regex(p, ascii=True, search=True, json_string=True))
        for fmt, fptr in f.formats:
            for r in format_regexes(fmt) or ():
                contents.append(Regex(r, ascii=True, json_string=True))
            self.report.add(fptr, "format", "enforced", fmt)
        if f.min_len or f.max_len is not None:
            hi = "" if f.max_len is None else str(f.max_len)
            contents.append(Regex(r"[\s\S]{%d,%s}" % (f.min_len, hi), json_string=True))
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
            parts = self._string_contents(sub)
            if not parts:
                return None
            excl.append(parts[0] if len(parts) == 1 else Intersect(tuple(parts)))
        if excl:
            term = Difference(term, Concat((Lit('"'), excl[0] if len(excl) == 1 else Union_(tuple(excl)), Lit('"'))))
        return self.b.terminal(term)


_PATTERN_CACHE: dict[str, re.Pattern | None] = {}


def pattern_search(pattern: str, text: str) -> bool:
    """ECMA-style ``pattern`` search approximated with Python's re (ASCII classes)."""
    rx = _PATTERN_CACHE.get(pattern)
    if rx is None and pattern not in _PATTERN_CACHE:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                rx = re.compile(_ecma_to_python(pattern), re.ASCII)
        except re.error:
            rx = None
        _PATTERN_CACHE[pattern] = rx
    if rx is None:
        raise SchemaError(f"pattern {pattern!r} is not a valid regular expression", "")
    return rx.search(text) is not None


def _ecma_to_python(p: str) -> str:
    # ECMA-262 and Python agree on the syntax schemas use in practice (\uXXXX included);
    # \d \w \s get ECMA's ASCII meaning from re.ASCII / Regex(ascii=True).
    return p


def check_pattern(p: str, ptr: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(_ecma_to_python(p))
    except re.error as e:
        raise SchemaError(f"pattern {p!r} is not a supported regular expression ({e})", ptr) from None
