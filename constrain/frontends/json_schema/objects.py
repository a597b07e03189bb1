"""Objects: ``properties``, ``required``, ``additionalProperties``/``patternProperties``,
``propertyNames``, ``minProperties``/``maxProperties``, and the order of members."""

from __future__ import annotations

import json
import re
from itertools import combinations
from math import comb
from typing import Any, Callable

from ...grammar.ir import Concat, Difference, Intersect, Lit, Terminal, Union_
from ...grammar.ir import RegexTerm as Regex
from .flat import Flat
from ...limits import limit_error
from .merge import extras_for_name
from .strings import check_pattern, pattern_search
from .values import canon


class ObjectBuilder:
    """Alternatives for the objects of a flattened schema."""

    def _key_filter(self, f: Flat) -> tuple[Any, Any]:
        """(flattened propertyNames or None, terminal of allowed quoted keys; None: any key, False: none)."""
        if not f.prop_names:
            return None, None
        pn = self.flatten(f.prop_names)
        if pn.false or (pn.types is not None and "string" not in pn.types):
            return pn, False  # no key at all: a terminal no JSON key matches
        if pn.anyofs or pn.oneofs or pn.unsupported:
            self.unsupported(pn.ptr, "propertyNames", "only string constraints are supported on keys")
            return pn, None
        if pn.enum is not None:
            keys = [v for v in pn.enum if isinstance(v, str) and self.valid(v, pn)]
            if not keys:
                return pn, False
            lits = tuple(dict.fromkeys(Lit(json.dumps(k, ensure_ascii=False)) for k in keys))
            return pn, lits[0] if len(lits) == 1 else Union_(lits)
        t = self.string_terminal(pn, [v for v in pn.not_values if isinstance(v, str)], pn.not_strings)
        if t is None:
            return pn, False
        return pn, self.b.terminals[t]

    def build_object(self, f: Flat, hint: str) -> list[tuple[str, ...]]:
        """Alternatives for the objects ``f`` admits."""
        names = list(f.props)
        for r in f.required:
            if r not in f.props:
                names.append(r)
        required = set(f.required)
        pn, key_filter = self._key_filter(f)
        members: list[str | None] = []
        for n in names:
            if pn is not None and not self.valid(n, pn):
                if n in required:
                    return []
                members.append(None)
                continue
            parts = list(f.props.get(n, []))
            if n in f.props:
                for p, subs in f.pattern_props.items():
                    if pattern_search(p, n):
                        parts.extend(subs)
            else:
                parts = extras_for_name(f.pattern_props, f.addl, n)
            v = self.compile_parts(parts, f"{hint}_{n}")
            if v is None:
                if n in required:
                    return []
                members.append(None)
                continue
            key = self.b.terminal(Lit(json.dumps(n, ensure_ascii=False)))
            members.append(self.b.seq(key, self.T_COLON, v))
        addl = f.addl
        if self.closed and f.lists_members and not f.opens_members:
            addl = [(False, f.ptr + "/additionalProperties")]  # extra_properties=False
        extra = self.extra_member(f, names, addl, hint, key_filter)
        lo = f.min_props
        hi = f.max_props
        if hi is not None and hi < max(lo, len(required)):
            return []
        # Effective count cap: counts above `cap` behave alike.
        cap = max(lo, 1) if hi is None else hi
        n = len(names)
        if (n + 1) * (cap + 1) > self.limits.max_schema_array_positions * 4:
            raise limit_error(f"an object of {n} properties with min/maxProperties {lo}/{hi} (at {f.ptr or '/'})",
                              "max_schema_array_positions", self.limits.max_schema_array_positions)
        if self.any_order and sum(m is not None for m in members) > 1:
            alts = self._members_any_order(f, names, members, required, extra, hint)
            if alts is not None:
                return alts
        base = self.name(f"{hint}_obj")
        memo: dict[tuple[int, int], str | None] = {}

        def inc(c: int) -> int:
            return min(c + 1, cap)

        def extras(c: int) -> str | None:
            key = (n, c)
            if key in memo:
                return memo[key]
            name = f"{base}_x{c}"
            memo[key] = name
            ealts: list[tuple[str, ...]] = []
            if c >= max(lo, 1):
                ealts.append(())
            if extra is not None and (hi is None or c < hi):
                if hi is None and c == cap and c >= 1:
                    ealts = [(self.b.star(self.b.seq(self.T_COMMA, extra)),)]
                else:
                    nxt = extras(inc(c))
                    ealts.append(((self.T_COMMA,) if c else ()) + (extra, nxt))
            self.rule(name, ealts)
            return name

        def tail(i: int, c: int) -> str | None:
            if i == n:
                return extras(c)
            key = (i, c)
            if key in memo:
                return memo[key]
            name = f"{base}_{i}_{c}"
            memo[key] = name
            talts: list[tuple[str, ...]] = []
            if names[i] not in required:
                talts.append((tail(i + 1, c),))
            m = members[i]
            if m is not None and (hi is None or c < hi):
                talts.append(((self.T_COMMA,) if c else ()) + (m, tail(i + 1, inc(c))))
                if extra is not None and (hi is None or c + 1 < hi):
                    talts.append(((self.T_COMMA,) if c else ()) + (extra, before(i, inc(c))))
            self.rule(name, talts)
            return name

        def before(i: int, c: int) -> str:
            # Additional members written before declared member i, which comes next.
            key = (-1 - i, c)
            if key in memo:
                return memo[key]  # type: ignore[return-value]
            name = f"{base}_b{i}_{c}"
            memo[key] = name
            balts: list[tuple[str, ...]] = [(self.T_COMMA, members[i], tail(i + 1, inc(c)))]
            if hi is None or c + 1 < hi:
                balts.append((self.T_COMMA, extra, before(i, inc(c))))
            self.rule(name, balts)
            return name

        try:
            return self._braced(lo == 0 and not required, hi != 0, lambda: tail(0, 0))
        finally:
            # The helpers call each other through their closure cells: a reference cycle
            # that would keep this compiler (its rules, IR and report) alive until the
            # cyclic collector ran, then stall whatever ran beside it. Emptied cells free
            # them when this returns.
            del inc, extras, tail, before

    def _members_any_order(
        self, f: Flat, names: list[str], members: list[str | None], required: set[str], extra: str | None, hint: str
    ) -> list[tuple[str, ...]] | None:
        """Object alternatives that take the declared members in any order, each at most
        once (required ones exactly once), undeclared ones (``extra``) anywhere between.

        The state is the set of members written (and the count, where min/maxProperties
        or undeclared members need it), so the rules grow as 2^n: past
        ``Limits.max_schema_order_states`` this returns None and the object keeps the schema's order
        (a narrowing, recorded in the report)."""
        lo, hi = f.min_props, f.max_props
        live = [i for i, m in enumerate(members) if m is not None]
        top = len(live) if hi is None else min(len(live), hi)
        states = sum(comb(len(live), k) for k in range(top + 1))
        cap = max(lo, 1) if hi is None else hi
        if extra is not None:
            states *= cap + 1
        if states > self.limits.max_schema_order_states:
            self.report.add(f.ptr, "properties", "narrowed",
                            f"{len(live)} properties are too many to accept in any order; the schema's order is kept")
            return None
        must = 0
        for i in live:
            if names[i] in required:
                must |= 1 << i
        base = self.name(f"{hint}_anyobj")
        memo: dict[tuple[int, int], str] = {}

        def state(written: int, c: int) -> str:
            # ``written``: a bit per member index; ``c``: members so far, capped at ``cap``.
            key = (written, c)
            if key in memo:
                return memo[key]
            name = memo[key] = f"{base}_{written:x}_{c}"
            alts: list[tuple[str, ...]] = []
            if written & must == must and c >= max(lo, 1):
                alts.append(())
            if hi is None or c < hi:
                lead = (self.T_COMMA,) if c else ()
                nxt = min(c + 1, cap)
                for i in live:
                    if not written >> i & 1:
                        alts.append(lead + (members[i], state(written | 1 << i, nxt)))  # type: ignore[operator]
                if extra is not None:
                    alts.append(lead + (extra, state(written, nxt)))
            self.rule(name, alts)
            return name

        return self._braced(lo == 0 and not required, hi != 0, lambda: state(0, 0))

    def _braced(self, may_be_empty: bool, may_have_members: bool, members: Callable[[], str]) -> list[tuple[str, ...]]:
        """``{}`` if the object may be empty, ``{ members }`` if it may have any: ``members()``
        builds the rules only then."""
        alts: list[tuple[str, ...]] = []
        if may_be_empty:
            alts.append((self.T_EMPTY_OBJ,))
        if may_have_members:
            alts.append((self.T_LBRACE, members(), self.T_RBRACE))
        return alts

    def extra_member(
        self, f: Flat, declared: list[str], addl: list[tuple[Any, str]] | None, hint: str, key_filter: Any = None
    ) -> str | None:
        """Nonterminal for one undeclared ``"key": value`` member, or None if none is allowed.

        ``addl``: the schemas of keys no pattern matches (None: any value)."""
        decl: Terminal | None = None
        if declared:
            regs = tuple(Regex(re.escape(n), json_string=True) for n in declared)
            decl = Concat((Lit('"'), regs[0] if len(regs) == 1 else Union_(regs), Lit('"')))
        pats = list(f.pattern_props.items())
        regions: list[tuple[Terminal, list[tuple[Any, str]] | None]] = []
        pterms = {}
        for p, subs in pats:
            check_pattern(p, subs[-1][1] if subs else f.ptr)
            pterms[p] = Concat((Lit('"'), Regex(p, ascii=True, search=True, json_string=True), Lit('"')))
        # Keys matching no pattern: additionalProperties.
        if addl is None or not all(s is False for s, _ in addl):
            excl = [decl] if decl is not None else []
            excl += [pterms[p] for p, _ in pats]
            key: Terminal = self.STRING_TERM
            if excl:
                key = Difference(key, excl[0] if len(excl) == 1 else Union_(tuple(excl)))
            regions.append((key, addl))
        if pats:
            if len(pats) <= 4:
                idx = list(range(len(pats)))
                for r in range(1, len(pats) + 1):
                    for subset in combinations(idx, r):
                        inside = [pterms[pats[i][0]] for i in subset]
                        outside = [pterms[pats[i][0]] for i in idx if i not in subset]
                        if decl is not None:
                            outside.append(decl)
                        key = inside[0] if len(inside) == 1 else Intersect(tuple(inside))
                        if outside:
                            key = Difference(key, outside[0] if len(outside) == 1 else Union_(tuple(outside)))
                        schemas = [x for i in subset for x in pats[i][1]]
                        regions.append((key, schemas))
            else:
                distinct = {canon([s for s, _ in subs]) for _, subs in pats}
                if len(distinct) != 1:
                    self.unsupported(f.ptr, "patternProperties", "more than 4 overlapping patterns with different schemas")
                key = Union_(tuple(pterms[p] for p, _ in pats))
                if decl is not None:
                    key = Difference(key, decl)
                regions.append((key, pats[0][1]))
        alts = []
        if key_filter is False:
            return None
        if key_filter is not None:
            regions = [(Intersect((key, key_filter)), schemas) for key, schemas in regions]
        for key, schemas in regions:
            v = self.compile_parts(schemas or [], f"{hint}_extra") if schemas is not None else self.any_value()
            if v is None:
                continue
            alts.append((self.b.terminal(key), self.T_COLON, v))
        if not alts:
            return None
        return self.b.alt(*alts, hint="member")
