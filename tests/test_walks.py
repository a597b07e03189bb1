"""Walk shortcuts against plain walks: a walk patched from another state's walk, and a
walk shared between states that behave alike for a token's length, must give exactly
the tokens and lexeme boundaries a plain walk gives."""

import json
import random

import numpy as np
import pytest

import constrain
from constrain.masking import masks as masks_mod
from constrain.bitmask import bits_from_ids
from constrain.masking.walk import alike_depth, same_within, walk_alloc, walk_patch, walk_sliced
from conftest import real_tokenizer, real_vocab

KEYS = ["name", "names", "nickname", "age", "agent", "address", "addr", "tags", "tag_ids", "a"]
SCHEMAS = {
    # Keys outside the declared ones are allowed: the key terminal is "a string that is
    # not one of the declared names", whose states differ along those names only.
    "open_object": {"type": "object", "properties": {k: {"type": "integer"} for k in KEYS}},
    # A bounded string: hundreds of states told apart only near the bound.
    "max_length": {"type": "object", "properties": {"s": {"type": "string", "maxLength": 300}},
                   "required": ["s"], "additionalProperties": False},
    "pattern": {"type": "string", "pattern": "^[a-z]{2,40}(-[0-9]{1,3}){0,3}$"},
    # Bounded below a token's length: states alike only for their first bytes.
    "short_max_length": {"type": "string", "minLength": 3, "maxLength": 60},
}


def _plain(engine, c):
    vocab = engine.vocab
    lexer = engine.lexer
    idx, _, ev_lo, ev_hi, ev_depth, ev_state = walk_alloc(
        lexer.trans, lexer.accept, lexer.follow, vocab.trie, 0, len(vocab.trie_ids), 0, c,
        vocab.max_token_length, engine._scratch(),
    )
    return bits_from_ids(vocab.bitmask_words, idx, vocab.trie_ids), (ev_lo, ev_hi, ev_depth, ev_state)


def _lone_blocks(engine):
    lexer = engine.lexer
    lexer.materialize()  # (every state walked from, not only those documents reach)
    for t, dfa in enumerate(lexer.dfas):
        if dfa.n_states >= 16:
            yield t, lexer._single_block(t), dfa


@pytest.mark.parametrize("vocab_name", ["qwen2", "smollm2"])
@pytest.mark.parametrize("schema", sorted(SCHEMAS))
def test_patched_walks_equal_plain_walks(vocab_name, schema):
    vocab = real_vocab(vocab_name)
    engine = constrain.compile(constrain.JsonSchema(SCHEMAS[schema]), vocab, cache=False).engine
    lexer = engine.lexer
    rng = random.Random(7)
    checked = 0
    for t, base, dfa in _lone_blocks(engine):
        states = list(range(base, base + dfa.n_states))
        for _ in range(12):
            q, r = rng.choice(states), rng.choice(states)
            want_words, want_ev = _plain(engine, q)
            r_words, r_ev = _plain(engine, r)
            ok, words, *ev = walk_patch(
                lexer.trans, lexer.accept, lexer.follow, vocab.trie, vocab.trie_ids, q, r, r_words, *r_ev,
                vocab.max_token_length, 2 * len(vocab.trie.nodes.byte) + 2, np.empty(0, np.int32), 0, engine._scratch(),
            )
            assert ok
            assert np.array_equal(words, want_words), (schema, q, r)
            assert sorted(zip(*(a.tolist() for a in ev))) == sorted(zip(*(a.tolist() for a in want_ev)))
            checked += 1
    assert checked


@pytest.mark.parametrize("schema", ["max_length", "pattern"])
def test_states_alike_within_a_token_walk_alike(schema):
    vocab = real_vocab("qwen2")
    engine = constrain.compile(constrain.JsonSchema(SCHEMAS[schema]), vocab, cache=False).engine
    lexer = engine.lexer
    alike = 0
    for t, base, dfa in _lone_blocks(engine):
        reps = dfa.class_bytes()
        n = dfa.n_states
        for a in range(0, n, max(1, n // 25)):
            found = 0
            for b in range(a + 1, min(n, a + 60)):
                if found == 2 or not same_within(
                    dfa.transitions, dfa.accepting, reps, a, b, vocab.max_token_length + 1, 8192
                ):
                    continue
                found += 1
                alike += 1
                wa, (lo_a, hi_a, d_a, s_a) = _plain(engine, base + a)
                wb, (lo_b, hi_b, d_b, s_b) = _plain(engine, base + b)
                assert np.array_equal(wa, wb)
                got_a = sorted(zip(lo_a.tolist(), hi_a.tolist(), d_a.tolist(), (lexer.completes(s) for s in s_a.tolist())))
                got_b = sorted(zip(lo_b.tolist(), hi_b.tolist(), d_b.tolist(), (lexer.completes(s) for s in s_b.tolist())))
                assert got_a == got_b
    if schema == "max_length":
        assert alike > 10  # most of the bounded string's states are far from the bound


def _events_by_terminal(lexer, ev):
    lo, hi, d, st = (a.tolist() for a in ev)
    return sorted(zip(lo, hi, d, (lexer.completes(s) for s in st)))


@pytest.mark.parametrize("vocab_name", ["qwen2", "smollm2"])
@pytest.mark.parametrize("schema", ["max_length", "short_max_length", "pattern"])
def test_sliced_walks_equal_plain_walks(vocab_name, schema):
    """States alike for their first ``cut`` bytes: the walk of one, redone for the
    tokens longer than ``cut``, is the walk of the other."""
    vocab = real_vocab(vocab_name)
    engine = constrain.compile(constrain.JsonSchema(SCHEMAS[schema]), vocab, cache=False).engine
    lexer = engine.lexer
    full = vocab.max_token_length + 1
    rng = random.Random(3)
    checked = 0
    for t, base, dfa in _lone_blocks(engine):
        reps = dfa.class_bytes()
        for _ in range(40):
            a, b = rng.randrange(dfa.n_states), rng.randrange(dfa.n_states)
            d = alike_depth(dfa.transitions, dfa.accepting, reps, a, b, full, 8192)
            assert (d >= full) == same_within(dfa.transitions, dfa.accepting, reps, a, b, full, 8192)
            cuts = [c for c in (2, 5, 8, 12, 16, 24, 32) if c <= d]
            if not cuts:
                continue
            want_words, want_ev = _plain(engine, base + a)
            r_words, r_ev = _plain(engine, base + b)
            for cut in cuts:
                nodes, long_words, n_long = vocab.trie_longer(cut)
                words, *ev = walk_sliced(
                    lexer.trans, lexer.accept, lexer.follow, nodes, long_words, n_long, vocab.trie_ids, base + a,
                    cut, r_words, *r_ev, vocab.max_token_length, engine._scratch(),
                )
                assert np.array_equal(words, want_words), (schema, a, b, cut)
                assert _events_by_terminal(lexer, ev) == _events_by_terminal(lexer, want_ev), (schema, a, b, cut)
                checked += 1
    assert checked


@pytest.mark.parametrize("vocab_name", ["qwen2", "smollm2"])
def test_walks_patched_from_a_reference_terminal(vocab_name):
    """A key that is not one of the declared names, walked from the walk of any string."""
    vocab = real_vocab(vocab_name)
    engine = constrain.compile(constrain.JsonSchema(SCHEMAS["open_object"]), vocab, cache=False).engine
    lexer = engine.lexer
    refs = [(t, lexer.reference(t)) for t in range(len(lexer.dfas)) if lexer.reference(t) is not None]
    assert refs
    checked = 0
    for t, (ref_base, eq, pair_of) in refs:
        base = lexer.single_base(t)
        assert (eq >= 0).sum() >= lexer.dfas[lexer.lone_terminal(ref_base)].n_states // 2
        for k in range(lexer.dfas[t].n_states):
            if pair_of[k] < 0:
                continue
            want_words, want_ev = _plain(engine, base + k)
            r = ref_base + int(pair_of[k])
            r_words, r_ev = _plain(engine, r)
            ok, words, *ev = walk_patch(
                lexer.trans, lexer.accept, lexer.follow, vocab.trie, vocab.trie_ids, base + k, r, r_words, *r_ev,
                vocab.max_token_length, 2 * len(vocab.trie.nodes.byte) + 2, eq, ref_base, engine._scratch(),
            )
            assert ok
            assert np.array_equal(words, want_words), k
            assert sorted(zip(*(a.tolist() for a in ev))) == sorted(zip(*(a.tolist() for a in want_ev))), k
            checked += 1
    assert checked > 5


def test_walks_with_work_buffers_too_small_or_reused():
    vocab = real_vocab("qwen2")
    engine = constrain.compile(constrain.JsonSchema(SCHEMAS["open_object"]), vocab, cache=False).engine
    lexer = engine.lexer
    tiny = tuple(np.empty(1, np.int32) for _ in range(6))
    states = range(0, min(lexer.n_states, 40), 3)
    want = [_plain(engine, c) for c in states]
    for c, (words, ev) in zip(states, want):
        idx, _, *ev2 = walk_alloc(
            lexer.trans, lexer.accept, lexer.follow, vocab.trie, 0, len(vocab.trie_ids), 0, c,
            vocab.max_token_length, tiny,
        )
        assert np.array_equal(bits_from_ids(vocab.bitmask_words, idx, vocab.trie_ids), words)
        assert all(np.array_equal(a, b) for a, b in zip(ev, ev2))
    # results are copies: later walks through the same buffers leave them as they were
    assert all(np.array_equal(a[0], _plain(engine, c)[0]) for c, a in zip(states, want))


def test_longer_token_tries():
    vocab = real_vocab("qwen2")
    lengths = np.diff(vocab.trie_offsets)
    for cut in (0, 4, 16):
        (byte, depth, skip, token, count, lo, hi), words, n_long = vocab.trie_longer(cut)
        assert n_long == int((lengths > cut).sum())
        ends = token >= 0
        assert (depth[ends] > cut).all() and int(count[ends].sum()) == n_long
        want = bits_from_ids(vocab.bitmask_words, np.nonzero(lengths > cut)[0].astype(np.int32), vocab.trie_ids)
        assert np.array_equal(words, want)
        assert (skip > np.arange(len(skip))).all() and skip[-1] == len(skip)
    full = vocab.trie_longer(0)[0]
    assert all(np.array_equal(x, y) for x, y in zip(full, vocab.trie.nodes))


def test_masks_with_shortcuts_equal_masks_without(monkeypatch):
    """Whole masks along real documents, with and without the walk shortcuts."""

    vocab = real_vocab("qwen2")
    tok = real_tokenizer("qwen2")
    docs = {
        "open_object": [{"name": 1, "nickname": 2, "agent": 3, "tag_ids": 2, "extra_key": 1}],
        "max_length": [{"s": "lorem ipsum dolor sit amet " * 10}],
        "short_max_length": ["lorem ipsum dolor sit amet, consectetur adipiscing"],
    }
    real_alike = masks_mod.MaskEngine._alike_walk
    real_sliced = masks_mod.walk_sliced
    for schema, instances in docs.items():
        used = []
        sliced = []

        def counting_sliced(*args):
            sliced.append(args[8])
            return real_sliced(*args)

        monkeypatch.setattr(masks_mod, "walk_sliced", counting_sliced)

        def counting(self, *args):
            got = real_alike(self, *args)
            used.append(got is not None)
            return got

        for shortcuts in (True, False):
            monkeypatch.setattr(
                masks_mod.MaskEngine, "_alike_walk", counting if shortcuts else (lambda self, *a: None)
            )
            g = constrain.compile(constrain.JsonSchema(SCHEMAS[schema]), vocab, cache=False)
            seq = []
            for inst in instances:
                m = g.matcher()
                for t in tok.encode(json.dumps(inst), add_special_tokens=False):
                    seq.append(m.mask_words().copy())
                    assert m.advance(t)
            if shortcuts:
                with_shortcuts = seq
                assert any(used), schema  # the shortcuts did stand in for some walks
                if schema == "short_max_length":
                    assert sliced, schema
            else:
                assert len(seq) == len(with_shortcuts)
                assert all(np.array_equal(a, b) for a, b in zip(with_shortcuts, seq))
        monkeypatch.undo()


def _masks_along(grammar, ids):
    """The mask before each token of ``ids`` (each must be allowed), the text accepted."""
    m = grammar.matcher()
    seq = []
    for t in ids:
        seq.append(m.mask_words().copy())
        assert m.advance(t)
    assert m.is_accepting()
    return seq


@pytest.mark.parametrize("pattern", [
    "[a-zA-Z0-9._%+-]{1,40}@[a-zA-Z0-9-]{1,30}(\\.[a-zA-Z0-9-]{1,30}){0,3}\\.[a-zA-Z]{2,12}",
    "([A-Z][a-z]{1,10}( [a-z]{1,10}){0,6}[.!?] ?){1,4}",
])
def test_patch_or_walk_gives_the_same_masks(monkeypatch, pattern):
    """Whether a state's walk is patched from a neighbour's or walked afresh is a choice
    of speed (made from timings); masks are the same either way."""
    vocab = real_vocab("qwen2")
    tok = real_tokenizer("qwen2")
    text = "Jane.Doe-42@mail-server.example.co.uk" if "@" in pattern else "Lorem ipsum dolor. Sit amet elit sed do!"
    ids = tok.encode(text, add_special_tokens=False)
    runs = []
    for policy in (True, False):
        monkeypatch.setattr(masks_mod.MaskEngine, "_patch_pays", lambda self, t, _p=policy: _p)
        patched = []
        real = masks_mod.walk_patch

        def counting(*args):
            patched.append(1)
            return real(*args)

        monkeypatch.setattr(masks_mod, "walk_patch", counting)
        runs.append(_masks_along(constrain.compile(constrain.Regex(pattern), vocab, cache=False), ids))
        assert bool(patched) == policy
        monkeypatch.undo()
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("name", ["open_object", "max_length"])
def test_prepared_states_give_the_same_masks(monkeypatch, name):
    """Parse states made ahead at compile time (``MaskEngine.prepare``) change when the
    work is done, not the masks: with and without it, the same masks along a document."""
    vocab = real_vocab("qwen2")
    tok = real_tokenizer("qwen2")
    doc = {"open_object": {"name": 5, "nickname": 7, "age": 41, "tags": 3, "zip": 9},
           "max_length": {"s": "a bounded string, " * 5}}[name]
    ids = tok.encode(json.dumps(doc), add_special_tokens=False)
    runs = []
    reached = []
    for prepare in (True, False):
        if not prepare:
            monkeypatch.setattr(masks_mod.MaskEngine, "prepare", lambda self, *a, **k: 0)
        g = constrain.compile(constrain.JsonSchema(SCHEMAS[name]), vocab, cache=False)
        reached.append(g.parser.n_states)
        runs.append(_masks_along(g, ids))
        monkeypatch.undo()
    assert reached[0] > reached[1]  # the prepared parser started with more states
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


def test_prepare_stops_at_its_bounds():
    vocab = real_vocab("qwen2")
    g = constrain.compile(constrain.JsonSchema(SCHEMAS["open_object"]), vocab, cache=False)
    engine = g.engine
    before = engine.parser.n_states
    assert engine.prepare(max_states=0) == 0
    assert engine.prepare(max_states=10**6, budget_ns=0) == 0
    assert engine.parser.n_states == before  # neither call made a parse state
    assert engine.prepare(max_states=5, budget_ns=10**9) == 5  # this schema has many more
    # compile's own prepare ran on a time budget: on a slow machine it may have stopped
    # short of five states, and this call made the rest, never more than five in all
    assert before <= engine.parser.n_states <= max(before, 5)
