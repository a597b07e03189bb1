"""Token bitmasks: int32 ``[batch, ceil(V/32)]``, bit ``t % 32`` of word ``t // 32`` set iff
token ``t`` is allowed (the layout XGrammar and llguidance use), and applying them to logits.

The mask engine keeps one mask as uint32 words (the same bits); the numba helpers below
build, hash and compare those."""

from __future__ import annotations

from typing import Any

import numpy as np
from ._kernels import njit

from . import _caches

__all__ = [
    "allocate_bitmask", "apply_bitmask", "bitmask_words", "bits_from_ids", "ids_from_words", "mask_hash", "masks_equal",
    "set_bits",
]


def bitmask_words(vocab_size: int) -> int:
    return (int(vocab_size) + 31) // 32


def allocate_bitmask(batch: int, vocab_size: int) -> np.ndarray:
    """A new int32 bitmask ``[batch, ceil(vocab_size / 32)]`` with every token allowed.

    Use ``torch.from_numpy`` for a tensor view sharing the same memory."""
    if batch < 1 or vocab_size < 1:
        raise ValueError(f"batch and vocab_size must be positive, got {batch} and {vocab_size}")
    return np.full((batch, bitmask_words(vocab_size)), -1, dtype=np.int32)


def ids_from_words(words: np.ndarray, size: int) -> np.ndarray:
    """The token ids below ``size`` allowed by the uint32 words ``words``, sorted (only
    the nonzero words are unpacked: a mask of a few tokens reads a few words)."""
    nz = np.flatnonzero(words)
    bits = np.unpackbits(words[nz].view(np.uint8), bitorder="little").reshape(len(nz), 32)
    rows, cols = np.nonzero(bits)
    ids = nz[rows] * 32 + cols
    return ids[ids < size]


@njit(cache=True, nogil=True)
def set_bits(mask, ids):
    """Allow the tokens ``ids`` in ``mask`` (uint32 words)."""
    for k in range(ids.shape[0]):
        t = ids[k]
        mask[t >> 5] |= np.uint32(1) << np.uint32(t & 31)


@njit(cache=True, nogil=True)
def bits_from_ids(n_words, sorted_idx, trie_ids):
    """A mask of ``n_words`` uint32 words allowing the tokens ``trie_ids[sorted_idx]``."""
    mask = np.zeros(n_words, dtype=np.uint32)
    for k in range(sorted_idx.shape[0]):
        t = trie_ids[sorted_idx[k]]
        mask[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    return mask


@njit(cache=True, nogil=True)
def mask_hash(mask):
    """A 63-bit hash of a mask's uint32 words (equal masks hash alike; compare to be sure).

    A sum of each word times an odd weight of its position: a loop without a carried
    multiply, which the compiler vectorizes (a bit flipped anywhere changes the sum)."""
    h = np.uint64(0)
    for k in range(mask.shape[0]):
        h += np.uint64(mask[k]) * np.uint64(2 * k + 1)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return np.int64(h >> np.uint64(1))


@njit(cache=True, nogil=True)
def masks_equal(a, b):
    if a.shape[0] != b.shape[0]:
        return False
    for k in range(a.shape[0]):
        if a[k] != b[k]:
            return False
    return True


@njit(cache=True, nogil=True)
def _apply_rows(logits, bitmask, rows, neg):
    vocab = logits.shape[1]
    for r in range(rows.shape[0]):
        b = rows[r]
        for w in range(bitmask.shape[1]):
            word = bitmask[b, w]
            if word == -1:
                continue
            base = w * 32
            for k in range(32):
                t = base + k
                if t >= vocab:
                    break
                if not (word >> k) & 1:
                    logits[b, t] = neg
        for t in range(bitmask.shape[1] * 32, vocab):
            logits[b, t] = neg


@njit(cache=True, nogil=True)
def copy_rows(out, rows, which, sources):
    """``out[rows[i], :n] = sources[which[i]]`` for every i (n = the sources' width)."""
    n = sources.shape[1]
    for i in range(rows.shape[0]):
        dst = out[rows[i]]
        src = sources[which[i]]
        for w in range(n):
            dst[w] = src[w]


_SHIFTS = _caches.cache("bitmask.shifts", 16, "the tensor 0..31 per torch device", spec_free=True)


BACKENDS = ("triton", "torch", "numba")


def apply_bitmask(logits: Any, bitmask: Any, indices: Any = None, *, backend: str | None = None) -> Any:
    """Set ``logits[i, t] = -inf`` in place wherever the bitmask disallows token ``t``.

    ``logits``: float ``[batch, V]`` (torch tensor on any device, or numpy); ``bitmask``:
    int32 ``[batch, ceil(V'/32)]`` (numpy or torch, on the host or the logits' device);
    tokens past the bitmask's width are disallowed. ``indices`` restricts the update to
    those rows. ``backend``: ``"numba"`` (host logits), ``"triton"`` (CUDA logits, or host
    logits under ``TRITON_INTERPRET=1``), ``"torch"`` (any device), or None for the fastest
    available: numba on the host, Triton on a GPU when installed, else torch. A host
    bitmask bound for a GPU is staged in pinned memory and copied without blocking.
    Returns ``logits``; raises ValueError on bad shapes or a backend that cannot run here.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} or None, not {backend!r}")
    if isinstance(logits, np.ndarray):
        if backend not in (None, "numba"):
            raise ValueError(f"backend={backend!r} needs torch logits; numpy logits use 'numba'")
        bm = np.asarray(bitmask, dtype=np.int32)
        rows = np.arange(logits.shape[0]) if indices is None else np.asarray(indices, dtype=np.int64)
        _check_shapes(logits.shape, bm.shape)
        _apply_rows(logits, bm, rows.astype(np.int64), -np.inf)
        return logits
    import torch

    if logits.dim() != 2:
        raise ValueError(f"logits must be [batch, vocab], got shape {tuple(logits.shape)}")
    bm = torch.as_tensor(bitmask)
    _check_shapes(tuple(logits.shape), tuple(bm.shape))
    if bm.dtype == torch.uint32:
        bm = bm.view(torch.int32)
    elif bm.dtype != torch.int32:
        raise ValueError(f"bitmask must be int32, not {bm.dtype}")
    on_host = logits.device.type == "cpu"
    numba_ok = on_host and logits.is_contiguous() and logits.dtype in (torch.float32, torch.float64)
    if backend is None:
        backend = "numba" if numba_ok else "triton" if not on_host and _triton_available() else "torch"
    if backend == "numba":
        if not numba_ok:
            raise ValueError("backend='numba' needs contiguous float32/float64 logits on the CPU")
        rows = np.arange(logits.shape[0]) if indices is None else np.asarray(indices, dtype=np.int64)
        _apply_rows(logits.numpy(), bm.cpu().numpy(), rows.astype(np.int64), -np.inf)
        return logits
    bm = _to_device(bm, logits.device)
    idx = None if indices is None else torch.as_tensor(indices, device=logits.device, dtype=torch.int64)
    if backend == "triton":
        from .bitmask_triton import apply_bitmask_triton, interpreting

        if on_host and not interpreting():
            raise ValueError("backend='triton' runs on CUDA tensors (or on the CPU under TRITON_INTERPRET=1)")
        if logits.stride(1) != 1 or logits.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError("backend='triton' needs float32/bfloat16/float16 logits with unit stride along the vocabulary")
        apply_bitmask_triton(logits, bm.contiguous(), idx)
        return logits
    shifts = _SHIFTS.get(logits.device)
    if shifts is None:
        shifts = _SHIFTS.setdefault(logits.device, torch.arange(32, device=logits.device, dtype=torch.int32))
    vocab = logits.shape[1]
    rows_bm = bm if idx is None else bm[idx]
    allowed = ((rows_bm.unsqueeze(-1) >> shifts) & 1).bool().reshape(rows_bm.shape[0], -1)
    if allowed.shape[1] >= vocab:
        allowed = allowed[:, :vocab]
    else:
        pad = torch.zeros(allowed.shape[0], vocab - allowed.shape[1], dtype=torch.bool, device=logits.device)
        allowed = torch.cat([allowed, pad], dim=1)
    if idx is None:
        logits.masked_fill_(~allowed, float("-inf"))
    else:
        logits[idx] = logits[idx].masked_fill(~allowed, float("-inf"))
    return logits


def _triton_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("triton") is not None


class _PinnedStage:
    """A ring of pinned host buffers per (device, shape): a host bitmask is copied into
    the next one and uploaded with ``non_blocking=True``; an event recorded after the
    upload keeps a buffer from being rewritten before its copy has left."""

    SLOTS = 4

    def __init__(self) -> None:
        self.rings: dict[tuple, list] = {}
        self.turn: dict[tuple, int] = {}

    def upload(self, bm: Any, device: Any) -> Any:
        import torch

        key = (str(device), tuple(bm.shape))
        ring = self.rings.get(key)
        if ring is None:
            if len(self.rings) >= 16:  # batch sizes come and go: keep the buffers bounded
                self.rings.clear()
                self.turn.clear()
            ring = self.rings[key] = [[torch.empty(bm.shape, dtype=torch.int32).pin_memory(), None]
                                      for _ in range(self.SLOTS)]
            self.turn[key] = 0
        i = self.turn[key]
        self.turn[key] = (i + 1) % self.SLOTS
        slot = ring[i]
        if slot[1] is not None:
            slot[1].synchronize()  # the upload that last used this buffer has finished
        slot[0].copy_(bm)
        out = slot[0].to(device, non_blocking=True)
        slot[1] = torch.cuda.Event()
        slot[1].record(torch.cuda.current_stream(device))
        return out


_STAGE = _caches.per_thread("bitmask.pinned", "pinned host buffers for bitmask uploads to a GPU")


def _to_device(bm: Any, device: Any) -> Any:
    if bm.device == device:
        return bm
    if bm.device.type == "cpu" and device.type == "cuda":
        stage = getattr(_STAGE, "stage", None)
        if stage is None:
            stage = _STAGE.stage = _PinnedStage()
        return stage.upload(bm, device)
    return bm.to(device)


def _check_shapes(logits_shape: tuple, bm_shape: tuple) -> None:
    if len(bm_shape) != 2 or bm_shape[0] != logits_shape[0]:
        raise ValueError(f"bitmask shape {bm_shape} does not match logits batch {logits_shape[0]}")
