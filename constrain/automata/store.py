"""On-disk cache of terminal DFAs, shared by every process of a machine.

A terminal's DFA depends only on the terminal and on the code that builds it, so it is
stored under a hash of the terminal's description and of this package's source files in
``<cache_dir>/dfa-v1/``: a changed compiler never reads an older compiler's DFAs. Only DFAs
that took at least a millisecond to build are stored (reading a file back costs more than
building a small DFA). Files are written under a temporary name and renamed into place; a
file that cannot be read is ignored and rebuilt. ``CONSTRAIN_DISK_CACHE=0`` turns the
cache off.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import _caches
from .dfa import ByteDFA

__all__ = ["load", "save", "enabled"]

_FORMAT = "constrain-dfa-v1"
_MAX_STATES = 8192  # larger tables (8 MB and up) are rebuilt rather than stored


def enabled() -> bool:
    return os.environ.get("CONSTRAIN_DISK_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def worth_storing(build_seconds: float) -> bool:
    """Whether a DFA that took ``build_seconds`` to build is worth a file: reading one back
    costs a few hundred microseconds, more than building a small DFA again. The bound is
    ``CONSTRAIN_DISK_CACHE_MIN_MS`` milliseconds (default 1)."""
    try:
        bound = float(os.environ.get("CONSTRAIN_DISK_CACHE_MIN_MS", "1")) / 1000.0
    except ValueError:
        bound = 0.001
    return build_seconds >= bound


_code_digest: str | None = None


def _code() -> str:
    global _code_digest
    if _code_digest is None:
        h = hashlib.sha256(_FORMAT.encode())
        for src in sorted(Path(__file__).parent.glob("*.py")):
            h.update(src.name.encode() + b"\0" + src.read_bytes())
        _code_digest = h.hexdigest()
    return _code_digest


_ROOTS = _caches.cache("automata.store.roots", 8, "the DFA directory per cache location (environment)",
                       spec_free=True)


def _file(term: Any) -> str:
    # the directory per cache location (environment), looked up once
    env = (os.environ.get("CONSTRAIN_CACHE_DIR"), os.environ.get("XDG_CACHE_HOME"), os.environ.get("HOME"))
    root = _ROOTS.get(env)
    if root is None:
        root = os.path.join(str(_caches.cache_dir()), "dfa-v1")
        _ROOTS.put(env, root)
    digest = hashlib.sha256(f"{_code()}\0{term!r}".encode("utf-8")).hexdigest()
    return os.path.join(root, digest[:2], f"{digest}.npz")


def _path(term: Any) -> Path:
    return Path(_file(term))


def load(term: Any) -> ByteDFA | None:
    """The stored DFA of ``term``, or None (absent, unreadable or cache disabled)."""
    if not enabled():
        return None
    path = _file(term)
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            trans = data["transitions"]
            acc = data["accepting"]
    except (OSError, KeyError, ValueError):
        return None
    if trans.ndim != 2 or trans.shape[1] != 256 or acc.shape != (trans.shape[0],) or trans.shape[0] == 0:
        return None
    if trans.size and (trans.min() < -1 or trans.max() >= trans.shape[0]):
        return None
    return ByteDFA(trans, acc)


def save(term: Any, dfa: ByteDFA) -> None:
    """Store ``dfa`` for ``term`` (best effort: a full or read-only disk is not an error)."""
    if not enabled() or dfa.n_states > _MAX_STATES:
        return
    path = _path(term)
    if path.exists():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, transitions=dfa.transitions, accepting=dfa.accepting)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)  # type: ignore[possibly-undefined]
        except (OSError, NameError):
            pass
