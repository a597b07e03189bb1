"""On-disk cache of compile plans: a spec seen by any earlier process skips its front end,
its terminals' DFAs and the grammar analysis.

A :class:`~constrain.compiler.Plan` is what a spec compiles to before any vocabulary
(reduced rules, terminal DFAs, the bytes that may follow each terminal), so one file
serves every vocabulary. Files live in ``<cache_dir>/grammar-v1/``, named by a hash of the
spec, the limits and this package's source (a changed compiler never reads an older
compiler's plans); each carries that hash inside and is checked against it, and its
arrays against each other, before use: a corrupt or foreign file is ignored (and
replaced), never unpickled. Written under a temporary name and renamed into place; the
directory is bounded as the DFA store is (``CONSTRAIN_DISK_CACHE_MAX_MB``, least
recently used first). Only plans that took a few milliseconds to make are stored.
``CONSTRAIN_DISK_CACHE=0`` turns it off, as it does the DFA store.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .automata import store as _dfa_store
from .compiler import Plan

__all__ = ["key", "load", "save", "worth_storing"]

_FORMAT = "constrain-plan-v3"
_MAX_BYTES = 64 << 20  # a plan larger than this is rebuilt rather than stored

_code_digest: str | None = None


def _code() -> str:
    """A hash of every source file of the package (path, size, modification time, as
    numba keys its own cache; reading them all would cost milliseconds): plans of another
    version, or of an edited source tree, never match."""
    global _code_digest
    if _code_digest is None:
        from . import __version__

        h = hashlib.sha256(f"{_FORMAT}\0{__version__}".encode())
        root = Path(__file__).parent
        for src in sorted(root.rglob("*.py")):
            st = src.stat()
            h.update(f"{src.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        _code_digest = h.hexdigest()
    return _code_digest


def key(spec_key: str, limits: Any) -> str:
    """The file key of a spec (its content hash, as the in-memory cache keys it) compiled
    within ``limits``."""
    return hashlib.sha256(f"{_code()}\0{spec_key}\0{limits!r}".encode()).hexdigest()


def worth_storing(seconds: float) -> bool:
    """Whether a plan that took ``seconds`` (front end included) is worth a file: loading
    one costs about a millisecond, so twice the DFA store's bound."""
    return _dfa_store.worth_storing(seconds / 2)


def _path(k: str) -> str:
    return os.path.join(_dfa_store.root("grammar-v1"), k[:2], f"{k}{_dfa_store.SUFFIX}")


def save(k: str, p: Plan, report: Any, name: str) -> None:
    """Store plan ``p`` (with the spec's report and display name) under key ``k``; best
    effort: a full or read-only disk is not an error."""
    if not _dfa_store.enabled():
        return
    dfas = list(p.dfas) + [p.references[i] for i in sorted(p.references)]
    packed = _dfa_store.pack(dfas)
    if packed["table"].nbytes + packed["cls"].nbytes > _MAX_BYTES:
        return
    meta = {
        "format": _FORMAT, "key": k, "start": p.start,
        "rules": [[head, [list(alt) for alt in alts]] for head, alts in p.rules.items()],
        "one_rule": p.one_rule, "used": p.used, "ignore": p.ignore, "references": sorted(p.references),
        "longest_match": p.longest_match, "separate_literals": p.separate_literals, "name": name,
        "report": None if report is None else [[e.pointer, e.keyword, e.status, e.note] for e in report.entries],
    }
    _dfa_store.write(_path(k), dict(meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
                                    follow=np.ascontiguousarray(p.follow, dtype=np.bool_), **packed))


def load(k: str) -> tuple[Plan, Any, str] | None:
    """The stored (plan, report, name) of key ``k``, or None: absent, unreadable, not
    consistent, another key's, or the cache disabled."""
    if not _dfa_store.enabled():
        return None
    return _dfa_store.read(_path(k), lambda f: _check(k, json.loads(f["meta"].tobytes().decode("utf-8")), f))


def _check(k: str, meta: dict, f) -> tuple[Plan, Any, str] | None:
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT or meta.get("key") != k:
        return None
    used, refs = list(meta["used"]), list(meta["references"])
    follow = f["follow"]
    if follow.shape != (len(used), 256) or follow.dtype != np.bool_:
        return None
    dfas = _dfa_store.unpack(f, len(used) + len(refs))
    if dfas is None:
        return None
    rules = {head: [tuple(alt) for alt in alts] for head, alts in meta["rules"]}
    start = meta["start"]
    symbols = set(used).union(rules)  # (JSON gives strings; anything else fails a lookup)
    if start not in rules or not all(symbols.issuperset(alt) for alts in rules.values() for alt in alts):
        return None
    ignore = [int(i) for i in meta["ignore"]]
    if any(not 0 <= i < len(used) for i in ignore) or any(not 0 <= int(i) < len(used) for i in refs):
        return None
    plan = Plan(
        start=start, rules=rules, one_rule=bool(meta["one_rule"]), used=[str(t) for t in used], dfas=dfas[: len(used)],
        ignore=ignore, follow=follow, references={int(i): d for i, d in zip(refs, dfas[len(used):])},
        longest_match=bool(meta["longest_match"]), separate_literals=bool(meta["separate_literals"]),
    )
    report = None
    if meta.get("report") is not None:
        from .frontends.json_schema.report import ReportEntry, SchemaReport

        report = SchemaReport([ReportEntry(*map(str, e)) for e in meta["report"]])
    return plan, report, str(meta.get("name", ""))
