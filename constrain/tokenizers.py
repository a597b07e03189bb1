"""Exact token bytes from tokenizers: Hugging Face byte-level BPE, SentencePiece with
byte fallback, and Mistral's Tekken files."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from .errors import VocabularyError

__all__ = ["TokenizerTokens", "hf_tokens", "tekken_tokens"]

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class TokenizerTokens(NamedTuple):
    """What a :class:`~constrain.Vocabulary` is built from."""

    tokens: list[bytes]
    special: set[int]
    eos_token_ids: set[int]
    add_prefix_space: bool
    name: str


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


def hf_tokens(tokenizer: Any, eos_token_ids: Iterable[int] | None = None,
              generation_config: Any = None) -> TokenizerTokens:
    """The tokens of a Hugging Face tokenizer (fast or slow), as
    :meth:`Vocabulary.from_tokenizer <constrain.Vocabulary.from_tokenizer>` describes.
    Raises :class:`VocabularyError` when the token bytes cannot be recovered exactly."""
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
    return TokenizerTokens(tokens, special_ids, eos, prefix_space, str(name))


def tekken_tokens(path: str | Path) -> TokenizerTokens:
    """The tokens of a Mistral Tekken JSON file: special ids first, then the ranks' bytes."""
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
    return TokenizerTokens(tokens, set(range(n_special)), set(eos), False, Path(path).name)


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
