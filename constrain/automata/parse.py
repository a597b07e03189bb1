"""A parser for Python ``re`` syntax (the regular subset) into a small AST; with
``ascii=True`` (ECMA-262 classes), also ECMA-262's Unicode property escapes ``\\p{...}``
and ``\\P{...}`` (``u`` flag semantics, see :func:`.charset.unicode_property`).

AST nodes are tuples:
``("set", ranges)`` one character from a code point set (case folding already applied),
``("cat", nodes)``, ``("alt", nodes)``, ``("rep", node, lo, hi_or_None)``,
``("bol",)`` start of text, ``("eol",)`` Python ``$`` (end, or before a final newline),
``("eoz",)`` end of text only.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from ..errors import RegexError
from . import charset as cs

EMPTY = ("cat", ())

_FLAG_CHARS = "aiLmsux"
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_OCT = "01234567"
_QUANT_START = "*+?{"
# a run of characters that stand for themselves outside a class (verbose mode off)
_LITERAL_RUN = re.compile(r"[^\\\[().^$*+?{|]+")
# a class with no escapes: "[", an optional "^", an optional leading "]", then up to "]"
_PLAIN_CLASS = re.compile(r"\[(\^?)(\]?[^\]\\]*)\]")
# the tokens of :meth:`Parser.fast`, one group each: a run of plain characters; a class;
# an escape, with the hex or octal digits it may take; a quantifier (with a lazy "?");
# "(" or "(?:"; any other single character
_TOKEN = re.compile(
    r"([^\\\[().^$*+?{|]+)"
    r"|(\[\^?\]?(?:[^\]\\]|\\[\s\S])*\])"
    r"|(\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|0[0-7]{0,2}|[0-7]{3}|[pP]\{[^{}]*\}|[\s\S]))"
    r"|((?:[*+?]|\{(?:\d+(?:,\d*)?|,\d*)\})\??)"
    r"|(\((?:\?:)?)"
    r"|([\s\S])"
)
# escapes that stand for the character escaped (checked first: the common ones)
_ESCAPED_LITERALS = frozenset(".\\-+*?()[]{}|^$/")
# groups nested deeper than this are left to the recursive parser (and its limits)
_FAST_DEPTH = 64


class Parser:
    def __init__(self, pattern: str, *, ascii: bool = False, ignore_case: bool = False, search: bool = False):
        self.p = pattern
        self.i = 0
        self.ecma = ascii  # ascii=True: ECMA-262 classes, '.' and ASCII case folding
        self.search = search
        self.flags = {"i": ignore_case, "s": False, "a": ascii, "x": False}
        self.group_names: set[str] = set()
        self.lits: dict = {}  # (char, ignore case, ascii) -> its ("set", ...) node
        self.classes: dict = {}  # (plain class text, ignore case, ascii) -> its node

    # -- helpers
    def error(self, msg: str, pos: int | None = None) -> RegexError:
        return RegexError(msg, self.p, self.i if pos is None else pos)

    def peek(self, n: int = 0) -> str:
        j = self.i + n
        return self.p[j] if j < len(self.p) else ""

    def eof(self) -> bool:
        return self.i >= len(self.p)

    def skip_verbose(self) -> None:
        if not self.flags["x"]:
            return
        while not self.eof():
            ch = self.p[self.i]
            if ch in " \t\n\r\f\v":
                self.i += 1
            elif ch == "#":
                while not self.eof() and self.p[self.i] != "\n":
                    self.i += 1
            else:
                return

    # -- sets
    def cset(self, r) -> tuple:
        if self.flags["i"]:
            r = cs.fold(r, ascii_only=self.flags["a"])
        return ("set", r)

    def literal(self, ch: str) -> tuple:
        """The node of a character that stands for itself (shared between occurrences)."""
        flags = self.flags
        key = (ch, flags["i"], flags["a"])
        node = self.lits.get(key)
        if node is None:
            c = ord(ch)
            node = self.lits[key] = self.cset(((c, c),))
        return node

    def class_ranges(self, letter: str) -> tuple:
        low = letter.lower()
        if self.flags["a"]:
            r = cs.ECMA_SPACE if (low == "s" and self.ecma) else cs.ASCII_CLASSES[low]
        else:
            r = cs.unicode_class(low)
        return cs.complement(r) if letter.isupper() else r

    def dot(self) -> tuple:
        if self.flags["s"]:
            return ("set", cs.FULL)
        if self.ecma:
            return ("set", cs.complement(((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))))
        return ("set", cs.complement(((0x0A, 0x0A),)))

    # -- entry
    def parse(self) -> tuple:
        try:
            node = self.fast()
        except RegexError:
            node = None  # reported by the general path, which parses from the start
        if node is not None:
            return node
        self.i = 0
        return self.recursive()

    def recursive(self) -> tuple:
        """The AST by recursive descent, from the start of the pattern."""
        self.leading_flags()
        node = self.alternation(0)
        if not self.eof():
            if self.peek() == ")":
                raise self.error("unbalanced parenthesis")
            raise self.error("unexpected character")
        return node

    def fast(self):
        """The AST of a pattern in the common subset, in one loop over its tokens; None
        where the pattern has anything else (inline flags, named or special groups, a
        quantifier that does not follow an atom, a stray ``{``, deep nesting, an error),
        which :meth:`parse` then reads by recursive descent. Same AST, with the same nodes
        shared, as that path gives. Classes with escapes and escapes that are not one
        character are read by the general methods, at the token's position."""
        p = self.p
        n = len(p)
        lit = self.literal
        classes = self.classes
        flags = self.flags
        icase, asc = flags["i"], flags["a"]
        stack: list = []  # (branches, items) of the enclosing groups
        branches: list = []
        items: list = []
        atom = False  # the last token was an atom a quantifier may follow
        i = 0
        memo: dict = {}  # character -> its node, as self.literal gives it
        for run, cls, esc, quant, opening, other in _TOKEN.findall(p):
            if run:
                if len(run) == 1:
                    node = memo.get(run)
                    if node is None:
                        node = memo[run] = lit(run)
                    items.append(node)
                    i += 1
                else:
                    items.extend([lit(ch) for ch in run])
                    i += len(run)
                atom = True
                continue
            if cls:
                key = (cls, icase, asc)
                node = classes.get(key)
                if node is None:
                    if "\\" in cls:
                        self.i = i
                        node = self.char_class()
                        if self.i != i + len(cls):
                            return None
                    else:
                        negate = cls[1] == "^"
                        node = self.plain_class(cls[2:-1] if negate else cls[1:-1], negate)
                        if node is None:
                            return None
                    classes[key] = node
                items.append(node)
                atom = True
                i += len(cls)
                continue
            if quant:
                i += len(quant)
                if not atom or (i < n and p[i] in "*+?{"):
                    return None
                c = quant[0]
                if c == "{":
                    lo_s, comma, hi_s = quant[1 : quant.index("}")].partition(",")
                    lo = int(lo_s) if lo_s else 0
                    hi = (int(hi_s) if hi_s else None) if comma else lo
                    if hi is not None and hi < lo:
                        return None
                else:
                    lo = 1 if c == "+" else 0
                    hi = 1 if c == "?" else None
                items[-1] = ("rep", items[-1], lo, hi)
                atom = False
                continue
            if esc:
                e = esc[1:]
                if e in _ESCAPED_LITERALS:
                    items.append(lit(e))
                    atom = True
                elif e and e in "dDwWsS":
                    items.append(("set", self.class_ranges(e)))
                    atom = True
                elif e in _SIMPLE_ESCAPES:
                    items.append(lit(chr(_SIMPLE_ESCAPES[e])))
                    atom = True
                elif len(e) == 1 and not (e.isascii() and e.isalnum()):
                    items.append(lit(e))
                    atom = True
                else:
                    self.i = i + 1
                    node = self.escape(i, in_class=False)
                    if self.i != i + len(esc):
                        return None
                    items.append(node)
                    atom = node[0] == "set"
                i += len(esc)
                continue
            if opening:
                i += len(opening)
                if (i < n and p[i] == "?") or len(stack) >= _FAST_DEPTH:
                    return None
                stack.append((branches, items))
                branches = []
                items = []
                atom = False
                continue
            i += 1
            if other == ")":
                if not stack:
                    return None
                branches.append(items[0] if len(items) == 1 else ("cat", tuple(items)))
                node = branches[0] if len(branches) == 1 else ("alt", tuple(branches))
                branches, items = stack.pop()
                items.append(node)
                atom = node[0] not in ("bol", "eol", "eoz")  # "(^)*": nothing to repeat
            elif other == "|":
                branches.append(items[0] if len(items) == 1 else ("cat", tuple(items)))
                items = []
                atom = False
            elif other == ".":
                items.append(self.dot())
                atom = True
            elif other == "^":
                items.append(("bol",))
                atom = False
            elif other == "$":
                items.append(("eoz",) if self.search else ("eol",))
                atom = False
            else:  # "{" that is no quantifier, "[" that opens no class, "\\" at the end
                return None
        if stack:
            return None
        branches.append(items[0] if len(items) == 1 else ("cat", tuple(items)))
        return branches[0] if len(branches) == 1 else ("alt", tuple(branches))

    def leading_flags(self) -> None:
        while self.p.startswith("(?", self.i):
            j = self.i + 2
            letters = ""
            while j < len(self.p) and self.p[j] in _FLAG_CHARS:
                letters += self.p[j]
                j += 1
            if not letters or j >= len(self.p) or self.p[j] != ")":
                return
            self.apply_flags(letters, True, self.i + 2)
            self.i = j + 1

    def apply_flags(self, letters: str, on: bool, pos: int) -> None:
        for k, ch in enumerate(letters):
            if ch == "m":
                raise self.error("MULTILINE flag (?m) is not supported", pos + k)
            if ch == "L":
                raise self.error("LOCALE flag (?L) is not supported", pos + k)
            if ch == "u":
                continue
            self.flags[ch] = on

    def alternation(self, depth: int) -> tuple:
        branches = [self.sequence(depth)]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence(depth))
        return branches[0] if len(branches) == 1 else ("alt", tuple(branches))

    def sequence(self, depth: int) -> tuple:
        items: list = []
        p = self.p
        n = len(p)
        while True:
            flags = self.flags  # a group with scoped flags puts back a copy
            if flags["x"]:
                self.skip_verbose()
            i = self.i
            if i >= n:
                break
            ch = p[i]
            if ch == "|" or ch == ")":
                break
            if not flags["x"]:
                m = _LITERAL_RUN.match(p, i)
                if m is not None:
                    # plain characters; the last one is left to the general path when a
                    # quantifier may follow it
                    j = m.end()
                    if j < n and p[j] in _QUANT_START:
                        j -= 1
                    if j > i:
                        lit = self.literal
                        items.extend([lit(c) for c in p[i:j]])
                        self.i = j
                        continue
            atom = self.atom(depth)
            if atom is None:
                continue
            items.append(self.quantifiers(atom, i))
        if len(items) == 1:
            return items[0]
        return ("cat", tuple(items))

    def quantifiers(self, atom: tuple, start: int) -> tuple:
        if self.flags["x"]:
            self.skip_verbose()
        i = self.i
        if i >= len(self.p) or self.p[i] not in _QUANT_START:
            return atom
        q = self.quantifier()
        if q is None:
            return atom
        if atom[0] in ("bol", "eol", "eoz"):
            raise self.error("nothing to repeat", start)
        qpos, lo, hi = q
        if self.peek() == "?":
            self.i += 1  # lazy: same language
        elif self.peek() == "+":
            raise self.error("possessive quantifier is not supported", self.i)
        self.skip_verbose()
        if self.quantifier(probe=True):
            raise self.error("multiple repeat", self.i)
        if hi is not None and hi < lo:
            raise self.error("min repeat greater than max repeat", qpos)
        return ("rep", atom, lo, hi)

    def quantifier(self, probe: bool = False):
        ch = self.peek()
        pos = self.i
        if ch and ch in "*+?":
            if not probe:
                self.i += 1
            return (pos, {"*": 0, "+": 1, "?": 0}[ch], {"*": None, "+": None, "?": 1}[ch])
        if ch != "{":
            return None
        j = self.i + 1
        if j < len(self.p) and self.p[j] == "}":
            return None
        lo = hi = ""
        while j < len(self.p) and self.p[j] in _DIGITS:
            lo += self.p[j]
            j += 1
        comma = j < len(self.p) and self.p[j] == ","
        if comma:
            j += 1
            while j < len(self.p) and self.p[j] in _DIGITS:
                hi += self.p[j]
                j += 1
        else:
            hi = lo
        if j >= len(self.p) or self.p[j] != "}":
            return None
        if not probe:
            self.i = j + 1
        return (pos, int(lo) if lo else 0, int(hi) if hi else None)

    def atom(self, depth: int):
        pos = self.i
        ch = self.p[pos]
        if ch in _QUANT_START and self.quantifier(probe=True) is not None:
            raise self.error("nothing to repeat")
        if ch == "(":
            return self.group(depth)
        if ch == "[":
            return self.char_class()
        self.i = pos + 1
        if ch == ".":
            return self.dot()
        if ch == "^":
            return ("bol",)
        if ch == "$":
            return ("eoz",) if self.search else ("eol",)
        if ch == "\\":
            return self.escape(pos, in_class=False)
        return self.literal(ch)

    def group(self, depth: int):
        pos = self.i
        self.i += 1
        saved = dict(self.flags)
        if self.peek() == "?":
            self.i += 1
            k = self.peek()
            if k == ":":
                self.i += 1
            elif k == "P" and self.peek(1) == "<":
                end = self.p.find(">", self.i + 2)
                if end < 0:
                    raise self.error("missing >, unterminated name", self.i + 2)
                name = self.p[self.i + 2 : end]
                if not name.isidentifier():
                    raise self.error(f"bad character in group name {name!r}", self.i + 2)
                if name in self.group_names:
                    raise self.error(f"redefinition of group name {name!r}", self.i + 2)
                self.group_names.add(name)
                self.i = end + 1
            elif k == "P" and self.peek(1) == "=":
                raise self.error("backreference (?P=name) cannot be a finite automaton", pos)
            elif k == "<" and self.peek(1) not in ("=", "!"):
                raise self.error("group syntax (?<name>...) is not Python re syntax; use (?P<name>...)", pos)
            elif k in ("=", "!") or (k == "<" and self.peek(1) in ("=", "!")):
                raise self.error("lookaround assertions are not supported", pos)
            elif k == "(":
                raise self.error("conditional groups are not supported", pos)
            elif k == ">":
                raise self.error("atomic groups are not supported", pos)
            elif k == "#":
                end = self.p.find(")", self.i)
                if end < 0:
                    raise self.error("missing ), unterminated comment", pos)
                self.i = end + 1
                return None
            elif k and (k in _FLAG_CHARS or k == "-"):
                on = ""
                while self.peek() in _FLAG_CHARS and self.peek():
                    on += self.peek()
                    self.i += 1
                off = ""
                if self.peek() == "-":
                    self.i += 1
                    while self.peek() in _FLAG_CHARS and self.peek():
                        off += self.peek()
                        self.i += 1
                if self.peek() == ")":
                    raise self.error("global flags not at the start of the expression", pos)
                if self.peek() != ":":
                    raise self.error("unknown flag", self.i)
                self.i += 1
                self.apply_flags(on, True, pos + 2)
                self.apply_flags(off, False, pos + 2)
            elif not k:
                raise self.error("unexpected end of pattern", self.i)
            else:
                raise self.error("unknown extension ?" + k, pos + 1)
        node = self.alternation(depth + 1)
        if self.peek() != ")":
            raise self.error("missing ), unterminated subpattern", pos)
        self.i += 1
        self.flags = saved
        return node

    # -- escapes
    def read_hex(self, n: int, pos: int, what: str) -> int:
        digits = self.p[self.i : self.i + n]
        if len(digits) != n or any(d not in _HEX for d in digits):
            raise self.error(f"incomplete escape {what}{digits}", pos)
        self.i += n
        return int(digits, 16)

    def escape_char(self, pos: int, in_class: bool):
        """A single-character escape: returns the code point, or None if not one."""
        ch = self.peek()
        if ch == "":
            raise self.error("bad escape (end of pattern)", pos)
        if ch in _SIMPLE_ESCAPES:
            self.i += 1
            return _SIMPLE_ESCAPES[ch]
        if ch == "b" and in_class:
            self.i += 1
            return 8
        if ch == "x":
            self.i += 1
            return self.read_hex(2, pos, "\\x")
        if ch == "u":
            self.i += 1
            return self.read_hex(4, pos, "\\u")
        if ch == "U":
            self.i += 1
            v = self.read_hex(8, pos, "\\U")
            if v > cs.MAX_CP:
                raise self.error(f"bad escape \\U{v:08x}", pos)
            return v
        if ch == "N":
            self.i += 1
            if self.peek() != "{":
                raise self.error("missing {", self.i)
            end = self.p.find("}", self.i)
            if end < 0:
                raise self.error("missing }, unterminated name", self.i)
            name = self.p[self.i + 1 : end]
            try:
                v = ord(unicodedata.lookup(name))
            except KeyError:
                raise self.error(f"undefined character name {name!r}", pos) from None
            self.i = end + 1
            return v
        if ch == "0":
            self.i += 1
            digits = ""
            while len(digits) < 2 and self.peek() in _OCT and self.peek():
                digits += self.peek()
                self.i += 1
            return int(digits, 8) if digits else 0
        if ch in _DIGITS:
            # octal escape of three digits, otherwise a backreference
            d3 = self.p[self.i : self.i + 3]
            if len(d3) == 3 and all(d in _OCT for d in d3):
                v = int(d3, 8)
                if v > 0o377:
                    raise self.error(f"octal escape value \\{d3} outside of range 0-0o377", pos)
                self.i += 3
                return v
            if in_class:
                raise self.error(f"bad escape \\{ch}", pos)
            return None
        if ch.isascii() and ch.isalnum():
            return None
        self.i += 1
        return ord(ch)

    def escape(self, pos: int, in_class: bool):
        ch = self.peek()
        if not in_class:
            if ch and ch in _DIGITS and ch != "0":
                d3 = self.p[self.i : self.i + 3]
                if not (len(d3) == 3 and all(d in _OCT for d in d3)):
                    raise self.error("backreference cannot be a finite automaton", pos)
            if ch == "A":
                self.i += 1
                return ("bol",)
            if ch == "Z":
                self.i += 1
                return ("eoz",)
            if ch in ("b", "B"):
                raise self.error(f"word boundary \\{ch} is not supported", pos)
        if ch in "dDwWsS" and ch:
            self.i += 1
            return ("set", self.class_ranges(ch))
        if ch in ("p", "P") and self.ecma:
            self.i += 1
            return self.cset(self.property_escape(pos, ch == "P"))
        v = self.escape_char(pos, in_class)
        if v is None:
            raise self.error(f"bad escape \\{ch}", pos)
        return self.cset(((v, v),))

    def property_escape(self, pos: int, negate: bool) -> tuple:
        """The code points of ``\\p{...}`` (``\\P{...}`` with ``negate``), its braces at
        the current position; ``pos`` is where the escape starts."""
        if self.peek() != "{":
            raise self.error("a Unicode property escape needs its property in braces, as \\p{L}", pos)
        end = self.p.find("}", self.i)
        if end < 0:
            raise self.error("missing }, unterminated Unicode property", pos)
        try:
            r = cs.unicode_property(self.p[self.i + 1 : end])
        except ValueError as e:
            raise self.error(str(e), pos) from None
        self.i = end + 1
        return cs.complement(r) if negate else r

    # -- classes
    def char_class(self) -> tuple:
        m = _PLAIN_CLASS.match(self.p, self.i)
        if m is None:
            return self.class_body()
        key = (m.group(), self.flags["i"], self.flags["a"])
        node = self.classes.get(key)
        if node is None:
            node = self.plain_class(m.group(2), m.group(1) == "^")
            if node is None:
                return self.class_body()  # an error: reported by the general path
            self.classes[key] = node
        self.i = m.end()
        return node

    def plain_class(self, body: str, negate: bool):
        """The node of a class without escapes, or None where the general path must
        report an error."""
        r = _plain_ranges(body)
        if r is None:
            return None
        if self.flags["i"]:
            r = cs.fold(r, ascii_only=self.flags["a"])
        if negate:
            r = cs.complement(r)
        return ("set", r)

    def class_body(self) -> tuple:
        pos = self.i
        self.i += 1
        negate = False
        if self.peek() == "^":
            negate = True
            self.i += 1
        pairs: list = []
        first = True
        while True:
            if self.eof():
                raise self.error("unterminated character set", pos)
            ch = self.peek()
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            item_pos = self.i
            lo = self.class_item()
            if isinstance(lo, tuple):
                pairs.extend(lo)
                if self.peek() == "-" and self.peek(1) not in ("]", ""):
                    raise self.error("bad character range", item_pos)
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                hi_pos = self.i
                hi = self.class_item()
                if isinstance(hi, tuple):
                    raise self.error("bad character range", item_pos)
                if hi < lo:
                    raise self.error("bad character range", item_pos)
                del hi_pos
                pairs.append((lo, hi))
            else:
                pairs.append((lo, lo))
        r = cs.normalize(pairs)
        if self.flags["i"]:
            r = cs.fold(r, ascii_only=self.flags["a"])
        if negate:
            r = cs.complement(r)
        return ("set", r)

    def class_item(self):
        """A code point, or a tuple of ranges for a class escape inside ``[...]``."""
        ch = self.peek()
        pos = self.i
        self.i += 1
        if ch != "\\":
            return ord(ch)
        e = self.peek()
        if e in "dDwWsS" and e:
            self.i += 1
            return self.class_ranges(e)
        if e in ("p", "P") and self.ecma:
            self.i += 1
            return self.property_escape(pos, e == "P")
        v = self.escape_char(pos, in_class=True)
        if v is None:
            raise self.error(f"bad escape \\{e}", pos)
        return v


@lru_cache(maxsize=4096)
def _plain_ranges(body: str):
    """The code point set of the inside of a class without escapes (``a-z0``), or None
    when a range is reversed or the class is empty."""
    pairs = []
    k = 0
    n = len(body)
    while k < n:
        lo = ord(body[k])
        if k + 2 < n and body[k + 1] == "-":
            hi = ord(body[k + 2])
            if hi < lo:
                return None
            pairs.append((lo, hi))
            k += 3
        else:
            pairs.append((lo, lo))
            k += 1
    return cs.normalize(pairs) if pairs else None


def parse(pattern: str, *, ascii: bool = False, ignore_case: bool = False, search: bool = False) -> tuple:
    """Parse ``pattern``; raises RegexError naming the construct and its position."""
    return Parser(pattern, ascii=ascii, ignore_case=ignore_case, search=search).parse()
