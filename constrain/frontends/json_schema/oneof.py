"""``oneOf``: proving branches disjoint, or making them so by negating the overlapping ones."""

from __future__ import annotations

from itertools import combinations
from typing import Any

from ...errors import SchemaError
from .flat import Flat
from .values import ALL_TYPES, enum_types, value_key


class OneOf:
    """Turns a oneOf group into disjoint anyOf branches (or reports that it cannot)."""

    def _check_disjoint(self, group: list[tuple[Any, str]], base: Flat, ptr: str) -> list[tuple[Any, str]]:
        """The oneOf ``group`` as disjoint anyOf branches; raise (strict) when that cannot be done."""
        sigs = []
        for schema, p in group:
            sub = self.flatten_with(base, [(schema, p)])
            sigs.append(self._signature(sub))
        overlaps = [(i, j) for i, j in combinations(range(len(sigs)), 2) if not _sig_disjoint(sigs[i], sigs[j])]
        if not overlaps:
            self.report.add(ptr, "oneOf", "enforced", "branches are disjoint")
            return group
        # Branch i and not the branches it may overlap: exact when those negations exist.
        negs: dict[int, Any] = {}
        for i, j in overlaps:
            for k in (i, j):
                if k not in negs:
                    negs[k] = self._negate(group[k][0], group[k][1])
        if all(n is not None for n in negs.values()):
            out = []
            for i, (schema, p) in enumerate(group):
                others = [negs[j] for a, b in overlaps for j in ((b,) if a == i else (a,) if b == i else ())]
                out.append(({"allOf": [schema] + others}, p) if others else (schema, p))
            self.report.add(ptr, "oneOf", "enforced", "overlapping branches exclude each other")
            return out
        i, j = overlaps[0]
        if self.strict:
            raise SchemaError(
                f"oneOf branches {i} and {j} may overlap (cannot prove exactly one matches); "
                "pass strict=False to treat oneOf as anyOf", ptr)
        self.unsupported(ptr, "oneOf", f"branches {i} and {j} may overlap; treated as anyOf")
        return group

    def _signature(self, f: Flat) -> dict:
        types = set(ALL_TYPES) if f.types is None else set(f.types)
        if f.false:
            types = set()
        sig: dict[str, Any] = {"types": types, "enum": None, "props": {}, "required": set(f.required),
                               "closed": f.addl is not None and not f.pattern_props and
                               all(s is False for s, _ in f.addl), "names": set(f.props),
                               "anyof": bool(f.anyofs or f.oneofs)}
        if f.enum is not None:
            sig["enum"] = {value_key(v) for v in f.enum}
            sig["types"] = types & enum_types(f.enum, self.draft)
        for name, parts in f.props.items():
            try:
                sub = self.flatten(parts) if parts else None
            except SchemaError:
                sub = None
            vsig: dict[str, Any] = {"types": set(ALL_TYPES), "enum": None}
            if sub is not None:
                if sub.types is not None:
                    vsig["types"] = set(sub.types)
                if sub.enum is not None:
                    vsig["enum"] = {value_key(v) for v in sub.enum}
                    vsig["types"] &= enum_types(sub.enum, self.draft)
                if sub.false:
                    vsig["types"] = set()
            sig["props"][name] = vsig
        return sig


def _sig_disjoint(a: dict, b: dict) -> bool:
    ta, tb = set(a["types"]), set(b["types"])
    if a["enum"] is not None and b["enum"] is not None:
        return not (a["enum"] & b["enum"])
    if not (ta & tb) and not ({"integer", "number"} & ta and {"integer", "number"} & tb):
        return True
    shared = ta & tb
    if shared - {"object"}:
        # Overlap on some non-object type; an enum on one side may still avoid it.
        return False
    # Both can only be objects: look for a discriminating property.
    for name in set(a["props"]) & set(b["props"]):
        # A property both require, with values that cannot be equal.
        if name in a["required"] and name in b["required"] and _values_disjoint(a["props"][name], b["props"][name]):
            return True
    for x, y in ((a, b), (b, a)):
        # x requires a property y forbids.
        if y["closed"]:
            if any(r not in y["names"] for r in x["required"]):
                return True
        for r in x["required"]:
            if r in y["props"] and not y["props"][r]["types"]:
                return True
    return False


def _values_disjoint(a: dict, b: dict) -> bool:
    if a["enum"] is not None and b["enum"] is not None and not (a["enum"] & b["enum"]):
        return True
    ta, tb = a["types"], b["types"]
    if "number" in ta:
        ta = ta | {"integer"}
    if "number" in tb:
        tb = tb | {"integer"}
    return not (ta & tb)
