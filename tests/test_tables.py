"""The tables a grammar's states grow in stay out of the cyclic collector's reach: what a
full collection reads through a parser and a mask engine does not grow with their states."""

from __future__ import annotations

import gc
import random

import numpy as np

import constrain
from constrain._tables import CHUNK, Chunked, Recent, ints_key, pairs_key
from conftest import real_vocab


def test_chunked_is_a_sequence():
    c = Chunked()
    items = [(i, i + 1) for i in range(3 * CHUNK + 5)]
    assert [c.append(x) for x in items] == list(range(len(items)))
    assert len(c) == len(items)
    assert list(c) == items
    for i in (0, CHUNK - 1, CHUNK, 2 * CHUNK + 7, len(items) - 1):
        assert c[i] == items[i]
        assert c.chunks[i >> 10][i & (CHUNK - 1)] == items[i]
    for bad in (-1, len(items)):
        try:
            c[bad]
        except IndexError:
            pass
        else:
            raise AssertionError(f"index {bad} did not raise")
    assert list(Chunked(items[:3])) == items[:3]


def test_full_chunks_are_untracked():
    c = Chunked((i, (i, i)) for i in range(2 * CHUNK + 3))
    for _ in range(3):
        gc.collect()
    assert not gc.is_tracked(c.chunks[0]) and not gc.is_tracked(c.chunks[1])
    assert gc.is_tracked(c.chunks[2])  # the open tail, a list


def test_keys_are_equal_where_the_sequences_are():
    rng = random.Random(1)
    seqs = {tuple(rng.randrange(-3, 3) << rng.choice((0, 20, 40)) for _ in range(rng.randrange(4)))
            for _ in range(2000)}
    assert len({ints_key(s) for s in seqs}) == len(seqs)
    pairs = {tuple((rng.randrange(3), rng.randrange(-1, 3)) for _ in range(rng.randrange(4))) for _ in range(2000)}
    assert len({pairs_key(p) for p in pairs}) == len(pairs)
    assert ints_key((1, 2)) == ints_key([1, 2]) and pairs_key(((1, 2),)) == ints_key((1, 2))


def test_recent_keeps_what_was_used_and_stays_bounded():
    r = Recent(8)
    for i in range(100):
        r.put(i, np.full(2, i))
        assert len(r) <= 8
        assert r.peek(i)[0] == i and (i < 3 or r.peek(i - 3)[0] == i - 3)  # the last few kept
    assert r.get(0) is None
    r = Recent(8)
    r.put("hot", 1)
    for i in range(50):
        r.put(i, i)
        assert r.get("hot") == 1  # read every time: never dropped
    assert r.peek(49) == 49 and r.get(0) is None and len(r) <= 8
    while r.drop_oldest():
        pass
    assert len(r) == 0 and r.get("hot") is None
    d = Recent(64)
    for i in range(200):
        d.put(i, np.zeros(1))
    gc.collect()
    assert not gc.is_tracked(d._young) and not gc.is_tracked(d._old)


def _collector_reads(root) -> int:
    """References a full collection reads through the containers ``root`` holds (not
    through other objects of the library, types, or the vocabulary)."""
    seen, reads = set(), 0
    stack = list(vars(root).values())
    while stack:
        x = stack.pop()
        if id(x) in seen or not gc.is_tracked(x) or not isinstance(x, (list, tuple, dict, set, Chunked)):
            continue
        seen.add(id(x))
        refs = gc.get_referents(x)
        reads += len(refs)
        stack.extend(refs)
    return reads


def test_a_full_collection_reads_little_of_a_grown_grammar():
    vocab = real_vocab("smollm2")
    schema = {"type": "object", "additionalProperties": False, "properties": {
        f"k{i}": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"$ref": "#"}}, {"$ref": "#"}]}
        for i in range(30)}}
    g = constrain.compile(constrain.JsonSchema(schema), vocab, cache=False)
    rng = random.Random(0)
    eos = set(vocab.eos_token_ids)
    steps = 0
    while g.parser.n_states < 2 * CHUNK + 100 and steps < 40000:
        m = g.matcher()
        for _ in range(400):  # random documents, nesting as deep as they go
            ids = [i for i in m.allowed_token_ids().tolist() if i not in eos]
            if not ids:
                break
            assert m.advance(rng.choice(ids))
            steps += 1
    n_states, n_hyps = g.parser.n_states, len(g.engine._hyps)
    assert n_states > 2 * CHUNK, "the random documents did not grow the parser enough for this test"
    for _ in range(4):  # tuples of tuples: untracked a level per collection
        gc.collect()
    # Per state, the parser keeps six entries and the engine two per hypothesis set:
    # lists would be read in full. Read: the open chunks, a few hundred entries each.
    assert _collector_reads(g.parser) < n_states // 2, (_collector_reads(g.parser), n_states)
    assert _collector_reads(g.engine) < n_hyps // 2, (_collector_reads(g.engine), n_hyps)


def test_matchers_of_one_grammar_in_threads_see_the_masks_one_thread_sees():
    # Steps memoize without the engine's lock and masks under it: with switches forced
    # every microsecond, tables grown by several threads at once must hold what one
    # thread puts in them
    import sys
    import threading

    vocab = real_vocab("smollm2")
    schema = {"type": "object", "additionalProperties": False, "properties": {
        f"k{i}": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"$ref": "#"}}, {"$ref": "#"}]}
        for i in range(12)}}
    spec = constrain.JsonSchema(schema)
    eos = set(vocab.eos_token_ids)
    rng = random.Random(2)
    g = constrain.compile(spec, vocab, cache=False)
    docs, want = [], []
    for _ in range(24):  # random documents and their masks, one thread
        m, doc, masks = g.matcher(), [], []
        for _ in range(60):
            ids = m.allowed_token_ids()
            masks.append(ids.tobytes())
            ids = [i for i in ids.tolist() if i not in eos]
            if not ids:
                break
            doc.append(rng.choice(ids))
            assert m.advance(doc[-1])
        docs.append(doc)
        want.append(masks)
    fresh = constrain.compile(spec, vocab, cache=False)
    got: list = [None] * len(docs)

    def replay(k: int) -> None:
        for j in range(k, len(docs), 4):
            m, masks = fresh.matcher(), []
            for tok in docs[j]:
                masks.append(m.allowed_token_ids().tobytes())
                assert m.advance(tok)
            if len(masks) < len(want[j]):
                masks.append(m.allowed_token_ids().tobytes())
            got[j] = masks

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=replay, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert got == want
