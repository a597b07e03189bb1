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
``multipleOf`` for divisors whose scaled integer has the prime factors 2, 3 and 5 only
(0.01, 1.5, 0.3, 12...; numbers then written without an exponent), ``pattern`` (Regex
search=True, ascii=True, json_string=True; ``\\p{...}``/``\\P{...}``
Unicode properties), ``minLength``/``maxLength`` (code points), known
``format``s (see :mod:`.formats`; leap seconds only at 23:59 UTC; unknown non-standard
formats are annotations), draft 7's ``contentEncoding: base64``, ``enum``/``const``
numbers equal by value (``1`` admits ``1.0``), ``not``
of subschemas this module can negate, ``oneOf`` whose branches are provably disjoint or
made disjoint by negating the overlapping ones, ``dependentRequired``/``dependencies``/
``dependentSchemas`` and ``if``/``then``/``else`` as disjunctions, ``propertyNames`` with
string constraints, ``min/maxProperties`` (counted along the property chain),
``contains`` with ``minContains``/``maxContains`` (items counted in states),
``uniqueItems`` over items with few possible values (enums, booleans, small integer
ranges: the set of values used so far is the state), ``unevaluatedProperties``/
``unevaluatedItems`` (rewritten per combination of the branches that validate, see
:mod:`.unevaluated`), references by ``$id``, ``$anchor`` and to the official draft
meta-schemas, ``$dynamicRef``/``$recursiveRef`` where the target does not depend on the
evaluation path (:mod:`.refs`). Refused in strict mode: ``uniqueItems`` over other items,
``format: regex``, references to documents that are not available offline, and the forms
above that cannot be negated or proven disjoint.
"""

from __future__ import annotations

import json
from dataclasses import replace

from ...errors import CompileLimitError, SchemaError, UnsatisfiableError
from ...grammar.analysis import prune
from ...grammar.ir import Grammar
from ...grammar.ir import RegexTerm as Regex
from ...limits import DEFAULT_LIMITS, Limits
from .compiler import Compiler
from .report import ReportEntry, SchemaReport
from .syntax import BOUNDED_INDENT, JSON_NUMBER_REGEX, JSON_STRING_REGEX, whitespace_regexes

__all__ = [
    "BOUNDED_INDENT",
    "JSON_NUMBER_REGEX",
    "JSON_STRING_REGEX",
    "ReportEntry",
    "SchemaReport",
    "json_schema_to_grammar",
    "whitespace_regexes",
]


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
    limits: Limits = DEFAULT_LIMITS,
    max_rules: int | None = None,
    max_seconds: float | None = None,
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
    when no value is valid; :class:`CompileLimitError` past one of ``limits``'
    ``max_schema_*`` bounds (``max_rules``/``max_seconds`` override two of them).
    """
    if max_rules is not None or max_seconds is not None:
        limits = replace(limits, max_schema_rules=max_rules or limits.max_schema_rules,
                         max_schema_seconds=max_seconds or limits.max_schema_seconds)
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as e:
            raise SchemaError(f"schema is not valid JSON: {e}", "") from None
    if not isinstance(schema, (dict, bool)):
        raise SchemaError(f"a schema must be an object or a boolean, not {type(schema).__name__}", "")
    c = Compiler(schema, strict, whitespace, limits, extra_properties=extra_properties, property_order=property_order)
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
