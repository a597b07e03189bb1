"""Arrays: ``prefixItems``/``items``/``additionalItems``, ``minItems``/``maxItems``."""

from __future__ import annotations

from .flat import Flat
from ...limits import limit_error


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
        alts.append((self.T_LBRACK, item(0), first, self.T_RBRACK))
        return alts
