"""JSON Schema (drafts 4 to 2020-12) to the grammar IR.

Semantics promised by :func:`json_schema_to_grammar`:

* The grammar accepts only JSON texts valid against the schema (strict mode), with
  deliberate narrowings: declared object keys appear in the order ``properties`` lists
  them (``property_order="any"``: in any order, each at most once), and names from
  allOf/$ref conjuncts and anyOf/oneOf branches where those keywords are written relative
  to ``properties`` (written before it, their names lead); additional (undeclared)
  properties, where allowed, may come before, between or after them (with
  ``extra_properties=False``, objects that list their properties admit no others unless
  ``additionalProperties`` says so); declared keys and ``enum``/``const`` strings are
  spelled the way ``json.dumps(..., ensure_ascii=False)`` spells them. Numbers under
  bounds are written without an exponent. Integers accept a zero fraction (``1.0``) from
  draft 6 on, as the specification does.
* Whitespace lives inside the punctuation terminals (``, ws``, ``: ws``, ``{ ws``,
  ``ws }``...), never in ``ignore``; :func:`whitespace_regexes` defines the policies
  (``"bounded"``, the default, ``"json"``, ``"compact"``, an int).
* A keyword that changes validity and cannot be enforced raises :class:`SchemaError`
  naming it and its JSON pointer; with ``strict=False`` it is reported (``warnings.warn``
  and :class:`SchemaReport`) and the grammar over-approximates it.

Exact, beyond the structural keywords: integer and decimal bounds (digit-range regexes),
``multipleOf`` for integral moduli 2^a*5^b and for 10^-k, ``pattern`` (Regex search=True,
ascii=True, json_string=True), ``minLength``/``maxLength`` (code points), known
``format``s (see :mod:`.formats`; unknown non-standard formats are annotations), ``not``
of subschemas this module can negate, ``oneOf`` whose branches are provably disjoint or
made disjoint by negating the overlapping ones, ``dependentRequired``/``dependencies``/
``dependentSchemas`` and ``if``/``then``/``else`` as disjunctions, ``propertyNames`` with
string constraints, ``min/maxProperties`` (counted along the property chain). Refused in
strict mode: ``uniqueItems``, ``contains``, ``unevaluated*``, ``$dynamicRef``, ``format:
regex``, and the forms above that cannot be negated or proven disjoint.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import combinations
from math import comb
from typing import Any, Iterable
from urllib.parse import unquote

from ...errors import CompileLimitError, SchemaError, UnsatisfiableError
from ...grammar.analysis import prune
from ...grammar.ir import Concat, Difference, Grammar, GrammarBuilder, Intersect, Lit, Terminal, Union_
from ...grammar.ir import RegexTerm as Regex
from .formats import STANDARD_FORMATS, format_regexes
from .number_ranges import number_range_regexes, to_decimal

__all__ = ["SchemaReport", "ReportEntry", "json_schema_to_grammar", "whitespace_regexes", "JSON_STRING_REGEX", "JSON_NUMBER_REGEX"]

JSON_STRING_REGEX = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
JSON_NUMBER_REGEX = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_INT_REGEX = r"-?(?:0|[1-9][0-9]*)"
_INT_REGEX_FRAC = r"-?(?:0|[1-9][0-9]*)(?:\.0+)?"

ALL_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")

# Keywords with no effect on validity.
_ANNOTATIONS = frozenset(
    """title description default examples example $comment readOnly writeOnly deprecated
    contentMediaType contentEncoding contentSchema $schema $id id $anchor $dynamicAnchor
    $vocabulary definitions $defs discriminator xml externalDocs""".split()
)
# Keywords that change validity and that this front door does not enforce.
_UNSUPPORTED = frozenset(
    """not if then else uniqueItems contains minContains maxContains propertyNames
    unevaluatedProperties unevaluatedItems dependentSchemas dependencies dependentRequired
    $dynamicRef $recursiveRef multipleOf""".split()
)

# Keywords that constrain together and must be negated together.
_KEYWORD_GROUP = {
    "properties": "object-members", "patternProperties": "object-members", "additionalProperties": "object-members",
    "items": "array-items", "prefixItems": "array-items", "additionalItems": "array-items",
    "minimum": "lower", "exclusiveMinimum": "lower", "maximum": "upper", "exclusiveMaximum": "upper",
    "if": "conditional", "then": "conditional", "else": "conditional",
    "contains": "contains", "minContains": "contains", "maxContains": "contains",
}

_MAX_ANYOF_PRODUCT = 256
_MAX_BUILDS = 50000
_MAX_NESTING = 150
_MAX_POSITIONS = 20000
_MAX_ENUM = 20000
_MAX_MERGE_DEPTH = 64
_MAX_RULES = 500000
_MAX_ORDER_STATES = 2048


@dataclass(frozen=True)
class ReportEntry:
    pointer: str
    keyword: str
    status: str  # 'enforced' | 'approximated' (accepts more) | 'narrowed' (accepts less) | 'ignored'
    note: str = ""


@dataclass
class SchemaReport:
    """What the compiled grammar does with each notable keyword."""

    entries: list[ReportEntry] = field(default_factory=list)

    def add(self, pointer: str, keyword: str, status: str, note: str = "") -> None:
        self.entries.append(ReportEntry(pointer, keyword, status, note))

    @property
    def approximated(self) -> list[ReportEntry]:
        return [e for e in self.entries if e.status == "approximated"]

    @property
    def narrowed(self) -> list[ReportEntry]:
        return [e for e in self.entries if e.status == "narrowed"]

    @property
    def ignored(self) -> list[ReportEntry]:
        return [e for e in self.entries if e.status == "ignored"]

    @property
    def exact(self) -> bool:
        """True when no validity-changing keyword was approximated."""
        return not self.approximated


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _ordered(value: Any) -> str:
    """A key for a schema or value that keeps its objects' key order: two schemas that
    list the same properties in different orders compile to different rules."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _value_key(value: Any) -> str:
    """Key under which JSON Schema equality holds (1 == 1.0, True != 1)."""
    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            d = to_decimal(v).normalize()
            return {"$num": str(d)}
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v
    return _canon(norm(value))


def _esc_ptr(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _draft_of(schema: Any) -> int:
    if isinstance(schema, dict):
        uri = schema.get("$schema")
        if isinstance(uri, str):
            for mark, draft in (("draft-03", 4), ("draft-04", 4), ("draft-06", 6), ("draft-07", 7),
                                ("2019-09", 2019), ("2020-12", 2020)):
                if mark in uri:
                    return draft
    return 2020


# The "bounded" policy: one space, or one line break and an indentation of at most this
# many spaces or tabs (json.dumps with indent=4 reaches it 16 levels deep).
BOUNDED_INDENT = 64


def whitespace_regexes(policy: str | int) -> tuple[str, str, str, str]:
    """Regexes of the whitespace a policy allows: (after ``{ [ , :``, before ``} ]``,
    before ``, :``, around the whole document as one non-empty run, or "" for none).

    * ``"bounded"`` (the default): nothing, one space, or one line break followed by at
      most :data:`BOUNDED_INDENT` spaces or tabs, after ``{ [ , :`` and before ``} ]``;
      none before ``,`` or ``:`` and none around the document, so the document ends at
      its closing character and a model cannot spend its budget on whitespace. Accepts
      what ``json.dumps`` writes, with or without ``indent=``.
    * ``"json"``: JSON's own, ``[ \\t\\n\\r]*`` wherever RFC 8259 allows it, the
      document's surroundings included (for checking documents written by anyone).
    * ``"compact"``: none at all.
    * an int N: at most N whitespace characters wherever JSON allows whitespace.
    """
    if policy == "bounded":
        ws = r"(?: |\r?\n[ \t]{0,%d})?" % BOUNDED_INDENT
        return ws, ws, "", ""
    if policy == "json":
        ws = r"[ \t\n\r]*"
        return ws, ws, ws, r"[ \t\n\r]+"
    if policy == "compact":
        return "", "", "", ""
    if isinstance(policy, int) and not isinstance(policy, bool) and policy >= 0:
        if not policy:
            return "", "", "", ""
        ws = r"[ \t\n\r]{0,%d}" % policy
        return ws, ws, ws, r"[ \t\n\r]{1,%d}" % policy
    raise SchemaError(f"whitespace must be 'bounded', 'json', 'compact' or an int >= 0, not {policy!r}", "")


class _Flat:
    """One schema with allOf and $ref merged in: constraints per keyword, normalized."""

    __slots__ = (
        "ptr", "types", "enum", "props", "required", "addl", "pattern_props", "prefix", "rest",
        "min_items", "max_items", "min_props", "max_props", "min_len", "max_len", "lo", "hi",
        "patterns", "formats", "anyofs", "oneofs", "multiple", "false", "unsupported", "not_values", "not_strings", "fractional", "prop_names",
        "lists_members", "opens_members",
    )

    def __init__(self, ptr: str) -> None:
        self.ptr = ptr
        self.types: set[str] | None = None
        self.enum: list[Any] | None = None
        self.props: dict[str, list[tuple[Any, str]]] = {}
        self.required: list[str] = []
        self.addl: list[tuple[Any, str]] | None = None  # None: any value allowed
        self.pattern_props: dict[str, list[tuple[Any, str]]] = {}
        self.prefix: list[list[tuple[Any, str]]] = []
        self.rest: list[tuple[Any, str]] | None = None
        self.min_items = 0
        self.max_items: int | None = None
        self.min_props = 0
        self.max_props: int | None = None
        self.min_len = 0
        self.max_len: int | None = None
        self.lo: tuple[Decimal, bool] | None = None
        self.hi: tuple[Decimal, bool] | None = None
        self.patterns: list[tuple[str, str]] = []
        self.formats: list[tuple[str, str]] = []
        self.anyofs: list[list[tuple[Any, str]]] = []
        self.oneofs: list[tuple[list[tuple[Any, str]], str]] = []
        self.multiple: list[tuple[Decimal, str]] = []
        self.false = False
        self.unsupported: list[tuple[str, str, str]] = []  # (pointer, keyword, note)
        self.not_values: list[Any] = []  # scalars excluded by `not: {enum/const}`
        self.not_strings: list[tuple[dict, str]] = []  # string constraints excluded by `not`
        self.fractional = False  # numbers must not be integers (`not: {type: integer}`)
        self.prop_names: list[tuple[Any, str]] = []  # propertyNames subschemas
        # Some conjunct lists properties (properties/patternProperties); some conjunct
        # says additionalProperties explicitly (true or a schema). With
        # extra_properties=False, an object that lists properties and leaves the rest
        # unsaid admits only what it lists.
        self.lists_members = False
        self.opens_members = False


def _tighter(a: tuple[Decimal, bool] | None, b: tuple[Decimal, bool] | None, lower: bool) -> tuple[Decimal, bool] | None:
    """The stricter of two (bound, exclusive) pairs on one side; None is no bound."""
    if a is None:
        return b
    if b is None:
        return a
    if a[0] != b[0]:
        return a if (a[0] > b[0]) == lower else b
    return (a[0], a[1] or b[1])


class _Compiler:
    def __init__(
        self,
        root: Any,
        strict: bool,
        whitespace: str | int,
        max_rules: int,
        max_seconds: float = 10.0,
        *,
        extra_properties: bool = True,
        property_order: str = "schema",
    ) -> None:
        self.root = root
        self.max_seconds = max_seconds
        self.deadline = time.monotonic() + max_seconds
        self.strict = strict
        self.draft = _draft_of(root)
        self.report = SchemaReport()
        self.b = GrammarBuilder()
        self.max_rules = max_rules
        self._memo: dict[str, str] = {}
        self._builds = 0
        self._depth = 0
        self._props_first: set[int] = set()  # anyOf/oneOf groups written before `properties`
        self._keep: list[Any] = []
        self._names: set[str] = {"start"}
        self._any: str | None = None
        self._warned: set[tuple[str, str]] = set()
        if property_order not in ("schema", "any"):
            raise SchemaError(f"property_order must be 'schema' or 'any', not {property_order!r}", "")
        self.closed = not extra_properties
        self.any_order = property_order == "any"
        ws_after, ws_close, ws_sep, self.ws_top = whitespace_regexes(whitespace)
        self.whitespace = whitespace

        def punct(name: str, regex: str, lit: str) -> str:
            term: Terminal = Regex(regex) if regex != re.escape(lit) else Lit(lit)
            return self.b.terminal(term, name)

        self.T_LBRACE = punct("LBRACE", r"\{" + ws_after, "{")
        self.T_RBRACE = punct("RBRACE", ws_close + r"\}", "}")
        self.T_LBRACK = punct("LBRACK", r"\[" + ws_after, "[")
        self.T_RBRACK = punct("RBRACK", ws_close + r"\]", "]")
        self.T_EMPTY_OBJ = punct("EMPTY_OBJECT", r"\{" + ws_after + r"\}", "{}")
        self.T_EMPTY_ARR = punct("EMPTY_ARRAY", r"\[" + ws_after + r"\]", "[]")
        self.T_COMMA = punct("COMMA", ws_sep + "," + ws_after, ",")
        self.T_COLON = punct("COLON", ws_sep + ":" + ws_after, ":")
        self.STRING_TERM = Regex(JSON_STRING_REGEX)

    # ------------------------------------------------------------------ reporting
    def unsupported(self, ptr: str, keyword: str, note: str = "") -> None:
        """A validity-changing keyword is not enforced: error, or warn and over-approximate."""
        if self.strict:
            hint = f" ({note})" if note else ""
            raise SchemaError(
                f"keyword {keyword!r} cannot be enforced{hint}; pass strict=False to approximate it", ptr
            )
        self.report.add(ptr, keyword, "approximated", note or "not enforced: the grammar accepts more")
        if (ptr, keyword) not in self._warned:
            self._warned.add((ptr, keyword))
            warnings.warn(f"JSON Schema keyword {keyword!r} at {ptr or '/'} is not enforced", stacklevel=4)

    # ------------------------------------------------------------------ names
    def name(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", hint).strip("_")[:40] or "schema"
        base = base.lower()
        n = base
        i = 1
        while n in self._names or n in self.b.terminals:
            i += 1
            n = f"{base}_{i}"
        self._names.add(n)
        return n

    def rule(self, name: str, alts: Iterable[tuple[str, ...]]) -> str:
        self.b.rule(name, alts)
        if len(self.b.rules) > self.max_rules:
            raise CompileLimitError(f"JSON Schema grammar exceeds {self.max_rules} rules")
        return name

    # ------------------------------------------------------------------ $ref
    def resolve(self, ref: str, ptr: str) -> tuple[Any, str]:
        frag = None
        if ref.startswith("#"):
            frag = ref[1:]
        else:
            root_id = self.root.get("$id", self.root.get("id")) if isinstance(self.root, dict) else None
            if isinstance(root_id, str) and ref.split("#")[0] == root_id.split("#")[0]:
                frag = ref.partition("#")[2]
        if frag is None:
            raise SchemaError(f"$ref {ref!r} points outside this document (only local references are supported)", ptr)
        frag = unquote(frag)
        if frag and not frag.startswith("/"):
            found = self._find_anchor(self.root, frag)
            if found is None:
                raise SchemaError(f"$ref {ref!r}: anchor not found", ptr)
            return found
        node = self.root
        for tok in frag.split("/")[1:] if frag else []:
            tok = tok.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and tok in node:
                node = node[tok]
            elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
                node = node[int(tok)]
            else:
                raise SchemaError(f"$ref {ref!r} does not resolve", ptr)
        return node, frag

    def _find_anchor(self, node: Any, name: str, path: str = "") -> tuple[Any, str] | None:
        if isinstance(node, dict):
            if node.get("$anchor") == name or node.get("$id") == "#" + name or node.get("id") == "#" + name:
                return node, path
            for k, v in node.items():
                if k in ("enum", "const", "default", "examples"):
                    continue
                r = self._find_anchor(v, name, f"{path}/{_esc_ptr(k)}")
                if r:
                    return r
        elif isinstance(node, list):
            for i, v in enumerate(node):
                r = self._find_anchor(v, name, f"{path}/{i}")
                if r:
                    return r
        return None

    # ------------------------------------------------------------------ flattening
    def flatten(self, parts: list[tuple[Any, str]], depth: int = 0) -> _Flat:
        """Merge a conjunction of raw subschemas into one :class:`_Flat`."""
        flat = _Flat(parts[0][1] if parts else "")
        for schema, ptr in parts:
            self._merge_into(flat, schema, ptr, depth)
        return flat

    def _merge_into(self, f: _Flat, schema: Any, ptr: str, depth: int) -> None:
        if time.monotonic() > self.deadline:
            raise CompileLimitError(f"JSON Schema compilation exceeded {self.max_seconds:g} s (at {ptr or '/'})")
        if depth > _MAX_MERGE_DEPTH:
            raise CompileLimitError(f"allOf/$ref nesting deeper than {_MAX_MERGE_DEPTH} at {ptr or '/'}")
        if schema is True:
            return
        if schema is False:
            f.false = True
            return
        if not isinstance(schema, dict):
            raise SchemaError(f"a schema must be an object or a boolean, not {type(schema).__name__}", ptr)
        if "$ref" in schema and self.draft <= 7:
            schema = {"$ref": schema["$ref"]}  # siblings of $ref are ignored before 2019-09
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
            elif kw == "allOf":
                allof = schema["allOf"]
                if not isinstance(allof, list):
                    raise SchemaError("allOf must be an array", ptr + "/allOf")
                for i, sub in enumerate(allof):
                    self._merge_into(f, sub, f"{ptr}/allOf/{i}", depth + 1)
            elif not own_done and kw not in _ANNOTATIONS and (own_at is None or kw == own_at):
                own_done = True
                self._merge_keywords(f, schema, ptr)

    def _merge_keywords(self, f: _Flat, s: dict, ptr: str) -> None:
        draft = self.draft
        # ---- type
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
            if f.types is None:
                f.types = ts
            else:
                new = f.types & ts
                f.types = new
        # ---- enum / const
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
                keys = {_value_key(v) for v in ev}
                vals = [v for v in vals if _value_key(v) in keys]
            else:
                vals = ev
        if vals is not None:
            if f.enum is None:
                f.enum = vals
            else:
                keys = {_value_key(v) for v in vals}
                f.enum = [v for v in f.enum if _value_key(v) in keys]
        # ---- objects
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
                extra = self._extras_for_name(f.pattern_props, f.addl, n)
                f.props[n] = list(extra)
        for n, sub in props.items():
            f.props.setdefault(n, [])
            f.props[n].append((sub, f"{ptr}/properties/{_esc_ptr(n)}"))
        if ap is not True or pp:
            # Earlier names not declared here are additional for this conjunct.
            ap_part = None if ap is True else [(ap, ptr + "/additionalProperties")]
            for n in list(f.props):
                if n not in props:
                    f.props[n].extend(self._extras_for_name(
                        {p: [(sub, f"{ptr}/patternProperties/{_esc_ptr(p)}")] for p, sub in pp.items()}, ap_part, n))
            old_pp = f.pattern_props
            for p, sub in pp.items():
                entry = [(sub, f"{ptr}/patternProperties/{_esc_ptr(p)}")]
                if p in old_pp:
                    old_pp[p] = old_pp[p] + entry
                else:
                    old_pp[p] = (list(f.addl) if f.addl is not None else []) + entry
            if ap_part is not None:
                for p in list(old_pp):
                    if p not in pp:
                        if pp:
                            self.unsupported(ptr, "patternProperties", "allOf combining different patternProperties")
                        old_pp[p] = old_pp[p] + ap_part
                f.addl = (f.addl or []) + ap_part
        for kw in ("required",):
            if kw in s:
                req = s[kw]
                if isinstance(req, list):
                    for n in req:
                        if n not in f.required:
                            f.required.append(n)
                elif req is True and draft <= 4:
                    pass
        if "minProperties" in s:
            f.min_props = max(f.min_props, int(s["minProperties"]))
        if "maxProperties" in s:
            v = int(s["maxProperties"])
            f.max_props = v if f.max_props is None else min(f.max_props, v)
        # ---- arrays
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
        if "minItems" in s:
            f.min_items = max(f.min_items, int(s["minItems"]))
        if "maxItems" in s:
            v = int(s["maxItems"])
            f.max_items = v if f.max_items is None else min(f.max_items, v)
        # ---- strings
        if "minLength" in s:
            f.min_len = max(f.min_len, int(s["minLength"]))
        if "maxLength" in s:
            v = int(s["maxLength"])
            f.max_len = v if f.max_len is None else min(f.max_len, v)
        if "pattern" in s:
            if not isinstance(s["pattern"], str):
                raise SchemaError("pattern must be a string", ptr + "/pattern")
            f.patterns.append((s["pattern"], ptr + "/pattern"))
        if "format" in s and isinstance(s["format"], str):
            fmt = s["format"]
            if format_regexes(fmt) is not None:
                f.formats.append((fmt, ptr + "/format"))
            elif fmt in STANDARD_FORMATS:
                f.unsupported.append((ptr + "/format", "format", f"format {fmt!r} is not regular or not implemented"))
            else:
                self.report.add(ptr + "/format", "format", "ignored", f"unknown format {fmt!r} is an annotation")
        # ---- numbers
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
        # ---- combinators
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
                    self._props_first.add(id(group))
                    self._keep.append(group)
                if kw == "anyOf" or len(group) == 1:
                    f.anyofs.append(group)
                else:
                    f.oneofs.append((group, ptr + "/oneOf"))
        if s.get("nullable") is True and "type" not in s and "enum" not in s:
            pass  # nullable without type widens nothing
        # ---- conditionals, as exact disjunctions
        for kw in ("dependencies", "dependentRequired", "dependentSchemas"):
            deps = s.get(kw)
            if not isinstance(deps, dict):
                continue
            for name, dep in deps.items():
                dptr = f"{ptr}/{kw}/{_esc_ptr(name)}"
                absent = ({"properties": {name: False}}, dptr)
                if isinstance(dep, list):
                    present = ({"required": [name] + [d for d in dep if d != name]}, dptr)
                else:
                    present = ({"required": [name], "allOf": [dep]}, dptr)
                f.anyofs.append([absent, present])
        if "if" in s and ("then" in s or "else" in s):
            cond = s["if"]
            neg = self._negate(cond, ptr + "/if")
            if neg is None:
                f.unsupported.append((ptr + "/if", "if", "its condition cannot be negated"))
            else:
                f.anyofs.append([({"allOf": [cond, s.get("then", True)]}, ptr + "/then"),
                                 ({"allOf": [neg, s.get("else", True)]}, ptr + "/else")])
        if "propertyNames" in s:
            f.prop_names.append((s["propertyNames"], ptr + "/propertyNames"))
        if s.get("$constrain:fractional") is True:
            f.fractional = True
        if "$constrain:notValues" in s:
            f.not_values.extend(s["$constrain:notValues"])
        if "$constrain:notString" in s:
            f.not_strings.append((s["$constrain:notString"], ptr))
        # ---- keywords not enforced
        for kw in s:
            if kw in _UNSUPPORTED and kw != "multipleOf":
                val = s[kw]
                if kw == "uniqueItems" and val is False:
                    continue
                if kw in ("dependencies", "dependentRequired", "dependentSchemas", "if", "then", "else", "propertyNames"):
                    continue
                if kw == "not":
                    neg = self._negate(val, ptr + "/not")
                    if neg is None:
                        f.unsupported.append((ptr + "/not", "not", "only simple forms of 'not' are supported"))
                    else:
                        self._merge_into(f, neg, ptr + "/not", 1)
                    continue
                if kw in ("then", "else") and "if" not in s:
                    continue
                f.unsupported.append((f"{ptr}/{kw}", kw, ""))

    def _extras_for_name(self, pattern_props: dict, addl: list | None, name: str) -> list[tuple[Any, str]]:
        """The schemas an undeclared key ``name`` gets from patternProperties/additionalProperties."""
        out: list[tuple[Any, str]] = []
        matched = False
        for p, subs in pattern_props.items():
            if _pattern_search(p, name):
                matched = True
                out.extend(subs)
        if not matched and addl is not None:
            out.extend(addl)
        return out

    # ------------------------------------------------------------------ compile
    def compile_parts(self, parts: list[tuple[Any, str]], hint: str) -> str | None:
        """Nonterminal for the conjunction of ``parts``; None when provably empty."""
        parts = [(s, p) for s, p in parts if s is not True and s != {}]
        if not parts:
            return self.any_value()
        if len(parts) == 1 and isinstance(parts[0][0], dict) and set(parts[0][0]) == {"$ref"} and isinstance(parts[0][0]["$ref"], str):
            target, tptr = self.resolve(parts[0][0]["$ref"], parts[0][1])
            key = "ref:" + tptr
            hint = tptr.rsplit("/", 1)[-1] or "root"
            return self._compile_keyed(key, [(target, tptr)], hint)
        key = _ordered([s for s, _ in parts])
        return self._compile_keyed(key, parts, hint)

    def _compile_keyed(self, key: str, parts: list[tuple[Any, str]], hint: str) -> str | None:
        if key in self._memo:
            return self._memo[key]
        if any(s is False for s, _ in parts):
            self._memo[key] = None  # type: ignore[assignment]
            return None
        name = self.name(hint)
        self._memo[key] = name
        self._depth += 1
        if self._depth > _MAX_NESTING:
            raise CompileLimitError(f"schema nests more than {_MAX_NESTING} levels at {parts[0][1] or '/'}")
        try:
            alts = self.build(self.flatten(parts), hint)
        finally:
            self._depth -= 1
        if not alts:
            # Keep the name defined (recursion may refer to it); pruned later.
            self.b.rules.setdefault(name, [])
            if not self._referenced_before(name):
                self._memo[key] = None  # type: ignore[assignment]
                del self.b.rules[name]
                return None
            return name
        self.rule(name, alts)
        return name

    def _referenced_before(self, name: str) -> bool:
        for alts in self.b.rules.values():
            for alt in alts:
                if name in alt:
                    return True
        return False

    def build(self, f: _Flat, hint: str) -> list[tuple[str, ...]]:
        """Alternatives (tuples of symbols) for a flattened schema."""
        self._builds += 1
        if self._builds > _MAX_BUILDS:
            raise CompileLimitError(f"schema expands to more than {_MAX_BUILDS} subschemas at {f.ptr or '/'}")
        if self._builds % 64 == 0 and time.monotonic() > self.deadline:
            raise CompileLimitError(f"JSON Schema compilation exceeded {self.max_seconds:g} s (at {f.ptr or '/'})")
        if f.false:
            return []
        for ptr, kw, note in f.unsupported:
            self.unsupported(ptr, kw, note)
        # Distribute anyOf/oneOf over the rest of the schema.
        if f.anyofs or f.oneofs:
            groups: list[list[tuple[Any, str]]] = list(f.anyofs)
            one_groups = []
            for group, gptr in f.oneofs:
                groups.append(group)
                one_groups.append((len(groups) - 1, gptr))
            base = self._strip_combinators(f)
            # Groups written before ``properties``: their names lead (see below).
            first = [id(g) in self._props_first for g in groups]
            # Drop branches that contradict the rest of the schema outright.
            kept = []
            for g in groups:
                live = [c for c in g if not _quick_empty(self.flatten_with(base, [c]))]
                if not live:
                    return []
                kept.append(live)
            groups = kept
            total = 1
            for g in groups:
                total *= len(g)
            if total > _MAX_ANYOF_PRODUCT:
                raise CompileLimitError(f"anyOf/oneOf combinations exceed {_MAX_ANYOF_PRODUCT} at {f.ptr or '/'}")
            for gi, gptr in one_groups:
                groups[gi] = self._check_disjoint(groups[gi], base, gptr)
            alts: list[tuple[str, ...]] = []
            for choice in _product(groups):
                sub = self.flatten_with(base, choice)
                lead = [n for (sch, _), fl in zip(choice, first) if fl
                        for n in self._declared_names(sch) if n not in base.props]
                if lead:
                    order = [n for n in lead if n in sub.props] + [n for n in sub.props if n not in lead]
                    sub.props = {n: sub.props[n] for n in order}
                branch = self.build(sub, hint)
                alts.extend(branch)
            return _dedupe(alts)
        return self.build_plain(f, hint)

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
        s = {k: v for k, v in x.items() if k not in _ANNOTATIONS}
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
                neg = self._negate(sub, f"{ptr}/properties/{_esc_ptr(n)}", depth + 1)
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
            f = _Flat(ptr)
            self._merge_keywords(f, s, ptr)
            bound = f.lo if lo else f.hi
            if bound is None:
                return False
            value = int(bound[0]) if bound[0] == bound[0].to_integral_value() else float(bound[0])
            if lo:
                return {"type": "number", ("maximum" if bound[1] else "exclusiveMaximum"): value}
            return {"type": "number", ("minimum" if bound[1] else "exclusiveMinimum"): value}
        return None

    def _declared_names(self, schema: Any, depth: int = 0) -> list[str]:
        """Property names a subschema declares (following $ref and allOf), in order."""
        if not isinstance(schema, dict) or depth > 8:
            return []
        out: list[str] = []
        for kw, val in schema.items():
            if kw == "$ref" and isinstance(val, str):
                try:
                    out += self._declared_names(self.resolve(val, "")[0], depth + 1)
                except SchemaError:
                    pass
            elif kw == "allOf" and isinstance(val, list):
                for sub in val:
                    out += self._declared_names(sub, depth + 1)
            elif kw == "properties" and isinstance(val, dict):
                out += list(val)
        return out

    def _strip_combinators(self, f: _Flat) -> _Flat:
        g = _Flat(f.ptr)
        for slot in _Flat.__slots__:
            setattr(g, slot, getattr(f, slot))
        g.anyofs = []
        g.oneofs = []
        g.props = {k: list(v) for k, v in f.props.items()}
        g.required = list(f.required)
        g.pattern_props = {k: list(v) for k, v in f.pattern_props.items()}
        g.prefix = [list(p) for p in f.prefix]
        g.patterns = list(f.patterns)
        g.formats = list(f.formats)
        g.multiple = list(f.multiple)
        g.unsupported = []
        g.not_values = list(f.not_values)
        g.not_strings = list(f.not_strings)
        g.prop_names = list(f.prop_names)
        return g

    def flatten_with(self, base: _Flat, choice: list[tuple[Any, str]]) -> _Flat:
        g = self._strip_combinators(base)
        for schema, ptr in choice:
            self._merge_into(g, schema, ptr, 1)
        return g

    # ---- oneOf disjointness
    def _check_disjoint(self, group: list[tuple[Any, str]], base: _Flat, ptr: str) -> list[tuple[Any, str]]:
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

    def _signature(self, f: _Flat) -> dict:
        types = set(ALL_TYPES) if f.types is None else set(f.types)
        if f.false:
            types = set()
        sig: dict[str, Any] = {"types": types, "enum": None, "props": {}, "required": set(f.required),
                               "closed": f.addl is not None and not f.pattern_props and
                               all(s is False for s, _ in f.addl), "names": set(f.props),
                               "anyof": bool(f.anyofs or f.oneofs)}
        if f.enum is not None:
            sig["enum"] = {_value_key(v) for v in f.enum}
            sig["types"] = types & _enum_types(f.enum, self.draft)
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
                    vsig["enum"] = {_value_key(v) for v in sub.enum}
                    vsig["types"] &= _enum_types(sub.enum, self.draft)
                if sub.false:
                    vsig["types"] = set()
            sig["props"][name] = vsig
        return sig

    # ------------------------------------------------------------------ plain (no combinators)
    def build_plain(self, f: _Flat, hint: str) -> list[tuple[str, ...]]:
        not_vals = f.not_values
        if f.enum is not None:
            return self.build_enum(f, hint, not_vals)
        types = set(ALL_TYPES) if f.types is None else set(f.types)
        alts: list[tuple[str, ...]] = []
        excluded = {_value_key(v) for v in not_vals}
        if "null" in types and _value_key(None) not in excluded:
            alts.append((self.b.terminal(Lit("null"), "NULL"),))
        if "boolean" in types:
            if _value_key(True) not in excluded:
                alts.append((self.b.terminal(Lit("true"), "TRUE"),))
            if _value_key(False) not in excluded:
                alts.append((self.b.terminal(Lit("false"), "FALSE"),))
        if "number" in types or "integer" in types:
            t = self.number_terminal(f, integer="number" not in types)
            if t is not None:
                alts.append((t,))
        if "string" in types:
            t = self.string_terminal(f, [v for v in not_vals if isinstance(v, str)], f.not_strings)
            if t is not None:
                alts.append((t,))
        if "array" in types:
            alts.extend(self.build_array(f, hint))
        if "object" in types:
            alts.extend(self.build_object(f, hint))
        return alts

    # ---- enum
    def build_enum(self, f: _Flat, hint: str, not_vals: list[Any]) -> list[tuple[str, ...]]:
        if len(f.enum) > _MAX_ENUM:
            raise CompileLimitError(f"enum with {len(f.enum)} values exceeds {_MAX_ENUM} at {f.ptr or '/'}")
        excluded = {_value_key(v) for v in not_vals}
        rest = self._strip_combinators(f)
        rest.enum = None
        seen = set()
        scalars: list[Terminal] = []
        alts: list[tuple[str, ...]] = []
        for v in f.enum:
            k = _value_key(v)
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
        key = "lit:" + _ordered(v)
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

    # ---- numbers
    def number_terminal(self, f: _Flat, integer: bool) -> str | None:
        mult_regs: list[str] = []
        for m, mptr in f.multiple:
            if m == m.to_integral_value():
                # Only integers are multiples of an integer.
                integer = True
                if m == 1:
                    continue
                reg = _int_multiple_suffix(int(m))
                if reg is not None:
                    mult_regs.append(reg)
                    continue
            else:
                sign, digits, exp = m.normalize().as_tuple()
                if digits == (1,) and isinstance(exp, int) and -12 <= exp < 0:
                    # multipleOf 10^-k: at most k significant fraction digits.
                    if not integer:
                        mult_regs.append(r"(?:0|[1-9][0-9]*)(?:\.[0-9]{1,%d}0*)?" % -exp)
                    continue
            self.unsupported(mptr, "multipleOf", f"multipleOf {m}")
        int_syntax = _INT_REGEX_FRAC if self.draft >= 6 else _INT_REGEX
        if f.fractional:
            if integer:
                return None
            # Non-integral numbers, written without exponent.
            mult_frac = r"(?:0|[1-9][0-9]*)\.[0-9]*[1-9][0-9]*"
            if f.lo is None and f.hi is None and not mult_regs:
                return self.b.terminal(Regex("-?" + mult_frac))
        if f.lo is None and f.hi is None and not mult_regs:
            if integer:
                return self.b.terminal(Regex(int_syntax), "INTEGER")
            return self.b.terminal(Regex(JSON_NUMBER_REGEX), "NUMBER")
        if f.lo is not None and f.hi is not None:
            if f.lo[0] > f.hi[0] or (f.lo[0] == f.hi[0] and (f.lo[1] or f.hi[1])):
                return None
        pos, neg = number_range_regexes(f.lo, f.hi)
        branches: list[Terminal] = []
        for sign, regs in (("", pos), ("-", neg)):
            if regs is None:
                continue
            parts: list[Terminal] = [Regex(r) for r in regs]
            if integer:
                parts.append(Regex(r"(?:0|[1-9][0-9]*)(?:\.0+)?" if self.draft >= 6 else r"(?:0|[1-9][0-9]*)"))
            if f.fractional:
                parts.append(Regex(r"(?:0|[1-9][0-9]*)\.[0-9]*[1-9][0-9]*"))
            parts.extend(Regex(r) for r in mult_regs)
            body: Terminal = parts[0] if len(parts) == 1 else Intersect(tuple(parts))
            branches.append(Concat((Lit("-"), body)) if sign else body)
        if not branches:
            return None
        if f.lo is None and f.hi is None:
            pass
        else:
            self.report.add(f.ptr, "minimum/maximum", "enforced", "numbers under bounds are written without exponent")
        term = branches[0] if len(branches) == 1 else Union_(tuple(branches))
        return self.b.terminal(term)

    # ---- strings
    def _string_contents(self, f: _Flat) -> list[Terminal]:
        contents: list[Terminal] = []
        for p, pptr in f.patterns:
            _check_pattern(p, pptr)
            contents.append(Regex(p, ascii=True, search=True, json_string=True))
        for fmt, fptr in f.formats:
            for r in format_regexes(fmt) or ():
                contents.append(Regex(r, ascii=True, json_string=True))
            self.report.add(fptr, "format", "enforced", fmt)
        if f.min_len or f.max_len is not None:
            hi = "" if f.max_len is None else str(f.max_len)
            contents.append(Regex(r"[\s\S]{%d,%s}" % (f.min_len, hi), json_string=True))
        return contents

    def string_terminal(self, f: _Flat, not_strings: list[str], not_cons: list[tuple[dict, str]] = ()) -> str | None:
        if f.max_len is not None and f.max_len < f.min_len:
            return None
        contents = self._string_contents(f)
        if not contents and not not_strings and not not_cons:
            return self.b.terminal(self.STRING_TERM, "STRING")
        if contents:
            inner: Terminal = contents[0] if len(contents) == 1 else Intersect(tuple(contents))
            term: Terminal = Concat((Lit('"'), inner, Lit('"')))
        else:
            term = self.STRING_TERM
        excl: list[Terminal] = [Regex(re.escape(s), json_string=True) for s in not_strings]
        for cons, cptr in not_cons:
            sub = _Flat(cptr)
            self._merge_keywords(sub, cons, cptr)
            parts = self._string_contents(sub)
            if not parts:
                return None
            excl.append(parts[0] if len(parts) == 1 else Intersect(tuple(parts)))
        if excl:
            term = Difference(term, Concat((Lit('"'), excl[0] if len(excl) == 1 else Union_(tuple(excl)), Lit('"'))))
        return self.b.terminal(term)

    # ---- arrays
    def build_array(self, f: _Flat, hint: str) -> list[tuple[str, ...]]:
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
        if explicit > _MAX_POSITIONS:
            raise CompileLimitError(f"array needs {explicit} item positions (minItems/maxItems) at {f.ptr or '/'}")

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

    # ---- objects
    def _key_filter(self, f: _Flat) -> tuple[Any, Any]:
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

    def build_object(self, f: _Flat, hint: str) -> list[tuple[str, ...]]:
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
                    if _pattern_search(p, n):
                        parts.extend(subs)
            else:
                parts = self._extras_for_name(f.pattern_props, f.addl, n)
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
        if (n + 1) * (cap + 1) > _MAX_POSITIONS * 4:
            raise CompileLimitError(f"object with {n} properties and min/maxProperties {lo}/{hi} is too large at {f.ptr or '/'}")
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

        alts: list[tuple[str, ...]] = []
        if lo == 0 and not required:
            alts.append((self.T_EMPTY_OBJ,))
        if hi != 0:
            alts.append((self.T_LBRACE, tail(0, 0), self.T_RBRACE))
        return alts

    def _members_any_order(
        self, f: _Flat, names: list[str], members: list[str | None], required: set[str], extra: str | None, hint: str
    ) -> list[tuple[str, ...]] | None:
        """Object alternatives that take the declared members in any order, each at most
        once (required ones exactly once), undeclared ones (``extra``) anywhere between.

        The state is the set of members written (and the count, where min/maxProperties
        or undeclared members need it), so the rules grow as 2^n: past
        ``_MAX_ORDER_STATES`` this returns None and the object keeps the schema's order
        (a narrowing, recorded in the report)."""
        lo, hi = f.min_props, f.max_props
        live = [i for i, m in enumerate(members) if m is not None]
        top = len(live) if hi is None else min(len(live), hi)
        states = sum(comb(len(live), k) for k in range(top + 1))
        cap = max(lo, 1) if hi is None else hi
        if extra is not None:
            states *= cap + 1
        if states > _MAX_ORDER_STATES:
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

        alts: list[tuple[str, ...]] = []
        if lo == 0 and not required:
            alts.append((self.T_EMPTY_OBJ,))
        if hi != 0:
            alts.append((self.T_LBRACE, state(0, 0), self.T_RBRACE))
        return alts

    def extra_member(
        self, f: _Flat, declared: list[str], addl: list[tuple[Any, str]] | None, hint: str, key_filter: Any = None
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
            _check_pattern(p, subs[-1][1] if subs else f.ptr)
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
                canon = {_canon([s for s, _ in subs]) for _, subs in pats}
                if len(canon) != 1:
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

    # ---- any JSON value
    def any_value(self) -> str:
        if self._any is not None:
            return self._any
        b = self.b
        self._any = name = self.name("json_value")
        obj = self.name("json_object")
        arr = self.name("json_array")
        members = self.name("json_members")
        elems = self.name("json_elements")
        string = b.terminal(self.STRING_TERM, "STRING")
        self.rule(name, [(string,), (b.terminal(Regex(JSON_NUMBER_REGEX), "NUMBER"),),
                         (b.terminal(Lit("true"), "TRUE"),), (b.terminal(Lit("false"), "FALSE"),),
                         (b.terminal(Lit("null"), "NULL"),), (obj,), (arr,)])
        self.rule(obj, [(self.T_EMPTY_OBJ,), (self.T_LBRACE, members, self.T_RBRACE)])
        self.rule(members, [(string, self.T_COLON, name), (members, self.T_COMMA, string, self.T_COLON, name)])
        self.rule(arr, [(self.T_EMPTY_ARR,), (self.T_LBRACK, elems, self.T_RBRACK)])
        self.rule(elems, [(name,), (elems, self.T_COMMA, name)])
        return name

    # ------------------------------------------------------------------ instance checks (for enum filtering)
    def valid(self, v: Any, f: _Flat) -> bool:
        """Whether JSON value ``v`` satisfies the flattened constraints ``f`` (for enum values)."""
        if f.false:
            return False
        if f.enum is not None and _value_key(v) not in {_value_key(x) for x in f.enum}:
            return False
        t = _json_type(v)
        if f.types is not None:
            if t not in f.types and not (t == "number" and "integer" in f.types and _is_integral(v, self.draft)):
                return False
        for ptr, kw, note in f.unsupported:
            self.unsupported(ptr, kw, note)
        if f.not_values and _value_key(v) in {_value_key(x) for x in f.not_values}:
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
                if not _pattern_search(p, v):
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
                parts = f.props[k] if k in f.props else self._extras_for_name(f.pattern_props, f.addl, k)
                if k in f.props:
                    parts = parts + [s for p, subs in f.pattern_props.items() if _pattern_search(p, k) for s in subs]
                if parts and not self.valid(x, self.flatten(parts)):
                    return False
        for group in f.anyofs:
            if not any(self.valid(v, self.flatten([g])) for g in group):
                return False
        for group, _ in f.oneofs:
            if sum(self.valid(v, self.flatten([g])) for g in group) != 1:
                return False
        return True


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _is_integral(v: Any, draft: int) -> bool:
    if isinstance(v, int):
        return True
    return draft >= 6 and isinstance(v, float) and v.is_integer()


def _int_multiple_suffix(m: int) -> str | None:
    """Regex (over unsigned integer digits, optional zero fraction) for multiples of m = 2^a 5^b."""
    a = b = 0
    x = m
    while x % 2 == 0:
        x //= 2
        a += 1
    while x % 5 == 0:
        x //= 5
        b += 1
    if x != 1:
        return None
    k = max(a, b)
    if k > 4:
        return None
    mod = 10 ** k
    ends = [str(r).zfill(k) for r in range(0, mod, m)]
    # Numbers with fewer than k digits are multiples only when their value is.
    small = [str(r) for r in range(0, mod, m)]
    return "(?:[0-9]*(?:" + "|".join(ends) + ")|" + "|".join(small) + r")(?:\.0+)?"


_PATTERN_CACHE: dict[str, re.Pattern | None] = {}


def _pattern_search(pattern: str, text: str) -> bool:
    """ECMA-style ``pattern`` search approximated with Python's re (ASCII classes)."""
    rx = _PATTERN_CACHE.get(pattern)
    if rx is None and pattern not in _PATTERN_CACHE:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                rx = re.compile(_ecma_to_python(pattern), re.ASCII)
        except re.error:
            rx = None
        _PATTERN_CACHE[pattern] = rx
    if rx is None:
        raise SchemaError(f"pattern {pattern!r} is not a valid regular expression", "")
    return rx.search(text) is not None


def _ecma_to_python(p: str) -> str:
    # ECMA-262 and Python agree on the syntax schemas use in practice (\uXXXX included);
    # \d \w \s get ECMA's ASCII meaning from re.ASCII / Regex(ascii=True).
    return p


def _check_pattern(p: str, ptr: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(_ecma_to_python(p))
    except re.error as e:
        raise SchemaError(f"pattern {p!r} is not a supported regular expression ({e})", ptr) from None


def _product(groups: list[list[tuple[Any, str]]]) -> Iterable[list[tuple[Any, str]]]:
    if not groups:
        yield []
        return
    for first in groups[0]:
        for rest in _product(groups[1:]):
            yield [first] + rest


def _dedupe(alts: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return list(dict.fromkeys(alts))


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


def _quick_empty(f: _Flat) -> bool:
    """Cheap proof that a flattened schema admits nothing."""
    if f.false or (f.types is not None and not f.types) or f.enum == []:
        return True
    if f.types is not None and f.types <= {"object"}:
        # Only objects, and one of them must hold a property whose schema is false.
        for r in f.required:
            if any(sch is False for sch, _ in f.props.get(r, ())):
                return True
    return False


def _enum_types(values: list[Any], draft: int) -> set[str]:
    out: set[str] = set()
    for v in values:
        t = _json_type(v)
        out.add(t)
        if t == "number" and _is_integral(v, draft):
            out.add("integer")
    return out


def _values_disjoint(a: dict, b: dict) -> bool:
    if a["enum"] is not None and b["enum"] is not None and not (a["enum"] & b["enum"]):
        return True
    ta, tb = a["types"], b["types"]
    if "number" in ta:
        ta = ta | {"integer"}
    if "number" in tb:
        tb = tb | {"integer"}
    return not (ta & tb)


def _prune(g: Grammar) -> Grammar:
    """Drop unproductive and unreachable rules; raise if the start symbol is unproductive."""
    try:
        return prune(g)
    except UnsatisfiableError:
        raise UnsatisfiableError("the schema admits no JSON value") from None


def json_schema_to_grammar(
    schema: dict | bool | str,
    *,
    strict: bool = True,
    whitespace: str | int = "bounded",
    extra_properties: bool = True,
    property_order: str = "schema",
    max_rules: int = _MAX_RULES,
    max_seconds: float = 10.0,
) -> tuple[Grammar, SchemaReport]:
    """Compile a JSON Schema (a dict, a boolean, or its JSON text) to a :class:`Grammar`.

    ``whitespace``: see :func:`whitespace_regexes`. ``extra_properties=False``: an object
    schema that lists its properties (``properties``/``patternProperties``) admits no
    other key unless it says ``additionalProperties`` itself (as OpenAI's strict mode
    and pydantic models read a schema); free-form objects stay free. ``property_order``:
    ``"schema"`` (declared keys in the order ``properties`` lists them) or ``"any"``
    (each declared key at most once, in any order).

    Returns the grammar (start symbol ``start``) and a :class:`SchemaReport` of keywords
    approximated, narrowed or ignored. Raises :class:`SchemaError` for malformed schemas
    and, when ``strict``, for keywords that cannot be enforced; :class:`UnsatisfiableError`
    when no value is valid; :class:`CompileLimitError` when the grammar would be too large
    or compiling would take longer than ``max_seconds``.
    """
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as e:
            raise SchemaError(f"schema is not valid JSON: {e}", "") from None
    if not isinstance(schema, (dict, bool)):
        raise SchemaError(f"a schema must be an object or a boolean, not {type(schema).__name__}", "")
    c = _Compiler(schema, strict, whitespace, max_rules, max_seconds,
                  extra_properties=extra_properties, property_order=property_order)
    try:
        body = c.compile_parts([(schema, "")], "root")
    except RecursionError:
        raise CompileLimitError("schema nesting is too deep") from None
    if body is None:
        raise UnsatisfiableError("the schema admits no JSON value (false, empty enum or contradictory constraints)")
    b = c.b
    if c.ws_top:
        ws_term = b.terminal(Regex(c.ws_top), "WS")
        b.rule("start", [(body,), (ws_term, body), (body, ws_term), (ws_term, body, ws_term)])
    else:
        b.rule("start", [(body,)])
    g = _prune(b.build("start"))
    g.separate_literals = True  # keys and enum values against a few string terminals
    return g, c.report
