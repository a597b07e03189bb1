"""``enum`` and ``const``: literal JSON values.

JSON Schema compares values mathematically: ``1``, ``1.0`` and ``1.00`` are one value, so
a member admits each of its numbers with trailing fraction zeros or without (never with
an exponent: ``1e0`` is refused). Before draft 6 the spelling still decides ``type:
integer`` (``1.0`` is no integer there), so a draft-4 member admits only the spellings
that the rest of the schema accepts. Objects compare with their keys in any order: with
``property_order="any"`` a member admits its keys in any order (up to
``Limits.max_schema_order_states`` sets of keys written), else in the order it lists them
(as declared properties follow the schema's order).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from itertools import product
from typing import Any, Iterator

from ...grammar.ir import Lit, Terminal, Union_
from ...grammar.ir import RegexTerm as Regex
from .flat import Flat
from ...limits import limit_error
from .number_ranges import to_decimal
from .values import ordered, value_key

# Integral numbers in one draft-4 member whose spellings are checked together (2^n
# variants); past this, the member's own spellings only.
_MAX_SPELLING_CHECKS = 6


class EnumBuilder:
    """Alternatives for enum/const values, and exact literals of any JSON value."""

    def build_enum(self, f: Flat, hint: str, not_vals: list[Any]) -> list[tuple[str, ...]]:
        """Alternatives for the values of ``f.enum`` the rest of ``f`` admits, less ``not_vals``."""
        if len(f.enum) > self.limits.max_schema_enum:
            raise limit_error(f"an enum of {len(f.enum)} values (at {f.ptr or '/'})", "max_schema_enum",
                              self.limits.max_schema_enum)
        excluded = {value_key(v) for v in not_vals}
        rest = f.without_combinators()
        rest.enum = None
        seen = set()
        scalars: list[Terminal] = []
        alts: list[tuple[str, ...]] = []
        for v in f.enum:
            k = value_key(v)
            if k in seen or k in excluded:
                continue
            seen.add(k)
            for spelled, both in self._spellings(v, rest):
                if isinstance(spelled, (dict, list)):
                    alts.append((self.value_literal(spelled, both),))
                else:
                    scalars.append(self.scalar_term(spelled, both))
        if scalars:
            uniq = list(dict.fromkeys(scalars))
            term = uniq[0] if len(uniq) == 1 else Union_(tuple(uniq))
            alts.insert(0, (self.b.terminal(term),))
        return alts

    def _spellings(self, v: Any, rest: Flat) -> list[tuple[Any, bool]]:
        """``(value, both)`` pairs whose literals together spell the members equal to ``v``
        that ``rest`` admits: ``both``, each integral number with or without a zero
        fraction; else ints without one and integral floats with one."""
        if self.draft >= 6:
            return [(v, True)] if self.valid(v, rest) else []
        # Draft 4: ``1`` and ``1.0`` differ for ``type: integer``, also under anyOf or
        # not, so every mix of spellings is checked (when the numbers are few).
        n = sum(1 for _ in _integral_numbers(v))
        if n == 0:
            return [(v, True)] if self.valid(v, rest) else []
        if n > _MAX_SPELLING_CHECKS:
            return [(v, False)] if self.valid(v, rest) else []
        good = []
        every = True
        for floats in product((False, True), repeat=n):
            variant = _respelled(v, iter(floats))
            if variant is None or not self.valid(variant, rest):
                every = False
            else:
                good.append((variant, False))
        return [(v, True)] if every else good

    def scalar_term(self, v: Any, both: bool = True) -> Terminal:
        """Terminal of the scalar ``v``: a number also with trailing fraction zeros; an
        integral one with and without a zero fraction when ``both``, else as its type
        says (an int without, a float with)."""
        if v is None:
            return Lit("null")
        if v is True:
            return Lit("true")
        if v is False:
            return Lit("false")
        if isinstance(v, str):
            return Lit(json.dumps(v, ensure_ascii=False))
        d = to_decimal(v)
        if d == d.to_integral_value():
            digits = str(abs(int(d)))
            sign = "-" if d < 0 else ("-?" if d == 0 else "")
            frac = r"(?:\.0+)?" if both else (r"\.0+" if isinstance(v, float) else "")
            return Regex(sign + digits + frac)
        text = format(abs(d.normalize()), "f")
        return Regex(("-" if d < 0 else "") + re.escape(text) + "0*")

    def value_literal(self, v: Any, both: bool = True) -> str:
        """Nonterminal for exactly the JSON values equal to ``v`` (whitespace per policy;
        numbers spelled as :meth:`scalar_term` says; object keys in ``v``'s order, or in
        any order with ``property_order="any"``)."""
        key = f"lit:{int(both)}{int(self.any_order)}:" + ordered(v)
        if key in self._memo:
            return self._memo[key]
        name = self.name("const")
        self._memo[key] = name
        if isinstance(v, dict):
            if not v:
                alts = [(self.T_EMPTY_OBJ,)]
            else:
                members = [(self.b.terminal(Lit(json.dumps(k, ensure_ascii=False))), self.T_COLON,
                            self.value_literal(x, both)) for k, x in v.items()]
                alts = [(self.T_LBRACE, self._members_literal(name, members), self.T_RBRACE)]
        elif isinstance(v, list):
            if not v:
                alts = [(self.T_EMPTY_ARR,)]
            else:
                syms: list[str] = [self.T_LBRACK]
                for i, x in enumerate(v):
                    if i:
                        syms.append(self.T_COMMA)
                    syms.append(self.value_literal(x, both))
                syms.append(self.T_RBRACK)
                alts = [tuple(syms)]
        else:
            alts = [(self.b.terminal(self.scalar_term(v, both)),)]
        self.rule(name, alts)
        return name

    def _members_literal(self, name: str, members: list[tuple[str, str, str]]) -> str:
        """Nonterminal for the ``"key": value`` members of an object literal, comma
        separated: in the given order, or each exactly once in any order (a rule per set
        of members written) with ``property_order="any"`` while the sets are few."""
        n = len(members)
        if not self.any_order or n == 1 or 2**n > self.limits.max_schema_order_states:
            syms: list[str] = []
            for i, m in enumerate(members):
                syms += ([self.T_COMMA] if i else []) + list(m)
            return self.rule(self.name(name + "_members"), [tuple(syms)])
        full = (1 << n) - 1
        rules: dict[int, str] = {}

        def left(written: int) -> str:
            # The members not in ``written`` (a bit each), the first led by a comma
            # unless none is written yet.
            got = rules.get(written)
            if got is not None:
                return got
            rule = rules[written] = self.name(f"{name}_members")
            alts: list[tuple[str, ...]] = [()] if written == full else []
            for i, m in enumerate(members):
                if not written >> i & 1:
                    lead = (self.T_COMMA,) if written else ()
                    alts.append(lead + m + (left(written | 1 << i),))
            return self.rule(rule, alts)

        return left(0)


def _integral_numbers(v: Any) -> Iterator[Any]:
    """The integral numbers of the JSON value ``v``, depth first, in order."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return
    if isinstance(v, (int, float)):
        d = to_decimal(v)
        if d == d.to_integral_value():
            yield v
    elif isinstance(v, list):
        for x in v:
            yield from _integral_numbers(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from _integral_numbers(x)


def _respelled(v: Any, floats: Iterator[bool]) -> Any:
    """``v`` with its integral numbers, in :func:`_integral_numbers` order, made floats
    or ints as ``floats`` says; None where a float cannot hold the value exactly."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        d = to_decimal(v)
        if d != d.to_integral_value():
            return v
        if not next(floats):
            return int(d)
        try:
            x = float(d)
        except OverflowError:
            return None
        return x if Decimal(x) == d else None
    if isinstance(v, list):
        out = [_respelled(x, floats) for x in v]
        return None if any(y is None and x is not None for x, y in zip(v, out)) else out
    out_d = {k: _respelled(x, floats) for k, x in v.items()}
    return None if any(out_d[k] is None and x is not None for k, x in v.items()) else out_d
