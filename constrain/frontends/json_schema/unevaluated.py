"""``unevaluatedProperties`` / ``unevaluatedItems`` (2019-09 on), rewritten into keywords
the merger knows.

A property (an item) is *evaluated* when a subschema that validates the instance at the
same place names it: ``properties``, ``patternProperties``, ``additionalProperties``,
``prefixItems``/``items``, ``contains`` (2020-12: the items it matches), a nested
``unevaluated*``, through ``allOf``, ``$ref`` and the
branches of ``anyOf``/``oneOf``/``if``/``dependentSchemas`` that validate. For each
combination of those branches, the names evaluated are known from the schema alone, and
``unevaluatedProperties: U`` becomes a conjunct ``{properties: {evaluated: true},
patternProperties: {...: true}, additionalProperties: U}`` required together with that
combination. Where which branches validate is not known (nested branching), only what every
branch evaluates is counted: the keyword then constrains more names, never fewer, so no
instance it forbids is accepted."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ...errors import SchemaError


@dataclass
class Evaluated:
    """What a schema evaluates whenever it validates: property names and patterns (or all
    properties), the first ``items`` items (or all items)."""

    names: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)
    all_props: bool = False
    items: int = 0
    all_items: bool = False
    contains: list = field(default_factory=list)  # items that match one of these (2020-12)

    def union(self, o: Evaluated) -> Evaluated:
        return Evaluated(self.names | o.names, self.patterns | o.patterns, self.all_props or o.all_props,
                         max(self.items, o.items), self.all_items or o.all_items, self.contains + o.contains)

    def meet(self, o: Evaluated) -> Evaluated:
        """What both evaluate (for branches of which any one may be the one that validates)."""
        if self.all_props or o.all_props:
            names, patterns = (o.names, o.patterns) if self.all_props else (self.names, self.patterns)
        else:
            names, patterns = self.names & o.names, self.patterns & o.patterns
        if self.all_items or o.all_items:
            items = o.items if self.all_items else self.items
        else:
            items = min(self.items, o.items)
        return Evaluated(set(names), set(patterns), self.all_props and o.all_props, items,
                         self.all_items and o.all_items, [c for c in self.contains if c in o.contains])


# anyOf groups of up to this many branches count every subset that may validate together
# (exact); larger ones only one branch at a time (a subset of the language).
_MAX_ANYOF_SUBSETS = 6
_BRANCHING = ("anyOf", "oneOf", "if", "then", "else", "dependentSchemas")


class Unevaluated:
    """Lowers ``unevaluated*`` keywords (mixed into the compiler)."""

    def lower_unevaluated(self, s: dict, ptr: str) -> dict:
        """``s`` without ``unevaluatedProperties``/``unevaluatedItems``, their meaning kept
        by an added ``allOf`` conjunct."""
        up = s.get("unevaluatedProperties", True)
        ui = s.get("unevaluatedItems", True)
        out = {k: v for k, v in s.items() if k not in ("unevaluatedProperties", "unevaluatedItems")}
        if up is True and ui is True:
            return out
        base = self.evaluated({k: v for k, v in out.items() if k not in _BRANCHING}, ptr)
        # Branch groups: (condition to add, what it evaluates) per branch.
        groups: list[list[tuple[Any, Evaluated]]] = []
        for kw in ("anyOf", "oneOf"):
            subs = out.get(kw)
            if isinstance(subs, list) and subs:
                branches = [(sub, self.evaluated(sub, f"{ptr}/{kw}/{i}")) for i, sub in enumerate(subs)]
                if kw == "anyOf" and 1 < len(subs) <= _MAX_ANYOF_SUBSETS:
                    # Every set of branches that may validate together: its members' names.
                    group = []
                    for n in range(1, len(branches) + 1):
                        for chosen in itertools.combinations(branches, n):
                            ev = Evaluated()
                            for _, e in chosen:
                                ev = ev.union(e)
                            group.append(({"allOf": [c for c, _ in chosen]} if n > 1 else chosen[0][0], ev))
                    groups.append(group)
                else:
                    groups.append(branches)  # oneOf: exactly one validates
                if kw == "anyOf":
                    del out[kw]  # the added conjunct requires one of its branches
        if "if" in out:
            cond, then, other = out["if"], out.get("then", True), out.get("else", True)
            neg = self._negate(cond, ptr + "/if")
            if_then = self.evaluated(cond, ptr + "/if").union(self.evaluated(then, ptr + "/then"))
            if_else = self.evaluated(other, ptr + "/else")
            if neg is None:
                base = base.union(if_then.meet(if_else))
            else:
                groups.append([({"allOf": [cond, then]}, if_then), ({"allOf": [neg, other]}, if_else)])
                for kw in ("if", "then", "else"):
                    out.pop(kw, None)
        deps = out.get("dependentSchemas")
        if isinstance(deps, dict):
            for name, dep in deps.items():
                groups.append([({"properties": {name: False}}, Evaluated()),
                               ({"required": [name]}, self.evaluated(dep, f"{ptr}/dependentSchemas/{name}"))])
        total = 1
        for g in groups:
            total *= len(g)
        if total > self.limits.max_schema_anyof_product:
            # Too many combinations: count only what every branch evaluates.
            for g in groups:
                meet = g[0][1]
                for _, e in g[1:]:
                    meet = meet.meet(e)
                base = base.union(meet)
            groups = [[(True, Evaluated())]]
        alts = []
        for choice in _product(groups):
            ev = base
            for _, e in choice:
                ev = ev.union(e)
            closure = _closure(ev, up, ui)
            conds = [c for c, _ in choice if c is not True]
            alts.append({"allOf": conds + [closure]} if conds else closure)
        out["allOf"] = list(out.get("allOf", [])) + [alts[0] if len(alts) == 1 else {"anyOf": alts}]
        return out

    def evaluated(self, x: Any, ptr: str, depth: int = 0) -> Evaluated:
        """What ``x`` evaluates whenever it validates (a lower bound where branches differ)."""
        ev = Evaluated()
        if not isinstance(x, dict) or depth > 32:
            return ev
        if isinstance(x.get("properties"), dict):
            ev.names |= set(x["properties"])
        if isinstance(x.get("patternProperties"), dict):
            ev.patterns |= set(x["patternProperties"])
        if "additionalProperties" in x or "unevaluatedProperties" in x:
            ev.all_props = True
        items = x.get("items")
        if isinstance(x.get("prefixItems"), list):
            ev.items = len(x["prefixItems"])
        if isinstance(items, list):
            ev.items = max(ev.items, len(items))
            if "additionalItems" in x:
                ev.all_items = True
        elif "items" in x:
            ev.all_items = True
        if "unevaluatedItems" in x:
            ev.all_items = True
        if "contains" in x and self.draft >= 2020:
            ev.contains.append(x["contains"])
        for i, sub in enumerate(x.get("allOf", ()) if isinstance(x.get("allOf"), list) else ()):
            ev = ev.union(self.evaluated(sub, f"{ptr}/allOf/{i}", depth + 1))
        ref = x.get("$ref")
        if isinstance(ref, str):
            try:
                target, tptr = self.resolve(ref, ptr)
            except SchemaError:
                target, tptr = None, ptr
            ev = ev.union(self.evaluated(target, tptr, depth + 1))
        for kw in ("anyOf", "oneOf"):
            subs = x.get(kw)
            if isinstance(subs, list) and subs:
                meet = self.evaluated(subs[0], f"{ptr}/{kw}/0", depth + 1)
                for i, sub in enumerate(subs[1:], 1):
                    meet = meet.meet(self.evaluated(sub, f"{ptr}/{kw}/{i}", depth + 1))
                ev = ev.union(meet)
        if "if" in x:
            a = self.evaluated(x["if"], ptr + "/if", depth + 1).union(self.evaluated(x.get("then"), ptr, depth + 1))
            ev = ev.union(a.meet(self.evaluated(x.get("else"), ptr, depth + 1)))
        return ev


def _closure(ev: Evaluated, up: Any, ui: Any) -> dict:
    """The conjunct that holds the not-evaluated properties to ``up`` and items to ``ui``."""
    out: dict[str, Any] = {}
    if up is not True and not ev.all_props:
        out["properties"] = {n: True for n in sorted(ev.names)}
        if ev.patterns:
            out["patternProperties"] = {p: True for p in sorted(ev.patterns)}
        out["additionalProperties"] = up
    if ui is not True and not ev.all_items:
        out["prefixItems"] = [True] * ev.items
        # an item that matches a ``contains`` is evaluated by it
        out["items"] = {"anyOf": [ui] + ev.contains} if ev.contains else ui
    return out


def _product(groups: list[list[Any]]) -> list[list[Any]]:
    out: list[list[Any]] = [[]]
    for g in groups:
        out = [prev + [c] for prev in out for c in g]
    return out
