"""``not``: schemas rewritten into equivalent positive ones, where this is possible."""

from __future__ import annotations

from typing import Any

from ...errors import SchemaError
from .flat import Flat
from .merge import ANNOTATIONS
from .refs import esc_ptr
from .values import ALL_TYPES

# Keywords that constrain together and must be negated together.
_KEYWORD_GROUP = {
    "properties": "object-members", "patternProperties": "object-members", "additionalProperties": "object-members",
    "items": "array-items", "prefixItems": "array-items", "additionalItems": "array-items",
    "minimum": "lower", "exclusiveMinimum": "lower", "maximum": "upper", "exclusiveMaximum": "upper",
    "if": "conditional", "then": "conditional", "else": "conditional",
    "contains": "contains", "minContains": "contains", "maxContains": "contains",
}


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
        s = {k: v for k, v in x.items() if k not in ANNOTATIONS}
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
            if isinstance(vals, list) and all(isinstance(e, str) or isinstance(e, bool) or e is None for e in vals):
                return {"$constrain:notValues": list(vals)}
            return None
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
