"""The on-disk DFA cache: a second process reads what the first wrote; bad files are rebuilt."""

import subprocess
import sys

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
    env = {"CONSTRAIN_CACHE_DIR": str(tmp_path), "PATH": "", "CONSTRAIN_DISK_CACHE_MIN_MS": "0"}
    pattern = r"[a-z]{2,40}@[a-z]{2,20}\.(com|org|net)"
    runs = [
        subprocess.run([sys.executable, "-c", CODE, pattern], env=env, capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    keys = [r.stdout.split()[0] for r in runs]
    assert keys[0] == keys[1] == _terminal_dfa(Regex(pattern, json_string=True)).key
    assert list(tmp_path.glob("dfa-v1/*/*.npz"))


def test_unreadable_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    term = Regex(r"x[0-9]{3}y", ascii=True)
    path = store._path(term)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a numpy file")
    assert store.load(term) is None
    dfa = _terminal_dfa(term)
    assert dfa.accepts(b"x123y") and not dfa.accepts(b"x12y")


def test_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE", "0")
    term = Regex(r"q[0-9]{5}")
    store.save(term, _terminal_dfa(term))
    assert not list(tmp_path.glob("dfa-v1/*/*.npz"))
    assert compile_terminal(term).accepts(b"q12345")


def test_only_dfas_slow_to_build_are_stored(tmp_path, monkeypatch):
    """Reading a file back costs more than building a small DFA: those are not stored."""
    from constrain import clear_caches

    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MIN_MS", "60000")  # no build takes a minute
    clear_caches()
    term = Regex(r"k[0-9]{4}z", json_string=True)
    assert compile_terminal(term).accepts(b"k1234z")
    assert not list(tmp_path.glob("dfa-v1/*/*.npz"))
    monkeypatch.setenv("CONSTRAIN_DISK_CACHE_MIN_MS", "0")
    clear_caches()
    assert compile_terminal(term).accepts(b"k1234z")
    assert len(list(tmp_path.glob("dfa-v1/*/*.npz"))) == 1
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
    assert not looked and not list(tmp_path.glob("dfa-v1/*/*.npz"))
    compile_terminal(Regex(r"caf\u00e9|x{2}", ignore_case=True))
    assert len(looked) == 1
