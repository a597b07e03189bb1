"""The compiler: its state, naming, rules, and the distribution of anyOf/oneOf."""

from __future__ import annotations

import re
import warnings
from typing import Any, Iterable

from ...automata._jit import clock
from ...automata.regex import syntax_terminals
from ...errors import SchemaError
from ...grammar.ir import GrammarBuilder, Lit, Terminal
from ...grammar.ir import RegexTerm as Regex
from .arrays import UNIQUE_MARK, ArrayBuilder
from .enums import EnumBuilder
from .flat import Flat, quick_empty
from ...limits import Limits, limit_error
from .merge import Merger
from .negation import Negation
from .numbers import NumberBuilder
from .objects import ObjectBuilder
from .oneof import OneOf
from .refs import RefResolver, draft_of
from .report import SchemaReport, not_enforced
from .strings import StringBuilder
from .unevaluated import Unevaluated
from .syntax import JSON_NUMBER_REGEX, JSON_STRING_REGEX, whitespace_regexes
from .validate import Validator
from .values import ALL_TYPES, ordered, value_key


class Compiler(RefResolver, Merger, Negation, OneOf, Unevaluated, Validator, EnumBuilder, NumberBuilder,
               StringBuilder, ArrayBuilder, ObjectBuilder):
    """One compilation of a schema: the grammar under construction and its report.

    The keyword families live in their modules (objects, arrays, strings, numbers, enums,
    negation, oneof, merge, refs); this class holds the shared state."""

    def __init__(
        self,
        root: Any,
        strict: bool,
        whitespace: str | int,
        limits: Limits,
        *,
        extra_properties: bool = True,
        property_order: str = "schema",
    ) -> None:
        self.root = root
        self.limits = limits
        self.max_seconds = limits.max_schema_seconds
        self.deadline = clock() + self.max_seconds
        self.strict = strict
        self.draft = draft_of(root)
        self.report = SchemaReport()
        self.b = GrammarBuilder()
        self.max_rules = limits.max_schema_rules
        self._memo: dict[str, str] = {}
        self._builds = 0
        self._depth = 0
        self._props_first: set[int] = set()  # anyOf/oneOf groups written before `properties`
        self._keep: list[Any] = []
        self._names: set[str] = {"start"}
        self._suffix: dict[str, int] = {}  # the last suffix name() gave each base
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
            syntax_terminals(term)
            return self.b.terminal(term, name)

        self.T_LBRACE = punct("LBRACE", r"\{" + ws_after, "{")
        self.T_RBRACE = punct("RBRACE", ws_close + r"\}", "}")
        self.T_LBRACK = punct("LBRACK", r"\[" + ws_after, "[")
        self.T_RBRACK = punct("RBRACK", ws_close + r"\]", "]")
        self.T_EMPTY_OBJ = punct("EMPTY_OBJECT", r"\{" + ws_after + r"\}", "{}")
        self.T_EMPTY_ARR = punct("EMPTY_ARRAY", r"\[" + ws_after + r"\]", "[]")
        self.T_COMMA = punct("COMMA", ws_sep + "," + ws_after, ",")
        self.T_COLON = punct("COLON", ws_sep + ":" + ws_after, ":")
        self.T_LBRACK_UNIQUE = self.b.terminal(self.b.terminals[self.T_LBRACK], UNIQUE_MARK + "LBRACK")
        self.STRING_TERM = Regex(JSON_STRING_REGEX)

    # ------------------------------------------------------------------ reporting
    def out_of_time(self, ptr: str) -> Exception:
        return limit_error(f"compiling the schema took too long (at {ptr or '/'})", "max_schema_seconds",
                           self.max_seconds)

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
            warnings.warn(not_enforced(ptr, keyword), stacklevel=4)

    # ------------------------------------------------------------------ names
    def name(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", hint).strip("_")[:40] or "schema"
        base = base.lower()
        n = base
        i = self._suffix.get(base, 1)  # names below it are all taken: taken ones stay taken
        if i > 1:
            n = f"{base}_{i}"
        while n in self._names or n in self.b.terminals:
            i += 1
            n = f"{base}_{i}"
        self._suffix[base] = i
        self._names.add(n)
        return n

    def rule(self, name: str, alts: Iterable[tuple[str, ...]]) -> str:
        self.b.rule(name, alts)
        if len(self.b.rules) > self.max_rules:
            raise limit_error("the schema's grammar has too many rules", "max_schema_rules", self.max_rules)
        return name

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
        key = ordered([s for s, _ in parts])
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
        if self._depth > self.limits.max_schema_nesting:
            raise limit_error(f"the schema nests too deep (at {parts[0][1] or '/'})", "max_schema_nesting",
                              self.limits.max_schema_nesting)
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

    def build(self, f: Flat, hint: str) -> list[tuple[str, ...]]:
        """Alternatives (tuples of symbols) for a flattened schema."""
        self._builds += 1
        if self._builds > self.limits.max_schema_subschemas:
            raise limit_error(f"the schema expands to too many subschemas (at {f.ptr or '/'})",
                              "max_schema_subschemas", self.limits.max_schema_subschemas)
        if self._builds % 64 == 0 and clock() > self.deadline:
            raise self.out_of_time(f.ptr)
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
            base = f.without_combinators()
            # Groups written before ``properties``: their names lead (see below).
            first = [id(g) in self._props_first for g in groups]
            # Drop branches that contradict the rest of the schema outright.
            kept = []
            for g in groups:
                live = [c for c in g if not quick_empty(self.flatten_with(base, [c]))]
                if not live:
                    return []
                kept.append(live)
            groups = kept
            total = 1
            for g in groups:
                total *= len(g)
            if total > self.limits.max_schema_anyof_product:
                raise limit_error(f"{total} anyOf/oneOf combinations (at {f.ptr or '/'})", "max_schema_anyof_product",
                                  self.limits.max_schema_anyof_product)
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
            alts = _dedupe(alts)
            arrays = {alt[0].startswith(UNIQUE_MARK) for alt in alts
                      if len(alt) > 1 and (alt[0] == self.T_LBRACK or alt[0].startswith(self.T_LBRACK_UNIQUE))}
            if len(arrays) == 2:
                # One text would be an array of two branches, one checked for duplicates
                # and one not: the matcher cannot tell which array it is writing.
                self.unsupported(f.ptr, "uniqueItems", "anyOf/oneOf branches give arrays with and without "
                                 "uniqueItems")
            return alts
        return self.build_plain(f, hint)

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

    # ------------------------------------------------------------------ plain (no combinators)
    def build_plain(self, f: Flat, hint: str) -> list[tuple[str, ...]]:
        """Alternatives for a flattened schema without anyOf/oneOf, type by type."""
        not_vals = f.not_values
        if f.enum is not None:
            return self.build_enum(f, hint, not_vals)
        types = set(ALL_TYPES) if f.types is None else set(f.types)
        alts: list[tuple[str, ...]] = []
        excluded = {value_key(v) for v in not_vals}
        if "null" in types and value_key(None) not in excluded:
            alts.append((self.b.terminal(Lit("null"), "NULL"),))
        if "boolean" in types:
            if value_key(True) not in excluded:
                alts.append((self.b.terminal(Lit("true"), "TRUE"),))
            if value_key(False) not in excluded:
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

    # ------------------------------------------------------------------ any value
    def any_value(self) -> str:
        """Nonterminal for any JSON value."""
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


def _product(groups: list[list[tuple[Any, str]]]) -> Iterable[list[tuple[Any, str]]]:
    if not groups:
        yield []
        return
    for first in groups[0]:
        for rest in _product(groups[1:]):
            yield [first] + rest


def _dedupe(alts: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return list(dict.fromkeys(alts))
