"""Regexes for JSON numbers inside exact decimal bounds.

The bounded languages are of numbers written without an exponent
(``-?(0|[1-9][0-9]*)(\\.[0-9]+)?``); a value is compared as the exact decimal it spells,
so ``minimum: 0.1`` admits ``0.1`` and ``0.10`` but not ``0.09999``.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["number_range_regexes", "to_decimal"]

DIGITS_NONNEG = r"(?:0|[1-9][0-9]*)"


def to_decimal(value: object) -> Decimal:
    """``value`` (int, float or numeric string) as an exact Decimal of its shortest repr."""
    if isinstance(value, bool):
        raise TypeError("not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def _split(b: Decimal) -> tuple[str, str]:
    """Nonnegative ``b`` as (integer digits, fraction digits without trailing zeros)."""
    text = format(b, "f")
    if "." in text:
        i, f = text.split(".")
    else:
        i, f = text, ""
    i = i.lstrip("0") or "0"
    return i, f.rstrip("0")


def _digit_class(lo: int, hi: int) -> str | None:
    if lo > hi:
        return None
    if lo == hi:
        return str(lo)
    return f"[{lo}-{hi}]"


def _alt(parts: list[str]) -> str | None:
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return "(?:" + "|".join(parts) + ")"


def _int_ge(n: str) -> str:
    """Canonical nonnegative integers >= n (digit string without leading zeros)."""
    k = len(n)
    parts = [f"[1-9][0-9]{{{k},}}"]
    for i in range(k):
        low = int(n[i]) + 1
        cls = _digit_class(low, 9)
        if cls is not None:
            parts.append(n[:i] + cls + (f"[0-9]{{{k - i - 1}}}" if k - i - 1 else ""))
    parts.append(n)
    return _alt(parts)  # type: ignore[return-value]


def _int_gt(n: str) -> str:
    return _int_ge(str(int(n) + 1))


def _int_le(n: str) -> str:
    """Canonical nonnegative integers <= n."""
    k = len(n)
    parts: list[str] = ["0"]
    if k >= 2:
        parts.append(f"[1-9][0-9]{{0,{k - 2}}}")
    if k >= 1 and n != "0":
        for i in range(k):
            lo = 1 if i == 0 else 0
            cls = _digit_class(lo, int(n[i]) - 1)
            if cls is not None:
                parts.append(n[:i] + cls + (f"[0-9]{{{k - i - 1}}}" if k - i - 1 else ""))
        parts.append(n)
    return _alt(parts)  # type: ignore[return-value]


def _int_lt(n: str) -> str | None:
    if n == "0":
        return None
    return _int_le(str(int(n) - 1))


# Fraction comparisons: f is the digit string after the point ("" when absent);
# each returns (empty fraction allowed, regex for nonempty f or None).
def _frac_above(F: str, inclusive: bool) -> tuple[bool, str | None]:
    """Fractions ``f >= F`` (``inclusive``) or ``f > F``."""
    if not F:
        return (True, "[0-9]+") if inclusive else (False, "[0-9]*[1-9][0-9]*")
    parts = []
    for i, d in enumerate(F):
        cls = _digit_class(int(d) + 1, 9)
        if cls:
            parts.append(F[:i] + cls + "[0-9]*")
    parts.append(F + ("[0-9]*" if inclusive else "[0-9]*[1-9][0-9]*"))
    return False, _alt(parts)


def _frac_lt(F: str) -> tuple[bool, str | None]:
    if not F:
        return False, None
    parts = []
    for i, d in enumerate(F):
        cls = _digit_class(0, int(d) - 1)
        if cls:
            parts.append(F[:i] + cls + "[0-9]*")
        parts.append(F[:i] + "0*" if i else "0+")
    return True, _alt(parts)


def _frac_le(F: str) -> tuple[bool, str | None]:
    empty, lt = _frac_lt(F)
    if not F:
        return True, "0+"
    return True, _alt([lt, F + "0*"] if lt else [F + "0*"])


def _frac_part(spec: tuple[bool, str | None]) -> str | None:
    empty, nonempty = spec
    if nonempty is None:
        return "" if empty else None
    return f"(?:\\.{nonempty})?" if empty else f"\\.{nonempty}"


def _cmp_nonneg(op: str, bound: Decimal) -> str | None:
    """Regex of nonnegative decimals ``y`` (no sign, no exponent) with ``y op bound``, bound >= 0."""
    I, F = _split(bound)
    any_frac = r"(?:\.[0-9]+)?"
    if op in ("ge", "gt"):
        int_part = _int_gt(I)
        frac = _frac_part(_frac_above(F, op == "ge"))
    else:
        int_part = _int_lt(I)
        frac = _frac_part(_frac_le(F) if op == "le" else _frac_lt(F))
    parts = []
    if int_part is not None:
        parts.append(int_part + any_frac)
    if frac is not None:
        parts.append(I + frac)
    return _alt(parts)


def _branch(lo: tuple[Decimal, bool] | None, hi: tuple[Decimal, bool] | None) -> list[str] | None:
    """Regexes (to intersect) for nonnegative y within the bounds; None when empty."""
    regs = []
    zero = Decimal(0)
    if lo is not None and (lo[0] > zero or (lo[0] == zero and lo[1])):
        r = _cmp_nonneg("gt" if lo[1] else "ge", lo[0])
        if r is None:
            return None
        regs.append(r)
    if hi is not None:
        if hi[0] < zero or (hi[0] == zero and hi[1]):
            return None
        r = _cmp_nonneg("lt" if hi[1] else "le", hi[0])
        if r is None:
            return None
        regs.append(r)
    if not regs:
        regs.append(DIGITS_NONNEG + r"(?:\.[0-9]+)?")
    return regs


def number_range_regexes(
    lo: tuple[Decimal, bool] | None, hi: tuple[Decimal, bool] | None
) -> tuple[list[str] | None, list[str] | None]:
    """(regexes for the nonnegative branch, regexes for the negated branch after ``-``).

    A branch is a list of regexes whose intersection is the branch's language, or None
    when the branch is empty. ``lo``/``hi`` are (bound, exclusive).
    """
    pos = _branch(lo, hi)
    neg_lo = None if hi is None else (-hi[0], hi[1])
    neg_hi = None if lo is None else (-lo[0], lo[1])
    neg = _branch(neg_lo, neg_hi)
    return pos, neg
