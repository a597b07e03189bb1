"""Per-request sampling: greedy, or temperature with top-k / top-p at uniforms fixed by seed and position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

__all__ = ["SamplingParams", "choose"]


@dataclass(frozen=True)
class SamplingParams:
    """How one request picks its tokens. ``temperature=0`` is greedy (argmax)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be a non-negative integer, got {self.top_k!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError("stop strings must be non-empty strings")


def _probs(row: torch.Tensor, p: SamplingParams) -> torch.Tensor:
    row = row.float() / p.temperature
    if p.top_k and p.top_k < row.shape[0]:
        kth = torch.topk(row, p.top_k).values[-1]
        row = row.masked_fill(row < kth, float("-inf"))
    probs = torch.softmax(row, dim=-1)
    if p.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < p.top_p  # the smallest set reaching top_p
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_p * keep)
        probs = probs / probs.sum()
    return probs.cpu()


def uniform(seed: int, position: int) -> float:
    """A uniform draw in [0, 1) fixed by (seed, output position): the token at a position
    does not depend on how many draws came before it (drafts, batching, cache hits)."""
    x = (seed * 0x9E3779B97F4A7C15 + position * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return (x >> 11) / float(1 << 53)


_MASK64 = (1 << 64) - 1


def _pick(probs: torch.Tensor, u: float) -> int:
    """Inverse-CDF sampling: the first token whose cumulative probability passes ``u``."""
    cdf = torch.cumsum(probs, dim=-1)
    i = int(torch.searchsorted(cdf, torch.tensor([u * float(cdf[-1])], dtype=cdf.dtype)))
    i = min(i, probs.shape[0] - 1)
    while probs[i] == 0 and i > 0:  # a u on the edge of a zero-probability run
        i -= 1
    return i


def choose(logits: torch.Tensor, rows: Sequence[tuple[SamplingParams, int, int, Sequence[int]]]
           ) -> list[tuple[int, int]]:
    """For each row, how many of its draft tokens the model accepts and the token after them.

    ``rows``: (params, seed, output position of the first token, draft). ``logits`` holds,
    row after row, ``len(draft) + 1`` masked rows: the scores after the sequence, then
    after each draft token. Every position's token is picked as it would be one step at a
    time (argmax, or inverse-CDF at a uniform fixed by seed and position) and a draft token
    is accepted while it equals that pick: drafts change how many passes are run, never
    which tokens come out.
    """
    out: list[tuple[int, int]] = []
    argmax = logits.argmax(dim=-1).tolist() if any(p.temperature == 0 for p, _, _, _ in rows) else None
    off = 0
    for params, seed, position, draft in rows:
        k = len(draft)
        j = 0
        while True:
            if params.temperature == 0:
                tok = argmax[off + j]
            else:
                tok = _pick(_probs(logits[off + j], params), uniform(seed, position + j))
            if j == k or tok != draft[j]:
                out.append((j, tok))
                break
            j += 1
        off += k + 1
    return out
