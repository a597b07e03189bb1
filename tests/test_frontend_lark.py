"""Lark front door: bundled grammars, conversion of lark's loaded grammar, and agreement
of constrain's byte-level judgement with lark's own Earley parser."""

from __future__ import annotations

import random
from importlib import resources
import re
import zlib

import lark
import numpy as np
import pytest

import constrain
from constrain import grammars
from constrain.errors import GrammarError
from constrain.frontends.lark import bundled_loader, lark_to_grammar
from constrain.grammar.ir import Grammar, Lit, RegexTerm

from conftest import byte_vocab
from grammar_sampling import GrammarSampler, byte_accepts, check_agreement, lark_judge, literal_alphabet, mutate

from constrain.automata import compile_terminal

BUNDLED = ["json", "sql_select", "arithmetic", "csv", "python_subset", "tool_call"]


def dfa_accepts(dfa, data: bytes) -> bool:
    state = 0
    trans = np.asarray(dfa.transitions)
    if trans.shape[0] == 0:
        return False
    for byte in data:
        state = int(trans[state, byte])
        if state < 0:
            return False
    return bool(dfa.accepting[state])


_compiled: dict = {}


def compiled_bundled(name: str, lexer: str = "dynamic"):
    """The bundled grammar with the language semantics lark's dynamic_complete Earley judges."""
    key = (name, lexer)
    if key not in _compiled:
        _compiled[key] = constrain.compile(constrain.Lark(grammars.read(name), lexer=lexer), byte_vocab())
    return _compiled[key]


def test_longest_match_lexer_option():
    text = grammars.read("sql_select")
    assert "constrain: lexer=longest" in text  # the bundled SQL grammar asks for it
    dynamic = compiled_bundled("sql_select", "dynamic")
    longest = compiled_bundled("sql_select", "longest")
    assert constrain.compile(constrain.Lark(text), byte_vocab()).grammar.longest_match
    for data in [b"SELECT a FROM t", b"select a, b from t where a > 1"]:
        assert byte_accepts(dynamic, data) and byte_accepts(longest, data)
    # Without whitespace the keyword may end where a name goes on only in the rules'
    # own language; a standard lexer reads one long name.
    assert byte_accepts(dynamic, b"SELECT a FROMt")
    assert not byte_accepts(longest, b"SELECT a FROMt")
    for example in grammars.examples("sql_select"):
        assert byte_accepts(longest, example.encode())
    with pytest.raises(constrain.SpecError):
        constrain.compile(constrain.Lark(text, lexer="lalr"), byte_vocab())


# ----------------------------------------------------------------- bundled grammars
def test_bundled_grammars_are_listed_and_readable():
    assert set(BUNDLED) <= set(grammars.names())
    assert "json" in grammars.names(".gbnf")
    for name in BUNDLED:
        assert grammars.read(name).strip()


@pytest.mark.parametrize("name", BUNDLED)
def test_examples_are_accepted_by_lark(name):
    examples = grammars.examples(name)
    assert len(examples) >= 10
    assert len(set(examples)) == len(examples)
    parser = lark.Lark(
        grammars.read(name), parser="earley", lexer="dynamic_complete", import_paths=[bundled_loader()]
    )
    for example in examples:
        parser.parse(example)  # raises on rejection


@pytest.mark.parametrize("name", BUNDLED)
def test_converted_grammar_structure(name):
    g = lark_to_grammar(grammars.read(name))
    assert isinstance(g, Grammar)
    assert g.start == "start" and "start" in g.rules
    g.validate()
    used = {s for alts in g.rules.values() for alt in alts for s in alt}
    for sym in used:
        assert sym in g.rules or sym in g.terminals
    for rule in g.rules:
        if rule != g.start:
            assert rule in used, f"rule {rule} is unreachable"
    for tname, term in g.terminals.items():
        dfa = compile_terminal(term)
        assert not dfa_accepts(dfa, b""), tname
        assert dfa.transitions.shape[0] > 0, f"terminal {tname} has an empty language"


def test_bundled_grammar_details():
    sql = lark_to_grammar(grammars.read("sql_select"))
    assert sql.terminals["SELECT"] == Lit("select", ignore_case=True)
    assert sql.ignore and all(name in sql.terminals for name in sql.ignore)
    arith = lark_to_grammar(grammars.read("arithmetic"))
    # left recursion survives conversion
    assert any(alt and alt[0] == "sum" for alt in arith.rules["sum"])
    assert any(alt and alt[0] == "product" for alt in arith.rules["product"])
    js = lark_to_grammar(grammars.read("json"))
    assert js.ignore == ("WS",)
    assert {"value", "object", "array", "member"} <= set(js.rules)
    tool = lark_to_grammar(grammars.read("tool_call"))
    # %import json.object brings JSON's rules in, namespaced by lark
    assert any(rule.startswith("json__") for rule in tool.rules)


@pytest.mark.parametrize("name", BUNDLED)
def test_terminal_dfas_agree_with_python_re(name):
    """Each converted terminal has the language of lark's own regex for it."""
    text = grammars.read(name)
    parser = lark.Lark(text, parser="earley", lexer="dynamic", import_paths=[bundled_loader()])
    g = lark_to_grammar(text)
    rng = random.Random(7)
    for tdef in parser.terminals:
        if tdef.name not in g.terminals:
            continue
        rx = re.compile(tdef.pattern.to_regexp())
        dfa = compile_terminal(g.terminals[tdef.name])
        sampler = GrammarSampler(
            Grammar("s", {"s": [(tdef.name,)]}, {tdef.name: g.terminals[tdef.name]}),
            compile_terminal=compile_terminal,
        )
        for _ in range(40):
            sample = sampler.sample(rng)
            assert rx.fullmatch(sample.decode("utf-8")), (tdef.name, sample)
            wrong = mutate(sample, rng)
            try:
                expected = rx.fullmatch(wrong.decode("utf-8")) is not None
            except UnicodeDecodeError:
                expected = False
            assert dfa_accepts(dfa, wrong) == expected, (tdef.name, wrong)


# ------------------------------------------------------------ conversion details
def test_terminal_kinds_and_flags():
    g = lark_to_grammar(
        'start: KW WORD DOT NUM "x"i\n'
        'KW: "select"i\n'
        "WORD: /[a-z]+/i\n"
        "DOT: /a.b/s\n"
        "NUM.3: /[0-9]+/\n"
    )
    assert g.terminals["KW"] == Lit("select", ignore_case=True)
    assert g.terminals["WORD"] == RegexTerm("[a-z]+", ignore_case=True)
    assert g.terminals["DOT"] == RegexTerm("(?s:a.b)")
    assert g.terminals["NUM"] == RegexTerm("[0-9]+")
    assert g.priorities == {"NUM": 3}
    anon = [t for t in g.terminals.values() if t == Lit("x", ignore_case=True)]
    assert len(anon) == 1
    dot = compile_terminal(g.terminals["DOT"])
    assert dfa_accepts(dot, b"a\nb") and dfa_accepts(dot, b"axb")
    verbose = lark_to_grammar("start: V\nV: /a b # comment\n/xu\n").terminals["V"]
    assert dfa_accepts(compile_terminal(verbose), b"ab") and not dfa_accepts(compile_terminal(verbose), b"a b")


def test_operators_templates_and_inlining():
    g = lark_to_grammar(
        "start: _pair+ item? \"-\" [item] sep{ITEM, \",\"} ITEM ~ 2 ITEM ~ 1..2\n"
        "?item: ITEM\n"
        "_pair: ITEM ITEM\n"
        "sep{x, s}: x (s x)*\n"
        "ITEM: /[a-z]/\n"
    )
    assert "item" in g.rules and "_pair" in g.rules
    assert "sep" not in g.rules and "sep{ITEM,COMMA}" in g.rules  # template instantiated
    # `~` and `[ ]` are expanded by lark into plain alternatives
    assert len({len(alt) for alt in g.rules["start"]}) > 1
    compiled = constrain.compile(g, byte_vocab())
    for text, expected in [
        ("ab-a,b,cdef", True),
        ("ab-a,b,cdefg", True),
        ("abcdx-y,zdef", True),
        ("ab-a,b,cde", False),
        ("ab-a,b,cdefgh", False),
        ("a-a,b,cdef", False),
    ]:
        assert byte_accepts(compiled, text.encode()) == expected, text


def test_common_import_and_ignore():
    g = lark_to_grammar(
        "start: NUMBER (\",\" NUMBER)*\n%import common.NUMBER\n%import common.WS\n%ignore WS\n"
    )
    assert "NUMBER" in g.terminals and g.ignore == ("WS",)
    dfa = compile_terminal(g.terminals["NUMBER"])
    assert dfa_accepts(dfa, b"12.5e3") and not dfa_accepts(dfa, b"1x")


def test_import_bundled_grammar_by_name():
    g = lark_to_grammar("start: \"<\" value \">\"\n%import json.value\n%import json.WS\n%ignore WS\n")
    assert "value" in g.rules
    assert any(name.startswith("json__") for name in g.terminals)


def test_import_from_caller_path(tmp_path):
    (tmp_path / "mine.lark").write_text("greeting: \"hello\" | \"hi\"\n")
    g = lark_to_grammar("start: greeting \"!\"\n%import mine.greeting\n", import_paths=[str(tmp_path)])
    assert "greeting" in g.rules


def test_custom_start_rule():
    g = lark_to_grammar("start: a\na: \"x\" b\nb: \"y\"\n", start="a")
    assert g.start == "a"


def test_declare_is_refused_with_the_terminal_named():
    with pytest.raises(GrammarError, match=r"INDENT.*%declare"):
        lark_to_grammar('start: "a" INDENT\n%declare INDENT\n')


@pytest.mark.parametrize(
    "text, name",
    [('start: "a" B\nB: /x*/\n', "B"), ('start: "a" B?\nB: "x"*\n', "B"), ("start: C\nC: /(a|)/\n", "C")],
)
def test_empty_terminal_is_refused_with_its_name(text, name):
    with pytest.raises(GrammarError, match=rf"terminal {name} matches the empty string"):
        lark_to_grammar(text)


def test_syntax_error_has_line_column_and_caret():
    with pytest.raises(GrammarError) as info:
        lark_to_grammar('start: a\na: "x" (\n')
    message = str(info.value)
    assert "line 2" in message and "column" in message and "^" in message


def test_undefined_rule_and_bad_input_types():
    with pytest.raises(GrammarError, match="b"):
        lark_to_grammar('start: a b\na: "x"\n')
    with pytest.raises(GrammarError):
        lark_to_grammar(b"start: A\nA: \"a\"\n")  # type: ignore[arg-type]
    with pytest.raises(GrammarError):
        lark_to_grammar('start: "a"\n', start="nope")
    with pytest.raises(GrammarError, match="import"):
        lark_to_grammar("start: x\n%import no_such_grammar_here.x\n")


def test_errors_are_constrain_errors():
    with pytest.raises(constrain.ConstrainError):
        lark_to_grammar("start: ::\n")
    assert issubclass(GrammarError, ValueError)


# --------------------------------------------------- engine agreement with lark
@pytest.mark.parametrize("name", BUNDLED)
def test_engine_accepts_every_example(name):
    compiled = compiled_bundled(name)
    for example in grammars.examples(name):
        assert byte_accepts(compiled, example.encode("utf-8")), example


# (grammar, cases, sampler settings): sized so the whole run takes well under 30 s;
# lark's Earley parser, the reference, is the slow side (~50 ms a case for SQL).
AGREEMENT = [
    ("json", 1400, dict(max_depth=8, max_len=30)),
    ("csv", 1000, dict(max_depth=8, max_len=30)),
    ("tool_call", 800, dict(max_depth=8, max_len=30)),
    ("arithmetic", 800, dict(max_depth=6, max_len=10)),
    ("python_subset", 500, dict(max_depth=6, max_len=10)),
    ("sql_select", 160, dict(max_depth=6, max_len=10)),
]


@pytest.mark.parametrize("name, cases, settings", AGREEMENT, ids=[a[0] for a in AGREEMENT])
def test_engine_agrees_with_lark(name, cases, settings):
    """Half sampled sentences, half byte mutations of them; verdicts must match lark's."""
    text = grammars.read(name)
    g = lark_to_grammar(text)
    sampler = GrammarSampler(g, terminal_max_len=6, **settings)
    judge = lark_judge(text)
    compiled = compiled_bundled(name)
    alphabet = literal_alphabet(g)
    rng = random.Random(zlib.crc32(name.encode()))
    positives, negatives = check_agreement(compiled, sampler, judge, rng, cases // 2, alphabet)
    # both sides of the boundary were exercised
    assert positives >= cases // 4 and negatives >= cases // 10


# ------------------------------------------------------- lark's common library
def _common_terminal_names() -> list[str]:
    text = (resources.files("lark") / "grammars" / "common.lark").read_text(encoding="utf-8")
    return sorted({m for m in re.findall(r"^([A-Z][A-Z_]*)\s*(?:\.\d+)?\s*:", text, re.M)})


def test_every_common_terminal_converts_and_compiles():
    names = _common_terminal_names()
    assert {"ESCAPED_STRING", "SIGNED_NUMBER", "CNAME", "WS", "C_COMMENT"} <= set(names)
    for name in names:
        g = lark_to_grammar(f"start: {name}\n%import common.{name}\n")
        dfa = compile_terminal(g.terminals[name])
        assert dfa.transitions.shape[0] > 0 and not dfa_accepts(dfa, b""), name


@pytest.mark.parametrize(
    "name, accepted, rejected",
    [
        ("ESCAPED_STRING", [b'""', b'"a\\"b"', b'"\\\\"', b'"x\\\\\\""'], [b'"a"b"', b'"\\"', b'"a\nb"', b'"a']),
        ("C_COMMENT", [b"/**/", b"/* a */", b"/***/", b"/* * / */", b"/* a\n b **/"], [b"/* a */ b */", b"/*/", b"/* a"]),
    ],
)
def test_lazy_common_terminals_take_lark_effective_language(name, accepted, rejected):
    g = lark_to_grammar(f"start: {name}\n%import common.{name}\n")
    dfa = compile_terminal(g.terminals[name])
    parser = lark.Lark(f"start: {name}\n%import common.{name}\n", parser="earley", lexer="dynamic_complete")
    for data in accepted:
        assert dfa_accepts(dfa, data), data
        parser.parse(data.decode())
    for data in rejected:
        assert not dfa_accepts(dfa, data), data
        with pytest.raises(lark.exceptions.LarkError):
            parser.parse(data.decode())


CONFIG_GRAMMAR = r"""
start: item*
item: CNAME "=" value ";"
?value: ESCAPED_STRING
      | SIGNED_NUMBER
      | CNAME
      | "[" [value ("," value)*] "]"
%import common (CNAME, ESCAPED_STRING, SIGNED_NUMBER, WS, C_COMMENT)
%ignore WS
%ignore C_COMMENT
"""


def test_engine_agrees_with_lark_on_common_terminals():
    g = lark_to_grammar(CONFIG_GRAMMAR)
    assert set(g.ignore) == {"WS", "C_COMMENT"}
    compiled = constrain.compile(g, byte_vocab())
    judge = lark_judge(CONFIG_GRAMMAR)
    sampler = GrammarSampler(g, max_depth=8, max_len=30, terminal_max_len=8, ignore_rate=0.3)
    alphabet = literal_alphabet(g) + b'"\\/*\n '
    rng = random.Random(99)
    positives, _ = check_agreement(compiled, sampler, judge, rng, 400, alphabet)
    assert positives >= 300


def test_ignored_line_comment_runs_to_the_end_of_the_line():
    grammar = 'start: NAME "=" NAME\nNAME: /[a-z]+/\nCOMMENT: /#[^\\n]*/\n%ignore COMMENT\n%ignore " "\n'
    judge = lark_judge(grammar)
    compiled = constrain.compile(constrain.Lark(grammar), byte_vocab())
    for data in [b"a=b", b"a #x\n", b"a=b #x", b"a#x=b"]:
        assert byte_accepts(compiled, data) == judge(data), data
