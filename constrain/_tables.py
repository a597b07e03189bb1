"""Tables that grow with a grammar's states, kept where the cyclic collector does not read.

A full collection reads every reference a tracked container holds: a list of ten
thousand parse states is ten thousand objects read, a cache miss each in a long-lived
process whose heap is fragmented (20 ms and more for a large grammar, inside a mask).
What a parser or a mask engine keeps per state is therefore held by containers the
collector stops tracking:

* :class:`Chunked`, an append-only sequence in chunks of :data:`CHUNK` entries: a full
  chunk becomes a tuple, which the collector stops tracking once its entries are
  untracked themselves (tuples of ints, tuples of those; not dicts: CPython keeps a
  tuple holding any dict tracked), so a full collection reads one reference per chunk;
* dicts whose keys and values are never tracked (ints, bytes) are never tracked
  themselves: :func:`ints_key` packs a sequence of ints into a bytes key, where a tuple
  key would make the dict tracked again at every insert until the next full collection;
* :class:`Recent`, a bounded map in plain dicts (an ``OrderedDict`` is always tracked:
  every entry read at every full collection), for int keys and arrays.
"""

from __future__ import annotations

from array import array
from itertools import chain
from typing import Any, Iterable, Iterator

__all__ = ["CHUNK", "SHIFT", "LOW", "Chunked", "Recent", "ints_key", "pairs_key"]

SHIFT = 10
CHUNK = 1 << SHIFT
LOW = CHUNK - 1  # entry i of a Chunked is chunks[i >> SHIFT][i & LOW]


class Chunked:
    """An append-only sequence: ``chunks[i >> SHIFT][i & LOW]`` is entry ``i``
    (hot paths index ``chunks`` themselves, a method call costs more than the lookup).
    Entries should be what the collector stops tracking (tuples of ints, tuples of
    those): a chunk holding a list or a dict stays tracked. Appends must not run
    concurrently (their owners append under their locks); reads may."""

    __slots__ = ("chunks", "_tail", "_n")

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._tail: list[Any] = []
        self.chunks: list[Any] = [self._tail]
        self._n = 0
        for item in items:
            self.append(item)

    def append(self, item: Any) -> int:
        """Adds ``item``; returns its index."""
        tail = self._tail
        tail.append(item)
        n = self._n
        self._n = n + 1
        if len(tail) == CHUNK:
            self.chunks[-1] = tuple(tail)
            self._tail = []
            self.chunks.append(self._tail)
        return n

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self.chunks[i >> SHIFT][i & LOW]

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Any]:
        return chain.from_iterable(self.chunks)


class Recent:
    """A map of at most ``capacity`` entries that keeps those used recently: entries
    go into a young dict; when it holds half the capacity, the old one is dropped and the
    young one becomes old; an old entry read moves back to the young one. Plain dicts, so
    with int keys and values the collector does not track (numpy arrays, ints, bytes),
    nothing here is ever read by a collection; and reads and writes are O(1) (dropping
    the oldest entry of one plain dict at a time is not: its iterator skips the holes of
    those dropped before). Values are never None (None means a miss)."""

    __slots__ = ("capacity", "_young", "_old")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(2, capacity)
        self._young: dict[Any, Any] = {}
        self._old: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        got = self._young.get(key)
        if got is None:
            got = self._old.pop(key, None)
            if got is not None:
                self._put_young(key, got)
        return got

    def peek(self, key: Any) -> Any:
        """The value of ``key`` without counting it as used."""
        got = self._young.get(key)
        return self._old.get(key) if got is None else got

    def put(self, key: Any, value: Any) -> None:
        self._old.pop(key, None)
        self._put_young(key, value)

    def _put_young(self, key: Any, value: Any) -> None:
        young = self._young
        young[key] = value
        if len(young) >= self.capacity // 2:
            self._old = young
            self._young = {}

    def drop_oldest(self) -> bool:
        """Drops one of the least recently used entries; False when empty."""
        for d in (self._old, self._young):
            if d:
                d.pop(next(iter(d)))
                return True
        return False

    def __len__(self) -> int:
        return len(self._young) + len(self._old)


def ints_key(items: Iterable[int]) -> bytes:
    """A dict key of a sequence of ints (each within int64), equal where the sequences are."""
    return array("q", items).tobytes()


def pairs_key(pairs: Iterable[tuple[int, int]]) -> bytes:
    """The same for a sequence of pairs of ints."""
    return array("q", chain.from_iterable(pairs)).tobytes()
