"""Numbers and integers: bounds, ``multipleOf``, integer syntax per draft."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from ...grammar.ir import Concat, Intersect, Lit, Terminal, Union_
from ...grammar.ir import RegexTerm as Regex
from .flat import Flat
from .number_ranges import number_range_regexes
from .syntax import _INT_REGEX, _INT_REGEX_FRAC, JSON_NUMBER_REGEX


class NumberBuilder:
    """The number terminal of a flattened schema."""

    def number_terminal(self, f: Flat, integer: bool) -> str | None:
        """Terminal of the numbers ``f`` admits (integers only, when ``integer``); None if none."""
        mult_regs: list[str] = []
        for m, mptr in f.multiple:
            got = multiple_regexes(m)
            if got is None:
                self.unsupported(mptr, "multipleOf", f"multipleOf {m}: only divisibility by 2, 3 and 5 has a "
                                 "regex of useful size, and by 2^6 = 64 and more only with as many 5s")
                continue
            regs, integral = got
            if integral:
                integer = True  # only integers are multiples of an integer
            if integer and not integral and Fraction(m).numerator == 1:
                continue  # every integer is a multiple of 1/Q
            if m == 1:
                continue
            mult_regs.extend(regs)
            self.report.add(mptr, "multipleOf", "enforced", "multiples are written without exponent")
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


# Numbers, unsigned and without exponent, whose digits (the point aside) make a multiple
# of 3: residues 0, 1, 2 of the digits read so far, the point a loop on each.
_MULTIPLE_OF_3 = (r"(?:[0369.]|[147][0369.]*[258]|(?:[258]|[147][0369.]*[147])(?:[0369.]|[258][0369.]*[147])*"
                  r"(?:[147]|[258][0369.]*[258]))*")
_MAX_SUFFIXES = 4096


def multiple_regexes(m: Decimal) -> tuple[list[str], bool] | None:
    """Regexes (to intersect) of the unsigned JSON numbers without exponent
    (``(0|[1-9][0-9]*)(\\.[0-9]+)?``, any other syntax allowed) whose value is a multiple
    of ``m`` > 0, and whether ``m`` is an integer (then only integers are).

    With m = P/Q in lowest terms (Q = 2^a 5^b, q = max(a, b)), x is a multiple of m when
    y = x * 10^q is an integer (no nonzero fraction digit past the q-th) divisible by
    M = P * 10^q / Q. M's factors 2 and 5 (S) depend on y's last digits, listed as
    suffixes; a factor 3 on the sum of all digits. None when M has another factor (7,
    9, 11...: their automata have no regex of useful size) or S needs more than
    4,096 suffixes (a power of 2 above 2^12)."""
    fr = Fraction(m)
    p, q_den = fr.numerator, fr.denominator
    q = max(_power(q_den, 2), _power(q_den, 5))
    big_m = p * 10**q // q_den
    r = big_m // (2 ** _power(big_m, 2) * 5 ** _power(big_m, 5))
    if r not in (1, 3):
        return None
    regs = [r"(?:0|[1-9][0-9]*)" + (r"(?:\.[0-9]{1,%d}0*)?" % q if q else r"(?:\.0+)?")]
    s_part = big_m // r
    if s_part > 1:
        reg = _suffix_regex(s_part, q)
        if reg is None:
            return None
        regs.append(reg)
    if r == 3:
        regs.append(_MULTIPLE_OF_3)
    return regs, q == 0


def _power(n: int, prime: int) -> int:
    k = 0
    while n % prime == 0:
        n //= prime
        k += 1
    return k


def _suffix_regex(s: int, q: int) -> str | None:
    """Regex of unsigned numbers x whose y = x * 10^q is divisible by ``s`` = 2^a 5^b, for
    x with at most q significant fraction digits: y's last t = max(a, b) digits, made of
    the integer part's last t - q and the fraction's first q (padded with zeros), are a
    multiple of s. None past 4,096 such suffixes."""
    t = max(_power(s, 2), _power(s, 5))
    if 10**t // s > _MAX_SUFFIXES:
        return None
    ia = max(t - q, 0)  # digits of the suffix from the integer part
    tf = t - ia  # ... and from the fraction, which are its digits free+1..q
    free = q - tf
    groups: dict[str, list[str]] = {}
    for w in range(0, 10**t, s):
        word = str(w).zfill(t)
        groups.setdefault(word[:ia], []).append(word[ia:])
    alts = []
    for a, windows in groups.items():
        integer = "[0-9]+" if not ia else f"(?:[0-9]*{a}|{a.lstrip('0') or '0'})"
        if not tf:
            alts.append(integer + r"(?:\.[0-9]+)?")  # the fraction is the other regex's
            continue
        zero = "0" * tf in windows
        # A fraction spells its window up to trailing zeros: the prefixes of windows
        # that only zeros follow.
        prefixes = sorted({b[:j] for b in windows for j in range(1, tf + 1) if not b[j:].strip("0")})
        forms = [("[0-9]" * free) + "(?:" + "|".join(prefixes) + ")0*"]
        if zero and free:
            forms.append("[0-9]{1,%d}" % free)
        frac = r"\.(?:" + "|".join(forms) + ")"
        alts.append(integer + (f"(?:{frac})?" if zero else frac))
    return "(?:" + "|".join(alts) + ")"
