"""``enum`` and ``const``: literal JSON values."""

from __future__ import annotations

import json
import re
from typing import Any

from ...grammar.ir import Lit, Terminal, Union_
from ...grammar.ir import RegexTerm as Regex
from .flat import Flat
from ...limits import limit_error
from .number_ranges import to_decimal
from .values import ordered, value_key


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
            if not self.valid(v, rest):
                continue
            if isinstance(v, (dict, list)):
                alts.append((self.value_literal(v),))
            else:
                scalars.append(self.scalar_term(v))
        if scalars:
            uniq = list(dict.fromkeys(scalars))
            term = uniq[0] if len(uniq) == 1 else Union_(tuple(uniq))
            alts.insert(0, (self.b.terminal(term),))
        return alts

    def scalar_term(self, v: Any) -> Terminal:
        """Terminal of the scalar ``v``; a number also with trailing fraction zeros (``1.0`` for ``1``
        from draft 6 on)."""
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
            frac = r"(?:\.0+)?" if self.draft >= 6 or isinstance(v, float) else ""
            return Regex(sign + digits + frac)
        text = format(abs(d.normalize()), "f")
        return Regex(("-" if d < 0 else "") + re.escape(text) + "0*")

    def value_literal(self, v: Any) -> str:
        """Nonterminal for exactly the JSON value ``v`` (whitespace per policy)."""
        key = "lit:" + ordered(v)
        if key in self._memo:
            return self._memo[key]
        name = self.name("const")
        self._memo[key] = name
        if isinstance(v, dict):
            if not v:
                alts = [(self.T_EMPTY_OBJ,)]
            else:
                syms: list[str] = [self.T_LBRACE]
                for i, (k, x) in enumerate(v.items()):
                    if i:
                        syms.append(self.T_COMMA)
                    syms += [self.b.terminal(Lit(json.dumps(k, ensure_ascii=False))), self.T_COLON, self.value_literal(x)]
                syms.append(self.T_RBRACE)
                alts = [tuple(syms)]
        elif isinstance(v, list):
            if not v:
                alts = [(self.T_EMPTY_ARR,)]
            else:
                syms = [self.T_LBRACK]
                for i, x in enumerate(v):
                    if i:
                        syms.append(self.T_COMMA)
                    syms.append(self.value_literal(x))
                syms.append(self.T_RBRACK)
                alts = [tuple(syms)]
        else:
            alts = [(self.b.terminal(self.scalar_term(v)),)]
        self.rule(name, alts)
        return name
