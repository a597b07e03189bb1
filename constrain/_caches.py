"""The process state of constrain, in one place: every cache registered by name, with its bound.

Caches of what a spec compiled to (grammars, terminal DFAs, whole-vocabulary walks) are
dropped by :func:`clear`; what depends on no spec (the parsers of one-rule grammars,
templates made once, per-thread work buffers, cache directories) is registered as
``spec_free`` and kept. :func:`no_trace` undoes what a block added to the former (how
``constrain.warmup`` compiles without warming a later compile). :func:`cache_dir` is the
directory of the on-disk caches.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["LRU", "Cache", "cache", "per_thread", "registry", "clear", "no_trace", "cache_dir", "numba_cache_dir"]


class LRU:
    """A map of at most ``capacity`` entries that drops the least recently used first.

    Not locked: for state that one lock already guards (a compiled grammar's masks).
    Values are never None (None means a miss)."""

    __slots__ = ("capacity", "data")

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.data: OrderedDict = OrderedDict()

    def get(self, key: Any) -> Any:
        got = self.data.get(key)
        if got is not None:
            self.data.move_to_end(key)
        return got

    def put(self, key: Any, value: Any) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        if len(self.data) > self.capacity:
            self.data.popitem(last=False)

    def __len__(self) -> int:
        return len(self.data)


class Cache(LRU):
    """A process-wide :class:`LRU`, thread-safe, registered under ``name``; ``about``
    says what it holds and why its bound is what it is."""

    __slots__ = ("name", "about", "spec_free", "_lock")

    def __init__(self, name: str, capacity: int, about: str, *, spec_free: bool = False):
        super().__init__(capacity)
        self.name = name
        self.about = about
        self.spec_free = spec_free
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            got = self.data.get(key)
            if got is not None:
                self.data.move_to_end(key)
            return got

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            LRU.put(self, key, value)

    def setdefault(self, key: Any, value: Any) -> Any:
        """The value of ``key``, stored as ``value`` when absent."""
        with self._lock:
            got = self.data.get(key)
            if got is None:
                LRU.put(self, key, value)
                return value
            self.data.move_to_end(key)
            return got

    def keys(self) -> frozenset:
        with self._lock:
            return frozenset(self.data)

    def drop_new(self, before: frozenset) -> None:
        """Drop the entries whose keys are not in ``before``."""
        with self._lock:
            for key in [k for k in self.data if k not in before]:
                del self.data[key]

    def clear(self) -> None:
        with self._lock:
            self.data.clear()


class PerThread(threading.local):
    """Per-thread state (work buffers), registered for the record: each thread holds its
    own, bounded by what its largest call needed, and frees it when it ends."""

    def __init__(self, name: str, about: str):
        self.name = name
        self.about = about
        self.spec_free = True


_REGISTRY: dict[str, Cache | PerThread] = {}
_registry_lock = threading.Lock()


def _register(entry):
    with _registry_lock:
        if entry.name in _REGISTRY:
            raise ValueError(f"a cache named {entry.name!r} is registered already")
        _REGISTRY[entry.name] = entry
    return entry


def cache(name: str, capacity: int, about: str, *, spec_free: bool = False) -> Cache:
    """A new process-wide LRU cache of at most ``capacity`` entries, registered under ``name``."""
    return _register(Cache(name, capacity, about, spec_free=spec_free))


def per_thread(name: str, about: str) -> PerThread:
    """A new registered ``threading.local``."""
    return _register(PerThread(name, about))


def registry() -> dict[str, Cache | PerThread]:
    """Every registered cache by name (a copy)."""
    with _registry_lock:
        return dict(_REGISTRY)


def _spec_caches() -> list[Cache]:
    return [c for c in registry().values() if not c.spec_free]


def clear() -> None:
    """Empty every cache of what specs compiled to; ``spec_free`` ones are kept."""
    for c in _spec_caches():
        c.clear()


@contextmanager
def no_trace() -> Iterator[None]:
    """Within the block, caches of what specs compiled to fill as usual; on leaving it,
    what the block added is dropped again (also what other threads added meanwhile;
    entries the block pushed out stay out)."""
    before = [(c, c.keys()) for c in _spec_caches()]
    try:
        yield
    finally:
        for c, keys in before:
            c.drop_new(keys)


def cache_dir() -> Path:
    """The directory of constrain's on-disk caches, created when missing:
    ``$CONSTRAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/constrain``, else ``~/.cache/constrain``."""
    root = os.environ.get("CONSTRAIN_CACHE_DIR")
    if root:
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "constrain"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _numba_version() -> str:
    """numba's version without importing it (its import takes a good part of a second)."""
    from importlib import metadata

    try:
        return metadata.version("numba")
    except metadata.PackageNotFoundError:
        return "unknown"


def numba_cache_dir() -> str | None:
    """Point numba's kernel cache at ``<cache_dir>/numba/<numba version>`` and return it,
    so that an install in a read-only place still keeps its compiled kernels (and all of
    constrain's caches lie in one directory). The version is part of the path because
    numba keeps one index per source file and drops every entry written by another
    version: two environments with different numbas (an engine's own venv beside the
    main one) would otherwise recompile each other's kernels at every switch. A
    ``NUMBA_CACHE_DIR`` set by the user wins. None when no cache directory can be made
    (numba then uses its own default)."""
    import sys

    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if not chosen:
        try:
            chosen = str(cache_dir() / "numba" / _numba_version())
        except OSError:
            return None
        os.environ["NUMBA_CACHE_DIR"] = chosen  # read when numba is imported, here and in workers
    config = sys.modules.get("numba.core.config")
    if config is not None and not config.CACHE_DIR:
        config.CACHE_DIR = chosen  # numba was imported first: kernels decorated later use it
    return chosen
