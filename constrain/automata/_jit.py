"""The clock compile limits count on: it stops while numba compiles or loads a kernel.

numba compiles a kernel on its first call, or loads it from its on-disk cache: seconds on
a fresh install. A spec's time limit should measure the spec's own work, so limits read
:func:`clock`, which leaves out every span during which a thread held (or waited for)
numba's compiler lock. Kernels are then compiled when a spec first needs them, not all at
start-up, and no limit is spent on the JIT.

The pause is process-wide: while one thread compiles, every limit clock stops (the compile
holds numba's global lock, which any other thread's first call of a kernel waits on too).
"""

from __future__ import annotations

import threading
import time

from numba.core import event

__all__ = ["clock", "jit_seconds"]

_lock = threading.Lock()
_paused = 0.0  # seconds spent in numba's compiler, all threads, since import
_local = threading.local()


class _CompilerTimer(event.Listener):
    """Adds each outermost span of numba's compiler lock, per thread, to ``_paused``."""

    def on_start(self, ev) -> None:
        depth = getattr(_local, "depth", 0)
        if depth == 0:
            _local.t0 = time.perf_counter()
        _local.depth = depth + 1

    def on_end(self, ev) -> None:
        global _paused
        depth = getattr(_local, "depth", 1) - 1
        _local.depth = depth
        if depth == 0:
            spent = time.perf_counter() - _local.t0
            with _lock:
                _paused += spent


event.register("numba:compiler_lock", _CompilerTimer())


def jit_seconds() -> float:
    """Seconds this process has spent compiling or loading numba kernels."""
    return _paused


_last = float("-inf")


def clock() -> float:
    """``time.perf_counter()`` less the time spent in numba's compiler so far: the clock a
    compile limit counts on (kernels compare their deadline with it too). Never goes back:
    another thread's compile can pause it for longer than this thread has been running,
    and it then stands still instead."""
    global _last
    now = time.perf_counter() - _paused
    with _lock:
        if now > _last:
            _last = now
        return _last
