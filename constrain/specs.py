"""Spec front doors and ``compile``: one obvious way to compile anything."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from . import _caches, _grammar_store, _kernels, _mask_store
from ._warmup import warmup
from .automata._jit import clock
from .compiler import plan
from .errors import CompileLimitError, ConstrainError, SpecError
from .grammar.ir import Grammar, RegexTerm
from .limits import DEFAULT_LIMITS, Limits
from .matcher import CompiledGrammar
from .vocabulary import Vocabulary

__all__ = ["Regex", "Lark", "GBNF", "JsonSchema", "compile", "clear_caches", "to_grammar", "from_response_format",
           "warmup"]


@dataclass(frozen=True)
class Regex:
    """A regular expression, Python ``re`` syntax and semantics, matched in full.

    ``ascii=True`` gives ECMA-262 classes (``\\d`` is ``[0-9]``)."""

    pattern: str
    ascii: bool = False
    ignore_case: bool = False


@dataclass(frozen=True)
class Lark:
    """A grammar in Lark's syntax, read with lark's own loader.

    ``lexer="dynamic"`` (default): the language the rules describe, lexemes may end
    wherever their terminal matches (lark's Earley with ``lexer='dynamic_complete'``).
    ``lexer="longest"``: longest-match lexemes, as lark's standard and contextual
    lexers; much cheaper masks for grammars whose keywords may touch identifiers.
    Left as None, a grammar line ``// constrain: lexer=longest`` picks it.
    """

    text: str
    start: str = "start"
    lexer: str | None = None


@dataclass(frozen=True)
class GBNF:
    """A grammar in llama.cpp's GBNF syntax."""

    text: str
    start: str = "root"


@dataclass(frozen=True, eq=False)
class JsonSchema:
    """A JSON Schema (dict, bool or JSON text).

    ``strict=False`` turns unenforceable keywords into warnings recorded in
    ``grammar.report``. ``whitespace``: ``"bounded"`` (default: what ``json.dumps``
    writes, one space or one line break and indentation at a time, nothing after the
    document), ``"json"`` (JSON's own, unbounded), ``"compact"`` or an int bounding each
    run. ``extra_properties=False``: objects that list their properties admit no other
    key unless their ``additionalProperties`` says so (OpenAI's ``"strict": true``;
    pydantic models get this from their own schema). ``property_order``: ``"schema"``
    (declared keys in schema order, best for generation) or ``"any"``.
    """

    schema: Any
    strict: bool = True
    whitespace: Any = "bounded"
    extra_properties: bool = True
    property_order: str = "schema"
    options: dict = field(default_factory=dict)


def to_grammar(spec: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[Grammar, Any, str]:
    """The grammar IR of ``spec``, its compile report (or None) and a display name.

    A JSON Schema is compiled within ``limits``' ``max_schema_*`` bounds (its ``options``
    may set ``max_rules`` and ``max_seconds`` instead of two of them)."""
    if isinstance(spec, Grammar):
        return spec, None, spec.start
    if isinstance(spec, Regex):
        # start -> REGEX, written out: what GrammarBuilder would build, without its
        # bookkeeping (CompiledGrammar validates it)
        term = RegexTerm(spec.pattern, ascii=spec.ascii, ignore_case=spec.ignore_case)
        grammar = Grammar(start="start", rules={"start": [("REGEX",)]}, terminals={"REGEX": term})
        return grammar, None, f"regex {spec.pattern[:40]!r}"
    if isinstance(spec, Lark):
        from .frontends.lark import lark_to_grammar

        return lark_to_grammar(spec.text, start=spec.start, lexer=spec.lexer), None, "lark grammar"
    if isinstance(spec, GBNF):
        from .frontends.gbnf import gbnf_to_grammar

        return gbnf_to_grammar(spec.text, start=spec.start), None, "gbnf grammar"
    schema_spec = _as_json_schema(spec)
    if schema_spec is not None:
        from .frontends.json_schema import json_schema_to_grammar

        grammar, report = json_schema_to_grammar(
            schema_spec.schema,
            strict=schema_spec.strict,
            whitespace=schema_spec.whitespace,
            extra_properties=schema_spec.extra_properties,
            property_order=schema_spec.property_order,
            limits=limits,
            **schema_spec.options,
        )
        return grammar, report, "json schema"
    raise SpecError(
        f"cannot compile a {type(spec).__name__}: pass constrain.Regex, constrain.Lark, constrain.GBNF, "
        "constrain.JsonSchema, a JSON Schema dict or a pydantic model"
    )


def _as_json_schema(spec: Any) -> JsonSchema | None:
    if isinstance(spec, JsonSchema):
        return spec
    if isinstance(spec, (dict, bool)):
        return JsonSchema(spec)
    if _is_pydantic_type(spec):
        from .frontends.pydantic import pydantic_to_schema

        return JsonSchema(pydantic_to_schema(spec))
    return None


def _is_pydantic_type(spec: Any) -> bool:
    """A pydantic model class, or a plain type pydantic can describe (``list[int]``, a
    dataclass, a TypedDict, ``Literal[...]``, ``Optional[X]``)."""
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return False
    if isinstance(spec, type) and issubclass(spec, BaseModel):
        return True
    import dataclasses
    import typing

    if isinstance(spec, type) and dataclasses.is_dataclass(spec):
        return True
    from typing_extensions import is_typeddict

    if is_typeddict(spec):
        return True
    return typing.get_origin(spec) is not None or spec in (int, float, str, bool)


def _spec_key(spec: Any) -> str | None:
    if isinstance(spec, (Regex, Lark, GBNF)):
        raw = repr(spec)
    else:
        js = _as_json_schema(spec) if not isinstance(spec, Grammar) else None
        if js is None:
            return None
        try:
            body = json.dumps(js.schema, sort_keys=True) if not isinstance(js.schema, str) else js.schema
        except (TypeError, ValueError):
            return None
        raw = json.dumps(
            ["json", body, js.strict, js.whitespace, js.extra_properties, js.property_order, sorted(js.options.items())],
            default=str,
        )
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


_GRAMMARS = _caches.cache(
    "specs.grammars", 32,
    "compiled grammars by (spec content hash, vocabulary fingerprint, limits unless the "
    "defaults); each holds its own bounded mask memo, up to tens of MB for a large schema")


def compile(spec: Any, vocab: Vocabulary, *, cache: bool = True, limits: Limits | None = None) -> CompiledGrammar:
    """Compile ``spec`` against ``vocab`` within ``limits`` (None: :class:`Limits`' defaults).

    ``spec``: :class:`Regex`, :class:`Lark`, :class:`GBNF`, :class:`JsonSchema`, a JSON
    Schema dict, a pydantic model class, or a grammar IR. Compiled grammars are cached in
    memory per (spec, vocabulary, limits), and their compile plans on disk per (spec,
    limits) (see :mod:`constrain._grammar_store`; ``CONSTRAIN_DISK_CACHE=0`` turns it off).
    ``cache=False`` compiles from scratch (terminal DFAs aside). Raises :class:`SpecError` subclasses for bad
    specs, :class:`UnsatisfiableError` when no token sequence can satisfy the spec and
    :class:`CompileLimitError` when a limit is exceeded.
    """
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a constrain.Vocabulary, not {type(vocab).__name__}")
    if limits is None or limits == DEFAULT_LIMITS:
        limits = DEFAULT_LIMITS
    elif not isinstance(limits, Limits):
        raise TypeError(f"limits must be a constrain.Limits, not {type(limits).__name__}")
    interpreted = _kernels.mode() == "auto-python"
    try:
        return _compile(spec, vocab, cache, limits)
    except CompileLimitError as e:
        # Out of time while the kernels ran as Python (a fresh kernel cache): again with
        # them compiled, once the background compile is done (see constrain._kernels).
        if not interpreted or not getattr(e, "limit", "").endswith("_seconds"):
            raise
    _kernels.wait_compiled()
    return _compile(spec, vocab, cache, limits)


def _compile(spec: Any, vocab: Vocabulary, cache: bool, limits: Limits) -> CompiledGrammar:
    key = _spec_key(spec) if cache else None
    if key is not None:
        key = (key, vocab.fingerprint) if limits is DEFAULT_LIMITS else (key, vocab.fingerprint, limits)
        got = _GRAMMARS.get(key)
        if got is not None:
            return got
    disk_key = _grammar_store.key(key[0], limits) if key is not None else None
    compiled = _from_disk(disk_key, spec, vocab, limits) if disk_key is not None else None
    if compiled is not None:
        # A spec an earlier process compiled (and found worth a plan file) comes again:
        # its masks are filed on disk too, for the next process (filing them for every
        # spec would slow every first compile's masks, most of them never asked again).
        _mask_store.attach(compiled.engine, disk_key, vocab.fingerprint)
    else:
        t0 = clock()
        grammar, report, name = to_grammar(spec, limits)
        p = plan(grammar, limits)
        if disk_key is not None and _grammar_store.worth_storing(clock() - t0):
            _grammar_store.save(disk_key, p, report, name)
        # (the grammar IR is not kept: nothing that masks reads it, and a large schema's
        # IR, tens of thousands of objects, would be read by every full collection of the
        # cyclic collector while the grammar lives; .grammar makes it again when asked)
        compiled = CompiledGrammar.from_plan(p, vocab, source=(spec, limits), report=report, name=name,
                                             limits=limits)
    if key is not None:
        _GRAMMARS.put(key, compiled)
    return compiled


def _from_disk(disk_key: str, spec: Any, vocab: Vocabulary, limits: Limits) -> CompiledGrammar | None:
    """The grammar of a plan an earlier process stored, or None. A plan that fails to
    assemble other than as a fresh compile would (a file that passed its checks but is
    still wrong) is treated as absent."""
    got = _grammar_store.load(disk_key)
    if got is None:
        return None
    p, report, name = got
    try:
        compiled = CompiledGrammar.from_plan(p, vocab, source=(spec, limits), report=report, name=name,
                                             limits=limits)
    except ConstrainError:
        raise
    except Exception:  # noqa: BLE001 - rebuilt from the spec below (which warns as it goes)
        return None
    if report is not None:
        import warnings

        from .frontends.json_schema.report import not_enforced

        for e in report.approximated:  # what the front end warned of when it made the plan
            warnings.warn(not_enforced(e.pointer, e.keyword), stacklevel=3)
    return compiled


def clear_caches() -> None:
    """Drop every in-process cache of what specs compile to: compiled grammars, terminal
    DFAs and the whole-vocabulary walks shared between grammars. Grammars already
    compiled keep their own memoized masks. The next compile of any spec is a compile
    from scratch (the on-disk DFA, plan and mask caches aside, ``CONSTRAIN_DISK_CACHE=0``
    turns them off; and what depends on no spec stays: the parsers of one-rule grammars,
    the DFAs of the JSON front end's own terminals and the walks of lexer states made of
    those alone)."""
    _caches.clear()


def from_response_format(response_format: Any) -> JsonSchema | None:
    """The spec of an OpenAI-style ``response_format``, or None for plain text.

    ``{"type": "json_schema", "json_schema": {"schema": ..., "strict": true}}`` admits only
    the properties each object lists (``extra_properties=False``, as OpenAI's strict mode
    does); without ``strict`` the schema's own language. ``{"type": "json_object"}`` is any
    JSON object. Raises :class:`SpecError` naming what is malformed."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise SpecError(f"response_format must be an object, not {type(response_format).__name__}")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return JsonSchema({"type": "object"})
    if kind == "json_schema":
        body = response_format.get("json_schema")
        if not isinstance(body, dict) or "schema" not in body:
            raise SpecError("response_format.json_schema must be an object with a 'schema'")
        strict = body.get("strict", False)
        if not isinstance(strict, bool):
            raise SpecError(f"response_format.json_schema.strict must be true or false, not {strict!r}")
        return JsonSchema(body["schema"], extra_properties=not strict)
    raise SpecError(f"response_format.type must be 'text', 'json_object' or 'json_schema', not {kind!r}")
