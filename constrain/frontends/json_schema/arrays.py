"""Arrays: ``prefixItems``/``items``/``additionalItems``, ``minItems``/``maxItems``,
``contains`` with ``minContains``/``maxContains``, ``uniqueItems``."""

from __future__ import annotations

import json
import math
from typing import Any

from .flat import Flat
from .strings import any_content_at_least
from ...limits import limit_error
from .values import value_key

# uniqueItems is compiled to states when the items take at most this many values.
MAX_UNIQUE_VALUES = 16
MAX_UNIQUE_SETS = 4096  # sets of used values (states) it may take
MAX_CHECKED_DOMAIN = 4096  # string values the matcher's check looks ahead over
MAX_CONTAINS = 4  # contains constraints on one array (an item chooses a subset of them)
# The name of the opening bracket of a ``uniqueItems`` array whose items the matcher
# compares starts with this mark; no front door can spell a name that starts with NUL.
# See :mod:`constrain.masking.unique`.
UNIQUE_MARK = "\0u"
# The suffix of a marked bracket's name whose items are strings of any content.
PLAIN_STRINGS = ":string"


class ArrayBuilder:
    """Alternatives for the arrays of a flattened schema."""

    def build_array(self, f: Flat, hint: str) -> list[tuple[str, ...]]:
        """Alternatives for the arrays ``f`` admits."""
        lo, hi = f.min_items, f.max_items
        if hi is not None and hi < lo:
            return []
        k = len(f.prefix)
        items = [self.compile_parts(p, f"{hint}_item{i}") for i, p in enumerate(f.prefix)]
        rest = self.compile_parts(f.rest, f"{hint}_item") if f.rest is not None else self.any_value()
        # Positions beyond the last producible one cannot be filled.
        limit = hi
        for i, it in enumerate(items):
            if it is None:
                limit = i if limit is None else min(limit, i)
                break
        if rest is None:
            limit = k if limit is None else min(limit, k)
        if limit is not None and limit < lo:
            return []
        hi = limit
        # uniqueItems over items of many values: the plain array, its bracket marked for
        # the matcher, which compares the items as they end (see masking.unique)
        checked = (f.unique is not None and (hi is None or hi > 1) and not f.contains
                   and self._unique_domain(f, lo, hi, quiet=True) is None)
        if not checked and (f.unique is not None and (hi is None or hi > 1) or f.contains):
            return self._build_counted(f, hint, lo, hi)
        t = max(k, lo)
        explicit = t if hi is None else hi
        if explicit > self.limits.max_schema_array_positions:
            raise limit_error(f"the array needs {explicit} item positions (minItems/maxItems at {f.ptr or '/'})",
                              "max_schema_array_positions", self.limits.max_schema_array_positions)

        def item(i: int) -> str:
            return items[i] if i < k else rest  # type: ignore[return-value]

        alts: list[tuple[str, ...]] = []
        if lo == 0:
            alts.append((self.T_EMPTY_ARR,))
        if hi == 0:
            return alts
        # tail(i): i items written (i >= 1), what may follow before ']'.
        tails: dict[int, str] = {}
        top = explicit
        base = self.name(f"{hint}_items")
        if hi is None:
            star = self.b.star(self.b.seq(self.T_COMMA, rest)) if rest is not None else None
            tail_t = self.rule(f"{base}_{t}", [(star,)] if star else [()])
            if t >= 1:
                tails[t] = tail_t
        for i in range(top if hi is not None else t - 1, 0, -1):
            name = f"{base}_{i}"
            ialts: list[tuple[str, ...]] = []
            if i >= lo:
                ialts.append(())
            if hi is None or i < hi:
                nxt = tails.get(i + 1)
                if nxt is not None:
                    ialts.append((self.T_COMMA, item(i), nxt))
            self.rule(name, ialts)
            tails[i] = name
        first = tails.get(1)
        if first is None:
            if hi is None and t == 0:
                first = self.rule(f"{base}_1", [(self.b.star(self.b.seq(self.T_COMMA, rest)),)])
            else:
                return alts
        lbrack = self.T_LBRACK
        if checked:
            self.report.add(f.unique, "uniqueItems", "enforced", "checked by the matcher")  # type: ignore[arg-type]
            lbrack = self.T_LBRACK_UNIQUE
            domain = self._string_domain(f, hi)
            if domain is not None:
                # the item values travel in the bracket's name (plans cached on disk keep names)
                name = self.T_LBRACK_UNIQUE + json.dumps(domain, separators=(",", ":"))
                lbrack = self.b.terminal(self.b.terminals[self.T_LBRACK], name)
            elif k == 0 and lo <= 1 and self._plain_string(rest):
                # items of any string (of a least length): a token budget can be kept (see masking.unique)
                lbrack = self.b.terminal(self.b.terminals[self.T_LBRACK], self.T_LBRACK_UNIQUE + PLAIN_STRINGS)
        alts.append((lbrack, item(0), first, self.T_RBRACK))
        return alts

    def _plain_string(self, sym: str | None) -> bool:
        """Whether ``sym`` derives the JSON strings of any content, or of any content at
        least ``minLength`` characters long (a rule of one alternative of one symbol,
        followed down to a terminal)."""
        for _ in range(16):
            if sym is None:
                return False
            if sym in self.b.terminals:
                term = self.b.terminals[sym]
                return term == self.STRING_TERM or any_content_at_least(term)
            alts = self.b.rules.get(sym)
            if alts is None or len(alts) != 1 or len(alts[0]) != 1:
                return False
            sym = alts[0][0]
        return False

    # ------------------------------------------------------------------ counted arrays
    def _build_counted(self, f: Flat, hint: str, lo: int, hi: int | None) -> list[tuple[str, ...]]:
        """Arrays whose validity depends on more than each item alone: ``contains`` counts
        (items that match, up to the least count that satisfies, or up to the greatest
        allowed) and ``uniqueItems`` over a finite set of item values (the set of values
        written so far). A state is (position, counts, values used); one rule per state."""
        k = len(f.prefix)

        def parts_at(i: int) -> list[tuple[Any, str]] | None:
            return f.prefix[i] if i < k else f.rest

        counters = [(parts, m, mx) for parts, m, mx in f.contains]
        for parts, m, mx in counters:
            if mx is not None and mx < m:
                return []
        values = self._unique_domain(f, lo, hi) if f.unique is not None and (hi is None or hi > 1) else None
        if values is not None:
            hi = len(values) if hi is None else min(hi, len(values))
            if hi < lo:
                return []
        # Past the prefix and minItems, and with every count at its cap or free to grow,
        # positions look alike: they share one state.
        tail_from = max(k, lo, 1)

        if len(counters) > MAX_CONTAINS:
            self.unsupported(f.ptr, "contains", f"more than {MAX_CONTAINS} contains on one array")
            counters = counters[:MAX_CONTAINS]
        negations: dict[int, Any] = {}

        def negation(j: int) -> Any:
            if j not in negations:
                cparts = counters[j][0]
                neg = self._negate({"allOf": [s for s, _ in cparts]}, cparts[0][1])
                if neg is None:
                    self.unsupported(cparts[0][1], "maxContains", "the contains schema cannot be negated")
                    neg = True
                negations[j] = (neg, cparts[0][1])
            return negations[j]

        chosen_items: dict[tuple[int, int, int], str | None] = {}

        def chosen_item(i: int, matched: int, constrained: int) -> str | None:
            """The item at ``i`` that matches the contains schemas in bit set ``matched``
            and fails those of ``constrained`` (counted up to a greatest count) outside it."""
            key = (min(i, k), matched, constrained)
            if key not in chosen_items:
                parts = list(parts_at(i) or [])
                for j in range(len(counters)):
                    if matched >> j & 1:
                        parts += counters[j][0]
                    elif constrained >> j & 1:
                        parts.append(negation(j))
                chosen_items[key] = self.compile_parts(parts, f"{hint}_item") if parts else self.any_value()
            return chosen_items[key]

        def any_item(i: int) -> str | None:
            parts = parts_at(i)
            return self.compile_parts(parts, f"{hint}_item") if parts is not None else self.any_value()

        value_items: dict[tuple[int, int], str | None] = {}
        value_counts: list[tuple[bool, ...]] = []
        if values is not None:
            for v in values:
                value_counts.append(tuple(self.valid(v, self.flatten(cp)) for cp, _, _ in counters))

        def value_item(i: int, vi: int) -> str | None:
            key = (min(i, k), vi)
            if key not in value_items:
                parts = parts_at(i)
                const = [({"const": values[vi]}, f.unique)]  # type: ignore[index]
                value_items[key] = self.compile_parts((parts or []) + const, f"{hint}_value")
            return value_items[key]

        def moves(state: tuple) -> list[tuple[str, tuple]]:
            i, counts, used = state
            nxt = i + 1 if hi is not None or i + 1 < tail_from else tail_from
            out: list[tuple[str, tuple]] = []
            if values is not None:
                for vi in range(len(values)):
                    if vi in used:
                        continue
                    sym = value_item(i, vi)
                    if sym is None:
                        continue
                    c2 = []
                    for c, hit, (_, m, mx) in zip(counts, value_counts[vi], counters):
                        c += hit
                        if mx is not None and c > mx:
                            break
                        c2.append(c if mx is not None else min(c, m))
                    else:
                        out.append((sym, (nxt, tuple(c2), used | frozenset([vi]))))
                return out
            # An item matches a subset of the contains schemas still counting: those with a
            # greatest count must be decided (matched or failed), those with only a least
            # count may be left open (a match left uncounted only undercounts).
            exact = sum(1 << j for j, (_, _, mx) in enumerate(counters) if mx is not None)
            live = exact | sum(1 << j for j, (_, m, mx) in enumerate(counters) if mx is None and counts[j] < m)
            sub = live
            while True:
                c2 = []
                for j, (c, (_, m, mx)) in enumerate(zip(counts, counters)):
                    if sub >> j & 1:
                        c += 1
                        if mx is not None and c > mx:
                            break
                    c2.append(c if mx is not None else min(c, m))
                else:
                    sym = chosen_item(i, sub, exact)
                    if sym is not None:
                        out.append((sym, (nxt, tuple(c2), used)))
                if sub == 0:
                    break
                sub = (sub - 1) & live
            return out

        def can_end(state: tuple) -> bool:
            i, counts, _ = state
            return i >= lo and all(c >= m for c, (_, m, _) in zip(counts, counters))

        start = (0, tuple(0 for _ in counters), frozenset())
        names: dict[tuple, str] = {}
        todo: list[tuple] = []
        base = self.name(f"{hint}_items")

        def state_name(state: tuple) -> str:
            if state not in names:
                if len(names) >= self.limits.max_schema_array_positions:
                    raise limit_error(f"the array needs more than {len(names)} states (contains/uniqueItems at "
                                      f"{f.ptr or '/'})", "max_schema_array_positions",
                                      self.limits.max_schema_array_positions)
                names[state] = f"{base}_{len(names)}"
                todo.append(state)
            return names[state]

        alts: list[tuple[str, ...]] = []
        if can_end(start):
            alts.append((self.T_EMPTY_ARR,))
        if hi == 0:
            return alts
        for sym, st in moves(start):
            alts.append((self.T_LBRACK, sym, state_name(st), self.T_RBRACK))
        while todo:
            state = todo.pop()
            ialts: list[tuple[str, ...]] = []
            if can_end(state):
                ialts.append(())
            if hi is None or state[0] < hi:
                for sym, st in moves(state):
                    ialts.append((self.T_COMMA, sym, state_name(st)))
            self.rule(names[state], ialts)
        return alts

    def _unique_domain(self, f: Flat, lo: int, hi: int | None, quiet: bool = False) -> list[Any] | None:
        """The values the items of ``f`` may take, when there are at most
        :data:`MAX_UNIQUE_VALUES` of them (``uniqueItems`` is then a set of used values);
        otherwise ``uniqueItems`` is reported as not enforced (unless ``quiet``) and None
        returned."""
        k = len(f.prefix)
        positions: list[list[tuple[Any, str]] | None] = list(f.prefix[:hi] if hi is not None else f.prefix)
        if hi is None or hi > k:
            positions.append(f.rest)  # None: any value
        found: dict[str, Any] = {}
        for parts in positions:
            vals = self._finite_values(parts) if parts is not None else None
            if vals is None:
                if quiet:
                    return None
                self.unsupported(f.unique, "uniqueItems",
                                 f"items must take at most {MAX_UNIQUE_VALUES} values (enum, boolean, small integer range)")
                return None
            for v in vals:
                found.setdefault(value_key(v), v)
        n = len(found)
        longest = n if hi is None else min(hi, n)
        if sum(math.comb(n, i) for i in range(longest + 1)) > MAX_UNIQUE_SETS:
            if quiet:
                return None
            self.unsupported(f.unique, "uniqueItems", f"{n} item values make too many sets of used values")
            return None
        return list(found.values())

    def _string_domain(self, f: Flat, hi: int | None) -> list[str] | None:
        """The strings the items of ``f`` may be, when every position is an ``enum`` of
        strings (at most :data:`MAX_CHECKED_DOMAIN` of them), else None: the matcher then
        also refuses an item begun that no unused value completes."""
        k = len(f.prefix)
        positions: list[Any] = list(f.prefix[:hi] if hi is not None else f.prefix)
        if hi is None or hi > k:
            positions.append(f.rest)
        found: dict[str, None] = {}
        for parts in positions:
            vals = self._finite_values(parts, cap=MAX_CHECKED_DOMAIN) if parts is not None else None
            if vals is None or not all(isinstance(v, str) for v in vals):
                return None
            found.update(dict.fromkeys(vals))
        return sorted(found)

    def _finite_values(self, parts: list[tuple[Any, str]], cap: int = MAX_UNIQUE_VALUES) -> list[Any] | None:
        """Every value a conjunction of subschemas admits, when at most ``cap``; else None."""
        g = self.flatten(parts)
        if g.enum is not None:
            if len(g.enum) > 4 * cap:
                return None
            cands = list(g.enum)
        elif g.types is not None and g.types <= {"null", "boolean"}:
            cands = [None, True, False]
        elif g.types is not None and g.types <= {"null", "boolean", "integer"} and g.lo is not None and g.hi is not None:
            a, b = g.lo[0].to_integral_value("ROUND_CEILING"), g.hi[0].to_integral_value("ROUND_FLOOR")
            if b - a + 1 > cap:
                return None
            cands = [None, True, False] + list(range(int(a), int(b) + 1))
        else:
            return None
        vals = [v for v in cands if self.valid(v, g)]
        return vals if len(vals) <= cap else None
