"""Flattening: allOf and $ref merged into one :class:`~.flat.Flat`, keyword family by family."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from ...automata._jit import clock
from ...errors import SchemaError
from .flat import Flat
from .formats import STANDARD_FORMATS, format_regexes
from ...limits import limit_error
from .number_ranges import to_decimal
from .refs import esc_ptr
from .strings import content_constraints, pattern_search
from .values import ALL_TYPES, value_key

# Keywords with no effect on validity.
ANNOTATIONS = frozenset(
    """title description default examples example $comment readOnly writeOnly deprecated
    contentSchema $schema $id id $anchor $dynamicAnchor
    $recursiveAnchor $vocabulary definitions $defs discriminator xml externalDocs""".split()
)
# Keywords that change validity and that this front door does not enforce.
_UNENFORCED: frozenset[str] = frozenset()


class Merger:
    """Merges conjunctions of raw subschemas into :class:`Flat` constraints."""

    # ------------------------------------------------------------------ flattening
    def flatten(self, parts: list[tuple[Any, str]], depth: int = 0) -> Flat:
        """Merge a conjunction of raw subschemas into one :class:`Flat`."""
        flat = Flat(parts[0][1] if parts else "")
        for schema, ptr in parts:
            self._merge_into(flat, schema, ptr, depth)
        return flat

    def _merge_into(self, f: Flat, schema: Any, ptr: str, depth: int) -> None:
        if clock() > self.deadline:
            raise self.out_of_time(ptr)
        if depth > self.limits.max_schema_merge_depth:
            raise limit_error(f"allOf/$ref merges nest too deep (at {ptr or '/'})", "max_schema_merge_depth",
                              self.limits.max_schema_merge_depth)
        if schema is True:
            return
        if schema is False:
            f.false = True
            return
        if not isinstance(schema, dict):
            raise SchemaError(f"a schema must be an object or a boolean, not {type(schema).__name__}", ptr)
        if "$ref" in schema and self.draft <= 7:
            schema = {"$ref": schema["$ref"]}  # siblings of $ref are ignored before 2019-09
        if self.draft >= 2019 and ("unevaluatedProperties" in schema or "unevaluatedItems" in schema):
            schema = self.lower_unevaluated(schema, ptr)
        # Merge in the order the keywords are written, so that properties keep the
        # order an author reading the schema top-down would expect: this schema's own
        # keywords where its ``properties`` stands (else where the first one stands).
        own_done = False
        own_at = "properties" if "properties" in schema else None
        for kw in schema:
            if kw == "$ref":
                ref = schema["$ref"]
                if not isinstance(ref, str):
                    raise SchemaError("$ref must be a string", ptr)
                target, tptr = self.resolve(ref, ptr)
                self._merge_into(f, target, tptr, depth + 1)
            elif (kw == "$dynamicRef" and self.draft >= 2020) or (kw == "$recursiveRef" and self.draft == 2019):
                ref = schema[kw]
                if not isinstance(ref, str):
                    raise SchemaError(f"{kw} must be a string", ptr)
                target, tptr = self.resolve_dynamic(kw, ref, ptr)
                self._merge_into(f, target, tptr, depth + 1)
            elif kw == "allOf":
                allof = schema["allOf"]
                if not isinstance(allof, list):
                    raise SchemaError("allOf must be an array", ptr + "/allOf")
                for i, sub in enumerate(allof):
                    self._merge_into(f, sub, f"{ptr}/allOf/{i}", depth + 1)
            elif not own_done and kw not in ANNOTATIONS and (own_at is None or kw == own_at):
                own_done = True
                self._merge_keywords(f, schema, ptr)

    def _merge_keywords(self, f: Flat, s: dict, ptr: str) -> None:
        """Merge the keywords of one schema object (not its allOf/$ref) into ``f``."""
        for merge in MERGE_FAMILIES.values():
            merge(self, f, s, ptr)

    def flatten_with(self, base: Flat, choice: list[tuple[Any, str]]) -> Flat:
        """``base`` (without its anyOf/oneOf) with the branches ``choice`` merged in."""
        g = base.without_combinators()
        for schema, ptr in choice:
            self._merge_into(g, schema, ptr, 1)
        return g


def extras_for_name(pattern_props: dict, addl: list | None, name: str) -> list[tuple[Any, str]]:
    """The schemas an undeclared key ``name`` gets from patternProperties/additionalProperties."""
    out: list[tuple[Any, str]] = []
    matched = False
    for p, subs in pattern_props.items():
        if pattern_search(p, name):
            matched = True
            out.extend(subs)
    if not matched and addl is not None:
        out.extend(addl)
    return out


# One function per keyword family: ``merge(compiler, flat, schema, pointer)``.

def _merge_type(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """``type`` (and OpenAPI's ``nullable``): the intersection of the allowed types."""
    if "type" in s:
        t = s["type"]
        ts = {t} if isinstance(t, str) else set(t) if isinstance(t, list) else None
        if ts is None or not ts <= set(ALL_TYPES) | {"any"}:
            raise SchemaError(f"bad type {t!r}", ptr + "/type")
        if "any" in ts:
            ts = set(ALL_TYPES)
        if "number" in ts:
            ts.add("integer")
        if s.get("nullable") is True:
            ts.add("null")
        f.types = ts if f.types is None else f.types & ts


def _merge_enum(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """``enum`` and ``const``: the values every conjunct allows."""
    vals = None
    if "const" in s:
        vals = [s["const"]]
    if "enum" in s:
        if not isinstance(s["enum"], list):
            raise SchemaError("enum must be an array", ptr + "/enum")
        ev = list(s["enum"])
        if s.get("nullable") is True and None not in ev:
            ev.append(None)
        if vals is not None:
            keys = {value_key(v) for v in ev}
            vals = [v for v in vals if value_key(v) in keys]
        else:
            vals = ev
    if vals is not None:
        if f.enum is None:
            f.enum = vals
        else:
            keys = {value_key(v) for v in vals}
            f.enum = [v for v in f.enum if value_key(v) in keys]


def _merge_objects(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """``properties``, ``patternProperties``, ``additionalProperties``, ``required``,
    ``min/maxProperties``, ``propertyNames``."""
    props = s.get("properties")
    pp = s.get("patternProperties")
    ap = s.get("additionalProperties", True)
    if props is not None and not isinstance(props, dict):
        raise SchemaError("properties must be an object", ptr + "/properties")
    if pp is not None and not isinstance(pp, dict):
        raise SchemaError("patternProperties must be an object", ptr + "/patternProperties")
    if "properties" in s or "patternProperties" in s:
        f.lists_members = True
    if "additionalProperties" in s and s["additionalProperties"] is not False:
        f.opens_members = True
    props = props or {}
    pp = pp or {}
    new_names = [n for n in props if n not in f.props]
    # Names declared here but not by earlier conjuncts are "additional" for those.
    if f.addl is not None or f.pattern_props:
        for n in new_names:
            extra = extras_for_name(f.pattern_props, f.addl, n)
            f.props[n] = list(extra)
    for n, sub in props.items():
        f.props.setdefault(n, [])
        f.props[n].append((sub, f"{ptr}/properties/{esc_ptr(n)}"))
    if ap is not True or pp:
        # Earlier names not declared here are additional for this conjunct.
        ap_part = None if ap is True else [(ap, ptr + "/additionalProperties")]
        for n in list(f.props):
            if n not in props:
                f.props[n].extend(extras_for_name(
                    {p: [(sub, f"{ptr}/patternProperties/{esc_ptr(p)}")] for p, sub in pp.items()}, ap_part, n))
        old_pp = f.pattern_props
        for p, sub in pp.items():
            entry = [(sub, f"{ptr}/patternProperties/{esc_ptr(p)}")]
            if p in old_pp:
                old_pp[p] = old_pp[p] + entry
            else:
                old_pp[p] = (list(f.addl) if f.addl is not None else []) + entry
        if ap_part is not None:
            for p in list(old_pp):
                if p not in pp:
                    if pp:
                        c.unsupported(ptr, "patternProperties", "allOf combining different patternProperties")
                    old_pp[p] = old_pp[p] + ap_part
            f.addl = (f.addl or []) + ap_part
    req = s.get("required")
    if isinstance(req, list):  # draft 4's ``required: true`` on a property is not enforced
        for n in req:
            if n not in f.required:
                f.required.append(n)
    f.min_props, f.max_props = _count_bounds(s, "minProperties", "maxProperties", f.min_props, f.max_props)
    if "propertyNames" in s:
        f.prop_names.append((s["propertyNames"], ptr + "/propertyNames"))


def _merge_arrays(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """``prefixItems``, ``items``, ``additionalItems``, ``min/maxItems``, ``contains`` with
    ``min/maxContains`` (2019-09 on; ``contains`` alone from draft 6), ``uniqueItems``."""
    if "contains" in s and c.draft >= 6:
        lo, hi = 1, None
        if c.draft >= 2019:
            lo = _count(s, "minContains", ptr, 1)
            hi = _count(s, "maxContains", ptr, None)
        if lo > 0 or hi is not None:
            f.contains.append(([(s["contains"], ptr + "/contains")], lo, hi))
    if "$constrain:contains" in s:  # written by negation: [schema, least, greatest]
        sub, lo, hi = s["$constrain:contains"]
        f.contains.append(([(sub, ptr)], lo, hi))
    if s.get("uniqueItems") is True:
        f.unique = f.unique or ptr + "/uniqueItems"
    items = s.get("items")
    prefix_raw = None
    rest_raw: Any = True
    rest_ptr = ptr
    if "prefixItems" in s:
        prefix_raw = s["prefixItems"]
        if items is not None:
            rest_raw, rest_ptr = items, ptr + "/items"
    elif isinstance(items, list):
        prefix_raw = items
        if "additionalItems" in s:
            rest_raw, rest_ptr = s["additionalItems"], ptr + "/additionalItems"
    elif items is not None:
        rest_raw, rest_ptr = items, ptr + "/items"
    pkey = "prefixItems" if "prefixItems" in s else "items"
    if prefix_raw is not None or rest_raw is not True:
        new_prefix = [(sub, f"{ptr}/{pkey}/{i}") for i, sub in enumerate(prefix_raw or [])]
        rest_part = None if rest_raw is True else [(rest_raw, rest_ptr)]
        merged: list[list[tuple[Any, str]]] = []
        n = max(len(f.prefix), len(new_prefix))
        for i in range(n):
            a = f.prefix[i] if i < len(f.prefix) else (list(f.rest) if f.rest is not None else [])
            bpart = [new_prefix[i]] if i < len(new_prefix) else (list(rest_part) if rest_part else [])
            merged.append(a + bpart)
        f.prefix = merged
        if rest_part is not None:
            f.rest = (f.rest or []) + rest_part
    f.min_items, f.max_items = _count_bounds(s, "minItems", "maxItems", f.min_items, f.max_items)


def _count(s: dict, kw: str, ptr: str, default: int | None) -> int | None:
    """The non-negative integer keyword ``kw`` of ``s`` (``2.0`` counts as 2), else ``default``."""
    if kw not in s:
        return default
    v = s[kw]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v):
        raise SchemaError(f"{kw} must be a non-negative integer", f"{ptr}/{kw}")
    return int(v)


def _count_bounds(s: dict, lo_kw: str, hi_kw: str, lo: int, hi: int | None) -> tuple[int, int | None]:
    """``(lo, hi)`` tightened by the count keywords ``lo_kw`` and ``hi_kw`` of ``s``."""
    if lo_kw in s:
        lo = max(lo, int(s[lo_kw]))
    if hi_kw in s:
        v = int(s[hi_kw])
        hi = v if hi is None else min(hi, v)
    return lo, hi


def _merge_strings(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """``minLength``, ``maxLength``, ``pattern``, ``format``."""
    f.min_len, f.max_len = _count_bounds(s, "minLength", "maxLength", f.min_len, f.max_len)
    if "pattern" in s:
        if not isinstance(s["pattern"], str):
            raise SchemaError("pattern must be a string", ptr + "/pattern")
        f.patterns.append((s["pattern"], ptr + "/pattern"))
    formats, unsupported = content_constraints(s, c.draft, ptr)
    f.formats.extend(formats)
    f.unsupported.extend(unsupported)
    if "format" in s and isinstance(s["format"], str):
        fmt = s["format"]
        if format_regexes(fmt) is not None:
            f.formats.append((fmt, ptr + "/format"))
        elif fmt in STANDARD_FORMATS:
            f.unsupported.append((ptr + "/format", "format", f"format {fmt!r} is not regular or not implemented"))
        else:
            c.report.add(ptr + "/format", "format", "ignored", f"unknown format {fmt!r} is an annotation")


def _merge_numbers(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """``minimum``, ``maximum``, ``exclusiveMinimum``/``exclusiveMaximum`` (boolean before
    draft 6, a number after), ``multipleOf``."""
    for kw, excl_kw, is_lo in (("minimum", "exclusiveMinimum", True), ("maximum", "exclusiveMaximum", False)):
        bound = None
        if kw in s and not isinstance(s[kw], bool):
            excl = s.get(excl_kw) is True
            bound = (to_decimal(s[kw]), excl)
        ex = s.get(excl_kw)
        if ex is not None and not isinstance(ex, bool):
            b2 = (to_decimal(ex), True)
            bound = b2 if bound is None else _tighter(bound, b2, is_lo)
        if bound is not None:
            if is_lo:
                f.lo = _tighter(f.lo, bound, True)
            else:
                f.hi = _tighter(f.hi, bound, False)
    if "multipleOf" in s:
        m = s["multipleOf"]
        if isinstance(m, bool) or not isinstance(m, (int, float)) or m <= 0:
            raise SchemaError("multipleOf must be a positive number", ptr + "/multipleOf")
        f.multiple.append((to_decimal(m), ptr + "/multipleOf"))


def _tighter(a: tuple[Decimal, bool] | None, b: tuple[Decimal, bool] | None, lower: bool) -> tuple[Decimal, bool] | None:
    """The stricter of two (bound, exclusive) pairs on one side; None is no bound."""
    if a is None:
        return b
    if b is None:
        return a
    if a[0] != b[0]:
        return a if (a[0] > b[0]) == lower else b
    return (a[0], a[1] or b[1])


def _merge_combinators(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """``anyOf`` and ``oneOf`` (with OpenAPI's ``discriminator``): kept as groups, built later."""
    for kw in ("anyOf", "oneOf"):
        if kw in s:
            subs = s[kw]
            if not isinstance(subs, list) or not subs:
                raise SchemaError(f"{kw} must be a non-empty array", ptr + "/" + kw)
            group = [(sub, f"{ptr}/{kw}/{i}") for i, sub in enumerate(subs)]
            disc = s.get("discriminator")
            if isinstance(disc, dict) and isinstance(disc.get("propertyName"), str):
                # OpenAPI discriminator: every branch carries the tag property.
                tag = {"required": [disc["propertyName"]]}
                group = [({"allOf": [sub, tag]}, p) for sub, p in group]
            keys = list(s)
            if "properties" in s and keys.index(kw) < keys.index("properties"):
                c._props_first.add(id(group))
                c._keep.append(group)
            if kw == "anyOf" or len(group) == 1:
                f.anyofs.append(group)
            else:
                f.oneofs.append((group, ptr + "/oneOf"))


def _merge_conditionals(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """``dependencies``, ``dependentRequired``, ``dependentSchemas``, ``if``/``then``/``else``,
    as exact disjunctions (anyOf groups)."""
    for kw in ("dependencies", "dependentRequired", "dependentSchemas"):
        deps = s.get(kw)
        if not isinstance(deps, dict):
            continue
        for name, dep in deps.items():
            dptr = f"{ptr}/{kw}/{esc_ptr(name)}"
            absent = ({"properties": {name: False}}, dptr)
            if isinstance(dep, list):
                present = ({"required": [name] + [d for d in dep if d != name]}, dptr)
            else:
                present = ({"required": [name], "allOf": [dep]}, dptr)
            f.anyofs.append([absent, present])
    if "if" in s and ("then" in s or "else" in s):
        cond = s["if"]
        neg = c._negate(cond, ptr + "/if")
        if neg is None:
            f.unsupported.append((ptr + "/if", "if", "its condition cannot be negated"))
        else:
            f.anyofs.append([({"allOf": [cond, s.get("then", True)]}, ptr + "/then"),
                             ({"allOf": [neg, s.get("else", True)]}, ptr + "/else")])


def _merge_negation_marks(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """The ``$constrain:*`` keywords that negation writes where JSON Schema has no word."""
    if s.get("$constrain:fractional") is True:
        f.fractional = True
    if "$constrain:notValues" in s:
        f.not_values.extend(s["$constrain:notValues"])
    if "$constrain:notString" in s:
        f.not_strings.append((s["$constrain:notString"], ptr))


def _merge_not_and_unenforced(c: Any, f: Flat, s: dict, ptr: str) -> None:
    """``not``, merged as its negation, and the keywords not enforced, in the order written."""
    for kw, val in s.items():
        if kw == "not":
            neg = c._negate(val, ptr + "/not")
            if neg is None:
                f.unsupported.append((ptr + "/not", "not", "only simple forms of 'not' are supported"))
            else:
                c._merge_into(f, neg, ptr + "/not", 1)
        elif kw in _UNENFORCED:
            f.unsupported.append((f"{ptr}/{kw}", kw, ""))


# Keyword family -> its merge function, applied in this order: the anyOf groups of
# combinators precede those of conditionals and ``not`` merges last, and the order of
# the alternatives built from them follows.
MERGE_FAMILIES: dict[str, Callable[[Any, Flat, dict, str], None]] = {
    "type": _merge_type,
    "enum/const": _merge_enum,
    "objects": _merge_objects,
    "arrays": _merge_arrays,
    "strings": _merge_strings,
    "numbers": _merge_numbers,
    "anyOf/oneOf": _merge_combinators,
    "conditionals": _merge_conditionals,
    "negation marks": _merge_negation_marks,
    "not and unenforced": _merge_not_and_unenforced,
}
