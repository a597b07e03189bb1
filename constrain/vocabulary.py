"""Vocabulary: every token id mapped to its exact bytes, plus the flat arrays the mask engine walks."""

from __future__ import annotations

import bisect
import hashlib
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from . import _kernels
from .bitmask import bits_from_ids
from .errors import VocabularyError
from .tokenizers import hf_tokens, tekken_tokens
from .trie import Trie, TrieNodes, build_trie, deepest, longer_nodes

__all__ = ["Vocabulary"]


class Vocabulary:
    """Exact bytes of every token of one tokenizer.

    Ids in ``[0, size)`` belong to the tokenizer; ids in ``[size, model_vocab_size)`` are
    padded logit rows and are never allowed. Special tokens (control tokens such as
    ``<|im_start|>``) are never produced by a grammar; EOS ids are allowed exactly when a
    matcher accepts.
    """

    def __init__(
        self,
        tokens: Sequence[bytes],
        *,
        special: Iterable[int] = (),
        eos_token_ids: Iterable[int] = (),
        model_vocab_size: int | None = None,
        add_prefix_space: bool = False,
        name: str = "",
    ):
        _kernels.start_background()  # (a fresh kernel cache: filled meanwhile, see constrain._kernels)
        # (tuples, not lists: a tuple of bytes leaves the cyclic collector's lists at its
        # first collection, where a list of 150k tokens would be read through, a cache
        # miss a token, at every full collection: 10-20 ms)
        self._tokens: tuple[bytes, ...] = tuple(bytes(t) for t in tokens)
        size = len(self._tokens)
        if size == 0:
            raise VocabularyError("a vocabulary needs at least one token")
        self.size: int = size
        self.model_vocab_size: int = size if model_vocab_size is None else int(model_vocab_size)
        if self.model_vocab_size < size:
            raise VocabularyError(
                f"model_vocab_size={self.model_vocab_size} is smaller than the tokenizer's {size} ids"
            )
        eos = tuple(sorted({int(i) for i in eos_token_ids}))
        for i in eos:
            if not 0 <= i < size:
                raise VocabularyError(f"EOS id {i} is outside the vocabulary [0, {size})")
        self.eos_token_ids: tuple[int, ...] = eos
        self.add_prefix_space = add_prefix_space
        self.name = name
        special_mask = np.zeros(size, dtype=np.bool_)
        for i in special:
            if not 0 <= int(i) < size:
                raise VocabularyError(f"special id {i} is outside the vocabulary [0, {size})")
            special_mask[int(i)] = True
        special_mask[list(eos)] = True
        self.special_mask: np.ndarray = special_mask
        self._by_bytes: dict[bytes, int] | None = None
        self._sorted_bytes: tuple[bytes, ...] | None = None
        self._build_arrays()
        self.eos_ids_array = np.asarray(eos, dtype=np.int64)
        # With every single byte a token, any byte string can be spelled.
        self.spells_every_byte = bool(self.single_bytes.all())
        self._longer: dict[int, tuple] = {}
        self._deepest: np.ndarray | None = None
        for cut in self.SLICE_CUTS:
            self.trie_longer(cut)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Any,
        *,
        model_vocab_size: int | None = None,
        eos_token_ids: Iterable[int] | None = None,
        generation_config: Any = None,
    ) -> "Vocabulary":
        """Build from a Hugging Face tokenizer (fast or slow).

        EOS ids are the tokenizer's ``eos_token_id`` plus those of ``generation_config``
        (an object or dict with ``eos_token_id``) and ``eos_token_ids``. Raises
        :class:`VocabularyError` when the token bytes cannot be recovered exactly.
        """
        t = hf_tokens(tokenizer, eos_token_ids, generation_config)
        return cls(
            t.tokens,
            special=t.special,
            eos_token_ids=t.eos_token_ids,
            model_vocab_size=model_vocab_size,
            add_prefix_space=t.add_prefix_space,
            name=t.name,
        )

    @classmethod
    def from_tekken(cls, path: str | Path, *, model_vocab_size: int | None = None) -> "Vocabulary":
        """Build from a Mistral Tekken JSON file: special ids first, then the ranks' bytes."""
        t = tekken_tokens(path)
        return cls(t.tokens, special=t.special, eos_token_ids=t.eos_token_ids, model_vocab_size=model_vocab_size,
                   name=t.name)

    # ------------------------------------------------------------------ accessors

    def token_bytes(self, token_id: int) -> bytes:
        """The exact bytes token ``token_id`` stands for (b"" for ids that have none)."""
        if not 0 <= token_id < self.size:
            raise IndexError(f"token id {token_id} is outside the vocabulary [0, {self.size})")
        return self._tokens[token_id]

    def is_special(self, token_id: int) -> bool:
        return bool(self.special_mask[token_id])

    def decode_bytes(self, token_ids: Iterable[int]) -> bytes:
        return b"".join(self._tokens[i] for i in token_ids)

    def _usable_by_bytes(self) -> dict[bytes, int]:
        """The usable tokens by their bytes (the first id of equal spellings), made once."""
        if self._by_bytes is None:
            ids = self.trie_ids.tolist()
            tokens = self._tokens
            # later entries overwrite earlier ones: reversed, the first id of each spelling stays
            self._by_bytes = dict(zip([tokens[t] for t in reversed(ids)], reversed(ids)))
        return self._by_bytes

    def token_of(self, data: bytes) -> int | None:
        """The usable token spelt exactly ``data`` (the first id of equal spellings), or None."""
        return self._usable_by_bytes().get(data)

    def longest_match(self, data: bytes, max_span: int | None = None) -> list[int]:
        """Token ids spelling a prefix of ``data`` by longest match over usable tokens
        (``max_span`` bounds the token length tried); stops at a byte no token spells."""
        table = self._usable_by_bytes()
        span = self.max_token_length if max_span is None else min(max_span, self.max_token_length)
        out: list[int] = []
        i, n = 0, len(data)
        while i < n:
            for j in range(min(n, i + span), i, -1):
                tid = table.get(data[i:j])
                if tid is not None:
                    out.append(tid)
                    i = j
                    break
            else:
                break
        return out

    def fewest_tokens(self, data: bytes, max_span: int | None = None) -> list[int] | None:
        """Token ids spelling all of ``data`` with as few usable tokens as possible
        (``max_span`` bounds the token length tried; among the shortest spellings, the one
        whose tokens come longest first), or None when no spelling exists."""
        table = self._usable_by_bytes()
        span = self.max_token_length if max_span is None else min(max_span, self.max_token_length)
        n = len(data)
        # best[i]: fewest tokens spelling data[i:]; step[i]: the end of the first of them
        best = [0] * (n + 1)
        step = [0] * (n + 1)
        huge = n + 1
        for i in range(n - 1, -1, -1):
            b, at = huge, 0
            for j in range(min(n, i + span), i, -1):
                if best[j] + 1 < b and data[i:j] in table:
                    b, at = best[j] + 1, j
            best[i], step[i] = b, at
        if n and best[0] >= huge:
            return None
        out, i = [], 0
        while i < n:
            out.append(table[data[i:step[i]]])
            i = step[i]
        return out

    def extends_token(self, prefix: bytes) -> bool:
        """True when some usable token is longer than ``prefix`` and starts with it."""
        tokens = self._usable_sorted()
        k = bisect.bisect_right(tokens, prefix)
        return k < len(tokens) and tokens[k].startswith(prefix)

    def _usable_sorted(self) -> tuple[bytes, ...]:
        """The usable tokens' bytes in sorted order, made once."""
        if self._sorted_bytes is None:
            self._sorted_bytes = tuple(map(self._tokens.__getitem__, self.trie_ids.tolist()))
        return self._sorted_bytes

    def prepare_tables(self) -> bool:
        """Make the lookup tables that :meth:`token_of`, :meth:`longest_match`,
        :meth:`fewest_tokens` and :meth:`extends_token` build on first use, so that no
        compile or mask pays for them; whether any was missing."""
        missing = self._by_bytes is None or self._sorted_bytes is None
        self._usable_by_bytes()
        self._usable_sorted()
        return missing

    # Depths at which a whole-vocabulary walk may be split (see trie_longer): tokens
    # longer than these are few (Qwen2: 1,918 of 151,643 tokens are longer than 16
    # bytes, 5,920 longer than 12).
    SLICE_CUTS = (32, 24, 16, 12)

    def trie_longer(self, cut: int) -> tuple[TrieNodes, np.ndarray, int]:
        """The trie nodes of the tokens longer than ``cut`` bytes (see
        :func:`.trie.longer_nodes`), their bitmask and their number. Built with the
        vocabulary for each of :attr:`SLICE_CUTS`, else on demand."""
        got = self._longer.get(cut)
        if got is None:
            if self._deepest is None:
                self._deepest = deepest(self.trie.nodes.depth, self.trie.nodes.skip)
            nodes, n_long = longer_nodes(self.trie.nodes, self._deepest, cut)
            longer = np.nonzero(np.diff(self.trie_offsets) > cut)[0].astype(np.int32)
            mask = bits_from_ids(self.bitmask_words, longer, self.trie_ids)
            got = self._longer[cut] = (nodes, mask, n_long)
        return got

    @property
    def bitmask_words(self) -> int:
        """int32 words per bitmask row: ``ceil(model_vocab_size / 32)``."""
        return (self.model_vocab_size + 31) // 32

    @property
    def fingerprint(self) -> str:
        """Stable content hash: equal across processes and machines for the same tokens."""
        return self._fingerprint

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"Vocabulary({self.name!r}, size={self.size}, model_vocab_size={self.model_vocab_size}, eos={list(self.eos_token_ids)})"

    # ------------------------------------------------------------------ flat arrays

    def _build_arrays(self) -> None:
        lengths = np.fromiter((len(t) for t in self._tokens), dtype=np.int64, count=self.size)
        offsets = np.zeros(self.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = np.frombuffer(b"".join(self._tokens), dtype=np.uint8)
        self.token_offsets: np.ndarray = offsets
        self.token_data: np.ndarray = data

        # Tokens a grammar may produce: not special, not empty, sorted by bytes.
        usable = [i for i in range(self.size) if not self.special_mask[i] and self._tokens[i]]
        usable.sort(key=self._tokens.__getitem__)
        ids = np.asarray(usable, dtype=np.int32)
        sorted_tokens = [self._tokens[i] for i in usable]
        s_len = lengths[ids] if len(ids) else np.zeros(0, dtype=np.int64)
        s_off = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(s_len, out=s_off[1:])
        s_data = np.frombuffer(b"".join(sorted_tokens), dtype=np.uint8)
        self.trie_ids: np.ndarray = ids
        self.trie_offsets: np.ndarray = s_off
        self.trie_data: np.ndarray = s_data
        self.trie: Trie = build_trie(s_data, s_off)
        self.max_token_length: int = int(lengths.max()) if self.size else 0
        present = set(t for t in sorted_tokens if len(t) == 1)
        self.single_bytes = np.zeros(256, dtype=np.bool_)
        for t in present:
            self.single_bytes[t[0]] = True

        h = hashlib.sha256()
        h.update(b"constrain-vocabulary-v1\0")
        h.update(np.asarray([self.size, self.model_vocab_size], dtype=np.int64).tobytes())
        h.update(np.asarray(self.eos_token_ids, dtype=np.int64).tobytes())
        h.update(self.special_mask.tobytes())
        h.update(offsets.tobytes())
        h.update(data.tobytes())
        self._fingerprint = h.hexdigest()
