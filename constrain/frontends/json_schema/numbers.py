"""Numbers and integers: bounds, ``multipleOf``, integer syntax per draft."""

from __future__ import annotations

from ...grammar.ir import Concat, Intersect, Lit, Terminal, Union_
from ...grammar.ir import RegexTerm as Regex
from .flat import Flat
from .number_ranges import number_range_regexes
from .syntax import JSON_NUMBER_REGEX

_INT_REGEX = r"-?(?:0|[1-9][0-9]*)"
_INT_REGEX_FRAC = r"-?(?:0|[1-9][0-9]*)(?:\.0+)?"


class NumberBuilder:
    """The number terminal of a flattened schema."""

    def number_terminal(self, f: Flat, integer: bool) -> str | None:
        """Terminal of the numbers ``f`` admits (integers only, when ``integer``); None if none."""
        mult_regs: list[str] = []
        for m, mptr in f.multiple:
            if m == m.to_integral_value():
                # Only integers are multiples of an integer.
                integer = True
                if m == 1:
                    continue
                reg = _int_multiple_suffix(int(m))
                if reg is not None:
                    mult_regs.append(reg)
                    continue
            else:
                sign, digits, exp = m.normalize().as_tuple()
                if digits == (1,) and isinstance(exp, int) and -12 <= exp < 0:
                    # multipleOf 10^-k: at most k significant fraction digits.
                    if not integer:
                        mult_regs.append(r"(?:0|[1-9][0-9]*)(?:\.[0-9]{1,%d}0*)?" % -exp)
                    continue
            self.unsupported(mptr, "multipleOf", f"multipleOf {m}")
        int_syntax = _INT_REGEX_FRAC if self.draft >= 6 else _INT_REGEX
        if f.fractional:
            if integer:
                return None
            # Non-integral numbers, written without exponent.
            mult_frac = r"(?:0|[1-9][0-9]*)\.[0-9]*[1-9][0-9]*"
            if f.lo is None and f.hi is None and not mult_regs:
                return self.b.terminal(Regex("-?" + mult_frac))
        if f.lo is None and f.hi is None and not mult_regs:
            if integer:
                return self.b.terminal(Regex(int_syntax), "INTEGER")
            return self.b.terminal(Regex(JSON_NUMBER_REGEX), "NUMBER")
        if f.lo is not None and f.hi is not None:
            if f.lo[0] > f.hi[0] or (f.lo[0] == f.hi[0] and (f.lo[1] or f.hi[1])):
                return None
        pos, neg = number_range_regexes(f.lo, f.hi)
        branches: list[Terminal] = []
        for sign, regs in (("", pos), ("-", neg)):
            if regs is None:
                continue
            parts: list[Terminal] = [Regex(r) for r in regs]
            if integer:
                parts.append(Regex(r"(?:0|[1-9][0-9]*)(?:\.0+)?" if self.draft >= 6 else r"(?:0|[1-9][0-9]*)"))
            if f.fractional:
                parts.append(Regex(r"(?:0|[1-9][0-9]*)\.[0-9]*[1-9][0-9]*"))
            parts.extend(Regex(r) for r in mult_regs)
            body: Terminal = parts[0] if len(parts) == 1 else Intersect(tuple(parts))
            branches.append(Concat((Lit("-"), body)) if sign else body)
        if not branches:
            return None
        if f.lo is not None or f.hi is not None:
            self.report.add(f.ptr, "minimum/maximum", "enforced", "numbers under bounds are written without exponent")
        term = branches[0] if len(branches) == 1 else Union_(tuple(branches))
        return self.b.terminal(term)


def _int_multiple_suffix(m: int) -> str | None:
    """Regex (over unsigned integer digits, optional zero fraction) for multiples of m = 2^a 5^b."""
    a = b = 0
    x = m
    while x % 2 == 0:
        x //= 2
        a += 1
    while x % 5 == 0:
        x //= 5
        b += 1
    if x != 1:
        return None
    k = max(a, b)
    if k > 4:
        return None
    mod = 10 ** k
    ends = [str(r).zfill(k) for r in range(0, mod, m)]
    # Numbers with fewer than k digits are multiples only when their value is.
    small = [str(r) for r in range(0, mod, m)]
    return "(?:[0-9]*(?:" + "|".join(ends) + ")|" + "|".join(small) + r")(?:\.0+)?"
