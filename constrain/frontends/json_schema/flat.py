"""A schema with allOf and $ref merged in: one set of constraints per keyword."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


class Flat:
    """One schema with allOf and $ref merged in: constraints per keyword, normalized."""

    __slots__ = (
        "ptr", "types", "enum", "props", "required", "addl", "pattern_props", "prefix", "rest",
        "min_items", "max_items", "min_props", "max_props", "min_len", "max_len", "lo", "hi",
        "patterns", "formats", "anyofs", "oneofs", "multiple", "false", "unsupported", "not_values", "not_strings", "fractional", "prop_names",
        "lists_members", "opens_members", "contains", "unique",
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
        # contains: (subschemas an item counted must satisfy, least count, greatest count or None)
        self.contains: list[tuple[list[tuple[Any, str]], int, int | None]] = []
        self.unique: str | None = None  # pointer of a ``uniqueItems: true``

    def without_combinators(self) -> Flat:
        """A copy without anyOf/oneOf groups or unsupported keywords, lists copied."""
        g = Flat(self.ptr)
        for slot in Flat.__slots__:
            setattr(g, slot, getattr(self, slot))
        g.anyofs = []
        g.oneofs = []
        g.props = {k: list(v) for k, v in self.props.items()}
        g.required = list(self.required)
        g.pattern_props = {k: list(v) for k, v in self.pattern_props.items()}
        g.prefix = [list(p) for p in self.prefix]
        g.patterns = list(self.patterns)
        g.formats = list(self.formats)
        g.multiple = list(self.multiple)
        g.unsupported = []
        g.not_values = list(self.not_values)
        g.not_strings = list(self.not_strings)
        g.prop_names = list(self.prop_names)
        g.contains = list(self.contains)
        return g


def quick_empty(f: Flat) -> bool:
    """Cheap proof that a flattened schema admits nothing."""
    if f.false or (f.types is not None and not f.types) or f.enum == []:
        return True
    if f.types is not None and f.types <= {"object"}:
        # Only objects, and one of them must hold a property whose schema is false.
        for r in f.required:
            if any(sch is False for sch, _ in f.props.get(r, ())):
                return True
    return False
