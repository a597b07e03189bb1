"""The on-disk cache of compile plans: a later compile of the same spec skips the front
end and the terminal DFAs, masks stay the same, bad files are ignored."""

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import constrain
from constrain import _grammar_store, specs
from constrain.automata import store as dfa_store
from constrain._caches import numba_cache_dir
from conftest import real_tokenizer, real_vocab

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "name": {"type": "string", "maxLength": 30},
        "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 4},
        "score": {"type": "number"},
    },
    "required": ["id", "name"],
    "additionalProperties": {"type": "string"},
}
DOC = {"id": 7, "name": "seven", "tags": ["red", "blue"], "score": 1.5, "extra": "x"}


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE", "1")
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MIN_MS", "0")
    constrain.clear_caches()
    yield tmp_path
    constrain.clear_caches()


def _masks(g, text):
    tok = real_tokenizer("qwen2")
    m = g.matcher()
    out = []
    for t in tok.encode(text, add_special_tokens=False):
        out.append(m.mask_words().copy())
        assert m.advance(t)
    out.append(m.mask_words().copy())
    assert m.is_accepting()
    return out


def _plan_files(root):
    return list(root.glob("grammar-v1/*/*.arr"))


def test_a_stored_plan_compiles_without_the_front_end(store_dir, monkeypatch):
    vocab = real_vocab("qwen2")
    fresh = constrain.compile(constrain.JsonSchema(SCHEMA), vocab)
    assert len(_plan_files(store_dir)) == 1
    constrain.clear_caches()

    def no_front_end(*a, **k):
        raise AssertionError("the front end ran")

    monkeypatch.setattr(specs, "to_grammar", no_front_end)
    monkeypatch.setattr(specs, "plan", no_front_end)
    loaded = constrain.compile(constrain.JsonSchema(SCHEMA), vocab)
    assert "CompiledGrammar(" in repr(loaded)  # (a repr runs no front end either)
    assert "CompiledGrammar(?" in repr(constrain.CompiledGrammar.__new__(constrain.CompiledGrammar))
    monkeypatch.undo()
    assert loaded is not fresh
    text = json.dumps(DOC)
    assert all(np.array_equal(a, b) for a, b in zip(_masks(fresh, text), _masks(loaded, text)))
    assert loaded.grammar.start == fresh.grammar.start  # made again from the spec when asked for
    assert loaded.name == fresh.name


def test_a_plan_serves_every_vocabulary(store_dir):
    constrain.compile(constrain.JsonSchema(SCHEMA), real_vocab("qwen2"))
    constrain.compile(constrain.JsonSchema(SCHEMA), real_vocab("smollm2"))
    assert len(_plan_files(store_dir)) == 1


def test_a_corrupt_or_foreign_file_is_ignored(store_dir):
    vocab = real_vocab("qwen2")
    constrain.compile(constrain.JsonSchema(SCHEMA), vocab)
    other = dict(SCHEMA, required=["id"])
    constrain.compile(constrain.JsonSchema(other), vocab)
    (a, b) = sorted(_plan_files(store_dir), key=lambda p: p.stat().st_mtime)
    shutil.copyfile(a, b)  # b now holds a's plan: another key's
    k_other = _grammar_store.key(specs._spec_key(constrain.JsonSchema(other)), constrain.Limits())
    assert _grammar_store.load(k_other) is None
    a.write_bytes(b"PK\x03\x04 not really a zip")
    k_first = _grammar_store.key(specs._spec_key(constrain.JsonSchema(SCHEMA)), constrain.Limits())
    assert _grammar_store.load(k_first) is None
    constrain.clear_caches()
    g = constrain.compile(constrain.JsonSchema(SCHEMA), vocab)  # rebuilt, and stored again
    assert _grammar_store.load(k_first) is not None
    assert all(m.any() for m in _masks(g, json.dumps(DOC))[:3])


def test_inconsistent_arrays_are_rejected(store_dir):
    vocab = real_vocab("qwen2")
    constrain.compile(constrain.JsonSchema(SCHEMA), vocab)
    (path,) = _plan_files(store_dir)
    k = path.stem
    arrays = {name: a.copy() for name, a in dfa_store._decode(bytearray(path.read_bytes())).items()}
    arrays["table"][0] = arrays["n"][0] + 5  # a transition out of its DFA
    path.write_bytes(dfa_store._encode(arrays))  # (a valid file: only the plan's own checks can tell)
    assert _grammar_store.load(k) is None


def test_approximations_are_reported_again(store_dir):
    vocab = real_vocab("qwen2")
    # multipleOf 0.07 is not enforced (7 is not a factor the digit regexes handle)
    spec = constrain.JsonSchema({"type": "number", "multipleOf": 0.07}, strict=False)
    with warnings.catch_warnings(record=True) as first:
        warnings.simplefilter("always")
        g1 = constrain.compile(spec, vocab)
    constrain.clear_caches()
    with warnings.catch_warnings(record=True) as second:
        warnings.simplefilter("always")
        g2 = constrain.compile(spec, vocab)
    assert [str(w.message) for w in first] == [str(w.message) for w in second] != []
    assert _plan_files(store_dir)  # the second compile came from the file
    assert [(e.pointer, e.keyword, e.status) for e in g1.report.entries] == \
        [(e.pointer, e.keyword, e.status) for e in g2.report.entries]


def test_disk_cache_off_writes_nothing(store_dir, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE", "0")
    constrain.compile(constrain.JsonSchema(SCHEMA), real_vocab("qwen2"))
    assert not _plan_files(store_dir)


def test_a_new_process_reads_the_plan(tmp_path):
    code = (
        "import sys, json, constrain\n"
        "from constrain import specs\n"
        "from conftest import real_vocab\n"
        "vocab = real_vocab('qwen2')\n"
        "if sys.argv[1] == 'second':\n"
        "    specs.to_grammar = None  # the front end must not run\n"
        f"g = constrain.compile(constrain.JsonSchema({SCHEMA!r}), vocab)\n"
        "print(int(g.matcher().mask_words().sum()))\n"
    )
    env = dict(os.environ, CONSTRAIN_CACHE_DIR=str(tmp_path), CONSTRAIN_DISK_CACHE="1",
               CONSTRAIN_DISK_CACHE_MIN_MS="0", NUMBA_CACHE_DIR=numba_cache_dir(),
               PYTHONPATH=os.path.dirname(__file__))
    outs = [subprocess.run([sys.executable, "-c", code, which], env=env, capture_output=True, text=True, check=True)
            .stdout for which in ("first", "second")]
    assert outs[0] == outs[1]


@pytest.mark.parametrize("name", ["json", "sql_select", "tool_call", "python_subset"])
def test_bundled_grammars_mask_the_same_from_a_stored_plan(store_dir, name):
    from constrain import grammars

    vocab = real_vocab("qwen2")
    tok = real_tokenizer("qwen2")
    spec = constrain.Lark(grammars.read(name))
    fresh = constrain.compile(spec, vocab, cache=False)
    constrain.compile(spec, vocab)  # stores the plan
    constrain.clear_caches()
    k = _grammar_store.key(specs._spec_key(spec), constrain.Limits())
    assert _grammar_store.load(k) is not None
    loaded = constrain.compile(spec, vocab)
    for example in grammars.examples(name)[:4]:
        a, b = fresh.matcher(), loaded.matcher()
        for t in tok.encode(example, add_special_tokens=False):
            assert np.array_equal(a.mask_words(), b.mask_words())
            assert a.advance(t) and b.advance(t)
        assert np.array_equal(a.mask_words(), b.mask_words()) and a.is_accepting() == b.is_accepting()
