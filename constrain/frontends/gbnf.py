"""GBNF (llama.cpp's grammar format) -> grammar IR.

GBNF is a character-level grammar: ``name ::= alternatives`` with string literals,
character classes, ``.``, grouping, ``|``, ``* + ?`` and ``{m}``, ``{m,}``, ``{m,n}``,
``#`` comments. There is no lexer and no implicit whitespace, so the grammar's language
is exactly the context-free language it spells out.

To keep the IR small (the parser sees one terminal where GBNF spells many characters),
every maximal run of rule-free items in a sequence is fused into one regex terminal, and
rules that are themselves regular (no recursion through them) are inlined into the runs
that use them, as long as their regex stays small. A run that could match the empty
string becomes an optional non-empty terminal, so no terminal is ever empty.

The reader is slightly more lenient than llama.cpp's: a rule may continue on the next
line anywhere, not only after ``|`` or inside parentheses; a rule ends where the next
``name ::=`` begins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from ..errors import GrammarError
from ..grammar.ir import Difference, Grammar, GrammarBuilder, Lit, RegexTerm

__all__ = ["gbnf_to_grammar"]

# An inlined rule's regex may be at most this long; longer ones stay rules.
_INLINE_LIMIT = 2048
_MAX_CODEPOINT = 0x10FFFF


# --------------------------------------------------------------------------- AST
@dataclass(frozen=True)
class _Lit:
    text: str


@dataclass(frozen=True)
class _Class:
    negated: bool
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Any:
    pass


@dataclass(frozen=True)
class _Ref:
    name: str
    pos: int


@dataclass(frozen=True)
class _Seq:
    items: tuple["_Node", ...]


@dataclass(frozen=True)
class _Alt:
    options: tuple["_Node", ...]


@dataclass(frozen=True)
class _Rep:
    node: "_Node"
    low: int
    high: Optional[int]


_Node = Union[_Lit, _Class, _Any, _Ref, _Seq, _Alt, _Rep]


# ------------------------------------------------------------------------ parser
def _error(text: str, pos: int, message: str) -> GrammarError:
    line_no = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    if line_end < 0:
        line_end = len(text)
    column = pos - line_start + 1
    line = text[line_start:line_end]
    caret = " " * (column - 1) + "^"
    return GrammarError(f"{message} at line {line_no} column {column}\n  {line}\n  {caret}")


def _is_name_char(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or c in "-_"


_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "[": "[",
    "]": "]",
    "-": "-",
    "^": "^",
    "'": "'",
    "/": "/",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.rules: dict[str, _Node] = {}
        self.rule_pos: dict[str, int] = {}

    def error(self, message: str, pos: Optional[int] = None) -> GrammarError:
        return _error(self.text, self.pos if pos is None else pos, message)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if c in " \t\r\n":
                self.pos += 1
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            else:
                break

    def name_at(self, pos: int) -> int:
        """End of the rule name starting at ``pos`` (``pos`` itself if there is none)."""
        end = pos
        while end < len(self.text) and _is_name_char(self.text[end]):
            end += 1
        return end

    def rule_starts_here(self) -> bool:
        end = self.name_at(self.pos)
        if end == self.pos:
            return False
        save = self.pos
        self.pos = end
        self.skip_space()
        found = self.text.startswith("::=", self.pos)
        self.pos = save
        return found

    def parse(self) -> dict[str, _Node]:
        self.skip_space()
        while self.pos < len(self.text):
            start = self.pos
            end = self.name_at(self.pos)
            if end == self.pos:
                raise self.error("expected a rule name")
            name = self.text[start:end]
            if name.startswith("__"):
                raise self.error("rule names starting with '__' are reserved", start)
            self.pos = end
            self.skip_space()
            if not self.text.startswith("::=", self.pos):
                raise self.error(f"expected '::=' after rule name {name!r}")
            self.pos += 3
            body = self.alternation(nested=False)
            if name in self.rules:
                raise self.error(f"rule {name!r} is defined twice", start)
            self.rules[name] = body
            self.rule_pos[name] = start
            self.skip_space()
        return self.rules

    def alternation(self, nested: bool) -> _Node:
        options = [self.sequence(nested)]
        while True:
            self.skip_space()
            if self.peek() == "|":
                self.pos += 1
                options.append(self.sequence(nested))
            else:
                break
        return options[0] if len(options) == 1 else _Alt(tuple(options))

    def sequence(self, nested: bool) -> _Node:
        items: list[_Node] = []
        while True:
            self.skip_space()
            c = self.peek()
            if c == "" or c == "|" or c == ")":
                break
            if not nested and self.rule_starts_here():
                break
            item = self.primary()
            items.append(self.postfix(item))
        return items[0] if len(items) == 1 else _Seq(tuple(items))

    def postfix(self, item: _Node) -> _Node:
        while True:
            self.skip_space()  # llama.cpp allows space before an operator too
            c = self.peek()
            if c == "*":
                self.pos += 1
                item = _Rep(item, 0, None)
            elif c == "+":
                self.pos += 1
                item = _Rep(item, 1, None)
            elif c == "?":
                self.pos += 1
                item = _Rep(item, 0, 1)
            elif c == "{":
                item = self.braces(item)
            else:
                return item

    def braces(self, item: _Node) -> _Node:
        open_pos = self.pos
        self.pos += 1
        self.skip_space()
        low = self.integer()
        self.skip_space()
        high: Optional[int]
        if self.peek() == ",":
            self.pos += 1
            self.skip_space()
            high = self.integer()
            self.skip_space()
        else:
            if low is None:
                raise self.error("expected a repetition count")
            high = low
        if self.peek() != "}":
            raise self.error("expected '}' to close the repetition")
        self.pos += 1
        low = low or 0
        if high is not None and high < low:
            raise self.error(f"repetition maximum {high} is below its minimum {low}", open_pos)
        return _Rep(item, low, high)

    def integer(self) -> Optional[int]:
        start = self.pos
        while self.peek().isdigit() and self.peek().isascii():
            self.pos += 1
        return int(self.text[start : self.pos]) if self.pos > start else None

    def primary(self) -> _Node:
        c = self.peek()
        start = self.pos
        if c == '"':
            self.pos += 1
            chars = []
            while True:
                c = self.peek()
                if c == "":
                    raise self.error("unterminated string literal", start)
                if c == '"':
                    self.pos += 1
                    break
                if c == "\n":
                    raise self.error("line break inside a string literal; write \\n")
                chars.append(self.char())
            return _Lit("".join(chars))
        if c == "[":
            self.pos += 1
            negated = False
            if self.peek() == "^":
                negated = True
                self.pos += 1
            ranges: list[tuple[int, int]] = []
            while True:
                c = self.peek()
                if c == "":
                    raise self.error("unterminated character class", start)
                if c == "]":
                    self.pos += 1
                    break
                lo_pos = self.pos
                lo = ord(self.char())
                hi = lo
                if self.peek() == "-" and self.text[self.pos + 1 : self.pos + 2] not in ("]", ""):
                    self.pos += 1
                    hi = ord(self.char())
                    if hi < lo:
                        raise self.error("character range is reversed", lo_pos)
                ranges.append((lo, hi))
            return _Class(negated, tuple(ranges))
        if c == ".":
            self.pos += 1
            return _Any()
        if c == "(":
            self.pos += 1
            inner = self.alternation(nested=True)
            self.skip_space()
            if self.peek() != ")":
                raise self.error("expected ')'")
            self.pos += 1
            return inner
        if c == "<" or c == "!":
            raise self.error("token references (<...>, !<...>) are not supported")
        end = self.name_at(self.pos)
        if end > self.pos:
            self.pos = end
            return _Ref(self.text[start:end], start)
        raise self.error(f"unexpected character {c!r}")

    def char(self) -> str:
        """One (possibly escaped) character of a literal or class."""
        c = self.text[self.pos]
        if c != "\\":
            self.pos += 1
            return c
        start = self.pos
        esc = self.text[self.pos + 1 : self.pos + 2]
        if esc in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[esc]
        if esc in _HEX_ESCAPES:
            width = _HEX_ESCAPES[esc]
            digits = self.text[self.pos + 2 : self.pos + 2 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise self.error(f"\\{esc} needs {width} hex digits", start)
            value = int(digits, 16)
            if value > _MAX_CODEPOINT or 0xD800 <= value <= 0xDFFF:
                raise self.error(f"\\{esc}{digits} is not a Unicode scalar value", start)
            self.pos += 2 + width
            return chr(value)
        raise self.error(f"unknown escape \\{esc}", start)


# --------------------------------------------------------------------- regexes
def _rx_char(cp: int) -> str:
    c = chr(cp)
    if c.isascii():
        if c.isalnum():
            return c
        if 0x20 <= cp < 0x7F:
            return "\\" + c
        return f"\\x{cp:02x}"
    if c.isprintable():
        return c
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _rx_class(node: _Class) -> str:
    if not node.ranges:  # [] matches no character, [^] any character
        return _ANY_RX if node.negated else "[^" + _ANY_RX[1:]
    parts = []
    for lo, hi in node.ranges:
        parts.append(_rx_char(lo) if lo == hi else f"{_rx_char(lo)}-{_rx_char(hi)}")
    return "[" + ("^" if node.negated else "") + "".join(parts) + "]"


_ANY_RX = "[\\x00-\\U0010ffff]"


class _Converter:
    def __init__(self, rules: dict[str, _Node]) -> None:
        self.rules = rules
        self.builder = GrammarBuilder()
        self._regular: dict[str, Optional[str]] = {}
        self._visiting: set[str] = set()
        self._converted: set[str] = set()
        self._queue: list[str] = []

    # -- regular subexpressions: their regex source, or None if they need a rule.
    def regex(self, node: _Node) -> Optional[str]:
        if isinstance(node, _Lit):
            return "".join(_rx_char(ord(c)) for c in node.text)
        if isinstance(node, _Class):
            return _rx_class(node)
        if isinstance(node, _Any):
            return _ANY_RX
        if isinstance(node, _Ref):
            return self.rule_regex(node.name)
        if isinstance(node, _Seq):
            parts = []
            for item in node.items:
                rx = self.regex(item)
                if rx is None:
                    return None
                parts.append(rx)
            return "".join(parts)
        if isinstance(node, _Alt):
            parts = []
            for option in node.options:
                rx = self.regex(option)
                if rx is None:
                    return None
                parts.append(rx)
            nonempty = [p for p in parts if p]
            if not nonempty:
                return ""
            body = "(?:" + "|".join(nonempty) + ")"
            return body + "?" if len(nonempty) < len(parts) else body
        if isinstance(node, _Rep):
            rx = self.regex(node.node)
            if rx is None:
                return None
            if rx == "":
                return ""
            atom = rx if _is_atom(node.node) else f"(?:{rx})"
            low, high = node.low, node.high
            if (low, high) == (0, None):
                return atom + "*"
            if (low, high) == (1, None):
                return atom + "+"
            if (low, high) == (0, 1):
                return atom + "?"
            if high is None:
                return f"{atom}{{{low},}}"
            if low == high:
                return "" if low == 0 else (rx if low == 1 else f"{atom}{{{low}}}")
            return f"{atom}{{{low},{high}}}"
        raise TypeError(node)  # unreachable: the parser builds only the node kinds above

    def rule_regex(self, name: str) -> Optional[str]:
        if name in self._regular:
            return self._regular[name]
        if name in self._visiting:  # recursion: not regular
            return None
        self._visiting.add(name)
        rx = self.regex(self.rules[name])
        self._visiting.discard(name)
        if rx is not None and len(rx) > _INLINE_LIMIT:
            rx = None
        self._regular[name] = rx
        return rx

    # -- nullability, structurally
    def nullable(self, node: _Node) -> bool:
        if isinstance(node, _Lit):
            return node.text == ""
        if isinstance(node, (_Class, _Any)):
            return False
        if isinstance(node, _Ref):
            return self.rule_nullable(node.name)
        if isinstance(node, _Seq):
            return all(self.nullable(i) for i in node.items)
        if isinstance(node, _Alt):
            return any(self.nullable(o) for o in node.options)
        if isinstance(node, _Rep):
            return node.low == 0 or self.nullable(node.node)
        raise TypeError(node)

    def rule_nullable(self, name: str) -> bool:
        # Only called on regular rules, which are not recursive.
        return self.nullable(self.rules[name])

    # -- conversion to rules
    def run_symbol(self, run: list[_Node]) -> Optional[str]:
        """One terminal for a run of regular items (None when it only matches "")."""
        node = run[0] if len(run) == 1 else _Seq(tuple(run))
        rx = self.regex(node)
        if not rx:
            return None
        literal = _literal_text(node, self)
        if literal is not None:
            return self.builder.literal(literal) if literal else None
        if self.nullable(node):
            term = self.builder.terminal(Difference(RegexTerm(rx), Lit("")))
            return self.builder.opt(term)
        return self.builder.regex(rx)

    def symbols(self, node: _Node) -> list[str]:
        """Symbols for ``node`` used as one item sequence."""
        items = node.items if isinstance(node, _Seq) else (node,)
        out: list[str] = []
        run: list[_Node] = []

        def flush() -> None:
            if run:
                sym = self.run_symbol(run)
                if sym is not None:
                    out.append(sym)
                run.clear()

        for item in items:
            if self.regex(item) is not None:
                run.append(item)
                continue
            flush()
            out.append(self.symbol(item))
        flush()
        return out

    def symbol(self, node: _Node) -> str:
        """One symbol standing for a non-regular ``node``."""
        b = self.builder
        if isinstance(node, _Ref):
            self.want(node.name)
            return node.name
        if isinstance(node, _Seq):
            return b.seq(*self.symbols(node))
        if isinstance(node, _Alt):
            return b.alt(*[tuple(self.symbols(o)) for o in node.options])
        if isinstance(node, _Rep):
            inner = self.item_symbol(node.node)
            low, high = node.low, node.high
            if inner is None:
                return b.alt(())
            if (low, high) == (0, None):
                return b.star(inner)
            if (low, high) == (1, None):
                return b.plus(inner)
            if (low, high) == (0, 1):
                return b.opt(inner)
            return b.repeat(inner, low, high)
        raise TypeError(node)  # regular nodes never reach here

    def item_symbol(self, node: _Node) -> Optional[str]:
        if self.regex(node) is not None:
            return self.run_symbol([node])
        return self.symbol(node)

    def alternatives(self, node: _Node) -> list[tuple[str, ...]]:
        if isinstance(node, _Alt):
            return [tuple(self.symbols(o)) for o in node.options]
        return [tuple(self.symbols(node))]

    def want(self, name: str) -> None:
        if name not in self._converted:
            self._converted.add(name)
            self._queue.append(name)

    def convert(self, start: str) -> Grammar:
        self.want(start)
        while self._queue:
            name = self._queue.pop()
            self.builder.rule(name, self.alternatives(self.rules[name]))
        return self.builder.build(start)


def _is_atom(node: _Node) -> bool:
    """Whether ``node``'s regex is one character or class (needs no group before ``*``)."""
    return isinstance(node, (_Class, _Any)) or (isinstance(node, _Lit) and len(node.text) == 1)


def _literal_text(node: _Node, conv: _Converter) -> Optional[str]:
    """The text of ``node`` if it is a fixed string (literals only), else None."""
    if isinstance(node, _Lit):
        return node.text
    if isinstance(node, _Seq):
        parts = [_literal_text(i, conv) for i in node.items]
        return None if any(p is None for p in parts) else "".join(parts)  # type: ignore[arg-type]
    if isinstance(node, _Ref):
        return _literal_text(conv.rules[node.name], conv)
    if isinstance(node, _Rep) and node.high is not None and node.low == node.high:
        inner = _literal_text(node.node, conv)
        return None if inner is None else inner * node.low
    return None


# ------------------------------------------------------------------------ public
def gbnf_to_grammar(text: str, *, start: str = "root") -> Grammar:
    """Convert the GBNF grammar ``text`` (llama.cpp's format) into a :class:`Grammar`.

    The start symbol is the rule named ``start``. Raises :class:`GrammarError` with the
    line, column and a caret for malformed text, an undefined rule or a missing start rule.
    """
    if not isinstance(text, str):
        raise GrammarError(f"a GBNF grammar must be str, not {type(text).__name__}")
    parser = _Parser(text)
    rules = parser.parse()
    if start not in rules:
        raise GrammarError(f"GBNF grammar has no rule {start!r} to start from")
    for name, body in rules.items():
        for ref in _refs(body):
            if ref.name not in rules:
                raise _error(text, ref.pos, f"rule {ref.name!r} is used but never defined")
    return _Converter(rules).convert(start)


def _refs(node: _Node):
    if isinstance(node, _Ref):
        yield node
    elif isinstance(node, _Seq):
        for item in node.items:
            yield from _refs(item)
    elif isinstance(node, _Alt):
        for option in node.options:
            yield from _refs(option)
    elif isinstance(node, _Rep):
        yield from _refs(node.node)
