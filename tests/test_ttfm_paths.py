"""The short paths of a compile agree with the general ones: the regex DFA with its key
from one kernel call, a one-rule grammar taken as already reduced, the bytes that may
follow each terminal."""

import numpy as np
import pytest

import constrain
from constrain import Regex, compile
from constrain.automata import regex as rx
from constrain.automata.dfa import ByteDFA
from constrain.grammar.analysis import one_rule_reduction, reduce, terminal_follow
from constrain.grammar.ir import Grammar, GrammarBuilder, Lit, RegexTerm
from conftest import byte_vocab

PATTERNS = [
    "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
    "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}",
    "-?[1-9][0-9]{0,2}(,[0-9]{3}){0,4}(\\.[0-9]{1,4})?",
    "a",
    "",
    "^ab$",
    "(a|b)*c",
    "é+[^x]{2,5}",
    "[]",
    "(ab){3,}",
]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("flags", [{}, {"ascii": True}, {"search": True}, {"json_string": True}])
def test_regex_key_from_kernel_matches_table_key(pattern, flags):
    try:
        d = rx.compile_regex(pattern, **flags)
    except constrain.RegexError:
        return
    again = ByteDFA(d.transitions, d.accepting)  # key recomputed from the table alone
    assert d.key == again.key
    assert again == ByteDFA.from_table(d.transitions, d.accepting)


def test_compile_terminal_with_and_without_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    term = RegexTerm("[a-c]{2}x?")
    keys = []
    for setting in ("0", "1", "1"):  # off, then stored, then loaded
        monkeypatch.setenv("CONSTRAIN_DISK_CACHE", setting)
        rx._TERMINALS.clear()
        keys.append(rx.compile_terminal(term).key)
    assert len(set(keys)) == 1


def _grammars():
    a, b = RegexTerm("[a-z]+"), Lit(",")
    yield Grammar("start", {"start": [("A",)]}, {"A": a})
    yield Grammar("start", {"start": [("A",), ("B",)]}, {"A": a, "B": b})
    yield Grammar("start", {"start": [("A", "B"), ()]}, {"A": a, "B": b})
    yield Grammar("start", {"start": [("A",)]}, {"A": a, "W": RegexTerm(" +")}, ignore=("W",))
    yield Grammar("start", {"start": [("A", "B", "A")]}, {"A": a, "B": b})


@pytest.mark.parametrize("grammar", list(_grammars()))
def test_one_rule_reduction_is_the_reduction(grammar):
    for dead in (frozenset(), frozenset({"W"})):
        got = one_rule_reduction(grammar, dead)
        assert got is not None
        assert got == reduce(grammar, dead)


def test_one_rule_reduction_leaves_other_grammars_to_the_general_path():
    a = RegexTerm("[a-z]+")
    assert one_rule_reduction(Grammar("start", {"start": [("A",)]}, {"A": a}), frozenset({"A"})) is None
    assert one_rule_reduction(Grammar("start", {"start": []}, {"A": a}), frozenset()) is None
    two = Grammar("start", {"start": [("x",)], "x": [("A",)]}, {"A": a})
    assert one_rule_reduction(two, frozenset()) is None


def _follow_reference(compiled):
    """The bytes that may follow each terminal, computed as before for every terminal."""
    grammar = compiled.grammar
    used = compiled.terminal_names
    dfas = compiled.lexer.dfas
    firsts = {t: dfas[i].transitions[0] >= 0 for i, t in enumerate(used)}
    follow = terminal_follow(reduce(grammar), set(used))
    ignore_first = np.zeros(256, dtype=np.bool_)
    for t in grammar.ignore:
        if t in firsts:
            ignore_first |= firsts[t]
    any_first = np.zeros(256, dtype=np.bool_)
    for t in used:
        any_first |= firsts[t]
    out = []
    for t in used:
        if t in grammar.ignore:
            out.append(any_first)
            continue
        fb = ignore_first.copy()
        for u in follow[t]:
            fb |= firsts[u]
        out.append(fb)
    return out


def _array_grammar():
    b = GrammarBuilder()
    num = b.regex(r"0|[1-9][0-9]*")
    ws = b.regex(r"[ \t\n]+")
    b.ignore(ws)
    lb, rb, comma = b.literal("["), b.literal("]"), b.literal(",")
    b.rule("value", [(num,), ("array",)])
    b.rule("items", [("value",), ("items", comma, "value")])
    b.rule("array", [(lb, rb), (lb, "items", rb)])
    return b.build("value")


@pytest.mark.parametrize(
    "spec",
    [Regex("[0-9]{2}-[a-z]+"), _array_grammar(), list(_grammars())[3], list(_grammars())[4]],
)
def test_follow_bytes_as_computed_for_every_terminal(spec):
    compiled = compile(spec, byte_vocab(), cache=False)
    want = _follow_reference(compiled)
    got = compiled.lexer._follow_bytes[: len(want)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


def test_regex_masks_unchanged_by_one_rule_path():
    vocab = byte_vocab()
    m = compile(Regex("[0-9]{4}-(0[1-9]|1[0-2])"), vocab, cache=False).matcher()
    for ch in b"2024-1":
        assert m.advance(vocab.longest_match(bytes([ch]))[0])
    allowed = {vocab.token_bytes(t) for t in m.allowed_token_ids().tolist() if t not in vocab.eos_token_ids}
    assert {b"0", b"1", b"2"} <= allowed
    assert b"3" not in allowed


@pytest.mark.parametrize("case", ["object", "product", "bounded_product"])
def test_large_bounded_strings_are_written_as_far_as_tokens_read(monkeypatch, case):
    # A string of a large maxLength has tens of thousands of lexer rows; they are written
    # a token's reach ahead of the states in use. Every mask, step and acceptance is that
    # of the lexer written whole, along a document that fills the string (multi-byte
    # characters, escapes), by tokens and by one long step, and where the string starts
    # inside a product of terminals (which writes its block whole).
    import json

    from conftest import real_vocab
    from constrain.masking import lexer as lexer_mod

    vocab = real_vocab("qwen2")
    tok_ids = vocab.longest_match
    if case == "object":
        schema = {"type": "object", "properties": {"s": {"type": "string", "maxLength": 3000},
                                                   "n": {"type": "integer"}}, "required": ["s"]}
        value = ("héllo \"wörld\"\n 日本 \\ " * 160)[:3000]
        doc, over = (json.dumps({"s": v, "n": 5}, ensure_ascii=False).encode() for v in (value, value + "x"))
    else:
        if case == "product":  # with a terminal of no bounded length: the block is written whole
            schema = {"type": ["string", "integer"], "maxLength": 3000}
        else:  # with one of at most 302 bytes: as far as a token goes past those
            schema = {"anyOf": [{"type": "string", "maxLength": 3000},
                                {"type": "string", "pattern": "^[a-z]{1,300}$"}]}
        # (both alive for the first 210 characters, past the longest token from the start)
        value = "abcdefghij" * 21 + "ab日\t" * 697 + "xy"
        doc, over = (json.dumps(v, ensure_ascii=False).encode() for v in (value, value + "x"))
    runs = {}
    for windowed in (True, False):
        monkeypatch.setattr(lexer_mod, "WINDOW_FROM_ROWS", 4096 if windowed else 1 << 40)
        g = constrain.compile(schema, vocab, cache=False)
        lexer = g.engine.lexer
        big = [t for t, d in enumerate(lexer.dfas) if d.n_states >= 4096]
        assert big
        if windowed and case != "product":
            (t,) = big
            # written in part (the pattern's 300 characters may be 1,802 bytes of escapes)
            assert lexer._windows[t][0] < lexer.dfas[t].n_states // (4 if case == "object" else 1)
        m = g.matcher()
        masks = [m.mask_words().tobytes()]
        for i in tok_ids(doc):
            assert m.advance(i)
            masks.append(m.mask_words().tobytes())
        masks.append(m.is_accepting())
        m = g.matcher()
        assert m.advance_bytes(doc[:-1])  # past several horizons in one step
        masks += [m.mask_words().tobytes(), m.advance_bytes(doc[-1:]), m.is_accepting()]
        m = g.matcher()
        masks.append(m.advance_bytes(over) and m.is_accepting())
        runs[windowed] = masks
        if case == "object":
            assert all(lexer.dfas[t]._t is None for t in big)  # read over byte classes: no 256-column table
    assert runs[True] == runs[False]
    assert runs[True][-3:] == [True, True, False]  # the document fits; one character more does not


def test_a_dropped_grammar_leaves_no_ir_for_the_collector():
    # The terminal memos keep DFAs under their terminals' text, not the IR objects: what a
    # compile leaves behind is no tracked IR (which every full collection would read); a
    # compiled grammar does not keep it either.
    import gc

    from constrain import _warmup
    from constrain.grammar import ir

    if _warmup._prefetch_thread is not None:
        _warmup._prefetch_thread.join()  # (its warm-up compiles specs of its own meanwhile)
    schema = {"type": "object", "properties": {f"k{i}": {"type": "string", "pattern": f"^x{i}[a-z]+$"}
                                               for i in range(40)},
              "additionalProperties": {"enum": ["a", "b", {"c": 1}]}}
    kinds = (ir.Lit, ir.RegexTerm, ir.Concat, ir.Union_, ir.Intersect, ir.Difference)
    gc.collect()
    before = {id(o) for o in gc.get_objects() if isinstance(o, kinds)}  # (other tests' own)
    g = compile(constrain.JsonSchema(schema), byte_vocab(), cache=False)
    g.matcher().mask_words()
    gc.collect()
    # nor does a live grammar hold its IR (made again from the spec when asked for)
    assert not [o for o in gc.get_objects() if isinstance(o, kinds) and id(o) not in before]
    assert len(g.grammar.terminals) > 40
    del g
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, kinds) and id(o) not in before]
    assert len(rx._TERMINALS) > 40 and all(type(k) is str for k in rx._TERMINALS.keys())


def test_the_parser_tables_leave_the_collector():
    # The parser's tables of many ints are tuples, which the cyclic collector stops
    # tracking at its first pass (sets and lists of ints it reads at every full
    # collection), and dicts of ints to ints, which it never tracks
    import gc

    g = compile(constrain.Lark('''
        start: item ("," item)*
        item: NAME | "[" start? "]" | NAME "=" NUMBER
        NAME: /[a-z]+/
        NUMBER: /[0-9]+/
    '''), byte_vocab(), cache=False)
    m = g.matcher()
    for b in b"a,[b=1,[c]],[],d":
        m.mask_words()
        assert m.advance(b)
    gc.collect()
    gc.collect()  # (a tuple of tuples: untracked once its members are)
    p = g.parser
    tables = [p._next_sym, p._lhs, p._first_dr, *p._first_dr, *p._predictions.values(), *p._group_nts,
              *p._groups, *p._sets, *p._allowed, *p._runs, p._state_terms, p._state_waits, p._group_terms,
              p._group_waits, p._index, p._advance]
    assert len(p._groups) > 1 and len(p._predictions) > 1 and p._state_waits
    assert not [t for t in tables if gc.is_tracked(t)]


def test_the_lexer_keeps_nothing_per_lone_state_for_the_collector():
    # Most lexer states are those of single-terminal blocks, read off arrays: no container
    # the cyclic collector reads grows with them (five lists with an entry per state made
    # a third of a large schema's full collection).
    import gc

    schema = {"type": "object", "properties": {f"key_{i}": {"type": "string", "pattern": f"^v{i}-[a-z]{{2,9}}$"}
                                               for i in range(60)}}
    g = compile(constrain.JsonSchema(schema), byte_vocab(), cache=False)
    m = g.matcher()
    for b in b'{"key_3": "v3-abc", "key_7": "v7-xy"}':
        m.mask_words()
        assert m.advance(b)
    lexer = g.engine.lexer
    assert lexer.n_states > 2000
    sizes = {k: len(v) for k, v in vars(lexer).items() if isinstance(v, (list, dict, set, tuple)) and gc.is_tracked(v)}
    assert max(sizes.values()) < lexer.n_states // 10, sizes


def test_a_compile_leaves_no_reference_cycles():
    # What a compile and its masks make is freed when dropped, by reference counts: a cycle
    # (nested helpers that call each other through their closure cells) would keep the
    # front end's whole state for the cyclic collector, whose pass then stalls a mask of
    # whatever grammar runs next (tens of milliseconds for a large schema's).
    import gc

    from constrain import _warmup

    if _warmup._prefetch_thread is not None:
        _warmup._prefetch_thread.join()
    specs = [
        constrain.JsonSchema({
            "type": "object",
            "properties": {"a": {"enum": [1, 2.5, "x", [1, {"b": 2}]]}, "b": {"type": "integer"},
                           "c": {"$ref": "#"}, "d": {"anyOf": [{"type": "string"}, {"type": "array"}]}},
            "required": ["b"], "additionalProperties": {"const": {"k": [1.0, None]}}, "maxProperties": 6,
        }),
        constrain.JsonSchema({"type": "array", "items": {"type": "object", "properties": {"x": {"type": "number"}}},
                              "uniqueItems": True, "minItems": 1}),
        constrain.Lark('start: "[" NAME ("," NAME)* "]"\nNAME: /[a-z]+/'),
        constrain.Regex("(ab|cd)+[0-9]{2,4}"),
    ]
    text = [b'{"a": [1, {"b": 2}], "b": 1, "z": {"k": [1, null]}}', b'[{"x": 1}, {"x": 2}]', b"[ab,c]", b"abcd12"]
    for spec in specs:  # (first compiles fill the process's own caches and imports)
        compile(spec, byte_vocab(), cache=False)
    gc.collect()
    gc.disable()
    try:
        for spec, data in zip(specs, text):
            g = compile(spec, byte_vocab(), cache=False)
            m = g.matcher()
            for b in data:
                m.mask_words()
                assert m.advance(b)
            assert m.is_accepting()
            del g, m
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        # (lark's grammar loader reads string literals with ast.literal_eval, whose nested
        # helpers make a small cycle per call: not ours, and freed with nothing of ours)
        ours = [o for o in gc.garbage if not (type(o).__name__ == "function" and o.__module__ == "ast")
                and type(o).__name__ not in ("cell", "tuple")]
        assert not ours, sorted({type(o).__qualname__ for o in ours})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
