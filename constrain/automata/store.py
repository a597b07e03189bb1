"""On-disk cache of terminal DFAs, shared by every process of a machine.

A terminal's DFA depends only on the terminal and on the code that builds it, so it is
stored under a hash of the terminal's description and of this package's source files in
``<cache_dir>/dfa-v1/``: a changed compiler never reads an older compiler's DFAs. Only DFAs
that took at least a millisecond to build are stored (reading a file back costs more than
building a small DFA). Files are written under a temporary name and renamed into place; a
file that cannot be read is ignored and rebuilt (never unpickled). The directory is
bounded: past ``CONSTRAIN_DISK_CACHE_MAX_MB`` megabytes (default 512) the least recently
used files go, down to three quarters of it (a load marks a file used). ``CONSTRAIN_DISK_CACHE=0``
turns the cache off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from .. import _caches
from .dfa import ByteDFA

__all__ = ["load", "save", "enabled", "max_bytes", "evict", "pack", "unpack", "root", "read", "write"]

T = TypeVar("T")

_FORMAT = "constrain-dfa-v3"
_MAX_STATES = 65536  # larger DFAs are rebuilt rather than stored


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
    """A hash of the automata sources (name, size, modification time, as numba keys its
    own cache; reading them would cost milliseconds)."""
    global _code_digest
    if _code_digest is None:
        h = hashlib.sha256(_FORMAT.encode())
        for src in sorted(Path(__file__).parent.glob("*.py")):
            st = src.stat()
            h.update(f"{src.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        # \p{...} classes come from the regex package's Unicode data
        spec = importlib.util.find_spec("regex")
        if spec is not None and spec.origin:
            st = os.stat(spec.origin)
            h.update(f"regex\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        _code_digest = h.hexdigest()
    return _code_digest


_ROOTS = _caches.cache("automata.store.roots", 8, "the on-disk stores' directories per cache location "
                       "(environment) and store name", spec_free=True)


def root(name: str) -> str:
    """The directory of the on-disk store ``name`` under :func:`constrain._caches.cache_dir`,
    looked up once per cache location (environment)."""
    key = (os.environ.get("CONSTRAIN_CACHE_DIR"), os.environ.get("XDG_CACHE_HOME"), os.environ.get("HOME"), name)
    got = _ROOTS.get(key)
    if got is None:
        got = os.path.join(str(_caches.cache_dir()), name)
        _ROOTS.put(key, got)
    return got


_MAGIC = b"CNSTARR1"
_DTYPES = ("|b1", "|u1", "<i4", "<i8")  # what stored arrays may be (never objects: nothing is unpickled)
SUFFIX = ".arr"


def _encode(arrays: dict[str, Any]) -> bytes:
    """``arrays`` as one flat file: magic, header length and CRC-32 of the rest, a JSON
    header (name, dtype, shape, offset of each array), the arrays' bytes 8-aligned. An
    entry may be a list of equal 1-D arrays: the rows of one 2-D array, joined straight
    into the file's bytes (no stacked copy of them is made first)."""
    entries, pieces, off = [], [], 0
    for name, a in arrays.items():
        if isinstance(a, list):
            if not a:
                raise ValueError(f"no rows for {name!r}")
            rows = [np.ascontiguousarray(r) for r in a]
            dtype, shape = rows[0].dtype, [len(rows)] + list(rows[0].shape)
            if any(r.dtype != dtype or r.shape != rows[0].shape for r in rows):
                raise ValueError(f"rows of {name!r} differ in shape or dtype")
        else:
            rows = [np.ascontiguousarray(a)]
            dtype, shape = rows[0].dtype, list(rows[0].shape)
        if dtype.str not in _DTYPES:
            raise TypeError(f"cannot store an array of dtype {dtype}")
        entries.append([name, dtype.str, shape, off])
        size = sum(r.nbytes for r in rows)
        pieces.extend(memoryview(r).cast("B") for r in rows)
        pad = -size % 8
        pieces.append(b"\0" * pad)
        off += size + pad
    header = json.dumps(entries).encode("utf-8")
    header += b" " * (-len(header) % 8)
    body = header + b"".join(pieces)
    return _MAGIC + struct.pack("<II", len(header), zlib.crc32(body)) + body


def _decode(buf: bytearray) -> dict[str, np.ndarray] | None:
    """The arrays of :func:`_encode`'s bytes, or None for anything else (torn, altered,
    another format)."""
    if len(buf) < 16 or bytes(buf[:8]) != _MAGIC:
        return None
    n, crc = struct.unpack_from("<II", buf, 8)
    view = memoryview(buf)[16:]
    if n > len(view) or zlib.crc32(view) != crc:
        return None
    entries = json.loads(bytes(view[:n]).decode("utf-8"))
    out = {}
    for name, dtype, shape, off in entries:
        if dtype not in _DTYPES or not isinstance(name, str):
            return None
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        start = n + int(off)
        if off < 0 or start + count * dt.itemsize > len(view):
            return None
        out[name] = np.frombuffer(buf, dtype=dt, count=count, offset=16 + start).reshape(shape)
    return out


def read(path: str, parse: Callable[[Any], T | None]) -> T | None:
    """``parse`` of the arrays stored at ``path`` (a mapping of names to arrays), or None:
    absent, unreadable, torn or altered (its CRC), or what ``parse`` rejects. A file read
    back is marked used (its modification time), for :func:`evict`."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = bytearray(size)
            if f.readinto(buf) != size:
                return None
    except OSError:
        return None
    try:
        arrays = _decode(buf)
        got = None if arrays is None else parse(arrays)
    except Exception:  # noqa: BLE001 - any file that does not read back is absent
        return None
    if got is not None:
        try:
            os.utime(path)  # used now: the last file eviction takes
        except OSError:
            pass
    return got


def write(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` under a temporary name, renamed into place, then keep
    the store within its bound (:func:`evict`). Best effort: a full or read-only disk is
    not an error."""
    tmp = None
    try:
        # One buffer, one CRC, one write: the CRC and the write of a large buffer release
        # the GIL, and each release costs a thread computing masks beside a background
        # save a hand-over of it (written mask by mask, 200 dev schemas' masks took 107-127
        # us on average beside the saves, 90-97 us written at once)
        data = _encode(arrays)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=os.path.dirname(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        tmp = None
        _written(path)
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _file(term: Any) -> str:
    digest = hashlib.sha256(f"{_code()}\0{term!r}".encode("utf-8")).hexdigest()
    return os.path.join(root("dfa-v1"), digest[:2], f"{digest}{SUFFIX}")


def _path(term: Any) -> Path:
    return Path(_file(term))


def _one_dfa(data) -> ByteDFA | None:
    got = unpack(data, 1)
    return None if got is None else got[0]


def load(term: Any) -> ByteDFA | None:
    """The stored DFA of ``term``, or None (absent, unreadable or cache disabled)."""
    if not enabled():
        return None
    return read(_file(term), _one_dfa)


def save(term: Any, dfa: ByteDFA) -> None:
    """Store ``dfa`` for ``term`` (best effort: a full or read-only disk is not an error)."""
    if not enabled() or dfa.n_states > _MAX_STATES:
        return
    path = _file(term)
    if not os.path.exists(path):
        write(path, pack([dfa]))


def pack(dfas: list[ByteDFA]) -> dict[str, np.ndarray]:
    """DFAs as a few flat arrays, each table cut down to its distinct columns (a DFA's 256
    byte columns fall into a handful of classes): ``n`` states and ``k`` classes per DFA,
    ``cls`` [len, 256] (the class of each byte), ``table`` (the [n, k] tables, flat) and
    ``acc`` (accepting flags, flat). A tenth to a hundredth of the dense tables."""
    ns, ks, classes, tables, accs = [], [], [], [], []
    for d in dfas:
        table, cls = d.compact()  # (no 256-column table made for a DFA made without one)
        ns.append(table.shape[0])
        ks.append(table.shape[1])
        classes.append(cls.astype(np.uint8))
        tables.append(table.reshape(-1))
        accs.append(d.accepting)
    return {
        "n": np.asarray(ns, dtype=np.int64), "k": np.asarray(ks, dtype=np.int64),
        "cls": np.stack(classes) if classes else np.zeros((0, 256), dtype=np.uint8),
        "table": np.concatenate(tables).astype(np.int32) if tables else np.zeros(0, dtype=np.int32),
        "acc": np.concatenate(accs).astype(np.bool_) if accs else np.zeros(0, dtype=np.bool_),
    }


def unpack(arrays, count: int) -> list[ByteDFA] | None:
    """The ``count`` DFAs of :func:`pack`'s arrays (a mapping of names to arrays), or
    None when the arrays do not hold that many consistent DFAs."""
    n, k, cls, table, acc = (np.asarray(arrays[x]) for x in ("n", "k", "cls", "table", "acc"))
    acc.setflags(write=False)  # shared, as slices, by the DFAs made here
    if (n.shape != (count,) or k.shape != (count,) or cls.shape != (count, 256) or cls.dtype != np.uint8
            or table.dtype != np.int32 or acc.dtype != np.bool_ or table.ndim != 1 or acc.ndim != 1):
        return None
    if count and ((n <= 0).any() or (k <= 0).any() or (k > 256).any()):
        return None
    sizes = n * k
    if int(sizes.sum()) != table.shape[0] or int(n.sum()) != acc.shape[0]:
        return None
    if count and (cls >= k[:, None]).any():
        return None
    if table.size:  # every transition inside its own DFA
        if table.min() < -1 or (table >= np.repeat(n, sizes)).any():
            return None
    out = []
    t_off = a_off = 0
    for i in range(count):
        ni, ki = int(n[i]), int(k[i])
        small = table[t_off : t_off + ni * ki].reshape(ni, ki)
        # over the byte classes the table was cut to (a partition it respects, as a pass
        # over the table would find again); its 256-column table is made if asked for
        out.append(ByteDFA.of_classes(small, cls[i].astype(np.int64), acc[a_off : a_off + ni]))
        t_off += ni * ki
        a_off += ni
    return out


def max_bytes() -> int:
    """The directory's bound in bytes: ``CONSTRAIN_DISK_CACHE_MAX_MB`` (default 512)."""
    try:
        mb = float(os.environ.get("CONSTRAIN_DISK_CACHE_MAX_MB", "512"))
    except ValueError:
        mb = 512.0
    return max(0, int(mb * (1 << 20)))


_CHECK_EVERY = 1 << 24  # bytes a process writes between two looks at the directory's size
_since_check = _CHECK_EVERY  # the first file a process writes triggers a look
_check_lock = threading.Lock()


def _written(path: str) -> None:
    global _since_check
    try:
        size = os.path.getsize(path)
    except OSError:
        return
    with _check_lock:
        _since_check += size
        if _since_check < _CHECK_EVERY:
            return
        _since_check = 0
    evict(os.path.dirname(os.path.dirname(path)))


def evict(root: str, limit: int | None = None) -> int:
    """Bring the store under ``root`` within ``limit`` bytes (default :func:`max_bytes`):
    when over it, delete the least recently used files until three quarters of it
    remain. Returns the bytes deleted. Files other processes delete meanwhile are skipped."""
    if limit is None:
        limit = max_bytes()
    files = []
    total = 0
    try:
        subdirs = [e.path for e in os.scandir(root) if e.is_dir()]
    except OSError:
        return 0
    for d in subdirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if not e.name.endswith((SUFFIX, ".npz")):  # (.npz: an older format, evicted in turn)
                continue
            try:
                st = e.stat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, e.path))
            total += st.st_size
    if total <= limit:
        return 0
    files.sort()
    target = limit * 3 // 4
    freed = 0
    for _, size, path in files:
        if total - freed <= target:
            break
        try:
            os.unlink(path)
            freed += size
        except OSError:
            pass
    return freed
