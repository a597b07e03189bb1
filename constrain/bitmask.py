"""Token bitmasks: int32 ``[batch, ceil(V/32)]``, bit ``t % 32`` of word ``t // 32`` set iff
token ``t`` is allowed (the layout XGrammar and llguidance use), and applying them to logits.

The mask engine keeps one mask as uint32 words (the same bits); the numba helpers below
build, hash and compare those."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from . import _caches

__all__ = [
    "allocate_bitmask", "apply_bitmask", "bitmask_words", "bits_from_ids", "mask_hash", "masks_equal", "set_bits",
]


def bitmask_words(vocab_size: int) -> int:
    return (int(vocab_size) + 31) // 32


def allocate_bitmask(batch: int, vocab_size: int) -> np.ndarray:
    """A new int32 bitmask ``[batch, ceil(vocab_size / 32)]`` with every token allowed.

    Use ``torch.from_numpy`` for a tensor view sharing the same memory."""
    if batch < 1 or vocab_size < 1:
        raise ValueError(f"batch and vocab_size must be positive, got {batch} and {vocab_size}")
    return np.full((batch, bitmask_words(vocab_size)), -1, dtype=np.int32)


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


def apply_bitmask(logits: Any, bitmask: Any, indices: Any = None) -> Any:
    """Set ``logits[i, t] = -inf`` in place wherever the bitmask disallows token ``t``.

    ``logits``: float ``[batch, V]`` (torch tensor on any device, or numpy); ``bitmask``:
    int32 ``[batch, ceil(V'/32)]`` (numpy or torch); tokens past the bitmask's width are
    disallowed. ``indices`` restricts the update to those rows. Returns ``logits``.
    """
    if isinstance(logits, np.ndarray):
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
    if logits.device.type == "cpu" and logits.is_contiguous() and logits.dtype in (torch.float32, torch.float64):
        rows = np.arange(logits.shape[0]) if indices is None else np.asarray(indices, dtype=np.int64)
        _apply_rows(logits.numpy(), bm.numpy(), rows.astype(np.int64), -np.inf)
        return logits
    bm = bm.to(logits.device, non_blocking=True)
    key = logits.device
    shifts = _SHIFTS.get(key)
    if shifts is None:
        shifts = _SHIFTS.setdefault(key, torch.arange(32, device=logits.device, dtype=torch.int32))
    vocab = logits.shape[1]
    rows_bm = bm if indices is None else bm[torch.as_tensor(indices, device=logits.device)]
    allowed = ((rows_bm.unsqueeze(-1) >> shifts) & 1).bool().reshape(rows_bm.shape[0], -1)
    if allowed.shape[1] >= vocab:
        allowed = allowed[:, :vocab]
    else:
        pad = torch.zeros(allowed.shape[0], vocab - allowed.shape[1], dtype=torch.bool, device=logits.device)
        allowed = torch.cat([allowed, pad], dim=1)
    if indices is None:
        logits.masked_fill_(~allowed, float("-inf"))
    else:
        idx = torch.as_tensor(indices, device=logits.device)
        logits[idx] = logits[idx].masked_fill(~allowed, float("-inf"))
    return logits


def _check_shapes(logits_shape: tuple, bm_shape: tuple) -> None:
    if len(bm_shape) != 2 or bm_shape[0] != logits_shape[0]:
        raise ValueError(f"bitmask shape {bm_shape} does not match logits batch {logits_shape[0]}")
