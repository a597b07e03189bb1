"""GBNF front door: syntax, error reporting, fusion into regex terminals, and the
language of the result checked through the engine (json.gbnf against ``json.loads``)."""

from __future__ import annotations

import json
import random

import pytest

import constrain
from constrain import grammars
from constrain.errors import GrammarError
from constrain.frontends.gbnf import gbnf_to_grammar
from constrain.grammar.ir import Difference, Grammar, Lit, RegexTerm

from conftest import byte_vocab
from grammar_sampling import GrammarSampler, byte_accepts, check_agreement, literal_alphabet

from constrain.automata import compile_terminal


def language(text: str, start: str = "root"):
    compiled = constrain.compile(gbnf_to_grammar(text, start=start), byte_vocab())
    return lambda s: byte_accepts(compiled, s.encode("utf-8") if isinstance(s, str) else s)


def check(text: str, accepted, rejected, start: str = "root"):
    member = language(text, start)
    for s in accepted:
        assert member(s), f"{s!r} should be accepted"
    for s in rejected:
        assert not member(s), f"{s!r} should be rejected"


# ------------------------------------------------------------------- structure
def test_bundled_json_gbnf_structure():
    g = gbnf_to_grammar(grammars.read("json", ".gbnf"))
    assert isinstance(g, Grammar) and g.start == "root"
    g.validate()
    # recursive rules stay rules; regular ones (string, number, ws...) are fused away
    assert {"root", "value", "object", "array", "member"} <= set(g.rules)
    assert not {"string", "number", "ws", "hex", "escape", "int", "frac", "exp"} & set(g.rules)
    assert len(g.terminals) <= 16
    for name, term in g.terminals.items():
        dfa = compile_terminal(term)
        assert dfa.transitions.shape[0] > 0, name
        assert not dfa.accepting[0], f"terminal {name} accepts the empty string"


def test_literal_escapes():
    g = gbnf_to_grammar(r'root ::= "a\x41\u00e9\U0001F600\n\t\r\"\\\[\]"')
    (alt,) = g.rules["root"]
    (term,) = alt
    assert g.terminals[term] == Lit("aA\u00e9\U0001F600\n\t\r\"\\[]")


def test_runs_fuse_into_one_terminal():
    g = gbnf_to_grammar('root ::= "ab" [0-9]+ ("x" | "y")? tail\ntail ::= "!"\n')
    assert list(g.rules) == ["root"]
    (alt,) = g.rules["root"]
    assert len(alt) == 1 and isinstance(g.terminals[alt[0]], RegexTerm)
    literal = gbnf_to_grammar('root ::= "ab" "cd" two\ntwo ::= "e"{2}\n')
    assert literal.terminals[literal.rules["root"][0][0]] == Lit("abcdee")


def test_nullable_runs_become_optional_nonempty_terminals():
    g = gbnf_to_grammar('root ::= [ ]* "x" [ ]*\n')
    assert g.terminals and not any(compile_terminal(t).accepting[0] for t in g.terminals.values())
    g = gbnf_to_grammar('root ::= ws item ws\nitem ::= "(" root ")" | "x"\nws ::= [ ]*\n')
    diffs = [t for t in g.terminals.values() if isinstance(t, Difference)]
    assert diffs and all(compile_terminal(t).accepting[0] == False for t in diffs)  # noqa: E712


# ---------------------------------------------------------------- the language
def test_char_classes_and_any():
    check(
        'root ::= [a-c] [^a-z\\n] . [\\x41-\\x43\\-]\n',
        accepted=["aZ\nA", "c1éC", "b-\U0001F600-", "a\t\x00B"],
        rejected=["dZxA", "aaxA", "a\nxA", "aZxD", "aZx"],
    )
    check('root ::= "a" [^] | "b" []\n', ["ax", "a\n"], ["a", "b", "bx", "axx"])


def test_repetition_counts():
    check('root ::= "a"{3}\n', ["aaa"], ["", "aa", "aaaa"])
    check('root ::= "a"{2,}\n', ["aa", "aaaaa"], ["", "a"])
    check('root ::= "a"{1,3}\n', ["a", "aa", "aaa"], ["", "aaaa"])
    check('root ::= "a"{,2} "b"\n', ["b", "ab", "aab"], ["aaab", "a"])
    check('root ::= "a"{0} "b"\n', ["b"], ["ab", ""])
    # repetition of a recursive (non-regular) item
    paren = 'root ::= p{2,3}\np ::= "(" p* ")"\n'
    check(paren, ["()()", "(())()", "()()()", "(()())(())()"], ["()", "()()()()", "(()", ""])
    check('root ::= p{2}\np ::= "[" p? "]"\n', ["[][]", "[[]][]"], ["[]", "[][][]"])


def test_space_before_operators():
    check('root ::= [a-b] + "c" ?\n', ["a", "abac"], ["", "c", "acc"])
    check('root ::= "x" { 2 , 3 }\n', ["xx", "xxx"], ["x", "xxxx"])


def test_operators_and_grouping():
    check(
        'root ::= ("ab" | "c")+ "d"? ("e" | )\n',
        ["ab", "c", "abcab", "cd", "cde", "ce", "abd"],
        ["", "d", "a", "cdd", "abc e"],
    )


def test_recursion_and_multiline_rules():
    text = """
# balanced brackets, with a rule spread over several lines
root ::= item*
item ::= "(" root ")"
       | "[" root "]"   # a comment after an alternative
       | letter
letter ::= [a-z]
"""
    check(text, ["", "a", "(a[b])", "([()])x", "((((z))))"], ["(", "(]", "A", "(a))"])


def test_dashed_names_and_custom_start():
    text = 'my-start ::= first-part "-" second-part\nfirst-part ::= "x"+\nsecond-part ::= "y"\n'
    check(text, ["x-y", "xxx-y"], ["-y", "x-"], start="my-start")


def test_empty_alternatives_and_empty_language_pieces():
    check('root ::= "a" e "b"\ne ::= "" | ""\n', ["ab"], ["a", "aeb"])
    check('root ::= opt "x"\nopt ::= | "y"\n', ["x", "yx"], ["yyx", ""])


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "text, fragment, line",
    [
        ('root ::= "abc\n', "string", 1),
        ("root = \"a\"\n", "::=", 1),
        ('root ::= "a"\nother ::= "\\q"\n', "escape", 2),
        ('root ::= [z-a]\n', "reversed", 1),
        ('root ::= "a"{3,1}\n', "below", 1),
        ('root ::= "a"{x}\n', "repetition", 1),
        ('root ::= ( "a" \n', "')'", 2),
        ('root ::= <[1000]>\n', "token", 1),
        ('root ::= "\\x4"\n', "hex", 1),
        ('root ::= "a"\nroot ::= "b"\n', "twice", 2),
        ('root ::= "a" @\n', "unexpected", 1),
        ('root ::= "\\uD800"\n', "scalar", 1),
        ('root ::= "a"\n__t_1 ::= "b"\n', "reserved", 2),
        ('root ::= * "a"\n', "unexpected", 1),
    ],
)
def test_syntax_errors_point_at_the_place(text, fragment, line):
    with pytest.raises(GrammarError) as info:
        gbnf_to_grammar(text)
    message = str(info.value)
    assert fragment in message
    assert f"line {line} column" in message and "^" in message


def test_undefined_rule_is_named_with_its_place():
    with pytest.raises(GrammarError) as info:
        gbnf_to_grammar('root ::= "a" missing-rule\n')
    message = str(info.value)
    assert "missing-rule" in message and "line 1 column 14" in message


def test_missing_start_and_bad_types():
    with pytest.raises(GrammarError, match="root"):
        gbnf_to_grammar('start ::= "a"\n')
    with pytest.raises(GrammarError):
        gbnf_to_grammar(b'root ::= "a"')  # type: ignore[arg-type]
    assert issubclass(GrammarError, constrain.ConstrainError)


# ------------------------------------------ json.gbnf against Python's json module
def _json_reference(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False

    def refuse(name):
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:
        return False
    return True


def test_json_gbnf_examples():
    member = language(grammars.read("json", ".gbnf"))
    for example in grammars.examples("json"):
        assert member(example), example


def test_json_gbnf_agrees_with_json_module():
    """3,000 sampled and mutated documents; constrain must agree with ``json.loads``."""
    g = gbnf_to_grammar(grammars.read("json", ".gbnf"))
    compiled = constrain.compile(g, byte_vocab())
    sampler = GrammarSampler(g, max_depth=10, max_len=60, terminal_max_len=8)
    alphabet = literal_alphabet(g) + b'"\\0123456789.eE-+ \n'
    rng = random.Random(2024)
    positives, _ = check_agreement(compiled, sampler, _json_reference, rng, 1500, alphabet)
    assert 1400 <= positives <= 2600


# ------------------------- differential: fused IR vs a plain character-level lark
def _hex_escape(cp: int) -> str:
    # lark decodes \xNN-style escapes inside /regex/ literals into the raw character, so
    # ASCII punctuation (a raw backslash or bracket would be special) gets a backslash.
    c = chr(cp)
    if c.isascii() and c.isalnum():
        return c
    if 0x20 <= cp < 0x7F:
        return "\\" + c
    return f"\\x{cp:02x}" if cp < 0x100 else (f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}")


def gbnf_to_lark_reference(text: str, start: str = "root") -> str:
    """The same language as a Lark grammar, one terminal per character item, no fusion.

    Written independently of the converter under test: every repetition and group becomes
    its own helper rule (so lark never expands optionals into duplicate alternatives).
    """
    from constrain.frontends import gbnf as gb

    rules = gb._Parser(text).parse()
    names = {name: f"r{i}" for i, name in enumerate(rules)}
    out: list[str] = []
    counter = [0]

    def helper(alternatives: list[str]) -> str:
        counter[0] += 1
        name = f"h{counter[0]}"
        unique = list(dict.fromkeys(alternatives))
        out.append(f"{name}: " + " | ".join(unique))
        return name

    def emit(node) -> str:
        if isinstance(node, gb._Lit):
            return " ".join(f"/{_hex_escape(ord(c))}/" for c in node.text)
        if isinstance(node, gb._Class):
            body = "".join(
                _hex_escape(lo) if lo == hi else f"{_hex_escape(lo)}-{_hex_escape(hi)}" for lo, hi in node.ranges
            )
            return f"/[{'^' if node.negated else ''}{body}]/"
        if isinstance(node, gb._Any):
            return "/(?s:.)/"
        if isinstance(node, gb._Ref):
            return names[node.name]
        if isinstance(node, gb._Seq):
            return " ".join(emit(item) for item in node.items)
        if isinstance(node, gb._Alt):
            return helper([emit(option) for option in node.options])
        if isinstance(node, gb._Rep):
            inner = helper([emit(node.node)])
            parts = [inner] * node.low
            if node.high is None:
                star = f"h{counter[0] + 1}"
                helper([f"{star} {inner}", ""])
                parts.append(star)
            else:
                tail = ""
                for _ in range(node.high - node.low):
                    tail = helper([f"{inner} {tail}".strip(), ""])
                if tail:
                    parts.append(tail)
            return " ".join(parts)
        raise TypeError(node)

    for name, body in rules.items():
        out.append(f"{names[name]}: {emit(body)}")
    out.append(f"start: {names[start]}")
    return "\n".join(out) + "\n"


DIFFERENTIAL = {
    "nullable-runs": 'root ::= ws "[" ws ( item ( ws "," ws item )* )? ws "]" ws\nitem ::= [a-z]+ | root\nws ::= [ ]*\n',
    "optional-everything": 'root ::= "a"? b? "c"* (d | "")\nb ::= "b"{0,2}\nd ::= "d" d | ""\n',
    "dashed-recursion": 'root ::= sum\nsum ::= product ( [-+] product )*\nproduct ::= atom ( [*/] atom )*\natom ::= [0-9]+ | "(" sum ")" | "-" atom\n',
    "counted-refs": 'root ::= pair{1,3} "."\npair ::= "<" inner{2} ">"\ninner ::= [ab] | "(" pair ")"\n',
    "any-and-negated": 'root ::= "\\"" ( [^"\\\\] | "\\\\" . )* "\\"" (" " root)?\n',
    "unicode": 'root ::= ( [α-ω] | "é" | "\\U0001F600" | [^\\x00-\\x7F] )+ ( "-" root )?\n',
    "nested-groups": 'root ::= ( ( "x" | "y" "z"? )+ ( "," | ";" )? ){2,} end\nend ::= "!" | ""\n',
}


@pytest.mark.parametrize("name", list(DIFFERENTIAL))
def test_fused_grammar_agrees_with_plain_reference(name):
    import lark

    text = DIFFERENTIAL[name]
    g = gbnf_to_grammar(text)
    compiled = constrain.compile(g, byte_vocab())
    reference = lark.Lark(gbnf_to_lark_reference(text), parser="earley", lexer="dynamic_complete", ambiguity="forest")

    def expected(data: bytes) -> bool:
        try:
            reference.parse(data.decode("utf-8"))
        except (UnicodeDecodeError, lark.exceptions.LarkError):
            return False
        return True

    sampler = GrammarSampler(g, max_depth=8, max_len=24, terminal_max_len=6)
    alphabet = literal_alphabet(g) + b"abxyz0123456789 ,;[]()<>\"\\"
    rng = random.Random(len(text))
    positives, _ = check_agreement(compiled, sampler, expected, rng, 150, alphabet)
    assert positives >= 150
