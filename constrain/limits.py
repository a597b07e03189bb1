"""Compile limits: how large and how slow a compile may get before it gives up."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CompileLimitError

__all__ = ["Limits", "DEFAULT_LIMITS", "limit_error"]


@dataclass(frozen=True)
class Limits:
    """Bounds on one compile; past any of them it raises :class:`CompileLimitError`
    naming the field to raise. Pass ``constrain.compile(spec, vocab, limits=Limits(...))``;
    compiled grammars are cached per limits too.

    Terminals (each regular expression or literal of a spec, with the set operations
    that combine them):

    * ``max_regex_states`` (100,000): DFA states of one terminal, while it is built.
    * ``max_regex_seconds`` (10.0): seconds to build one terminal's DFA.

    Lexer, parser and masks:

    * ``max_lexer_states`` (200,000): states of the lexer (the product of the terminals
      that may be live at once).
    * ``max_parser_states`` (2,000,000): distinct parse states (sets of Earley items).
    * ``max_parser_items`` (50,000): Earley items in one parse state.
    * ``max_walks_per_mask`` (200,000): trie walks for one token mask (lexemes that may
      split tokens in many ways). Masks are made while generating, so this one may also
      be met after the compile, by ``Matcher.fill_bitmask``.

    JSON Schema:

    * ``max_schema_rules`` (500,000): rules of the grammar a schema compiles to.
    * ``max_schema_seconds`` (10.0): seconds to compile a schema to a grammar.
    * ``max_schema_subschemas`` (50,000): subschemas built, ``$ref`` expansions included.
    * ``max_schema_nesting`` (150): levels of nested subschemas.
    * ``max_schema_anyof_product`` (256): combinations of ``anyOf``/``oneOf`` branches
      merged into one schema.
    * ``max_schema_array_positions`` (20,000): item positions written out for
      ``minItems``/``maxItems`` (four times as many for ``min/maxProperties``).
    * ``max_schema_enum`` (20,000): values of one ``enum``.
    * ``max_schema_merge_depth`` (64): nesting of ``allOf``/``$ref`` merges.
    * ``max_schema_order_states`` (2,048): states of an object whose properties may come
      in any order; past it, the schema's order is kept.
    """

    max_regex_states: int = 100_000
    max_regex_seconds: float = 10.0
    max_lexer_states: int = 200_000
    max_parser_states: int = 2_000_000
    max_parser_items: int = 50_000
    max_walks_per_mask: int = 200_000
    max_schema_rules: int = 500_000
    max_schema_seconds: float = 10.0
    max_schema_subschemas: int = 50_000
    max_schema_nesting: int = 150
    max_schema_anyof_product: int = 256
    max_schema_array_positions: int = 20_000
    max_schema_enum: int = 20_000
    max_schema_merge_depth: int = 64
    max_schema_order_states: int = 2_048

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{name} must be a positive number, not {value!r}")


DEFAULT_LIMITS = Limits()


def limit_error(what: str, field: str, value: float) -> CompileLimitError:
    """The error for ``what`` (what went past the limit) under ``Limits.<field>=value``,
    saying how to raise it."""
    err = CompileLimitError(
        f"{what}; exceeds Limits.{field}={value:,}: raise it with "
        f"constrain.compile(..., limits=constrain.Limits({field}=...))"
    )
    err.limit = field
    return err
