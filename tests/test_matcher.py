"""Matcher semantics on tiny byte-level vocabularies: masks agree with advance, no dead
ends, EOS exactly when accepting, rollback/fork, forced bytes, budgets."""

import random
import re

import numpy as np
import pytest

import constrain
from constrain import Regex, compile
from constrain.grammar.ir import GrammarBuilder
from conftest import byte_vocab

EXTRA = [b"ab", b"abc", b"12", b"1,", b", ", b'"a', b'a"', b'"]', b"],", b"],[", b"[1", b'"a b"', b"  ", b"\n\n"]
# Tokens that cross an ignored lexeme into the next one.
EXTRA += [b" 1", b" [", b"[ ", b", [", b' "a', b"\n]", b" ]"]


def allowed(m):
    return set(m.allowed_token_ids().tolist())


def array_grammar():
    b = GrammarBuilder()
    num = b.regex(r"0|[1-9][0-9]*")
    st = b.regex(r'"[a-z ]*"')
    ws = b.regex(r"[ \t\n]+")
    b.ignore(ws)
    lb, rb, comma = b.literal("["), b.literal("]"), b.literal(",")
    b.rule("value", [(num,), (st,), ("array",)])
    b.rule("items", [("value",), ("items", comma, "value")])
    b.rule("array", [(lb, rb), (lb, "items", rb)])
    return b.build("value")


def reference_array(text: str) -> bool:
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return False

    def ok(x):
        if isinstance(x, bool):
            return False
        if isinstance(x, int):
            return True
        if isinstance(x, str):
            return all(c.islower() and c.isascii() or c == " " for c in x)
        if isinstance(x, list):
            return all(ok(y) for y in x)
        return False

    if "-" in text or "\r" in text:  # JSON allows them; this grammar does not
        return False
    return ok(value)


@pytest.fixture(scope="module")
def vocab():
    return byte_vocab(EXTRA)


@pytest.fixture(scope="module")
def grammar(vocab):
    return compile(array_grammar(), vocab)


def test_known_strings(grammar, vocab):
    for text, want in [
        ("[1,2,[3, \"ab\"]]", True),
        ("[1,,2]", False),
        ("[]", True),
        ("[[[]]]", True),
        ("12", True),
        ('"a b"', True),
        ("[1 2]", False),
        ("[ 1 , 2 ]", True),
        (" [1]", True),
        ("[1]   ", True),
        ("[", False),
        ("]", False),
    ]:
        m = grammar.matcher()
        ok = all(m.advance(b) for b in text.encode())
        assert (ok and m.is_accepting()) == want, text


def _random_text(rng):
    alphabet = list('[]," ab12\n') + ["[1", "],", '"a', "  "]
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def test_random_strings_against_reference(grammar, vocab):
    rng = random.Random(1)
    tok = {vocab.token_bytes(i): i for i in range(vocab.size)}
    for _ in range(1500):
        text = _random_text(rng)
        data = text.encode()
        # Tokenize randomly: multi-byte tokens wherever they fit.
        ids, i = [], 0
        while i < len(data):
            choices = [t for t in EXTRA if data.startswith(t, i)]
            piece = rng.choice(choices) if choices and rng.random() < 0.7 else data[i : i + 1]
            ids.append(tok[piece])
            i += len(piece)
        m = grammar.matcher()
        ok = True
        for t in ids:
            bit = t in allowed(m)
            adv = m.advance(t)
            assert bit == adv
            if not adv:
                ok = False
                break
        assert (ok and m.is_accepting()) == reference_array(text), text


def test_mask_agrees_with_advance_on_every_token(grammar, vocab):
    rng = random.Random(5)
    for _ in range(40):
        m = grammar.matcher()
        for _ in range(rng.randint(0, 12)):
            mask = allowed(m)
            for t in range(vocab.size):
                assert (t in mask) == m.is_token_allowed(t), (vocab.token_bytes(t), m.state)
            if not mask or m.is_accepting() and rng.random() < 0.2:
                break
            t = rng.choice(sorted(mask))
            if t in vocab.eos_token_ids:
                break
            m.advance(t)


def test_masks_never_lead_to_dead_ends(grammar, vocab):
    rng = random.Random(2)
    for _ in range(60):
        m = grammar.matcher()
        for _ in range(rng.randint(1, 25)):
            choices = sorted(allowed(m))
            assert choices, "a live matcher always allows something"
            t = rng.choice(choices)
            assert m.advance(t)
            if m.is_terminated():
                break
            # A completion exists: the planner finds a finite one.
            assert grammar.planner.min_tokens(m.state) < 1 << 30


def test_eos_exactly_when_accepting(grammar, vocab):
    eos = vocab.eos_token_ids[0]
    m = grammar.matcher()
    assert eos not in allowed(m) and not m.advance(eos)
    for b in b"[1":
        m.advance(b)
    assert eos not in allowed(m)
    m.advance(ord("]"))
    assert m.is_accepting() and eos in allowed(m)
    assert m.advance(eos) and m.is_terminated()
    assert allowed(m) == set() and not m.advance(ord(" "))
    m.rollback(1)
    assert not m.is_terminated() and m.is_accepting()


def test_rollback_and_fork(grammar):
    m = grammar.matcher()
    states = [m.state]
    for b in b"[12, [":
        assert m.advance(b)
        states.append(m.state)
    f = m.fork()
    m.rollback(3)
    assert m.state == states[-4]
    assert f.state == states[-1]
    assert f.advance(ord("]")) and not m.is_terminated()
    with pytest.raises(constrain.MatcherError):
        m.rollback(100)
    m.reset()
    assert m.state == states[0]


def test_forced_bytes(vocab):
    g = compile(Regex(r"hello (world|there)!"), vocab)
    m = g.matcher()
    assert m.forced_bytes() == b"hello "
    for b in b"hello t":
        m.advance(b)
    assert m.forced_bytes() == b"here!"
    toks = m.forced_tokens()
    assert vocab.decode_bytes(toks) == b"here!"[: len(vocab.decode_bytes(toks))]


def test_bitmask_layout_and_fill(grammar, vocab):
    m = grammar.matcher()
    bm = constrain.allocate_bitmask(2, vocab.size)
    assert bm.shape == (2, (vocab.size + 31) // 32) and bm.dtype == np.int32
    m.fill_bitmask(bm, 1)
    want = allowed(m)
    got = {t for t in range(vocab.size) if (int(bm[1, t // 32]) >> (t % 32)) & 1}
    assert got == want
    import torch

    tb = torch.from_numpy(constrain.allocate_bitmask(1, vocab.size))
    m.fill_bitmask(tb, 0)
    assert np.array_equal(tb.numpy()[0], bm[1])
    with pytest.raises(ValueError):
        m.fill_bitmask(np.zeros((1, 3), dtype=np.int32), 0)
    with pytest.raises(ValueError):
        m.fill_bitmask(np.zeros((1, bm.shape[1]), dtype=np.int64), 0)
    logits = torch.zeros(2, vocab.size + 7)
    constrain.apply_bitmask(logits, bm)
    finite = set(torch.nonzero(torch.isfinite(logits[1])).flatten().tolist())
    assert finite == want  # padded ids past the vocabulary are never allowed


def test_padded_ids_and_specials_never_allowed():
    toks = [bytes([i]) for i in range(256)] + [b"<|special|>", b"<eos>"]
    v = constrain.Vocabulary(toks, special=[256, 257], eos_token_ids=[257], model_vocab_size=300)
    g = compile(Regex(r"<\|special\|>|x"), v)
    m = g.matcher()
    ids = set(m.allowed_token_ids().tolist())
    assert ids == {ord("<"), ord("x")}
    assert not m.advance(256) and not m.advance(299)


@pytest.mark.parametrize("budget", [3, 4, 5, 8, 13, 21])
def test_budget_always_finishes(grammar, vocab, budget):
    rng = random.Random(budget)
    for _ in range(25):
        m = grammar.matcher(max_tokens=budget)
        out = []
        while not m.is_terminated():
            choices = sorted(allowed(m))
            assert choices, (budget, out)
            t = rng.choice(choices)
            assert m.advance(t)
            out.append(t)
        assert len(out) <= budget
        assert reference_array(vocab.decode_bytes(out[:-1]).decode())


def test_budget_too_small_is_an_error(vocab):
    g = compile(Regex(r"abcdefghij"), vocab)
    with pytest.raises(constrain.UnsatisfiableError):
        g.matcher(max_tokens=3)
    g.matcher(max_tokens=11)


def test_budget_counts_the_fewest_tokens_not_the_longest_match():
    # "abcd": longest match spells ab|c|d (3 tokens), the fewest tokens are a|bcd (2)
    v = byte_vocab([b"ab", b"bcd"])
    assert [v.token_bytes(t) for t in v.longest_match(b"abcd")] == [b"ab", b"c", b"d"]
    assert [v.token_bytes(t) for t in v.fewest_tokens(b"abcd")] == [b"a", b"bcd"]
    assert v.fewest_tokens(b"") == [] and byte_vocab().fewest_tokens("é".encode()) is not None
    g = compile(Regex("abcd|abcdabcd"), v)
    assert g.min_tokens() == 2
    for budget in (3, 4, 5, 6):  # EOS included; every path the masks allow ends in time
        for _ in range(20):
            m = g.matcher(max_tokens=budget)
            out = []
            while not m.is_terminated():
                t = random.choice(sorted(allowed(m)))
                assert m.advance(t)
                out.append(t)
            assert len(out) <= budget
            assert v.decode_bytes(out[:-1]) in (b"abcd", b"abcdabcd")
    with pytest.raises(constrain.UnsatisfiableError):
        g.matcher(max_tokens=2)
    assert constrain.Vocabulary([b"a", b"<eos>"], eos_token_ids=[1]).fewest_tokens(b"ab") is None


def test_budget_of_a_literal_the_model_spelt_in_fewer_tokens(smollm2_vocab):
    # 24 tokens a model wrote (cut by its max_tokens); a longest-match spelling takes 25
    v = smollm2_vocab
    ids = [30904, 24583, 28, 16718, 283, 23, 81, 556, 430, 275, 45720, 10117, 30, 11948, 24583, 28, 16718, 283,
           23, 81, 556, 430, 1599, 10905]
    text = v.decode_bytes(ids).decode()
    assert len(v.longest_match(text.encode())) == 25
    g = compile(Regex(re.escape(text)), v)
    assert g.min_tokens() == 24
    m = g.matcher(max_tokens=25)
    assert all(m.advance(i) for i in ids) and m.is_accepting()


def test_unsatisfiable_and_bad_specs(vocab):
    with pytest.raises(constrain.SpecError):
        compile(Regex(r"a(?=b)"), vocab)
    with pytest.raises(constrain.UnsatisfiableError):
        compile(Regex(r"[^\x00-\U0010ffff]"), vocab)
    with pytest.raises(constrain.SpecError):
        compile(object(), vocab)


def test_empty_matching_regex(vocab):
    g = compile(Regex(r"a*"), vocab)
    m = g.matcher()
    assert m.is_accepting()
    assert m.advance(ord("a")) and m.advance(ord("a")) and m.is_accepting()


def test_left_recursion_and_ambiguity(vocab):
    b = GrammarBuilder()
    a = b.literal("a")
    plus = b.literal("+")
    b.rule("e", [("e", plus, "e"), ("e", "e"), (a,)])  # ambiguous and left-recursive
    g = compile(b.build("e"), vocab)
    for text, want in [("a", True), ("a+a+a", True), ("aa+a", True), ("+a", False), ("a++a", False), ("a+", False)]:
        m = g.matcher()
        ok = all(m.advance(c) for c in text.encode())
        assert (ok and m.is_accepting()) == want, text
    m = g.matcher()
    for c in b"a+" * 200:
        assert m.advance(c)
    assert g.parser.n_states < 2000  # interned sets stay linear


def test_token_crossing_three_terminals():
    v = byte_vocab([b'"},[', b"},"])
    b = GrammarBuilder()
    q, rbrace, comma, lb = b.literal('"'), b.literal("}"), b.literal(","), b.literal("[")
    b.rule("s", [(q, rbrace, comma, lb)])
    g = compile(b.build("s"), v)
    m = g.matcher()
    tid = v.size - 3  # '"},['
    assert v.token_bytes(tid) == b'"},['
    assert tid in set(m.allowed_token_ids().tolist())
    assert m.advance(tid) and m.is_accepting()


def test_mask_work_limit_is_a_clear_error():
    v = byte_vocab([b"selectfrom", b"selectx", b"fromy"])
    g = compile(constrain.Lark('start: "select"i NAME "from"i NAME\nNAME: /[a-z]+/\n%ignore " "\n'), v, cache=False)
    g.engine.max_walks_per_mask = 1
    m = g.matcher()
    with pytest.raises(constrain.CompileLimitError, match="mask limit"):
        for b in b"select":
            m.advance(b)
            m.mask_words()


def test_shared_walks_respect_what_follows_a_terminal(monkeypatch):
    # Both grammars lex NUM with the same DFA; only the byte after it differs. Walks
    # shared across grammars must not carry one grammar's lexeme boundaries to the other.
    from constrain.masking import masks

    monkeypatch.setattr(masks, "_SHARE_MIN_NS", 0)  # share every walk, however quick
    multi = (b"1y", b"12y")  # no token goes on from a number with "x"
    v = byte_vocab(multi)
    ids = {v.token_bytes(i): i for i in range(v.size)}
    for follower in ("x", "y"):
        g = constrain.compile(constrain.Lark(f'start: NUM "{follower}"\nNUM: /[0-9]+/\n'), v, cache=False)
        words = g.matcher().mask_words()
        allowed = {t for t in multi if (int(words[ids[t] >> 5]) >> (ids[t] & 31)) & 1}
        assert allowed == {t for t in multi if t.endswith(follower.encode())}


def test_walks_are_shared_without_keying_large_dfas(monkeypatch):
    # Grammars that share a small terminal share its walks; a terminal of many DFA states
    # (a string of at most 4,096 characters: about 80,000) is not hashed to name it, and
    # its walks are not shared. The masks are those of an unshared compile all the same.
    from constrain.masking import masks

    monkeypatch.setattr(masks, "_SHARE_MIN_NS", 0)  # share every walk, however quick
    v = byte_vocab([b'"ab', b'b"', b'"}', b'12'])
    small = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    large = {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string", "maxLength": 4096}},
             "required": ["n", "s"], "additionalProperties": False}
    doc = b'{"n": 12, "s": "abb"}'

    def walk(schema, share):
        monkeypatch.setattr(masks, "_SHARE_MIN_NS", 0 if share else 1 << 62)
        masks._SHARED_WALKS.clear()
        masks._SYNTAX_WALKS.clear()
        g = constrain.compile(schema, v, cache=False)
        m = g.matcher()
        out = []
        for b in doc:
            out.append(m.mask_words().tobytes())
            if not m.advance(b):
                break
        return g, out

    _, want = walk(large, share=False)
    masks._SHARED_WALKS.clear()
    masks._SYNTAX_WALKS.clear()
    monkeypatch.setattr(masks, "_SHARE_MIN_NS", 0)
    constrain.compile(small, v, cache=False).matcher().mask_words()  # shares its root walk
    assert len(masks._SHARED_WALKS) + len(masks._SYNTAX_WALKS) > 0
    g = constrain.compile(large, v, cache=False)
    m = g.matcher()
    got = []
    for b in doc:
        got.append(m.mask_words().tobytes())
        assert m.advance(b)
    assert got == want[:len(got)]
    lexer = g.engine.lexer
    big = [t for t, d in enumerate(lexer.dfas) if d.n_states > 50_000]
    assert big and all(lexer.dfas[t]._key is None for t in big)  # never hashed


def test_lookups_by_name_find_product_states_without_naming_others(monkeypatch):
    # A shared walk is looked up by state names: find() reaches a product state through
    # its members (no other state is named for it), and walks shared that way give the
    # masks of walks made afresh.
    from constrain.masking import masks

    v = byte_vocab([b'"ab', b'"a', b'b"', b'": ', b'", "'])
    schema = {"type": "object", "properties": {k: {"type": "string"} for k in ("ab", "abc", "abd", "b")},
              "additionalProperties": {"type": "integer"}}
    doc = b'{"ab": "y", "abd": "x", "zz": 1}'

    def walk(share):
        monkeypatch.setattr(masks, "_SHARE_MIN_NS", 0 if share else 1 << 62)
        masks._SHARED_WALKS.clear()
        masks._SYNTAX_WALKS.clear()
        g = constrain.compile(schema, v, cache=False)
        out = []
        for _ in range(2):  # the second walk finds the first one's shared walks
            m = g.matcher()
            for b in doc:
                out.append(m.mask_words().tobytes())
                assert m.advance(b)
        return g.engine.lexer, out

    _, want = walk(False)
    named, got = walk(True)
    assert got == want
    products = [sid for sid in range(named.n_states)
                if named.lone_terminal(sid) < 0 and not named.is_lexeme_start(sid)]
    assert products
    for sid in products:
        assert named.find(named.name(sid)) == sid
    starts = [sid for sid in range(named.n_states) if named.is_lexeme_start(sid)]
    assert starts and all(named.find(named.name(sid)) == sid for sid in starts)
    # in another lexer of the grammar (fewer states made): the state of that name, or none
    fresh = constrain.compile(schema, v, cache=False).engine.lexer
    found = [fresh.find(named.name(sid)) for sid in products]
    assert not fresh.canon  # nothing named
    assert any(f >= 0 for f in found)
    assert all(fresh.name(f) == named.name(sid) for f, sid in zip(found, products) if f >= 0)


def test_product_rows_are_their_members_steps():
    # A product state's row, read one byte per class of bytes its members' blocks do not
    # tell apart, is on every byte the state of the members' own steps (none: -1).
    schema = {"anyOf": [
        {"type": "object", "properties": {k: {"type": "integer"} for k in keys},
         "patternProperties": {"^x[a-f0-9]{2,}$": {"type": "string"}}, "additionalProperties": {"type": "boolean"}}
        for keys in (("alpha", "beta"), ("alps", "gamma", "b\u00e9ta"), ("a", "al", "delta"), ("zeta", "\t"))]}
    g = constrain.compile(schema, byte_vocab(), cache=False)
    for doc in (b'{"alpine": true, "x0f": "s"}', b'{"gamma": 1, "al": true}', b'{"be": false}'):
        m = g.matcher()
        for b in doc:
            m.mask_words()
            assert m.advance(b)
    lexer = g.engine.lexer
    products = [sid for sid in range(lexer.n_states) if len(lexer.members(sid)) > 1]
    assert len(products) > 20
    for sid in products:
        members = lexer.members(sid)
        for b in range(256):
            want = sorted((t, int(lexer.dfas[t].transitions[k, b])) for t, k in members
                          if lexer.dfas[t].transitions[k, b] >= 0)
            got = int(lexer.trans[sid, b])
            if not want:
                assert got == -1
            elif got >= 0:
                assert sorted(lexer.members(got)) == want
            else:  # (only where the byte is excluded at a lexeme start)
                assert lexer.is_lexeme_start(sid) and b in lexer.excluded(sid)


def test_equal_masks_are_kept_once_and_bounded():
    v = byte_vocab([b'"a', b'", "', b'": "', b'"}'])
    schema = {"type": "object", "properties": {k: {"type": "string"} for k in "abcdef"}}
    doc = b'{"a": "x", "b": "yy", "c": "z", "d": "", "e": "w", "f": "v"}'

    def masks(g):
        m = g.matcher()
        out = []
        for b in doc:
            out.append(m.mask_words())
            assert m.advance(b)
        return out

    plain = masks(constrain.compile(schema, v, cache=False))
    ids = {id(w) for w in plain}
    distinct = {w.tobytes() for w in plain}
    assert len(ids) == len(distinct) < len(plain)  # one array per distinct mask
    assert all(not w.flags.writeable for w in plain)
    g = constrain.compile(schema, v, cache=False)
    g.engine.max_distinct_masks = 3
    m = g.matcher()
    for k, b in enumerate(doc):
        assert m.mask_words().tobytes() == plain[k].tobytes()
        assert m.advance(b)
        assert len(g.engine._mask_store) <= 3  # only the engine holds masks here


def test_fill_bitmasks_matches_row_by_row_fill():
    import torch

    v = byte_vocab([b"ab", b"abc", b"12", b"x1"])
    g = constrain.compile(Regex("(ab|x)[0-9]{1,3}c?"), v)
    other = constrain.compile(Regex("[a-z]+"), v)
    ms = [g.matcher() for _ in range(4)] + [other.matcher(), None]
    ms[1].advance(v.size - 5)  # "ab"
    ms[2].advance(v.size - 5)  # same state as row 1: one mask read for both
    ms[3].advance(ord("x"))
    ms[3].advance(ord("1"))
    for batch in (np.zeros((6, v.bitmask_words), np.int32), torch.zeros((6, v.bitmask_words + 2), dtype=torch.int32)):
        batch[5] = 7  # a None row is left alone
        constrain.fill_bitmasks(ms, batch)
        for i, m in enumerate(ms[:5]):
            one = np.zeros((1, v.bitmask_words), np.int32)
            m.fill_bitmask(one, 0)
            assert np.array_equal(np.asarray(batch[i])[: v.bitmask_words], one[0]), i
        assert (np.asarray(batch[5]) == 7).all()
    with pytest.raises(ValueError, match="rows"):
        constrain.fill_bitmasks(ms, np.zeros((3, v.bitmask_words), np.int32))


def test_lexer_names_made_late_equal_names_made_early():
    from conftest import real_vocab

    vocab = real_vocab("qwen2")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string", "maxLength": 5}}}
    doc = b'{"a": 12, "b": "xy"}'
    late = constrain.compile(schema, vocab, cache=False)
    early = constrain.compile(schema, vocab, cache=False)
    early.lexer._ensure_names()
    for g in (late, early):
        m = g.matcher()
        for b in doc:
            m.mask_words()
            assert m.advance_bytes(bytes([b]))
    late.lexer._ensure_names()

    def names(lexer):
        out = {}
        for sid in range(lexer.n_states):
            key = (lexer.members(sid), lexer.is_lexeme_start(sid), lexer.excluded(sid))
            out[key] = lexer.name(sid)
            if lexer.lone_terminal(sid) < 0:  # a product state: found by its name
                assert lexer.find(lexer.name(sid)) in (sid, -1)
        return out

    a, b = names(late.lexer), names(early.lexer)
    common = set(a) & set(b)
    assert len(common) > 50
    assert all(a[k] == b[k] for k in common)


def test_small_regex_needs_no_names_or_keys(monkeypatch):
    # quick walks are not shared, so nothing asks for the names that sharing uses
    from conftest import real_vocab
    from constrain._caches import Cache
    from constrain.masking import masks

    monkeypatch.setattr(masks, "_SHARE_MIN_NS", 10**9)  # no walk counts as slow here
    monkeypatch.setattr(masks, "_SHARED_WALKS", Cache("test.shared_walks", 16, "unregistered"))
    g = constrain.compile(constrain.Regex("[0-9]{4}-[0-9]{2}"), real_vocab("qwen2"), cache=False)
    g.matcher().mask_words()
    assert not g.lexer._named and g.lexer.dfas[0]._key is None
    assert len(g.lexer.dfas[0].key) == 64  # made on demand


def test_walks_of_syntax_states_outlive_clear_caches(monkeypatch):
    # A lexer state made only of syntax terminals (a JSON string's body, with the bytes
    # that may follow it) walks the vocabulary the same way for any spec: its walk is
    # kept when the caches of specs are cleared, and found again by the next grammar;
    # a state of a spec's own terminal (a pattern) is not kept. Masks are unchanged.
    from constrain import _caches
    from constrain._caches import Cache
    from constrain.masking import masks

    assert _caches.registry()["masking.syntax_walks"].spec_free  # what clear_caches keeps
    assert not _caches.registry()["masking.shared_walks"].spec_free
    monkeypatch.setattr(masks, "_SHARE_MIN_NS", 0)  # share every walk, however quick
    monkeypatch.setattr(masks, "_SYNTAX_WALKS", Cache("test.syntax_walks", 64, "unregistered", spec_free=True))
    v = byte_vocab([b'"ab', b'b"', b'"}', b'12', b'", "'])
    schema = {"type": "object", "properties": {"s": {"type": "string"}, "p": {"type": "string", "pattern": "^[ab]+$"}},
              "required": ["s", "p"], "additionalProperties": False}
    doc = b'{"s": "b12a", "p": "abba"}'
    walks = []
    real_walk = masks.walk_mask

    def counted(*args):
        walks.append(args[6])
        return real_walk(*args)

    monkeypatch.setattr(masks, "walk_mask", counted)

    def run():
        constrain.clear_caches()
        g = constrain.compile(schema, v, cache=False)
        m = g.matcher()
        out = []
        for b in doc:
            out.append(m.mask_words().tobytes())
            assert m.advance(b)
        return g, out

    first, want = run()
    kept = list(masks._SYNTAX_WALKS.data)
    assert kept and all(masks._of_syntax(name) for _, name in kept)
    lexer = first.engine.lexer
    # the pattern's string (it takes "ab", not "b12a") is no syntax terminal; the plain one is
    kinds = {lexer.dfas[lexer.lone_terminal(c)].accepts(b'"b12a"'): masks._of_syntax(lexer.name(c))
             for c in set(walks) if lexer.lone_terminal(c) >= 0 and lexer.dfas[lexer.lone_terminal(c)].accepts(b'"ab"')}
    assert kinds == {True: True, False: False}
    n_first = len(walks)
    walks.clear()
    constrain.clear_caches()
    assert not masks._SHARED_WALKS and list(masks._SYNTAX_WALKS.data) == kept  # the spec's walks gone
    second, got = run()
    assert got == want
    assert 0 < len(walks) < n_first  # the pattern's states walked again, the string body not
    assert not any(masks._of_syntax(second.engine.lexer.name(c)) for c in walks if second.engine.lexer.nameable(c))
    # and the same masks as a compile that shares nothing
    monkeypatch.setattr(masks, "_SHARE_MIN_NS", 1 << 62)
    masks._SYNTAX_WALKS.clear()
    _, alone = run()
    assert alone == want
