"""The on-disk DFA cache: a second process reads what the first wrote; bad files are rebuilt."""

import os
import subprocess
import sys

import numpy as np
import pytest

from constrain._caches import numba_cache_dir
from constrain.automata import store
from constrain.automata.regex import _terminal_dfa, compile_terminal
from constrain.grammar.ir import RegexTerm as Regex

CODE = """
import sys, time
from constrain.automata.regex import compile_terminal
from constrain.grammar.ir import RegexTerm as Regex
t = time.perf_counter()
dfa = compile_terminal(Regex(sys.argv[1], json_string=True))
print(dfa.key, time.perf_counter() - t)
"""


def test_second_process_reads_the_stored_dfa(tmp_path):
    # (this process's kernel cache: the subprocesses need not compile numba's kernels again)
    env = {"CONSTRAIN_CACHE_DIR": str(tmp_path), "PATH": "", "CONSTRAIN_DISK_CACHE_MIN_MS": "0",
           "NUMBA_CACHE_DIR": numba_cache_dir()}
    pattern = r"[a-z]{2,40}@[a-z]{2,20}\.(com|org|net)"
    runs = [
        subprocess.run([sys.executable, "-c", CODE, pattern], env=env, capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    keys = [r.stdout.split()[0] for r in runs]
    assert keys[0] == keys[1] == _terminal_dfa(Regex(pattern, json_string=True)).key
    assert list(tmp_path.glob("dfa-v1/*/*.arr"))


def test_unreadable_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    term = Regex(r"x[0-9]{3}y", ascii=True)
    path = store._path(term)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a numpy file")
    assert store.load(term) is None
    path.write_bytes(b"PK\x03\x04 a torn zip")
    assert store.load(term) is None
    dfa = _terminal_dfa(term)
    assert dfa.accepts(b"x123y") and not dfa.accepts(b"x12y")


def test_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE", "0")
    term = Regex(r"q[0-9]{5}")
    store.save(term, _terminal_dfa(term))
    assert not list(tmp_path.glob("dfa-v1/*/*.arr"))
    assert compile_terminal(term).accepts(b"q12345")


def test_only_dfas_slow_to_build_are_stored(tmp_path, monkeypatch):
    """Reading a file back costs more than building a small DFA: those are not stored."""
    from constrain import clear_caches

    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MIN_MS", "60000")  # no build takes a minute
    clear_caches()
    term = Regex(r"k[0-9]{4}z", json_string=True)
    assert compile_terminal(term).accepts(b"k1234z")
    assert not list(tmp_path.glob("dfa-v1/*/*.arr"))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MIN_MS", "0")
    clear_caches()
    assert compile_terminal(term).accepts(b"k1234z")
    assert len(list(tmp_path.glob("dfa-v1/*/*.arr"))) == 1
    assert store.worth_storing(0.0)  # bound 0: every build is worth a file
    monkeypatch.delenv("CONSTRAIN_DISK_CACHE_MIN_MS")
    assert not store.worth_storing(0.0005) and store.worth_storing(0.002)  # default: 1 ms


def test_literals_and_short_ascii_patterns_skip_the_disk(tmp_path, monkeypatch):
    """They build in microseconds: a lookup that misses would cost more."""
    from constrain import clear_caches
    from constrain.grammar.ir import Lit

    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MIN_MS", "0")  # every build worth a file
    clear_caches()
    looked = []
    monkeypatch.setattr(store, "load", lambda term: looked.append(term))
    assert compile_terminal(Regex(r"[0-9]{4}-[0-9]{2}")).accepts(b"2024-01")
    assert compile_terminal(Lit(b'"name"')).accepts(b'"name"')
    assert not looked and not list(tmp_path.glob("dfa-v1/*/*.arr"))
    compile_terminal(Regex(r"caf\u00e9|x{2}", ignore_case=True))
    assert len(looked) == 1


def _files(root, n, size):
    paths = []
    for i in range(n):
        d = root / f"{i % 3:02x}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{i:04d}.arr"
        p.write_bytes(b"x" * size)
        os.utime(p, (1_000_000 + i, 1_000_000 + i))  # file i used at time i
        paths.append(p)
    return paths


def test_eviction_keeps_the_store_under_its_bound(tmp_path):
    paths = _files(tmp_path, 20, 1000)
    assert store.evict(str(tmp_path), limit=30_000) == 0  # 20,000 bytes: within the bound
    os.utime(paths[0], (2_000_000, 2_000_000))  # the oldest file was just used
    freed = store.evict(str(tmp_path), limit=10_000)
    left = sorted(p.name for p in tmp_path.glob("*/*.arr"))
    assert freed == 13_000 and len(left) == 7  # down to three quarters of the bound
    # the least recently used went first: the six newest files stay, and the one just used
    assert left == sorted([paths[0].name] + [p.name for p in paths[14:]])


def test_a_load_marks_the_file_used(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MIN_MS", "0")
    term = Regex(r"[a-z]{3,30}@[a-z]{3,12}", ascii=True)
    dfa = _terminal_dfa(term)
    store.save(term, dfa)
    path = store._path(term)
    os.utime(path, (1_000_000, 1_000_000))
    assert store.load(term) is not None
    assert path.stat().st_mtime > 1_000_000 + 3600


def test_writes_past_the_bound_evict(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MAX_MB", "0.05")  # about 52 kB
    monkeypatch.setattr(store, "_since_check", store._CHECK_EVERY)
    _files(tmp_path / "dfa-v1", 60, 1000)
    term = Regex(r"q[0-9]{2,9}z", ascii=True)
    store.save(term, _terminal_dfa(term))
    total = sum(p.stat().st_size for p in (tmp_path / "dfa-v1").glob("*/*.arr"))
    assert total <= 0.05 * (1 << 20)
    assert store._path(term).exists()  # the file just written is the most recently used


def test_a_stored_file_is_checked_before_use(tmp_path):
    arrays = {"a": np.arange(5, dtype=np.int64), "b": np.ones((2, 3), dtype=np.bool_), "c": np.zeros(0, np.int32)}
    path = str(tmp_path / "x.arr")
    store.write(path, arrays)
    got = store.read(path, dict)
    assert got.keys() == arrays.keys() and all(np.array_equal(got[k], arrays[k]) for k in arrays)
    assert all(got[k].dtype == arrays[k].dtype and got[k].shape == arrays[k].shape for k in arrays)
    data = bytearray(open(path, "rb").read())
    for at in (3, 20, len(data) - 1):  # the magic, the header, the arrays: any byte changed
        bad = bytearray(data)
        bad[at] ^= 0x40
        open(path, "wb").write(bad)
        assert store.read(path, dict) is None
    open(path, "wb").write(data[: len(data) // 2])  # torn
    assert store.read(path, dict) is None
    with pytest.raises(TypeError):  # objects are never stored (nor, so, unpickled)
        store._encode({"o": np.array([object()])})


def test_unpacked_dfas_carry_their_byte_classes():
    # a DFA read back is C-ordered, keeps the byte classes its table was cut to (a
    # partition the table respects, so no pass over it is made again), and its key
    dfas = [compile_terminal(Regex(p)) for p in ("[a-z]{0,40}", r"\d+(\.\d+)?", "(foo|bar)*baz",
                                                    r'[^"\\]{2,9}', "x", "[\u00e9-\u0fff]+")]
    back = store.unpack(store.pack(dfas), len(dfas))
    assert back is not None
    for d, b in zip(dfas, back):
        assert np.array_equal(b.transitions, d.transitions) and b.transitions.flags.c_contiguous
        assert b._cls.dtype == np.int64
        for c in np.unique(b._cls):  # bytes of one class have one column
            cols = b.transitions[:, b._cls == c]
            assert (cols == cols[:, :1]).all()
        assert b.key == d.key
