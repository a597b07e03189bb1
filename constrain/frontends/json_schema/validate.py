"""Instance checks against flattened constraints (to filter enum values and keys)."""

from __future__ import annotations

import re
from typing import Any

from .flat import Flat
from .formats import format_regexes
from .merge import extras_for_name
from .number_ranges import to_decimal
from .strings import pattern_search
from .values import is_integral, json_type, value_key


class Validator:
    """Checks JSON values against flattened schemas."""

    def _value_keys(self, values: list[Any]) -> frozenset[str]:
        """The keys of ``values`` (an enum's list), made once per list: filtering an
        enum of n values checks each against the list, n times. Lists of flattened
        schemas are replaced, never changed in place; the memo holds the list, so its
        id is not reused while the entry lives."""
        memo = self.__dict__.setdefault("_value_key_sets", {})
        got = memo.get(id(values))
        if got is None or got[0] is not values:
            got = memo[id(values)] = (values, frozenset(value_key(x) for x in values))
        return got[1]

    def valid(self, v: Any, f: Flat) -> bool:
        """Whether JSON value ``v`` satisfies the flattened constraints ``f`` (for enum values)."""
        if f.false:
            return False
        if f.enum is not None and value_key(v) not in self._value_keys(f.enum):
            return False
        t = json_type(v)
        if f.types is not None:
            if t not in f.types and not (t == "number" and "integer" in f.types and is_integral(v, self.draft)):
                return False
        for ptr, kw, note in f.unsupported:
            self.unsupported(ptr, kw, note)
        if f.not_values and value_key(v) in self._value_keys(f.not_values):
            return False
        if t == "string" and f.not_strings:
            for cons, cptr in f.not_strings:
                if self.valid(v, self.flatten([({"type": "string", **cons}, cptr)])):
                    return False
        if t in ("number",) and not isinstance(v, bool):
            d = to_decimal(v)
            if f.fractional and d == d.to_integral_value():
                return False
            if f.lo is not None and (d < f.lo[0] or (f.lo[1] and d == f.lo[0])):
                return False
            if f.hi is not None and (d > f.hi[0] or (f.hi[1] and d == f.hi[0])):
                return False
            for m, _ in f.multiple:
                if d % m != 0:
                    return False
        if t == "string":
            n = len(v)
            if n < f.min_len or (f.max_len is not None and n > f.max_len):
                return False
            for p, pptr in f.patterns:
                if not pattern_search(p, v):
                    return False
            for fmt, _ in f.formats:
                if not all(re.fullmatch(r, v, re.ASCII) for r in format_regexes(fmt) or ()):
                    return False
        if t == "array":
            if len(v) < f.min_items or (f.max_items is not None and len(v) > f.max_items):
                return False
            for i, x in enumerate(v):
                parts = f.prefix[i] if i < len(f.prefix) else f.rest
                if parts is not None and not self.valid(x, self.flatten(parts)):
                    return False
            for cparts, least, most in f.contains:
                cf = self.flatten(cparts)
                n = sum(self.valid(x, cf) for x in v)
                if n < least or (most is not None and n > most):
                    return False
            if f.unique is not None and len({value_key(x) for x in v}) != len(v):
                return False
        if t == "object":
            if len(v) < f.min_props or (f.max_props is not None and len(v) > f.max_props):
                return False
            if any(r not in v for r in f.required):
                return False
            if f.prop_names:
                pnf = self.flatten(f.prop_names)
                if any(not self.valid(k, pnf) for k in v):
                    return False
            for k, x in v.items():
                parts = f.props[k] if k in f.props else extras_for_name(f.pattern_props, f.addl, k)
                if k in f.props:
                    parts = parts + [s for p, subs in f.pattern_props.items() if pattern_search(p, k) for s in subs]
                if parts and not self.valid(x, self.flatten(parts)):
                    return False
        for group in f.anyofs:
            if not any(self.valid(v, self.flatten([g])) for g in group):
                return False
        for group, _ in f.oneofs:
            if sum(self.valid(v, self.flatten([g])) for g in group) != 1:
                return False
        return True
