"""numba's kernels: where their disk cache lies, the limit clock that leaves the JIT out,
and warm-up workers that fill the cache for later processes."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import numba
import pytest
from numba import njit

import constrain
from constrain import _warmup
from constrain._caches import numba_cache_dir
from constrain.automata._jit import clock, jit_seconds


def _python(code: str, env: dict) -> str:
    full = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "CONSTRAIN_CACHE_DIR")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=full).stdout


def test_numba_cache_lies_in_constrain_cache_dir(tmp_path):
    out = _python("import constrain, numba; print(numba.config.CACHE_DIR)", {"CONSTRAIN_CACHE_DIR": str(tmp_path)})
    assert out.strip() == str(tmp_path / "numba" / numba.__version__)


def test_numba_cache_dir_set_by_the_user_wins(tmp_path):
    mine = tmp_path / "mine"
    out = _python("import constrain, numba; print(numba.config.CACHE_DIR)",
                  {"CONSTRAIN_CACHE_DIR": str(tmp_path / "c"), "NUMBA_CACHE_DIR": str(mine)})
    assert out.strip() == str(mine)


def test_numba_imported_first_still_uses_constrain_cache_dir(tmp_path):
    out = _python("import numba; import constrain; print(numba.config.CACHE_DIR)",
                  {"CONSTRAIN_CACHE_DIR": str(tmp_path)})
    assert out.strip() == str(tmp_path / "numba" / numba.__version__)


def test_limit_clock_stops_while_numba_compiles():
    @njit
    def fresh(a):  # a kernel no process has compiled: its first call compiles it
        s = 0
        for x in a:
            s += x * x
        return s

    if _warmup._prefetch_thread is not None:
        _warmup._prefetch_thread.join()  # (no other thread compiling meanwhile)
    paused0, c0, t0 = jit_seconds(), clock(), time.perf_counter()
    assert fresh(np.arange(10)) == 285
    paused, wall, limit = jit_seconds() - paused0, time.perf_counter() - t0, clock() - c0
    assert paused > 0.01  # compiling took some time, all of it inside numba's compiler lock
    assert abs((wall - limit) - paused) < 1e-3
    # read so that the wall interval encloses the limit clock's (read the other way round,
    # a pause between the two first reads made the wall interval the shorter one)
    paused1, t1 = jit_seconds(), time.perf_counter()
    c1 = clock()
    fresh(np.arange(10))  # compiled now: nothing is left out
    c2 = clock()
    t2 = time.perf_counter()
    assert jit_seconds() == paused1
    assert c2 - c1 <= t2 - t1 + 1e-6


def test_a_tight_time_limit_counts_no_jit(tmp_path, warm_numba_dir):
    # A fresh process whose kernel cache lacks the kernel that turns a regex into tables
    # (a copy of the warm cache without it: an empty cache would compile the whole regex
    # pipeline, a minute and a half on two cores, for the same point): compiling it takes
    # seconds, the limit is half a second, and the compile still succeeds.
    # CONSTRAIN_KERNELS=compiled: each kernel compiled on first use (the default would run
    # them as Python meanwhile; test_kernel_modes covers that).
    numba_dir = tmp_path / "numba"
    shutil.copytree(warm_numba_dir, numba_dir, ignore=shutil.ignore_patterns("_ascii.ascii_table-*"))
    code = (
        "import constrain\n"
        "from constrain.automata._jit import jit_seconds\n"
        "vocab = constrain.Vocabulary([bytes([b]) for b in range(256)])\n"
        "before = jit_seconds()\n"
        "g = constrain.compile(constrain.Regex('[a-f]{2,8}(x|yz)+'), vocab, cache=False,\n"
        "                      limits=constrain.Limits(max_regex_seconds=0.5))\n"
        "m = g.matcher()\n"
        "print(all(m.advance(b) for b in b'abxyz') and m.is_accepting(), jit_seconds() - before > 0.5)\n"
    )
    out = _python(code, {"NUMBA_CACHE_DIR": str(numba_dir), "CONSTRAIN_CACHE_DIR": str(tmp_path / "c"),
                         "CONSTRAIN_KERNELS": "compiled", "CONSTRAIN_PREFETCH": "0"})
    assert out.split() == ["True", "True"]


def test_warmup_workers_fill_the_disk_cache(tmp_path):
    vocab_path = str(tmp_path / "vocab.npz")
    _warmup._save_vocab(_warmup._tiny_vocab(), vocab_path)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    code = "import sys; from constrain._warmup import _worker; _worker(sys.argv[1], sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, "trie", vocab_path], check=True, env=env, capture_output=True)
    index = list(Path(tmp_path / "numba").rglob("*_regex_dfa.trie-*.nbi"))
    assert index, "the worker wrote no cache index for the kernel it compiled"


def test_warmup_vocabulary_round_trips(tmp_path):
    vocab = constrain.Vocabulary([b"a", b"", b"\xff\x00", b"</s>"], special=[3], eos_token_ids=[3])
    path = str(tmp_path / "v.npz")
    _warmup._save_vocab(vocab, path)
    back = _warmup._load_vocab(path)
    assert [back.token_bytes(i) for i in range(back.size)] == [vocab.token_bytes(i) for i in range(vocab.size)]
    assert back.eos_token_ids == vocab.eos_token_ids
    assert np.array_equal(back.special_mask, vocab.special_mask)


def test_a_failing_worker_says_why(tmp_path):
    with pytest.raises(RuntimeError, match="no warm-up task named"):
        _warmup._in_workers(["no-such-task"], str(tmp_path / "missing.npz"), 2)


@pytest.fixture(scope="module")
def warm_numba_dir():
    """This process's kernel cache (which the setup's warm-up filled), after a warm-up
    that left its marker: a quick load when the cache is complete."""
    root = numba_cache_dir()
    _python("import constrain; constrain.warmup()", {"NUMBA_CACHE_DIR": root})
    return root


def test_prefetch_only_with_a_complete_cache(tmp_path, warm_numba_dir):
    # an empty cache: nothing starts in the background
    code = "import constrain, constrain._warmup as w; print(w._prefetch_thread is not None)"
    assert _python(code, {"CONSTRAIN_CACHE_DIR": str(tmp_path)}).strip() == "False"
    # a complete warm-up left its marker: the next import loads the kernels in a thread
    assert list(Path(warm_numba_dir).glob("constrain-*.ready"))
    env = {"CONSTRAIN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": warm_numba_dir}
    code = ("import constrain, constrain._warmup as w; started = w._prefetch_thread is not None; "
            "w._prefetch_thread.join(); print(started, w._warmed)")
    assert _python(code, env).split() == ["True", "True"]
    code = "import constrain, constrain._warmup as w; print(w._prefetch_thread is not None, w._warmed)"
    assert _python(code, dict(env, CONSTRAIN_PREFETCH="0")).split() == ["False", "False"]


def test_a_fork_waits_for_the_prefetch(tmp_path, warm_numba_dir):
    env = {"CONSTRAIN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": warm_numba_dir}
    code = (
        "import os, constrain, constrain._warmup as w\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if w._warmed else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status), w._warmed)\n"
    )
    assert _python(code, env).split() == ["0", "True"]


def test_exit_stops_the_prefetch_between_kernels(tmp_path, warm_numba_dir):
    # A process that ends while the kernels load: the thread stops at its next kernel and
    # the exit waits for it (stopped by the interpreter inside LLVM, it would abort the
    # process). The check is registered first, so it runs after constrain's own.
    env = {"CONSTRAIN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": warm_numba_dir}
    code = (
        "import atexit\n"
        "def check():\n"
        "    t = w._prefetch_thread\n"
        "    print(t is not None, t is not None and t.is_alive(), w._warmed, w.prefetch())\n"
        "atexit.register(check)\n"
        "import constrain, constrain._warmup as w\n"
    )
    for _ in range(3):
        assert _python(code, env).split() == ["True", "False", "False", "False"]


def test_limit_clock_never_goes_back():
    import threading

    from constrain.automata import _jit

    seen = [clock()]
    stop = threading.Event()

    def compile_elsewhere():
        @njit
        def other(a):
            return a.sum() * 2

        other(np.arange(5))
        stop.set()

    t = threading.Thread(target=compile_elsewhere)
    t.start()
    while not stop.is_set():
        seen.append(clock())
    t.join()
    seen.append(clock())
    assert all(b >= a for a, b in zip(seen, seen[1:]))
    assert _jit.jit_seconds() > 0
