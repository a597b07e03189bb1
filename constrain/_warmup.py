"""Compiling numba's kernels ahead of the first request, in parallel when cores allow.

numba compiles each kernel on its first call and keeps the machine code in its on-disk
cache (``<cache_dir>/numba``): a fresh install spends about a minute of one core there,
later processes load the kernels in a fraction of a second. :func:`warmup` runs every
kernel of the mask engine once; with ``jobs > 1`` the kernels missing from the disk cache
are compiled first by that many worker processes at once (each a fresh interpreter:
numba's compiler holds a process-wide lock, so threads would not help), then loaded here.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable

import numpy as np

from . import _caches, _kernels
from .errors import ConstrainError
from .vocabulary import Vocabulary

__all__ = ["warmup", "default_jobs", "prefetch"]

_warmed = False
_warm_lock = threading.Lock()

# Specs whose masks, along the texts beside them, take every path of the mask engine:
# a bounded counter (walks shared between alike states, sliced walks, patched walks),
# then JSON objects (lexeme boundaries inside tokens, key names patched from strings).
_WARM_SPECS = (
    ("regex", "abcdefghij" * 4),
    ("json", '{"id": 12, "name": "warm up", "tags": ["a", "b"], "x": 1.5}'),
    # bounded strings walked near their end (sliced walks), key names alike to a string
    # (paired DFA states), and the same text under a token budget (its cost tables)
    ("json_bounded", '{"a": "abcdefghijklmnopqrstuvwxyzabcdefghijklm", "b": {"k": 1, "j": "x"}, '
                     '"extra_key_here": "abcdefghijklmnopqrstuvwxyzabc"}'),
    ("json_budget", '{"a": "abcdefghijklmnopqrstuvwxyzabcdefghijklm", "b": {"k": 1, "j": "x"}, '
                    '"extra_key_here": "abcdefghijklmnopqrstuvwxyzabc"}'),
)


def _spec(kind: str):
    from .specs import JsonSchema, Regex

    if kind == "regex":
        return Regex("[a-z]{0,40}")
    if kind in ("json_bounded", "json_budget"):
        return JsonSchema({
            "type": "object",
            "properties": {"a": {"type": "string", "maxLength": 40},
                           "b": {"anyOf": [{"type": "object", "properties": {"k": {"type": "string"}}},
                                           {"type": "object", "properties": {"k": {"type": "integer"},
                                                                             "j": {"type": "string"}}}]}},
            "additionalProperties": {"type": "string", "maxLength": 30},
        })
    return JsonSchema({
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string", "maxLength": 24},
                       "tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
        "required": ["id"],
        "additionalProperties": {"type": "number"},
    })


def _automata_kernels() -> dict[str, Callable[[], None]]:
    """Each automata kernel called once on tiny inputs of the types real calls pass, by
    name; a name per independent group, so that workers can split them."""
    from .automata._ascii import ascii_table, wide_templates
    from .automata._byte_classes import column_classes, edge_ranges, key_columns, widen
    from .automata._determinize import determinize
    from .automata._minimize import minimize, renumber
    from .automata._product import pair_product
    from .automata._regex_dfa import nfa_table, regex_dfa, regex_table, trie

    inf = float("inf")
    i64 = np.zeros(0, dtype=np.int64)
    one = np.zeros((1, 1), dtype=np.int32)
    acc = np.ones(1, dtype=np.bool_)

    def _determinize():
        determinize(1, np.array([0, 1], dtype=np.int64), np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int32),
                    np.zeros(1, dtype=np.int32), np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int32), acc,
                    np.zeros(1, dtype=np.int32), True, 10, inf)

    def _columns():
        column_classes(np.zeros((1, 256), dtype=np.int32))
        frozen = np.zeros((1, 256), dtype=np.int32)
        frozen.setflags(write=False)  # as a ByteDFA's table
        key_columns(frozen, np.zeros(256, dtype=np.int64))

    def _regex_dfa():
        off, col, tgt, _, cls, _ = regex_dfa(1, i64, i64, i64, 0, 10, inf)
        edge_ranges(off, col, tgt, cls)
        widen(off, col, tgt, cls, np.empty((off.shape[0] - 1, 256), dtype=np.int32))

    def _ascii():
        wide = wide_templates()
        ascii_table(np.frombuffer(b"(a|[b-c.]){2,}", dtype=np.uint8), True, 10, inf, *wide)
        ascii_table(np.frombuffer(b"^", dtype=np.uint8), True, 10, inf, *wide)

    return {
        "determinize": _determinize,
        "pair_product": lambda: pair_product(one, one, acc, acc, 0, 10, inf),
        "minimize": lambda: minimize(one, acc, 0, np.zeros(1, dtype=np.int64), inf),
        "renumber": lambda: renumber(one, acc, 0, np.zeros(1, dtype=np.int64)),
        "columns": _columns,
        "regex_dfa": _regex_dfa,
        "regex_table": lambda: regex_table(1, i64, i64, i64, 0, 10, inf),
        "nfa_table": lambda: nfa_table(1, i64, i64, i64, 0, 10, inf),
        "trie": lambda: trie(np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64)),
        "ascii": _ascii,
    }


def _run_spec(kind: str, text: str, vocab: Vocabulary) -> None:
    from .matcher import CompiledGrammar
    from .specs import to_grammar

    grammar, report, name = to_grammar(_spec(kind))
    try:
        compiled = CompiledGrammar(grammar, vocab, report=report, name=name)
    except ConstrainError:
        return  # a vocabulary that cannot spell it: nothing to warm with it
    m = compiled.matcher(max_tokens=400) if kind == "json_budget" else compiled.matcher()
    for token in vocab.longest_match(text.encode("utf-8")):
        _checkpoint()
        m.mask_words()
        if not m.advance(token):
            break
    m.mask_words()


def _run_all(vocab: Vocabulary) -> None:
    from .bitmask import masks_equal

    with _caches.no_trace():
        for load in _automata_kernels().values():
            _checkpoint()
            load()
        for kind, text in _WARM_SPECS:
            _checkpoint()
            _run_spec(kind, text, vocab)
        _checkpoint()
        # (the lookup of a product state by its members, which shared walks ask for
        # where the specs above may not)
        from .automata.dfa import literal_dfa
        from .masking.lexer import _fill_rows, _find_product, _longest_paths

        _find_product(np.zeros(2, dtype=np.int64), np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int32),
                      np.full(4, -1, dtype=np.int64), np.zeros(1, dtype=np.int32))
        # (and the rows of a large block written in part, which the specs above are too small for)
        d = literal_dfa(b"a")
        depth = np.full(2, -1, dtype=np.int32)
        depth[0] = 0
        _fill_rows(np.empty((2, 256), dtype=np.int32), np.empty((2, 256), dtype=np.bool_), np.empty(2, dtype=np.bool_),
                   *d.class_table(), d.accepting, np.ones(256, dtype=np.bool_), 0, False, depth, 0, 10)
        _longest_paths(*d.class_table())
        a = np.zeros(vocab.bitmask_words, dtype=np.uint32)
        b = a.copy()
        b.setflags(write=False)
        masks_equal(b, a)


def default_jobs() -> int:
    """Worker processes a warm-up uses by default: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _save_vocab(vocab: Vocabulary, path: str) -> None:
    tokens = [vocab.token_bytes(i) for i in range(vocab.size)]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    np.savez(path, data=np.frombuffer(b"".join(tokens), dtype=np.uint8), lengths=lengths,
             eos=np.asarray(vocab.eos_token_ids, dtype=np.int64), special=np.flatnonzero(vocab.special_mask))


def _load_vocab(path: str) -> Vocabulary:
    with np.load(path) as f:
        data, lengths = f["data"].tobytes(), f["lengths"]
        eos, special = f["eos"].tolist(), f["special"].tolist()
    ends = np.cumsum(lengths).tolist()
    starts = [0] + ends[:-1]
    return Vocabulary([data[a:b] for a, b in zip(starts, ends)], special=special, eos_token_ids=eos)


def _worker(task: str, vocab_path: str) -> None:
    """One worker's part, ``python -c`` entry: an automata kernel group or a spec."""
    kernels = _automata_kernels()
    if task in kernels:
        kernels[task]()
        return
    for kind, text in _WARM_SPECS:
        if kind == task:
            _run_spec(kind, text, _load_vocab(vocab_path))
            return
    raise ValueError(f"no warm-up task named {task!r}")


def _in_workers(tasks: list[str], vocab_path: str, jobs: int) -> None:
    """Run ``tasks`` in at most ``jobs`` worker processes at once. A worker that fails
    leaves its kernels to be compiled here (its error is re-raised only when every one
    failed, since then something is wrong with the setup rather than with one kernel)."""
    code = "import sys; from constrain._warmup import _worker; _worker(sys.argv[1], sys.argv[2])"
    env = dict(os.environ, NUMBA_NUM_THREADS="1", CONSTRAIN_KERNELS="compiled")
    pending, running, failed = list(tasks), [], []
    while pending or running:
        while pending and len(running) < jobs:
            task = pending.pop(0)
            err = tempfile.TemporaryFile()  # (a pipe could fill up and block the worker)
            running.append((task, err, subprocess.Popen([sys.executable, "-c", code, task, vocab_path], env=env,
                                                         stdout=subprocess.DEVNULL, stderr=err)))
        time.sleep(0.02)
        still = []
        for task, err, proc in running:
            if proc.poll() is None:
                still.append((task, err, proc))
                continue
            if proc.returncode != 0:
                err.seek(0)
                failed.append((task, err.read().decode("utf-8", "replace")))
            err.close()
        running = still
    if failed and len(failed) == len(tasks):
        task, err = failed[0]
        raise RuntimeError(f"every warm-up worker failed; the first ({task}) said:\n{err[-2000:]}")


def _tiny_vocab() -> Vocabulary:
    words = [bytes([b]) for b in range(256)]
    words += [b'{"', b'":', b'", "', b"id", b"name", b"tags", b"warm", b" up", b"abc", b"defgh", b"ij", b"1.", b"12"]
    # tokens longer than the cuts of sliced walks (12 to 32 bytes)
    words += [b"abcdefghijklmnopqrstuvwxyz", b"abcdefghijklmnopqrstuvwxyzabcdefghijklm", b"extra_key_here"]
    return Vocabulary(words, eos_token_ids=[0])


def _vocabulary_tables(vocab: Vocabulary) -> bool:
    """Make the per-vocabulary tables a first spec would otherwise build in its compile
    or first mask (each once per vocabulary); whether any was missing."""
    from .masking.unique import prepare_index

    return prepare_index(vocab)


def warmup(vocab: Vocabulary | None = None, *, jobs: int = 1) -> float:
    """Load (or JIT-compile) every numba kernel the mask engine uses, once per process;
    the seconds it took.

    Kernels compile on first use anyway; a server calls this at start-up so that no
    request waits for them, and ``python -m constrain warmup`` fills the disk cache
    ahead of any process (an install step). ``jobs > 1`` compiles kernels missing from
    the disk cache in that many worker processes at once (the largest kernels take
    seconds each, so the gain is well under ``jobs``-fold: 1.2x with 2 cores on the
    machine of benchmarks/results/coldstart.json). ``vocab``: the vocabulary the masks will use
    (None: a small built-in one; the kernels are the same), whose tables that specs
    build on first need (token lookups, tokens in order, the uniqueItems index: about
    200 ms for a vocabulary of 150k tokens) are then made too, even where the kernels
    were loaded before. Leaves no trace in the caches of what specs compile to."""
    global _warmed
    t0 = time.perf_counter()
    _kernels.wait_compiled()  # (a background compile running: its end; else compiled from here on)
    made = vocab is not None and _vocabulary_tables(vocab)
    with _warm_lock:
        if _warmed:
            return time.perf_counter() - t0 if made else 0.0
        if vocab is None:
            vocab = _tiny_vocab()
        marker = _kernels.ready_marker()
        if jobs > 1 and not (marker and os.path.exists(marker)):  # (complete: every kernel just loads)
            with tempfile.TemporaryDirectory(prefix="constrain-warmup-") as tmp:
                path = os.path.join(tmp, "vocab.npz")
                _save_vocab(vocab, path)
                # automata kernels first (the specs' compiles need them), then the specs
                _in_workers(list(_automata_kernels()), path, jobs)
                _in_workers([kind for kind, _ in _WARM_SPECS], path, jobs)
        _run_all(vocab)
        _warmed = True
        _mark_ready()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------- prefetch
#
# With every kernel in the disk cache, loading them still takes a few hundred
# milliseconds (numba reads and links each one). A process that imports constrain
# usually loads a tokenizer next, for seconds: the kernels load meanwhile, in a thread,
# and the first compile finds them ready (measured in benchmarks/bench_coldstart.py).

_prefetch_thread: threading.Thread | None = None
_prefetch_lock = threading.Lock()
_exiting = threading.Event()


class _Stopped(Exception):
    """The interpreter is exiting: the prefetch thread stops between two kernels."""


def _checkpoint() -> None:
    if _exiting.is_set() and threading.current_thread() is _prefetch_thread:
        raise _Stopped


@atexit.register
def _stop_prefetch() -> None:
    """At exit, let the prefetch thread end at its next kernel and wait for it. A daemon
    thread left running is stopped by the interpreter the next time it takes the GIL,
    which may be inside LLVM's C++ code (numba's object cache calls back into Python
    there): the process then aborts ("terminate called without an active exception")
    instead of exiting."""
    with _prefetch_lock:
        _exiting.set()
        t = _prefetch_thread
    if t is not None and t is not threading.current_thread():
        t.join()


def _mark_ready() -> None:
    path = _kernels.ready_marker()
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("every kernel of the mask engine was compiled into this cache\n")
    except OSError:
        pass  # a read-only cache: prefetching is only an optimisation


def _prefetch() -> None:
    try:
        from . import _grammar_store

        _grammar_store._code()  # (the disk caches' source digest, made once per process)
        warmup()
    except Exception:  # noqa: BLE001 - the first compile will load (and report) the same (_Stopped too)
        pass


def prefetch() -> bool:
    """Load every kernel from the disk cache in a background thread, when a complete
    warm-up filled that cache before (``CONSTRAIN_PREFETCH=0`` turns it off); whether a
    thread started. ``import constrain`` calls it. Never compiles in the background on
    an empty cache: that would hold numba's compiler lock for a minute. A fork waits for
    the thread first (a child must not inherit the compiler lock held)."""
    global _prefetch_thread
    if _warmed or _prefetch_thread is not None or _kernels.interpreting():
        return False
    if os.environ.get("CONSTRAIN_PREFETCH", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    marker = _kernels.ready_marker()
    if marker is None or not os.path.exists(marker):
        return False
    with _prefetch_lock:
        if _exiting.is_set() or _prefetch_thread is not None:
            return False
        _prefetch_thread = threading.Thread(target=_prefetch, name="constrain-prefetch", daemon=True)
        _prefetch_thread.start()
    return True


def _before_fork() -> None:
    t = _prefetch_thread
    if t is not None and t.is_alive() and t is not threading.current_thread():
        t.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)
