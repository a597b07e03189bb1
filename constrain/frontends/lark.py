"""Lark grammars -> grammar IR, read by lark's own grammar loader.

lark parses the grammar file, resolves ``%import`` (lark's ``common`` library, the
grammars bundled in ``constrain/grammars`` and any ``import_paths`` the caller gives),
expands EBNF operators, templates and ``~`` repetitions into plain BNF rules, and joins
terminal references into Python regexes. What comes out (``Lark.rules``,
``Lark.terminals``, ``Lark.ignore_tokens``) maps one to one onto :class:`Grammar`.

Tree-shaping marks (``?rule``, ``_rule``, ``_TERM``, aliases) change the parse tree, not
the language, so they are read as ordinary rules. The language is that of lark's Earley
parser with ``lexer='dynamic_complete'``: every split of the text into terminals counts,
and ``%ignore`` terminals may appear before, between and after the others.

A regex terminal stands for its whole language. lark's lexers instead take Python's first
match and its prefixes, which differs only for regexes written to stop early (lazy
quantifiers, lookbehinds, an alternation whose shorter branch comes first). lark's own
``common.ESCAPED_STRING`` and ``common.C_COMMENT`` are such regexes; they are replaced by
regular equivalents of what lark's lexers produce.
"""

from __future__ import annotations

import functools
import re
from typing import Callable, Sequence, Union

import lark
from lark.exceptions import LarkError
from lark.lexer import PatternRE, PatternStr, TerminalDef

from ..errors import GrammarError, SpecError
from ..grammar.ir import Grammar, Lit, RegexTerm, Terminal

__all__ = ["lark_to_grammar", "bundled_loader"]

ImportPath = Union[str, Callable]


def bundled_loader() -> Callable:
    """An import loader that finds the ``.lark`` files shipped in ``constrain/grammars``.

    With it, ``%import json.value`` in any grammar reads ``constrain/grammars/json.lark``
    from the installed package (zip-safe, through ``pkgutil``).
    """
    # FromPackageLoader is the loader lark documents for package data (it backs
    # Lark.open_from_package); lark does not re-export it at the top level.
    from lark.load_grammar import FromPackageLoader

    return FromPackageLoader("constrain", ("grammars",))


# a grammar line that picks the lexer: // constrain: lexer=longest
_LEXER_LINE = re.compile(r"^\s*//\s*constrain:\s*lexer\s*=\s*(\w+)", re.MULTILINE)


def lark_to_grammar(
    text: str,
    *,
    start: str = "start",
    import_paths: Sequence[ImportPath] = (),
    lexer: str | None = None,
) -> Grammar:
    """Convert the Lark grammar ``text`` into a :class:`Grammar` whose start symbol is ``start``.

    ``import_paths`` (folders or lark import loaders) are searched before the bundled
    grammars and lark's own library for ``%import``. ``lexer``: ``"dynamic"`` or
    ``"longest"`` (see :class:`constrain.Lark`); left as None, a grammar line
    ``// constrain: lexer=longest`` picks it, else ``"dynamic"``. Raises
    :class:`SpecError` for another lexer, :class:`GrammarError` for a grammar lark
    rejects (with lark's line, column and caret where it gives them), for a
    ``%declare``-d terminal (it has no definition to lex) and for a terminal that matches
    the empty string.
    """
    if not isinstance(text, str):
        raise GrammarError(f"a Lark grammar must be str, not {type(text).__name__}")
    if not isinstance(start, str):
        raise GrammarError("start must be a single rule name")
    if lexer is None:
        found = _LEXER_LINE.search(text)
        lexer = found.group(1) if found else "dynamic"
    if lexer not in ("dynamic", "longest"):
        raise SpecError(f"unknown lexer {lexer!r}: use 'dynamic' or 'longest'")
    paths = list(import_paths) + [bundled_loader()]
    try:
        parser = lark.Lark(
            text,
            parser="earley",
            lexer="dynamic",
            start=start,
            import_paths=paths,
        )
    except LarkError as exc:
        raise GrammarError(_lark_message(exc)) from exc
    except re.error as exc:
        raise GrammarError(f"invalid regular expression in Lark grammar: {exc}") from exc
    except OSError as exc:  # an %import that no path provides
        raise GrammarError(f"cannot resolve %import in Lark grammar: {exc}") from exc

    terminal_defs: dict[str, TerminalDef] = {t.name: t for t in parser.terminals}
    rules: dict[str, list[tuple[str, ...]]] = {}
    used_terminals: list[str] = []
    seen_terminals: set[str] = set()
    for rule in parser.rules:
        alt: list[str] = []
        for sym in rule.expansion:
            if sym.is_term:
                if sym.name not in terminal_defs:
                    raise GrammarError(
                        f"terminal {sym.name} (used in rule {rule.origin.name!r}) has no "
                        "definition; %declare-d terminals come from a custom lexer and "
                        "cannot be checked: define it, e.g. " + f"{sym.name}: /.../"
                    )
                if sym.name not in seen_terminals:
                    seen_terminals.add(sym.name)
                    used_terminals.append(str(sym.name))
            alt.append(str(sym.name))
        rules.setdefault(str(rule.origin.name), []).append(tuple(alt))

    ignore = tuple(str(name) for name in parser.ignore_tokens)
    for name in ignore:
        if name not in terminal_defs:
            raise GrammarError(f"%ignore names {name}, which has no definition")
        if name not in seen_terminals:
            seen_terminals.add(name)
            used_terminals.append(name)

    terminals: dict[str, Terminal] = {}
    priorities: dict[str, int] = {}
    for name in used_terminals:
        tdef = terminal_defs[name]
        terminals[name] = _convert_terminal(tdef)
        if tdef.priority != 0:
            priorities[name] = int(tdef.priority)

    grammar = Grammar(
        start=start, rules=rules, terminals=terminals, ignore=ignore, priorities=priorities,
        longest_match=lexer == "longest",
    )
    grammar.validate()
    return grammar


def _convert_terminal(tdef: TerminalDef) -> Terminal:
    pattern = tdef.pattern
    flags = set(pattern.flags)
    ignore_case = "i" in flags
    flags.discard("i")
    if isinstance(pattern, PatternStr):
        if pattern.value == "":
            raise GrammarError(f"terminal {tdef.name} is the empty string")
        return Lit(pattern.value, ignore_case=ignore_case)
    if not isinstance(pattern, PatternRE):
        raise GrammarError(f"terminal {tdef.name} has an unknown pattern kind {type(pattern).__name__}")
    source = _regular_equivalent(pattern.value)
    try:
        compiled = re.compile(pattern.to_regexp())
    except re.error as exc:
        raise GrammarError(f"terminal {tdef.name}: invalid regular expression /{source}/: {exc}") from exc
    if compiled.fullmatch("") is not None:
        raise GrammarError(
            f"terminal {tdef.name} matches the empty string (/{source}/); make it "
            f"non-empty and mark its uses optional instead"
        )
    flags.discard("u")  # str patterns are Unicode already
    if "l" in flags:
        raise GrammarError(f"terminal {tdef.name}: the locale flag /l is not supported")
    # Remaining flags (s, m, x) are scoped onto the source as inline groups.
    for flag in sorted(flags):
        source = f"(?{flag}:{source})"
    return RegexTerm(source, ignore_case=ignore_case)


# Two of lark's common terminals rely on how lark lexes (re.match, shortest match first)
# rather than on their regex's language: ESCAPED_STRING /".*?(?<!\\)(\\\\)*?"/ ends at the
# first unescaped quote and C_COMMENT /\/\*(.|\n)*?\*\// at the first "*/", while as sets of
# strings both regexes hold much more (and one has a lookbehind). Their sources, wherever
# they appear (also joined into other terminals), are replaced by regular equivalents of
# what lark's lexers actually produce.
_LARK_COMMON_EQUIVALENTS = {
    "ESCAPED_STRING": r'"(?:[^"\\\n]|\\[^\n])*"',
    "C_COMMENT": r"/\*[^*]*\*+(?:[^*/][^*]*\*+)*/",
}


@functools.lru_cache(maxsize=1)
def _lark_common_rewrites() -> tuple[tuple[str, str], ...]:
    names = list(_LARK_COMMON_EQUIVALENTS)
    parser = lark.Lark(
        "start: " + " ".join(names) + "\n" + "".join(f"%import common.{n}\n" for n in names),
        parser="earley",
        lexer="dynamic",
    )
    return tuple((parser.get_terminal(n).pattern.value, _LARK_COMMON_EQUIVALENTS[n]) for n in names)


def _regular_equivalent(source: str) -> str:
    """``source`` with lark's ESCAPED_STRING and C_COMMENT made regular (see above)."""
    for lark_source, equivalent in _lark_common_rewrites():
        if lark_source in source:
            source = source.replace(lark_source, equivalent)
    return source


def _lark_message(exc: LarkError) -> str:
    """lark's message, with a zero-width-terminal refusal reworded to name the terminal."""
    args = exc.args
    if len(args) == 2 and isinstance(args[1], TerminalDef):
        tdef = args[1]
        return (
            f"terminal {tdef.name} matches the empty string (/{tdef.pattern.value}/); "
            f"make it non-empty and mark its uses optional instead"
        )
    message = str(exc).strip()
    return f"invalid Lark grammar: {message}"
