"""``not``: schemas rewritten into equivalent positive ones, where this is possible."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...errors import SchemaError
from .flat import Flat
from .merge import ANNOTATIONS
from .refs import esc_ptr
from .strings import content_constraints
from .number_ranges import to_decimal
from .values import ALL_TYPES

# Keywords that constrain together and must be negated together.
_KEYWORD_GROUP = {
    "properties": "object-members", "patternProperties": "object-members", "additionalProperties": "object-members",
    "items": "array-items", "prefixItems": "array-items", "additionalItems": "array-items",
    "minimum": "lower", "exclusiveMinimum": "lower", "maximum": "upper", "exclusiveMaximum": "upper",
    "if": "conditional", "then": "conditional", "else": "conditional",
    "contains": "contains", "minContains": "contains", "maxContains": "contains",
}


def _number(d: Decimal) -> int | float:
    """A decimal as the JSON number a schema would write (exact for integers)."""
    return int(d) if d == d.to_integral_value() else float(d)


class Negation:
    """Negates subschemas: for ``not``, the ``else`` of ``if``, and overlapping oneOf branches."""

    def _negate(self, x: Any, ptr: str, depth: int = 0) -> Any:
        """A schema equivalent to ``not x``, or None when this front door cannot express it."""
        if depth > 8:
            return None
        if x is True:
            return False
        if x is False:
            return True
        if not isinstance(x, dict):
            return None
        s = {k: v for k, v in x.items() if k not in ANNOTATIONS
             and not (k in ("contentEncoding", "contentMediaType") and self.draft != 7)}
        if "$ref" in s and self.draft <= 7:
            s = {"$ref": s["$ref"]}
        if not s:
            return False
        if set(s) == {"$ref"}:
            try:
                target, tptr = self.resolve(s["$ref"], ptr)
            except SchemaError:
                return None
            return self._negate(target, tptr, depth + 1)
        # A conjunction of independent keyword groups: not (A and B) = (not A) or (not B).
        groups: dict[str, dict] = {}
        for k, v in s.items():
            g = _KEYWORD_GROUP.get(k, k)
            groups.setdefault(g, {})[k] = v
        if len(groups) > 1:
            negs = []
            for g in groups.values():
                n = self._negate(g, ptr, depth + 1)
                if n is None:
                    return None
                if n is True:
                    return True
                if n is not False:
                    negs.append(n)
            return {"anyOf": negs} if negs else False
        ((k, v),) = s.items() if len(s) == 1 else ((None, None),)
        if k is None:
            return self._negate_group(s, ptr, depth)
        if k == "type":
            ts = {v} if isinstance(v, str) else set(v) if isinstance(v, list) else None
            if ts is None:
                return None
            if "integer" in ts and "number" not in ts:
                others = sorted(set(ALL_TYPES) - ts - {"number"})
                frac = {"type": "number", "$constrain:fractional": True}
                return {"anyOf": [{"type": others}, frac]} if others else frac
            rest = set(ALL_TYPES) - ts - {"integer"} if "number" in ts else set(ALL_TYPES) - ts - {"integer", "number"}
            if "number" not in ts:
                rest.add("number")
            return {"type": sorted(rest)} if rest else False
        if k == "required" and isinstance(v, list):
            if not v:
                return False
            forbid = [{"properties": {n: False}} for n in dict.fromkeys(v)]
            return {"type": "object", **(forbid[0] if len(forbid) == 1 else {"anyOf": forbid})}
        if k in ("enum", "const"):
            vals = v if k == "enum" else [v]
            if not isinstance(vals, list):
                return None
            nums = sorted({to_decimal(e) for e in vals if isinstance(e, (int, float)) and not isinstance(e, bool)})
            others = [e for e in vals if not isinstance(e, (int, float)) or isinstance(e, bool)]
            if not all(isinstance(e, (str, bool)) or e is None for e in others):
                return None
            if not nums:
                return {"$constrain:notValues": others}
            if len(nums) > 32:
                return None
            # Numbers other than the listed ones: the open intervals between them.
            cuts = [_number(d) for d in nums]
            parts: list[Any] = [{"type": [t for t in ALL_TYPES if t not in ("number", "integer")],
                                 "$constrain:notValues": others}]
            parts.append({"type": "number", "exclusiveMaximum": cuts[0]})
            parts.extend({"type": "number", "exclusiveMinimum": a, "exclusiveMaximum": b} for a, b in zip(cuts, cuts[1:]))
            parts.append({"type": "number", "exclusiveMinimum": cuts[-1]})
            return {"anyOf": parts}
        if k in ("contentEncoding", "contentMediaType"):
            formats, unsupported = content_constraints({k: v}, self.draft, ptr)
            if unsupported:
                return None
            return {"type": "string", "$constrain:notString": {k: v}} if formats else False
        if k in ("pattern", "format"):
            return {"type": "string", "$constrain:notString": {k: v}}
        if k == "minLength":
            return {"type": "string", "maxLength": int(v) - 1} if v > 0 else False
        if k == "maxLength":
            return {"type": "string", "minLength": int(v) + 1}
        if k == "minItems":
            return {"type": "array", "maxItems": int(v) - 1} if v > 0 else False
        if k == "maxItems":
            return {"type": "array", "minItems": int(v) + 1}
        if k == "minProperties":
            return {"type": "object", "maxProperties": int(v) - 1} if v > 0 else False
        if k == "maxProperties":
            return {"type": "object", "minProperties": int(v) + 1}
        if k == "not":
            return v
        if k == "anyOf" and isinstance(v, list):
            negs = [self._negate(b, f"{ptr}/anyOf/{i}", depth + 1) for i, b in enumerate(v)]
            return None if any(n is None for n in negs) else {"allOf": negs}
        if k == "allOf" and isinstance(v, list):
            negs = [self._negate(b, f"{ptr}/allOf/{i}", depth + 1) for i, b in enumerate(v)]
            return None if any(n is None for n in negs) else {"anyOf": negs}
        if k == "properties" and isinstance(v, dict):
            alts = []
            for n, sub in v.items():
                neg = self._negate(sub, f"{ptr}/properties/{esc_ptr(n)}", depth + 1)
                if neg is None:
                    return None
                if neg is not False:
                    alts.append({"required": [n], "properties": {n: neg}})
            if not alts:
                return False
            return {"type": "object", **(alts[0] if len(alts) == 1 else {"anyOf": alts})}
        return self._negate_group(s, ptr, depth)

    def _negate_group(self, s: dict, ptr: str, depth: int) -> Any:
        keys = set(s)
        if keys <= {"prefixItems", "items", "additionalItems"}:
            return self._negate_items(s, ptr, depth)
        if keys <= {"contains", "minContains", "maxContains"}:
            if "contains" not in s or self.draft < 6:
                return False  # the counts alone assert nothing
            lo, hi = 1, None
            if self.draft >= 2019:
                lo, hi = int(s.get("minContains", 1)), s.get("maxContains")
                hi = None if hi is None else int(hi)
            # Arrays with fewer matching items than the least, or more than the greatest.
            alts = [{"type": "array", "$constrain:contains": [s["contains"], 0, lo - 1]}] if lo > 0 else []
            if hi is not None:
                alts.append({"type": "array", "$constrain:contains": [s["contains"], hi + 1, None]})
            return {"anyOf": alts} if alts else False
        if keys <= {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"} and len(keys & {"minimum", "exclusiveMinimum"}) * len(keys & {"maximum", "exclusiveMaximum"}) == 0:
            lo = "minimum" in keys or "exclusiveMinimum" in keys
            f = Flat(ptr)
            self._merge_keywords(f, s, ptr)
            bound = f.lo if lo else f.hi
            if bound is None:
                return False
            value = int(bound[0]) if bound[0] == bound[0].to_integral_value() else float(bound[0])
            if lo:
                return {"type": "number", ("maximum" if bound[1] else "exclusiveMaximum"): value}
            return {"type": "number", ("minimum" if bound[1] else "exclusiveMinimum"): value}
        return None

    def _negate_items(self, s: dict, ptr: str, depth: int) -> Any:
        """Arrays where some item fails its ``prefixItems``/``items`` schema (only ``items``
        for every item, or only positional items)."""
        if "prefixItems" in s:
            prefix, rest = s["prefixItems"], s.get("items", True)
        elif isinstance(s.get("items"), list):
            prefix, rest = s["items"], s.get("additionalItems", True)
        else:
            prefix, rest = [], s.get("items", True)
        if not isinstance(prefix, list):
            return None
        alts = []
        for i, sub in enumerate(prefix):
            neg = self._negate(sub, f"{ptr}/{i}", depth + 1)
            if neg is None:
                return None
            if neg is not False:
                alts.append({"type": "array", "minItems": i + 1, "prefixItems": [True] * i + [neg]})
        if rest is not True:
            neg = self._negate(rest, ptr, depth + 1)
            if neg is None or prefix:
                return None
            if neg is not False:
                alts.append({"type": "array", "$constrain:contains": [neg, 1, None]})
        return {"anyOf": alts} if alts else False
