"""Vocabulary: every token id mapped to its exact bytes, plus the flat arrays the mask engine walks."""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from numba import njit

from .engine.walk import bits_from_ids
from .errors import VocabularyError

__all__ = ["Vocabulary"]

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def _gpt2_unicode_to_byte() -> dict[int, int]:
    """Inverse of the byte-level BPE alphabet: printable bytes map to themselves, the
    rest to code points 256 and up, in byte order."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    table: dict[int, int] = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = 256 + extra
            extra += 1
    return {cp: b for b, cp in table.items()}


_BYTE_LEVEL_TRANSLATE = {cp: chr(b) for cp, b in _gpt2_unicode_to_byte().items()}


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
        self._tokens: list[bytes] = [bytes(t) for t in tokens]
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
        self._sorted_bytes: list[bytes] | None = None
        self._build_arrays()
        self.eos_ids_array = np.asarray(eos, dtype=np.int64)
        # With every single byte a token, any byte string can be spelled.
        self.spells_every_byte = bool(self.single_bytes.all())
        self._nodes = (
            self.node_byte, self.node_depth, self.node_skip, self.node_token, self.node_count,
            self.node_lo, self.node_hi, self.token_node, self.trie_lcp, self.node_root,
        )
        self._longer: dict[int, tuple] = {}
        self._deepest: np.ndarray | None = None
        for cut in self.SLICE_CUTS:
            self.trie_nodes_longer(cut)

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
        size = len(tokenizer)
        added = {int(i): tok for i, tok in getattr(tokenizer, "added_tokens_decoder", {}).items()}
        special_ids = {i for i, t in added.items() if getattr(t, "special", False)}
        special_ids.update(int(i) for i in getattr(tokenizer, "all_special_ids", []) if i is not None)

        kind, prefix_space = _detect_kind(tokenizer)
        pieces = tokenizer.convert_ids_to_tokens(list(range(size)))
        tokens: list[bytes] = []
        for i, piece in enumerate(pieces):
            if piece is None:
                tokens.append(b"")
                special_ids.add(i)
                continue
            if i in added:
                tokens.append(added[i].content.encode("utf-8"))
                continue
            tokens.append(_piece_bytes(piece, kind))

        eos: set[int] = set()
        if getattr(tokenizer, "eos_token_id", None) is not None:
            eos.add(int(tokenizer.eos_token_id))
        if generation_config is not None:
            value = (
                generation_config.get("eos_token_id")
                if isinstance(generation_config, dict)
                else getattr(generation_config, "eos_token_id", None)
            )
            if isinstance(value, int):
                eos.add(value)
            elif value:
                eos.update(int(v) for v in value)
        if eos_token_ids is not None:
            eos.update(int(v) for v in eos_token_ids)
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        return cls(
            tokens,
            special=special_ids,
            eos_token_ids=eos,
            model_vocab_size=model_vocab_size,
            add_prefix_space=prefix_space,
            name=str(name),
        )

    @classmethod
    def from_tekken(cls, path: str | Path, *, model_vocab_size: int | None = None) -> "Vocabulary":
        """Build from a Mistral Tekken JSON file: special ids first, then the ranks' bytes."""
        data = json.loads(Path(path).read_text())
        config = data.get("config", {})
        n_special = int(config.get("default_num_special_tokens", 0))
        n_total = int(config.get("default_vocab_size", n_special + len(data["vocab"])))
        n_ranks = n_total - n_special
        ranks = data["vocab"][:n_ranks]
        tokens = [b"<SPECIAL_%d>" % i for i in range(n_special)]
        tokens += [base64.b64decode(r["token_bytes"]) for r in ranks]
        specials = data.get("special_tokens") or []
        names = {int(s["rank"]): s["token_str"] for s in specials if "rank" in s}
        for rank, text in names.items():
            if rank < n_special:
                tokens[rank] = text.encode("utf-8")
        eos = [i for i, s in names.items() if s == "</s>"] or ([2] if n_special > 2 else [])
        return cls(
            tokens,
            special=range(n_special),
            eos_token_ids=eos,
            model_vocab_size=model_vocab_size,
            name=Path(path).name,
        )

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

    def longest_match(self, data: bytes, max_span: int | None = None) -> list[int]:
        """Token ids spelling a prefix of ``data`` by longest match over usable tokens
        (``max_span`` bounds the token length tried); stops at a byte no token spells."""
        if self._by_bytes is None:
            by_bytes: dict[bytes, int] = {}
            for t in self.trie_ids.tolist():
                by_bytes.setdefault(self._tokens[t], t)
            self._by_bytes = by_bytes
        table = self._by_bytes
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

    def extends_token(self, prefix: bytes) -> bool:
        """True when some usable token is longer than ``prefix`` and starts with it."""
        if self._sorted_bytes is None:
            self._sorted_bytes = [self._tokens[t] for t in self.trie_ids.tolist()]
        k = bisect.bisect_right(self._sorted_bytes, prefix)
        return k < len(self._sorted_bytes) and self._sorted_bytes[k].startswith(prefix)

    @property
    def trie_nodes(self) -> tuple[np.ndarray, ...]:
        """The node form the numba walk takes: (byte, depth, skip, token, count, lo, hi,
        token_node, lcp, root child by byte)."""
        return self._nodes

    # Depths at which a whole-vocabulary walk may be split (see trie_nodes_longer): tokens
    # longer than these are few (Qwen2: 1,918 of 151,643 tokens are longer than 16
    # bytes, 5,920 longer than 12).
    SLICE_CUTS = (32, 24, 16, 12)

    def trie_nodes_longer(self, cut: int) -> tuple[tuple[np.ndarray, ...], np.ndarray, int]:
        """The trie of the tokens longer than ``cut`` bytes, in the node form of
        :attr:`trie_nodes` (its first seven arrays; token ranges are the full trie's),
        their bitmask words and their number. Nodes at most ``cut`` deep end no token
        here. Built with the vocabulary for each of :attr:`SLICE_CUTS`, else on demand."""
        got = self._longer.get(cut)
        if got is None:
            if self._deepest is None:
                self._deepest = _deepest(self.node_depth, self.node_skip)
            keep = self._deepest > cut
            idx = np.nonzero(keep)[0]
            before = np.zeros(len(keep) + 1, dtype=np.int32)
            np.cumsum(keep, out=before[1:])
            depth = self.node_depth[idx]
            short = depth <= cut
            token = self.node_token[idx].copy()
            token[short] = -1
            count = self.node_count[idx].copy()
            count[short] = 0
            n_long = int(count.sum())
            nodes = (
                self.node_byte[idx], depth, before[self.node_skip[idx]], token, count,
                self.node_lo[idx], self.node_hi[idx],
            )
            longer = np.nonzero(np.diff(self.trie_offsets) > cut)[0].astype(np.int32)
            words = bits_from_ids(self.bitmask_words, longer, self.trie_ids)
            got = self._longer[cut] = (nodes, words, n_long)
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

        # Tokens a grammar may produce: not special, not empty. Sorted by bytes, each
        # with the length of the prefix it shares with its predecessor, they form a
        # trie laid flat: a subtree is a contiguous range.
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
        self.trie_lcp: np.ndarray = _lcp(s_data, s_off)
        # The same trie as nodes in depth-first order (one node per distinct token prefix):
        # byte, depth, the node after its subtree, the sorted token ending there (-1 if
        # none; ``count`` consecutive sorted tokens when several share those bytes), the
        # sorted tokens below it that go on past it ([lo, hi)), and each sorted token's
        # first node of its own.
        (
            self.node_byte, self.node_depth, self.node_skip, self.node_token, self.node_count,
            self.node_lo, self.node_hi, self.token_node,
        ) = _trie_nodes(s_data, s_off, self.trie_lcp)
        # The root's child for each first byte (-1: none): a whole-vocabulary walk looks
        # at the first bytes its state takes, not at every child (they lie far apart).
        self.node_root = np.full(256, -1, dtype=np.int32)
        top = np.nonzero(self.node_depth == 1)[0]
        self.node_root[self.node_byte[top]] = top
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


@njit(cache=True)
def _lcp(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    n = len(offsets) - 1
    out = np.zeros(max(n, 0), dtype=np.int32)
    for i in range(1, n):
        a, b = offsets[i - 1], offsets[i]
        limit = min(offsets[i] - a, offsets[i + 1] - b)
        k = 0
        while k < limit and data[a + k] == data[b + k]:
            k += 1
        out[i] = k
    return out


@njit(cache=True)
def _deepest(depth: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """Per trie node, the depth of the deepest node at or below it."""
    n = depth.shape[0]
    deepest = depth.copy()
    for k in range(n - 1, -1, -1):
        m = k + 1
        while m < skip[k]:
            if deepest[m] > deepest[k]:
                deepest[k] = deepest[m]
            m = skip[m]
    return deepest


@njit(cache=True)
def _trie_nodes(data: np.ndarray, offsets: np.ndarray, lcp: np.ndarray):
    n = len(offsets) - 1
    total = 0
    for i in range(n):
        total += offsets[i + 1] - offsets[i] - lcp[i]
    byte = np.empty(total, dtype=np.uint8)
    depth = np.empty(total, dtype=np.int32)
    skip = np.empty(total, dtype=np.int32)
    token = np.full(total, -1, dtype=np.int32)
    count = np.zeros(total, dtype=np.int32)
    lo = np.empty(total, dtype=np.int32)
    hi = np.empty(total, dtype=np.int32)
    owner = np.empty(total + 1, dtype=np.int32)
    token_node = np.empty(n + 1, dtype=np.int32)
    max_len = 0
    for i in range(n):
        max_len = max(max_len, offsets[i + 1] - offsets[i])
    at_depth = np.empty(max_len + 1, dtype=np.int64)
    k = 0
    for i in range(n):
        base = offsets[i]
        length = offsets[i + 1] - base
        token_node[i] = k
        for d in range(lcp[i], length):
            byte[k] = data[base + d]
            depth[k] = d + 1
            lo[k] = i
            owner[k] = i
            at_depth[d + 1] = k
            k += 1
        end = at_depth[length]
        if token[end] < 0:
            token[end] = i
        count[end] += 1
    token_node[n] = total
    owner[total] = n
    # The node after a subtree: the next node no deeper than it.
    stack = np.empty(max_len + 1, dtype=np.int64)
    sp = 0
    for j in range(total):
        while sp > 0 and depth[stack[sp - 1]] >= depth[j]:
            skip[stack[sp - 1]] = j
            sp -= 1
        stack[sp] = j
        sp += 1
    while sp > 0:
        skip[stack[sp - 1]] = total
        sp -= 1
    for j in range(total):
        hi[j] = owner[skip[j]]
        lo[j] += count[j]  # tokens ending here sort first; the rest go on past it
    return byte, depth, skip, token, count, lo, hi, token_node


def _detect_kind(tokenizer: Any) -> tuple[str, bool]:
    """Which piece-to-bytes rule applies: 'byte_level' (GPT-2 alphabet) or 'metaspace'
    (SentencePiece ``▁`` and ``<0xNN>``). Also whether encoding adds a leading space."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # The components' reprs name their types and settings; cheaper than to_str().
        text = " ".join(repr(getattr(backend, part, None)) for part in ("decoder", "pre_tokenizer", "normalizer"))
        if "ByteLevel(" in text:
            return "byte_level", False
        if "\u2581" in text or "Metaspace(" in text or "ByteFallback(" in text:
            prefix = "prepend_scheme=always" in text or "prepend_scheme=first" in text or "Prepend(" in text
            return "metaspace", prefix
        raise VocabularyError(
            f"cannot recover exact token bytes for tokenizer {type(tokenizer).__name__}: its decoder is neither "
            f"byte-level BPE nor SentencePiece-style ({text[:200]})"
        )
    if hasattr(tokenizer, "sp_model"):
        return "metaspace", True
    raise VocabularyError(
        f"cannot recover exact token bytes for tokenizer {type(tokenizer).__name__}: use a fast tokenizer"
    )


def _piece_bytes(piece: str, kind: str) -> bytes:
    if kind == "byte_level":
        try:
            return piece.translate(_BYTE_LEVEL_TRANSLATE).encode("latin-1")
        except UnicodeEncodeError:
            # A piece outside the byte alphabet is a literal string (e.g. an unmarked added token).
            return piece.encode("utf-8")
    m = _BYTE_FALLBACK.match(piece)
    if m:
        return bytes([int(m.group(1), 16)])
    return piece.replace("\u2581", " ").encode("utf-8")
