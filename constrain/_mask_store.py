"""On-disk cache of token masks: a grammar compiled in an earlier process hands its masks
to the next one, which then serves them without a trie walk.

One file per compiled spec and vocabulary, in ``<cache_dir>/masks-v1/``, named by the
spec's plan key (which hashes the spec, the limits and this package's source, see
:mod:`constrain._grammar_store`) and the vocabulary's fingerprint. A mask is filed under
a key of its hypothesis set that does not depend on the order a process made states in
(:meth:`constrain.masking.masks.MaskEngine.hyp_key`). The file holds the keys, the
distinct masks and which mask each key has, in the flat format of the DFA store (magic,
CRC-32, a JSON header, plain arrays: nothing is unpickled); it is checked against its
plan key, vocabulary and mask width before use, and ignored when anything is off.
Written under a temporary name and renamed into place, in a background thread as masks
accumulate (hundreds at a time) and at exit; the directory is bounded with the other stores
(``CONSTRAIN_DISK_CACHE_MAX_MB``). ``CONSTRAIN_DISK_CACHE=0`` turns it off with the
other disk caches, ``CONSTRAIN_DISK_CACHE_MASKS=0`` alone.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import threading
import weakref
from typing import Any

import numpy as np

from .automata import store as _dfa_store

__all__ = ["MaskStore", "attach", "save_all"]

_FORMAT = "constrain-masks-v1"
KEY_BYTES = 16
MAX_KEYS = 8192  # hypothesis sets filed per grammar, at most
MAX_MASKS = 1024  # distinct masks per file, at most (19 KB each for a 151k vocabulary)
# New masks before a save in the background: this many, then as many as the file holds
# (each save rewrites the file, so all of them write at most twice what it ends with).
# Fewer wait for the save at exit. A save running beside the masks slows them (two
# cores: 60 dev schemas' masks took 96 us on average while a save followed every
# quarter more, 62 us without).
_SAVE_FIRST = 256


def _path(plan_key: str, fingerprint: str) -> str:
    digest = hashlib.sha256(f"{_FORMAT}\0{plan_key}\0{fingerprint}".encode()).hexdigest()
    return os.path.join(_dfa_store.root("masks-v1"), digest[:2], f"{digest}{_dfa_store.SUFFIX}")


class MaskStore:
    """The masks of one compiled grammar on disk: those an earlier process filed (read
    on first use) and those this process adds."""

    def __init__(self, path: str, plan_key: str, fingerprint: str, n_words: int):
        self.path = path
        self.plan_key = plan_key
        self.fingerprint = fingerprint
        self.n_words = n_words
        self._lock = threading.Lock()
        self._stored: dict[bytes, np.ndarray] | None = None  # None: not read yet
        self._new: dict[bytes, np.ndarray] = {}
        self._saved_count = 0  # entries the file held after the last read or write
        self._saving = False

    def get(self, key: bytes) -> np.ndarray | None:
        """The mask filed under ``key``, or None."""
        stored = self._stored
        if stored is None:
            stored = self._read()
        got = stored.get(key)
        return got if got is not None else self._new.get(key)

    def add(self, key: bytes, mask: np.ndarray) -> None:
        """File ``mask`` (read-only words) under ``key``; written in the background once
        enough new masks have come."""
        with self._lock:
            if len(self._new) + self._saved_count >= MAX_KEYS:
                return
            self._new[key] = mask
            _PENDING.add(self)
            due = len(self._new) >= max(_SAVE_FIRST, self._saved_count)
        if due:
            self.save_soon()

    def save_soon(self) -> None:
        """:meth:`save` in the background (one thread saves every file, in turn)."""
        with self._lock:
            if self._saving or not self._new:
                return
            self._saving = True
        _queue(self)

    def _read(self) -> dict[bytes, np.ndarray]:
        got = _dfa_store.read(self.path, self._parse) if _dfa_store.enabled() else None
        with self._lock:
            if self._stored is None:
                self._stored = got or {}
                self._saved_count = len(self._stored)
            return self._stored

    def _parse(self, f) -> dict[bytes, np.ndarray] | None:
        meta = json.loads(f["meta"].tobytes().decode("utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT or meta.get("plan") != self.plan_key \
                or meta.get("vocab") != self.fingerprint or meta.get("words") != self.n_words:
            return None
        keys, which, masks = f["keys"], f["which"], f["masks"]
        n = keys.shape[0]
        if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or keys.dtype != np.uint8 or which.shape != (n,) \
                or which.dtype != np.int32 or masks.ndim != 2 or masks.shape[1] != self.n_words \
                or masks.dtype != np.int32 or n > MAX_KEYS or masks.shape[0] > MAX_MASKS:
            return None
        if n and (which.min() < 0 or which.max() >= masks.shape[0]):
            return None
        words = masks.view(np.uint32)
        words.setflags(write=False)
        rows = [words[i] for i in range(words.shape[0])]
        return {keys[i].tobytes(): rows[j] for i, j in enumerate(which.tolist())}

    def save(self) -> None:
        """Write every mask filed so far (those read and the new ones), replacing the file."""
        stored = self._stored
        if stored is None:
            stored = self._read()
        with self._lock:
            if not self._new:
                return
            entries = {**stored, **self._new}
        index: dict[int, int] = {}
        distinct: list[np.ndarray] = []
        keys, which = [], []
        for key, mask in entries.items():
            j = index.get(id(mask))
            if j is None:
                if len(distinct) >= MAX_MASKS:
                    continue
                j = index[id(mask)] = len(distinct)
                distinct.append(mask)
            keys.append(key)
            which.append(j)
        meta = {"format": _FORMAT, "plan": self.plan_key, "vocab": self.fingerprint, "words": self.n_words}
        _dfa_store.write(self.path, {
            "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
            "keys": np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES),
            "which": np.asarray(which, dtype=np.int32),
            "masks": [m.view(np.int32) for m in distinct] if distinct else np.zeros((0, self.n_words), dtype=np.int32),
        })
        with self._lock:
            for key in entries:
                self._new.pop(key, None)
            # What is on disk is read again when next asked for, not held here: the
            # engine keeps the masks it uses in its own bounded memo.
            self._stored = None
            self._saved_count = len(entries)
            if not self._new:
                _PENDING.discard(self)

    def _save_in_background(self) -> None:
        try:
            self.save()
        finally:
            self._saving = False

    def __len__(self) -> int:
        return max(self._saved_count, len(self._stored or ())) + len(self._new)


_waiting: list[MaskStore] = []
_waiting_cv = threading.Condition()
_writer: threading.Thread | None = None


def _queue(store: MaskStore) -> None:
    """Hand ``store`` to the writer thread (started on first use)."""
    global _writer
    with _waiting_cv:
        _waiting.append(store)
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(target=_write_loop, name="constrain-mask-store", daemon=True)
            _writer.start()
        _waiting_cv.notify()


def _after_fork() -> None:
    # a forked child has no writer thread, and the parent's may have held the lock
    global _waiting_cv, _writer
    _waiting_cv = threading.Condition()
    _writer = None
    for store in _waiting:
        store._saving = False
    _waiting.clear()


os.register_at_fork(after_in_child=_after_fork)


def _write_loop() -> None:
    while True:
        with _waiting_cv:
            while not _waiting:
                _waiting_cv.wait()
            store = _waiting.pop(0)
        try:
            store._save_in_background()
        except Exception:  # noqa: BLE001 - a cache: a file not written is computed again
            pass


# Files with masks not written yet (held until they are: a grammar dropped from the
# caches before its file was written hands its masks to a background save).
_PENDING: set[MaskStore] = set()


def enabled() -> bool:
    """Whether masks are filed on disk: with the other disk caches, unless
    ``CONSTRAIN_DISK_CACHE_MASKS=0``."""
    flag = os.environ.get("CONSTRAIN_DISK_CACHE_MASKS", "1").strip().lower()
    return _dfa_store.enabled() and flag not in ("0", "false", "no", "off")


def attach(engine: Any, plan_key: str, fingerprint: str) -> None:
    """Give ``engine`` (a :class:`~constrain.masking.masks.MaskEngine`) the mask file of
    its spec and vocabulary; nothing when the disk cache is off."""
    if not enabled():
        return
    store = MaskStore(_path(plan_key, fingerprint), plan_key, fingerprint, engine.n_words)
    engine.attach_store(store)
    weakref.finalize(engine, store.save_soon).atexit = False  # (at exit: save_all)


@atexit.register
def save_all() -> None:
    """Write every file with masks not written yet (at exit, and for tests)."""
    for store in list(_PENDING):
        try:
            store.save()
        except Exception:  # noqa: BLE001 - best effort at exit: a cache, not state
            pass
