"""``apply_bitmask`` backends against a plain reference: numba (host), torch (any device)
and the Triton kernel, run here by Triton's CPU interpreter (``TRITON_INTERPRET=1``) for
float32/bfloat16/float16, logits wider and narrower than the bitmask, and row subsets."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import constrain
from constrain.bitmask import apply_bitmask

triton = pytest.importorskip("triton")


def reference(logits: torch.Tensor, bitmask: torch.Tensor, rows) -> torch.Tensor:
    out = logits.clone()
    words = bitmask.numpy().view(np.uint32)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little").reshape(words.shape[0], -1)
    vocab = logits.shape[1]
    allowed = np.zeros((words.shape[0], vocab), dtype=bool)
    n = min(vocab, bits.shape[1])
    allowed[:, :n] = bits[:, :n].astype(bool)
    for r in (range(logits.shape[0]) if rows is None else rows):
        out[r, torch.from_numpy(~allowed[r])] = float("-inf")
    return out


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


CASES = [  # (batch, vocab, words)
    (1, 1000, 32), (3, 1000, 30), (2, 8192 * 2 + 17, (8192 * 2 + 17 + 31) // 32), (4, 300, 16), (2, 64, 2),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("batch, vocab, words", CASES)
@pytest.mark.parametrize("rows", [None, "subset"])
def test_triton_kernel_equals_reference(interpret, dtype, batch, vocab, words, rows):
    g = torch.Generator().manual_seed(batch * vocab + words)
    logits = torch.randn(batch, vocab, generator=g).to(dtype)
    bitmask = torch.randint(-2**31, 2**31 - 1, (batch, words), dtype=torch.int32, generator=g)
    bitmask[0, 0] = -1
    idx = None if rows is None else list(range(0, batch, 2))
    want = reference(logits, bitmask, idx)
    got = apply_bitmask(logits, bitmask, idx, backend="triton")
    assert got is logits
    assert torch.equal(logits, want)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_host_backends_equal_reference(backend):
    g = torch.Generator().manual_seed(0)
    for batch, vocab, words in CASES:
        logits = torch.randn(batch, vocab, generator=g)
        bitmask = torch.randint(-2**31, 2**31 - 1, (batch, words), dtype=torch.int32, generator=g)
        for idx in (None, [batch - 1]):
            x = logits.clone()
            apply_bitmask(x, bitmask, idx, backend=backend)
            assert torch.equal(x, reference(logits, bitmask, idx))


def test_numpy_bitmask_and_uint32_words_are_accepted(interpret):
    logits = torch.zeros(1, 40)
    words = constrain.allocate_bitmask(1, 40)
    words[0, 0] = 0b1011
    words[0, 1] = 0
    apply_bitmask(logits, words, backend="triton")
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [0, 1, 3]
    x = torch.zeros(1, 40)
    apply_bitmask(x, torch.from_numpy(words.view(np.uint32)), backend="torch")
    assert torch.equal(x, logits)


def test_backends_that_cannot_run_say_so(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    logits = torch.zeros(1, 32)
    bm = torch.full((1, 1), -1, dtype=torch.int32)
    with pytest.raises(ValueError, match="CUDA"):
        apply_bitmask(logits, bm, backend="triton")
    with pytest.raises(ValueError, match="one of"):
        apply_bitmask(logits, bm, backend="cuda")
    with pytest.raises(ValueError, match="numba"):
        apply_bitmask(logits.to(torch.bfloat16), bm, backend="numba")
    with pytest.raises(ValueError, match="int32"):
        apply_bitmask(logits, bm.to(torch.int64))
    # None picks numba for float32 on the host and torch for bfloat16
    y = logits.to(torch.bfloat16)
    apply_bitmask(y, torch.zeros((1, 1), dtype=torch.int32))
    assert torch.isinf(y).all()
    assert os.environ.get("TRITON_INTERPRET") is None
