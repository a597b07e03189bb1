"""On-disk cache of terminal DFAs, shared by every process of a machine.

A terminal's DFA depends only on the terminal and on the code that builds it, so it is
stored under a hash of the terminal's description and of this package's source files in
``<cache_dir>/dfa-v1/``: a changed compiler never reads an older compiler's DFAs. Files are
written under a temporary name and renamed into place; a file that cannot be read is
ignored and rebuilt. ``CONSTRAIN_DISK_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .dfa import ByteDFA

__all__ = ["load", "save", "enabled"]

_FORMAT = "constrain-dfa-v1"
_MAX_STATES = 8192  # larger tables (8 MB and up) are rebuilt rather than stored


def enabled() -> bool:
    return os.environ.get("CONSTRAIN_DISK_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


_code_digest: str | None = None


def _code() -> str:
    global _code_digest
    if _code_digest is None:
        h = hashlib.sha256(_FORMAT.encode())
        for src in sorted(Path(__file__).parent.glob("*.py")):
            h.update(src.name.encode() + b"\0" + src.read_bytes())
        _code_digest = h.hexdigest()
    return _code_digest


def _path(term: Any) -> Path:
    from ..assets import cache_dir

    digest = hashlib.sha256(f"{_code()}\0{term!r}".encode("utf-8")).hexdigest()
    return cache_dir() / "dfa-v1" / digest[:2] / f"{digest}.npz"


def load(term: Any) -> ByteDFA | None:
    """The stored DFA of ``term``, or None (absent, unreadable or cache disabled)."""
    if not enabled():
        return None
    path = _path(term)
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
