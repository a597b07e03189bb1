"""The grammar IR every front door compiles to: rules over terminals, terminals regular.

A :class:`Grammar` is plain BNF: each nonterminal has alternatives, each alternative is
a tuple of symbol names (a name is either a nonterminal in ``rules`` or a terminal in
``terminals``). EBNF operators are expanded by :class:`GrammarBuilder`. Terminals are
small immutable expressions over regular languages of bytes (:class:`Lit`,
:class:`RegexTerm` and the set operations on them); the lexer turns each into a minimized
byte DFA once per process, so two grammars that use the same terminal share it.
Terminals listed in ``ignore`` may appear between any two terminals (Lark's ``%ignore``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

from ..errors import GrammarError

__all__ = [
    "Lit",
    "RegexTerm",
    "Concat",
    "Union_",
    "Intersect",
    "Difference",
    "Terminal",
    "Grammar",
    "GrammarBuilder",
]


@dataclass(frozen=True)
class Lit:
    """The exact bytes ``text`` (str is UTF-8 encoded); ``ignore_case`` folds ASCII and Unicode case."""

    text: Union[str, bytes]
    ignore_case: bool = False


@dataclass(frozen=True)
class RegexTerm:
    """A regular expression in Python ``re`` syntax, over the UTF-8 bytes of the text.

    ``ascii``: ``\\d \\w \\s`` and case folding are ASCII-only (ECMA-262, JSON Schema).
    ``search``: unanchored, as JSON Schema's ``pattern`` (``^``/``$`` anchor where present).
    ``json_string``: the language is of JSON string *contents* (between the quotes, with
    escapes such as ``\\n``, ``\\"`` and ``\\u00e9`` standing for the character they encode).
    """

    source: str
    ascii: bool = False
    ignore_case: bool = False
    search: bool = False
    json_string: bool = False


@dataclass(frozen=True)
class Concat:
    """Strings made of one string of each part, in order."""

    parts: tuple["Terminal", ...]


@dataclass(frozen=True)
class Union_:
    """Strings in any of the parts."""

    parts: tuple["Terminal", ...]


@dataclass(frozen=True)
class Intersect:
    """Strings in every part."""

    parts: tuple["Terminal", ...]


@dataclass(frozen=True)
class Difference:
    """Bytes strings in ``left`` and not in ``right``."""

    left: "Terminal"
    right: "Terminal"


Terminal = Union[Lit, RegexTerm, Concat, Union_, Intersect, Difference]


@dataclass
class Grammar:
    """BNF over named terminals. ``rules[name]`` is a list of alternatives."""

    start: str
    rules: dict[str, list[tuple[str, ...]]]
    terminals: dict[str, Terminal]
    ignore: tuple[str, ...] = ()
    # Terminal priorities (Lark's TERM.n); higher wins only where the front door asks.
    priorities: dict[str, int] = field(default_factory=dict)
    # False: a lexeme may end wherever its terminal matches (the language the rules
    # describe, as lark's Earley with lexer='dynamic_complete'). True: lexemes are
    # longest-match, a lexeme ends only where no live terminal can take the next byte
    # (as a standard or contextual lexer). Ignored lexemes are always longest-match.
    longest_match: bool = False
    # True: at a lexeme start the literal-like terminals (finite, few bytes per state:
    # object keys, enum values) are lexed apart from the others, so the states of a
    # string terminal do not multiply with every set of keys the parser allows. Costs
    # a second lexing path where lexemes are short and tokens span many of them.
    separate_literals: bool = False

    def validate(self) -> None:
        """Raise :class:`GrammarError` for undefined symbols or a missing start rule."""
        if self.start not in self.rules:
            raise GrammarError(f"start symbol {self.start!r} has no rule")
        overlap = set(self.rules) & set(self.terminals)
        if overlap:
            raise GrammarError(f"names used both as rule and terminal: {sorted(overlap)}")
        for name, alts in self.rules.items():
            for alt in alts:
                for sym in alt:
                    if sym not in self.rules and sym not in self.terminals:
                        raise GrammarError(f"rule {name!r} uses undefined symbol {sym!r}")
        for name in self.ignore:
            if name not in self.terminals:
                raise GrammarError(f"ignored symbol {name!r} is not a terminal")


class GrammarBuilder:
    """Builds a :class:`Grammar`, expanding EBNF and sharing identical terminals."""

    def __init__(self) -> None:
        self.rules: dict[str, list[tuple[str, ...]]] = {}
        self.terminals: dict[str, Terminal] = {}
        self._terminal_names: dict[Terminal, str] = {}
        self._ignore: list[str] = []
        self._priorities: dict[str, int] = {}
        self._fresh = 0
        self._memo: dict[tuple, str] = {}

    # -- names
    def fresh(self, hint: str = "r") -> str:
        self._fresh += 1
        return f"__{hint}_{self._fresh}"

    # -- terminals
    def terminal(self, term: Terminal, name: str | None = None, priority: int | None = None) -> str:
        """Register ``term`` and return its name; an identical unnamed terminal is reused."""
        if name is None:
            existing = self._terminal_names.get(term)
            if existing is not None:
                return existing
            name = self.fresh("t")
        elif name in self.terminals and self.terminals[name] != term:
            raise GrammarError(f"terminal {name!r} defined twice")
        self.terminals[name] = term
        self._terminal_names.setdefault(term, name)
        if priority is not None:
            self._priorities[name] = priority
        return name

    def literal(self, text: str | bytes, ignore_case: bool = False) -> str:
        return self.terminal(Lit(text, ignore_case))

    def regex(self, source: str, **flags: bool) -> str:
        return self.terminal(RegexTerm(source, **flags))

    def ignore(self, terminal_name: str) -> None:
        if terminal_name not in self._ignore:
            self._ignore.append(terminal_name)

    # -- rules
    def rule(self, name: str, alternatives: Iterable[Sequence[str]]) -> str:
        """Add alternatives to rule ``name`` (created if new) and return ``name``."""
        self.rules.setdefault(name, []).extend(tuple(a) for a in alternatives)
        return name

    def alt(self, *alternatives: Sequence[str], hint: str = "alt") -> str:
        key = ("alt",) + tuple(tuple(a) for a in alternatives)
        if key not in self._memo:
            self._memo[key] = self.rule(self.fresh(hint), alternatives)
        return self._memo[key]

    def seq(self, *symbols: str) -> str:
        return self.alt(tuple(symbols), hint="seq")

    def opt(self, symbol: str) -> str:
        return self.alt((symbol,), (), hint="opt")

    def star(self, symbol: str) -> str:
        key = ("star", symbol)
        if key not in self._memo:
            name = self.fresh("star")
            self.rule(name, [(), (name, symbol)])  # left recursion: Earley handles it in O(n)
            self._memo[key] = name
        return self._memo[key]

    def plus(self, symbol: str) -> str:
        key = ("plus", symbol)
        if key not in self._memo:
            name = self.fresh("plus")
            self.rule(name, [(symbol,), (name, symbol)])
            self._memo[key] = name
        return self._memo[key]

    def repeat(self, symbol: str, low: int, high: int | None) -> str:
        """``symbol`` repeated ``low`` to ``high`` times (``None``: unbounded)."""
        if low < 0 or (high is not None and high < low):
            raise GrammarError(f"bad repetition range {low}..{high}")
        key = ("repeat", symbol, low, high)
        if key in self._memo:
            return self._memo[key]
        if high is None:
            tail = self.star(symbol)
        else:
            # x{0,k} as nested optionals: linear in k.
            tail_sym: str | None = None
            for _ in range(high - low):
                inner = (symbol,) if tail_sym is None else (symbol, tail_sym)
                tail_sym = self.alt(inner, (), hint="rep")
            tail = tail_sym if tail_sym is not None else None
        body = [symbol] * low + ([tail] if tail is not None else [])
        name = self.alt(tuple(body), hint="rep")
        self._memo[key] = name
        return name

    def build(self, start: str) -> Grammar:
        g = Grammar(
            start=start,
            rules={k: list(v) for k, v in self.rules.items()},
            terminals=dict(self.terminals),
            ignore=tuple(self._ignore),
            priorities=dict(self._priorities),
        )
        g.validate()
        return g
