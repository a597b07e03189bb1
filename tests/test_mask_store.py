"""Masks filed on disk: a later compile of the same spec and vocabulary serves the masks
an earlier one computed, without a walk; its keys do not depend on the order states were
made in; a bad or foreign file is ignored."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import constrain
from constrain import _mask_store
from constrain.masking import masks as masks_mod
from conftest import real_tokenizer, real_vocab

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "name": {"type": "string", "maxLength": 30},
        "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "uniqueItems": True},
        "kind": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": "^[a-z]+$"}]},
    },
    "required": ["id", "name"],
    "additionalProperties": {"type": "number"},
}
DOCS = [
    {"id": 7, "name": "seven", "tags": ["red", "blue"], "kind": "abc", "extra": 1.5},
    {"name": "x", "id": 12, "kind": None},
    {"id": 3, "name": "", "tags": []},
]


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE", "1")
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MASKS", "1")
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MIN_MS", "0")  # every plan filed
    monkeypatch.setattr(masks_mod, "_FILE_MIN_NS", 0)  # file every mask, however quick
    constrain.clear_caches()
    yield tmp_path
    _mask_store._PENDING.clear()
    constrain.clear_caches()


def _walk(g, doc, log=None):
    tok = real_tokenizer("qwen2")
    m = g.matcher()
    out = []
    for t in tok.encode(json.dumps(doc), add_special_tokens=False):
        out.append(m.mask_words().tobytes())
        if log is not None:
            log.append(g.engine.hyp_key(m.state))
        if not m.advance(t):
            break
    out.append(m.mask_words().tobytes())
    return out


def _no_walks(monkeypatch):
    def refuse(self, hid):
        raise AssertionError("a mask was computed")

    monkeypatch.setattr(masks_mod.MaskEngine, "_compute_mask", refuse)


def _mask_files(root):
    return list(root.glob("masks-v1/*/*.arr"))


def _filing(spec, v):
    """A compile that files its masks: the spec's second, its plan filed by the first."""
    first = constrain.compile(spec, v)
    assert first.engine._store is None  # a spec seen once files nothing
    constrain.clear_caches()
    g = constrain.compile(spec, v)
    assert g.engine._store is not None
    return g


def test_masks_come_back_from_disk_without_walks(store_dir, monkeypatch):
    v = real_vocab("qwen2")
    g = _filing(SCHEMA, v)
    want = [_walk(g, d) for d in DOCS]
    _mask_store.save_all()
    assert len(_mask_files(store_dir)) == 1
    constrain.clear_caches()
    again = constrain.compile(SCHEMA, v)
    assert again is not g
    with monkeypatch.context() as mp:
        _no_walks(mp)
        assert [_walk(again, d) for d in DOCS] == want
    # a document that visits states not filed yet: computed, the same as without the store
    other = {"id": 1, "name": "y", "tags": ["green"], "kind": "zz", "a": -2, "b": 0}
    served = _walk(again, other)
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MASKS", "0")
    constrain.clear_caches()
    assert _walk(constrain.compile(SCHEMA, v), other) == served


def test_keys_do_not_depend_on_the_order_states_were_made_in(store_dir):
    v = real_vocab("qwen2")
    a = constrain.compile(SCHEMA, v, cache=False)
    b = constrain.compile(SCHEMA, v, cache=False)
    keys_a, keys_b = [], []
    for d in DOCS:
        _walk(a, d, keys_a)
    for d in reversed(DOCS):  # b makes its states in another order
        _walk(b, d, [])
    for d in DOCS:
        _walk(b, d, keys_b)
    assert keys_a == keys_b
    # the engines did number their states differently
    ids_a, ids_b = [], []
    for g, ids in ((a, ids_a), (b, ids_b)):
        m = g.matcher()
        for t in real_tokenizer("qwen2").encode(json.dumps(DOCS[0]), add_special_tokens=False):
            ids.append(m.state)
            m.advance(t)
    assert ids_a != ids_b
    # distinct masks have distinct keys
    by_key = {}
    for d in DOCS:
        log = []
        for k, mask in zip(log, _walk(a, d, log)):
            assert by_key.setdefault(k, mask) == mask


def test_a_bad_or_foreign_file_is_ignored(store_dir, monkeypatch):
    v = real_vocab("qwen2")
    g = _filing(SCHEMA, v)
    want = _walk(g, DOCS[0])
    _mask_store.save_all()
    (path,) = _mask_files(store_dir)
    other_schema = {"type": "array", "items": {"type": "integer"}}
    h = _filing(other_schema, v)
    _walk(h, [1, 2, 3])
    _mask_store.save_all()
    (other,) = [p for p in _mask_files(store_dir) if p != path]

    def fresh():
        constrain.clear_caches()
        got = constrain.compile(SCHEMA, v)
        return got, _walk(got, DOCS[0])

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40  # a flipped bit among the masks: its CRC fails
    path.write_bytes(bytes(data))
    got, masks = fresh()
    assert masks == want and got.engine._store._stored == {}
    shutil.copy(other, path)  # another grammar's file under this name: its header says so
    got, masks = fresh()
    assert masks == want and got.engine._store._stored == {}
    path.write_bytes(b"")  # torn
    got, masks = fresh()
    assert masks == want
    _mask_store.save_all()  # and it is written again, whole
    constrain.clear_caches()
    with monkeypatch.context() as mp:
        _no_walks(mp)
        assert _walk(constrain.compile(SCHEMA, v), DOCS[0]) == want


def test_off_with_the_disk_cache_or_alone(store_dir, monkeypatch):
    v = real_vocab("qwen2")
    for var in ("CONSTRAIN_DISK_CACHE", "CONSTRAIN_DISK_CACHE_MASKS"):
        with monkeypatch.context() as mp:
            mp.setenv(var, "0")
            constrain.clear_caches()
            constrain.compile(SCHEMA, v)
            constrain.clear_caches()
            g = constrain.compile(SCHEMA, v)  # (a second compile: the one that would file masks)
            assert g.engine._store is None
            _walk(g, DOCS[0])
            _mask_store.save_all()
    assert not _mask_files(store_dir)
    constrain.clear_caches()
    assert constrain.compile(SCHEMA, v, cache=False).engine._store is None  # a compile from scratch


def test_a_grammar_dropped_from_the_caches_still_files_its_masks(store_dir, monkeypatch):
    import gc

    v = real_vocab("qwen2")
    g = _filing(SCHEMA, v)
    want = _walk(g, DOCS[1])
    store = g.engine._store
    del g
    constrain.clear_caches()
    gc.collect()
    for _ in range(200):  # its save runs in the background
        if store not in _mask_store._PENDING:
            break
        import time

        time.sleep(0.05)
    assert store not in _mask_store._PENDING and _mask_files(store_dir)
    with monkeypatch.context() as mp:
        _no_walks(mp)
        assert _walk(constrain.compile(SCHEMA, v), DOCS[1]) == want


def test_another_process_serves_the_masks(store_dir):
    # the keys hold across processes: a child files the masks, this process serves them
    v = real_vocab("qwen2")
    code = (
        "import json, sys\n"
        "sys.path.insert(0, 'tests')\n"
        "import constrain\n"
        "import constrain.masking.masks\n"
        "from conftest import real_tokenizer, real_vocab\n"
        "constrain.masking.masks._FILE_MIN_NS = 0\n"
        f"schema = json.loads({json.dumps(json.dumps(SCHEMA))})\n"
        f"docs = json.loads({json.dumps(json.dumps(DOCS))})\n"
        "constrain.compile(schema, real_vocab('qwen2'))\n"  # (its plan filed: the next compile files masks)
        "constrain.clear_caches()\n"
        "g = constrain.compile(schema, real_vocab('qwen2'))\n"
        "tok = real_tokenizer('qwen2')\n"
        "for d in docs:\n"
        "    m = g.matcher()\n"
        "    for t in tok.encode(json.dumps(d), add_special_tokens=False):\n"
        "        m.mask_words()\n"
        "        if not m.advance(t):\n"
        "            break\n"
        "    m.mask_words()\n"
    )
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root, timeout=300)
    assert len(_mask_files(store_dir)) == 1
    constrain.clear_caches()
    g = constrain.compile(SCHEMA, v)
    computed = []
    real = masks_mod.MaskEngine._compute_mask

    def counted(self, hid):
        computed.append(hid)
        return real(self, hid)

    masks_mod.MaskEngine._compute_mask = counted
    try:
        served = [_walk(g, d) for d in DOCS]
    finally:
        masks_mod.MaskEngine._compute_mask = real
    assert computed == []
    os.environ["CONSTRAIN_DISK_CACHE_MASKS"] = "0"
    try:
        constrain.clear_caches()
        assert [_walk(constrain.compile(SCHEMA, v), d) for d in DOCS] == served
    finally:
        os.environ["CONSTRAIN_DISK_CACHE_MASKS"] = "1"


LARK = r"""
start: "(" item ("," item)* ")"
item: NAME | NUMBER | start
NAME: /[a-z]+/
NUMBER: /[0-9]+(\.[0-9]+)?/
%ignore " "
"""


@pytest.mark.parametrize("spec", [SCHEMA, {"type": "array", "items": {"anyOf": [
    {"type": "string", "format": "date"}, {"type": "string", "enum": ["2020", "abc"]}, {"type": "integer"}]}},
    constrain.Lark(LARK)], ids=["schema", "anyof", "lark"])
def test_random_walks_see_the_masks_a_fresh_compile_makes(store_dir, monkeypatch, spec):
    # walks that pick random allowed tokens file their masks; walks along the same
    # tokens in a grammar that serves them from the file see what a compile without the
    # file computes, mask for mask
    v = real_vocab("qwen2")
    rng = np.random.default_rng(5)
    g = _filing(spec, v)
    paths = []
    for _ in range(12):
        m = g.matcher()
        path = []
        for _ in range(40):
            ids = m.allowed_token_ids()
            ids = ids[ids < v.model_vocab_size]
            ids = ids[~np.isin(ids, list(v.eos_token_ids))]
            if not len(ids):
                break
            t = int(rng.choice(ids))
            assert m.advance(t)
            path.append(t)
        paths.append(path)
    _mask_store.save_all()

    def masks_along(g):
        out = []
        for path in paths:
            m = g.matcher()
            for t in path:
                out.append(m.mask_words().tobytes())
                assert m.advance(t)
        return out

    constrain.clear_caches()
    with monkeypatch.context() as mp:
        _no_walks(mp)
        served = masks_along(constrain.compile(spec, v))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MASKS", "0")
    constrain.clear_caches()
    assert masks_along(constrain.compile(spec, v)) == served


def test_quick_masks_are_not_filed(store_dir, monkeypatch):
    monkeypatch.setattr(masks_mod, "_FILE_MIN_NS", 1 << 62)
    g = _filing(SCHEMA, real_vocab("qwen2"))
    _walk(g, DOCS[0])
    assert len(g.engine._store) == 0
    _mask_store.save_all()
    assert not _mask_files(store_dir)
