"""How numba's kernels run: compiled, or as plain Python while an empty cache fills.

Every kernel of the package is a Python function over numpy arrays and integers that
numba compiles (:func:`njit` here, in place of numba's). numba compiles a kernel on its
first call and keeps the machine code in its disk cache; on a machine whose cache is
empty, the kernels a first request needs take about a minute of one core. A process that
finds the cache incomplete does not wait for that: it runs the very same functions as
Python (the same masks, at tens of milliseconds each instead of microseconds) and, once
it makes a vocabulary, starts ``python -m constrain warmup`` in the background, at low
priority, to compile every kernel into the disk cache (one such process per cache, the
others wait for it). When that is done, the process switches every kernel to its
compiled form in one step and loads them in a background thread; objects made before
the switch go on with the compiled kernels (both forms compute the same values on the
same arrays: hashes are explicit int64 arithmetic, which wraps the same way in numpy
and in numba). The background compile outlives a short script that started it: the next
process then starts compiled.

``CONSTRAIN_KERNELS`` picks the mode: ``auto`` (the default, as above), ``compiled``
(numba's own behaviour: each kernel compiled in this process on first use, as an install
step wants), ``python`` (never compiled, and nothing started in the background: for
debugging). A compile whose time limit runs out while its kernels are interpreted waits
for the compiled kernels and starts again (:func:`wait_compiled`): a spec is never
refused because the cache was cold.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numba

__all__ = ["njit", "interpreting", "start_background", "use_compiled", "wait_compiled", "ready_marker", "mode"]

# The package's files that hold kernels (a test checks this list against the sources):
# what the ready marker's name depends on, as numba's cache depends on their stamps.
KERNEL_FILES = (
    "_hashtable.py", "bitmask.py", "device_masks.py", "trie.py",
    "automata/_ascii.py", "automata/_bitset_dfa.py", "automata/_byte_classes.py", "automata/_determinize.py",
    "automata/_json_strings.py",
    "automata/_minimize.py", "automata/_product.py", "automata/_reach.py", "automata/_regex_dfa.py",
    "automata/_support.py", "grammar/_fixpoints.py",
    "masking/lexer.py", "masking/walk.py",
)

_lock = threading.RLock()
_kernels: dict[int, tuple[Callable, Any]] = {}  # id(Python function) -> (function, numba dispatcher)
_watcher: threading.Thread | None = None


def ready_marker() -> str | None:
    """The file a complete warm-up leaves in numba's cache directory, named after this
    Python and the kernels' sources (size and modification time, as numba keys its own
    cache): a changed kernel file means a new marker. None without a cache directory."""
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        return None
    h = hashlib.sha256(f"{sys.implementation.cache_tag}\0{sys.platform}\0{numba.__version__}".encode())
    here = Path(__file__).parent
    for name in KERNEL_FILES:
        try:
            st = (here / name).stat()
        except OSError:
            continue
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return os.path.join(root, f"constrain-kernels-{h.hexdigest()[:24]}.ready")


def _initial_mode() -> str:
    chosen = os.environ.get("CONSTRAIN_KERNELS", "auto").strip().lower()
    if chosen in ("compiled", "python"):
        return chosen
    if numba.config.DISABLE_JIT:
        return "compiled"  # numba hands back the functions themselves anyway
    marker = ready_marker()
    if marker is None:
        return "compiled"  # no cache to fill in the background
    return "compiled" if os.path.exists(marker) else "auto-python"


_mode = _initial_mode()


def mode() -> str:
    """``compiled``, ``python`` (chosen by ``CONSTRAIN_KERNELS``) or ``auto-python``
    (interpreted until the background compile is done)."""
    return _mode


def interpreting() -> bool:
    """Whether kernels run as Python in this process now."""
    return _mode != "compiled"


if _mode != "compiled":
    # numpy warns where int64 scalar arithmetic wraps; numba's does so silently, and the
    # hashes rely on it
    warnings.filterwarnings("ignore", message="overflow encountered", category=RuntimeWarning,
                            module=r"constrain\.")


def njit(**options: Any) -> Callable[[Callable], Any]:
    """numba's ``njit(**options)``, kept in the registry: the module gets the dispatcher,
    or the function itself while kernels run as Python."""

    def decorate(fn: Callable) -> Any:
        dispatcher = numba.njit(**options)(fn)
        with _lock:
            _kernels[id(fn)] = (fn, dispatcher)
            return fn if _mode != "compiled" else dispatcher

    return decorate


def use_compiled() -> bool:
    """Switch every kernel to its numba dispatcher, in every module of the package that
    holds it by name (its own, and those that imported it); whether anything changed.
    Kernels not in the disk cache then compile on first use."""
    global _mode
    with _lock:
        if _mode == "compiled":
            return False
        for name, module in list(sys.modules.items()):
            if module is None or not (name == "constrain" or name.startswith("constrain.")):
                continue
            space = vars(module)
            for attr, value in list(space.items()):
                got = _kernels.get(id(value))
                if got is not None and got[0] is value:
                    space[attr] = got[1]
        _mode = "compiled"
    return True


def start_background() -> None:
    """Have the kernels compiled into the disk cache in the background, then switch to
    them (see the module's docstring); nothing unless kernels run as Python in ``auto``
    mode. Called where a process first needs kernels (a vocabulary is made)."""
    global _watcher
    if _mode != "auto-python" or _watcher is not None:
        return
    with _lock:
        if _watcher is not None or _mode != "auto-python":
            return
        _watcher = threading.Thread(target=_watch, name="constrain-kernels", daemon=True)
        _watcher.start()


def wait_compiled(timeout: float | None = None) -> None:
    """Block until kernels run compiled: the background compile's end, or (with none
    running, or after ``timeout`` seconds) a switch now, kernels then compiling here on
    first use."""
    t = _watcher
    if t is not None and t is not threading.current_thread():
        t.join(timeout)
    use_compiled()


def _lock_path(marker: str) -> str:
    return os.path.join(os.path.dirname(marker), "constrain-warmup.lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # (someone else's process)
    return True


def _claim(path: str) -> str:
    """Take the warm-up lock of a cache (a file naming the compiling process), freeing
    one whose process is gone: ``ours``, ``theirs`` (a live process holds it) or ``none``
    (the cache cannot be written: nothing can be compiled into it)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError:
        return "none"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    pid = int(f.read().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                return "theirs"
            try:
                os.unlink(path)
            except OSError:
                return "none"
            continue
        except OSError:
            return "none"
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return "ours"
    return "theirs"


def _spawn(lock: str) -> subprocess.Popen | None:
    """Start the background warm-up (its pid replaces ours in the lock), or None."""
    from ._warmup import default_jobs

    jobs = max(1, default_jobs() - 1)  # a core left to this process
    env = dict(os.environ, CONSTRAIN_KERNELS="compiled")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "constrain", "warmup", "--jobs", str(jobs), "--background"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        try:
            os.unlink(lock)
        except OSError:
            pass
        return None
    try:
        with open(lock, "w") as f:
            f.write(str(proc.pid))
    except OSError:
        pass
    return proc


def _watch() -> None:
    """The background thread: start (or wait for) the warm-up, switch when it is done."""
    marker = ready_marker()
    proc: subprocess.Popen | None = None
    try:
        if marker is not None:
            lock = _lock_path(marker)
            while not os.path.exists(marker):
                if proc is None:
                    claim = _claim(lock)
                    if claim == "none":
                        break  # a cache nothing can be written to: compile here instead
                    if claim == "ours":
                        proc = _spawn(lock)
                        if proc is None:
                            break  # cannot start one: compile here instead
                elif proc.poll() is not None:
                    if not os.path.exists(marker):
                        break  # it failed: compile here instead
                    continue
                time.sleep(0.25)
    finally:
        if use_compiled() and marker is not None and os.path.exists(marker):
            from ._warmup import prefetch

            prefetch()  # every kernel loads from the disk cache in a thread of its own


def _after_fork_in_child() -> None:
    # Only the forking thread lives on in a child: a child of a process that was waiting
    # for the background compile waits for it with a thread of its own.
    global _watcher
    if _watcher is not None:
        _watcher = None
        start_background()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
