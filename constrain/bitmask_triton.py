"""The Triton kernel behind ``apply_bitmask(..., backend="triton")``.

One program per (row, block of ``32 * WORDS`` tokens): it reads the block's int32 words
once, expands them to bits in registers and writes ``-inf`` where a bit is clear (and for
every token past the bitmask's width). Logits may be float32, bfloat16 or float16, wider
or narrower than the bitmask; ``rows`` restricts the update to some rows.

The kernel runs on CUDA tensors, and on CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1``), which is how the test suite checks it without a GPU. Triton
decides between compiling and interpreting when a function is wrapped, so the wrapping
happens at first use, once per mode."""

from __future__ import annotations

import os
from typing import Any

WORDS_PER_PROGRAM = 256  # 8,192 tokens per program
_KERNELS: dict[bool, Any] = {}


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _kernel() -> Any:
    mode = interpreting()
    kernel = _KERNELS.get(mode)
    if kernel is None:
        import triton
        import triton.language as tl

        def apply_bitmask_kernel(logits_ptr, bitmask_ptr, rows_ptr, vocab, n_words, logits_stride, bitmask_stride,
                                 HAS_ROWS: tl.constexpr, WORDS: tl.constexpr):
            pid = tl.program_id(0)
            row = tl.load(rows_ptr + pid) if HAS_ROWS else pid
            w = tl.program_id(1) * WORDS + tl.arange(0, WORDS)
            words = tl.load(bitmask_ptr + row * bitmask_stride + w, mask=w < n_words, other=0)
            bit = tl.arange(0, 32)
            token = w[:, None] * 32 + bit[None, :]
            clear = ((words[:, None] >> bit[None, :]) & 1) == 0
            tl.store(logits_ptr + row * logits_stride + token, float("-inf"), mask=clear & (token < vocab))

        kernel = _KERNELS[mode] = triton.jit(apply_bitmask_kernel)
    return kernel


def apply_bitmask_triton(logits: Any, bitmask: Any, rows: Any | None) -> None:
    """``logits[r, t] = -inf`` where ``bitmask[r]`` clears ``t``, for each ``r`` of ``rows``
    (all rows when None). ``logits`` must have unit stride along the vocabulary;
    ``bitmask`` is int32 on the same device; ``rows`` an int64 tensor there."""
    import triton

    n_rows = logits.shape[0] if rows is None else rows.shape[0]
    if n_rows == 0:
        return
    vocab = logits.shape[1]
    grid = (n_rows, triton.cdiv(vocab, 32 * WORDS_PER_PROGRAM))
    _kernel()[grid](logits, bitmask, rows if rows is not None else bitmask, vocab, bitmask.shape[1],
                    logits.stride(0), bitmask.stride(0), HAS_ROWS=rows is not None, WORDS=WORDS_PER_PROGRAM)
