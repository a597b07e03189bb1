"""SGLang integration: constrain as one of SGLang's grammar backends.

SGLang loads the ``sglang.srt.plugins`` entry point in each of its processes, which
adds ``"constrain"`` to ``--grammar-backend``; requests then use SGLang's own fields::

    python -m sglang.launch_server --model-path MODEL --grammar-backend constrain
    # or in Python
    sglang.Engine(model_path=MODEL, grammar_backend="constrain")
    engine.generate(prompt, {"json_schema": json.dumps(schema), "max_new_tokens": 128})
    # also {"regex": ...}, {"ebnf": ...} (GBNF: ``root ::= ...``; a Lark grammar is read as Lark),
    # and response_format={"type": "json_schema" | "json_object", ...} over the OpenAI API

Tested with the SGLang releases in :data:`TESTED_SGLANG_VERSIONS`; on others the backend
refuses to start (:class:`UnsupportedSGLangError`). Structural tags are refused per request.
SGLang does not tell a grammar backend a request's ``max_new_tokens``, so a document cut
there may be incomplete (constrain's own engines and its vLLM plug-in keep it complete).
SGLang wraps only its built-in backends for ``--reasoning-parser``: under constrain the
grammar applies from the first generated token.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections import OrderedDict
from typing import Any, Iterable, List, Optional, Tuple

import torch
import sglang

from ..bitmask import apply_bitmask, bitmask_words
from ..errors import ConstrainError, SpecError
from ..matcher import CompiledGrammar, Matcher, fill_bitmasks
from ..specs import GBNF, JsonSchema, Lark, Regex
from ..vocabulary import Vocabulary

__all__ = [
    "BACKEND_NAME",
    "TESTED_SGLANG_VERSIONS",
    "GrammarBackend",
    "GrammarObject",
    "UnsupportedSGLangError",
    "create_backend",
    "plugin",
    "register",
]

logger = logging.getLogger(__name__)

BACKEND_NAME = "constrain"
"""The value of ``--grammar-backend`` (``ServerArgs.grammar_backend``) that selects constrain."""

TESTED_SGLANG_VERSIONS = ("0.5.23",)
"""SGLang releases the backend was tested with; it refuses to start on others."""


class UnsupportedSGLangError(RuntimeError):
    """The installed SGLang is not one the backend was tested with."""


def _unsupported_message(detail: str = "") -> str:
    return (
        f"constrain's SGLang grammar backend was tested with SGLang {', '.join(TESTED_SGLANG_VERSIONS)}; "
        f"this is SGLang {sglang.__version__}{detail}. Install a tested SGLang "
        "(pip install sglang==" + TESTED_SGLANG_VERSIONS[-1] + ") or choose another --grammar-backend"
    )


try:
    from sglang.srt.constrained.base_grammar_backend import (
        BaseGrammarBackend,
        BaseGrammarObject,
        GrammarRow,
        GrammarStats,
        InvalidGrammarObject,
        register_grammar_backend,
    )
except ImportError as exc:  # pragma: no cover - depends on the installed SGLang
    raise UnsupportedSGLangError(_unsupported_message(f" ({exc})")) from exc

_ANY_JSON = "$$ANY$$"  # SGLang's key for "any JSON value"
_MAX_CACHED = 512


def _check_version() -> None:
    if sglang.__version__ not in TESTED_SGLANG_VERSIONS:
        raise UnsupportedSGLangError(_unsupported_message())


# --------------------------------------------------------------------------- grammar object


class GrammarObject(BaseGrammarObject):
    """One request's cursor (a :class:`Matcher`) in SGLang's grammar-object interface.

    ``accept_token`` raises ValueError on a token outside the grammar (SGLang then aborts
    the request); tokens after EOS are ignored, as SGLang's own backends ignore them.
    Masks are int32 bitmasks ``[batch, ceil(V/32)]`` filled on the host and applied on
    the logits' device by :func:`constrain.apply_bitmask`.
    """

    def __init__(self, matcher: Matcher, key: Tuple[str, str] | None = None,
                 grammar_stats: Optional[GrammarStats] = None):
        super().__init__()
        self.matcher = matcher
        self.key = key
        self.grammar_stats = grammar_stats

    @property
    def compiled(self) -> CompiledGrammar:
        return self.matcher.grammar

    # ------------------------------------------------------------------ tokens

    def accept_token(self, token: int) -> None:
        m = self.matcher
        if m.is_terminated():
            return
        self.current_token = token
        if not m.advance(token):
            raise ValueError(f"constrain: token {token} is outside the grammar after {m.num_tokens} tokens "
                             f"({self._describe()})")

    def rollback(self, k: int) -> None:
        """Undo the last ``k`` accepted tokens (EOS included). Raises ValueError past the start."""
        if k <= 0:
            return
        try:
            self.matcher.rollback(k)
        except ConstrainError as exc:
            raise ValueError(f"constrain: {exc}") from None
        self.finished = False

    def is_terminated(self) -> bool:
        return self.matcher.is_terminated()

    def copy(self) -> "GrammarObject":
        """An independent cursor at the same position (the compiled grammar is shared)."""
        stats = self.grammar_stats
        if stats is not None:
            stats = dataclasses.replace(stats, is_cache_hit=True, tree_traversal_time=[])
        return GrammarObject(self.matcher.fork(), self.key, stats)

    # ------------------------------------------------------------------ masks

    def allocate_vocab_mask(self, vocab_size: int, batch_size: int, device: Any) -> torch.Tensor:
        """An int32 host bitmask with every token allowed (rows of requests without a
        grammar stay so); pinned where CUDA is, so the upload does not block."""
        words = max(bitmask_words(vocab_size), self.compiled.vocab.bitmask_words)
        return torch.full((batch_size, words), -1, dtype=torch.int32, pin_memory=torch.cuda.is_available())

    def fill_vocab_mask(self, vocab_mask: torch.Tensor, idx: int) -> None:
        self.matcher.fill_bitmask(vocab_mask, idx)

    @staticmethod
    def fill_vocab_mask_batched(entries: List[GrammarRow], vocab_mask: torch.Tensor) -> None:
        """Fill the listed rows in one call (rows in the same state share one mask read)."""
        if not entries:
            return
        if not all(isinstance(e.grammar, GrammarObject) for e in entries):
            BaseGrammarObject.fill_vocab_mask_batched(entries, vocab_mask)
            return
        rows: List[Optional[Matcher]] = [None] * (max(e.row for e in entries) + 1)
        for e in entries:
            rows[e.row] = e.grammar.matcher
        fill_bitmasks(rows, vocab_mask)

    @staticmethod
    def reset_vocab_mask(vocab_mask: torch.Tensor) -> None:
        vocab_mask.fill_(-1)

    @staticmethod
    def move_vocab_mask(vocab_mask: torch.Tensor, device: Any) -> torch.Tensor:
        return vocab_mask.to(device, non_blocking=True)

    @staticmethod
    def apply_vocab_mask(logits: torch.Tensor, vocab_mask: torch.Tensor) -> None:
        """Set the disallowed logits to -inf in place (any device)."""
        apply_bitmask(logits, vocab_mask)

    # ------------------------------------------------------------------ jump forward

    def try_jump_forward(self, tokenizer: Any) -> Optional[Tuple[List[int], str]]:
        """The text the grammar forces from here (whole characters), or None."""
        data = self.matcher.forced_bytes()
        for end in range(len(data), max(len(data) - 4, 0), -1):  # a character cut at the end stays out
            try:
                return [], data[:end].decode("utf-8")
            except UnicodeDecodeError:
                continue
        return None

    def jump_forward_str_state(self, helper: Tuple[List[int], str]) -> Tuple[str, int]:
        return helper[1], -1

    def jump_and_retokenize(self, old_output_ids: List[int], new_output_ids: List[int], next_state: int) -> None:
        """Follow a retokenization: roll back to the common prefix of the old and new
        output ids, then accept the rest of the new ones. Raises ValueError when the
        grammar refuses one (the cursor is then at the common prefix plus those accepted)."""
        k = 0
        for old, new in zip(old_output_ids, new_output_ids):
            if old != new:
                break
            k += 1
        m = self.matcher
        m.rollback(min(len(old_output_ids) - k, m.num_tokens))
        for t in new_output_ids[k:]:
            if not m.advance(t):
                raise ValueError(f"constrain: token {t} of the retokenized output is outside the grammar "
                                 f"({self._describe()})")

    def _describe(self) -> str:
        if self.key is None:
            return self.compiled.name or "grammar"
        kind, text = self.key
        return f"{kind} {text[:80]!r}{'...' if len(text) > 80 else ''}"

    def __repr__(self) -> str:
        return f"GrammarObject({self._describe()}, tokens={self.matcher.num_tokens})"


# --------------------------------------------------------------------------- backend


class _BoundedCache(OrderedDict):
    """SGLang's per-backend grammar cache (a dict it reads with ``get``), bounded: least
    recently used entries go first."""

    def __init__(self, maxsize: int):
        super().__init__()
        self.maxsize = maxsize
        self._lock = threading.Lock()

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            if key not in self:
                return default
            self.move_to_end(key)
            return self[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            super().__setitem__(key, value)
            self.move_to_end(key)
            while len(self) > self.maxsize:
                self.popitem(last=False)


def _spec_of(kind: str, text: str) -> Any:
    """The constrain spec of one of SGLang's grammar keys (``json``, ``regex``, ``ebnf``)."""
    if kind == "json":
        if text == _ANY_JSON:
            return JsonSchema(True)
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"the JSON Schema is not valid JSON: {exc}") from None
        return JsonSchema(schema)
    if kind == "regex":
        return Regex(text)
    # SGLang's EBNF is GBNF (``root ::= ...``); a grammar without ``::=`` is read as Lark
    return GBNF(text) if "::=" in text else Lark(text)


class GrammarBackend(BaseGrammarBackend):
    """constrain as SGLang's grammar backend: JSON Schemas (``json_schema``,
    ``response_format``), regexes, GBNF and Lark grammars (``ebnf``). A spec that does not
    compile becomes SGLang's invalid grammar, so the request is aborted with constrain's
    message ("Failed to compile json grammar: ..."). Made by :func:`create_backend`.
    """

    def __init__(self, tokenizer: Any, vocab_size: int, eos_token_ids: Optional[Iterable[int]] = None,
                 *, vocab: Vocabulary | None = None):
        super().__init__()
        self.cache = _BoundedCache(_MAX_CACHED)
        self.vocab = vocab if vocab is not None else Vocabulary.from_tokenizer(
            tokenizer, model_vocab_size=vocab_size, eos_token_ids=sorted(eos_token_ids or ()))
        self.vocab_size = vocab_size

    def _compile(self, kind: str, text: str) -> BaseGrammarObject:
        from ..specs import compile as compile_spec

        try:
            compiled = compile_spec(_spec_of(kind, text), self.vocab)
            matcher = compiled.matcher()
        except ConstrainError as exc:
            logger.error("constrain: invalid %s grammar %r: %s", kind, text[:200], exc)
            return InvalidGrammarObject(f"constrain: {exc}")
        return GrammarObject(matcher, (kind, text), GrammarStats(dispatch_type=kind))

    def dispatch_json(self, key_string: str) -> BaseGrammarObject:
        return self._compile("json", key_string)

    def dispatch_regex(self, key_string: str) -> BaseGrammarObject:
        return self._compile("regex", key_string)

    def dispatch_ebnf(self, key_string: str) -> BaseGrammarObject:
        return self._compile("ebnf", key_string)

    def dispatch_structural_tag(self, key_string: str) -> BaseGrammarObject:
        return InvalidGrammarObject(
            "constrain's grammar backend does not support structural tags; use json_schema, regex or ebnf, "
            "or --grammar-backend xgrammar"
        )


def create_backend(server_args: Any, tokenizer: Any, vocab_size: int,
                   eos_token_ids: Optional[Iterable[int]] = None) -> GrammarBackend:
    """SGLang's factory for ``--grammar-backend constrain`` (what
    ``create_grammar_backend`` calls). Raises :class:`UnsupportedSGLangError` on an
    untested SGLang, ValueError on a JSON whitespace pattern (constrain's JSON
    whitespace is bounded: what ``json.dumps`` writes) and :class:`VocabularyError`
    when the tokenizer's token bytes cannot be recovered."""
    _check_version()
    if getattr(server_args, "constrained_json_whitespace_pattern", None):
        raise ValueError("--grammar-backend constrain takes no --constrained-json-whitespace-pattern: "
                         "its JSON whitespace is bounded (what json.dumps writes)")
    return GrammarBackend(tokenizer, vocab_size, eos_token_ids)


# --------------------------------------------------------------------------- registration

_registered = False
_lock = threading.Lock()


def _install() -> None:
    global _registered
    with _lock:
        if _registered:
            return
        from sglang.srt.arg_groups.choices import GRAMMAR_BACKEND_CHOICES, add_grammar_backend_choices

        if BACKEND_NAME not in GRAMMAR_BACKEND_CHOICES:
            add_grammar_backend_choices([BACKEND_NAME])
        register_grammar_backend(BACKEND_NAME, create_backend)
        _registered = True


def register() -> None:
    """Make ``"constrain"`` a value of SGLang's ``--grammar-backend``. Idempotent. Raises
    :class:`UnsupportedSGLangError` on an SGLang outside :data:`TESTED_SGLANG_VERSIONS`."""
    _check_version()
    _install()


def plugin() -> None:
    """The ``sglang.srt.plugins`` entry point: :func:`register`. On an untested SGLang the
    name is still added, with a warning, and selecting it fails at startup with
    :class:`UnsupportedSGLangError` (a plugin must not stop SGLang's other backends)."""
    if sglang.__version__ not in TESTED_SGLANG_VERSIONS:
        logger.warning("constrain: %s", _unsupported_message())
    _install()
