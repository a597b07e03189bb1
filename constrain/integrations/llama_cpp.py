"""llama.cpp integration (``llama-cpp-python``): a logits processor for
``Llama.create_completion`` / ``create_chat_completion`` and a one-call ``generate``.

    from llama_cpp import Llama, LogitsProcessorList
    from constrain.integrations.llama_cpp import LogitsProcessor, generate, vocabulary

    llm = Llama(model_path="model.gguf")
    grammar = constrain.compile(Person, vocabulary(llm))          # the GGUF's own tokens
    llm.create_chat_completion(messages, max_tokens=96,
                               logits_processor=LogitsProcessorList([LogitsProcessor(grammar, max_tokens=96)]))
    person = generate(llm, messages, Person, max_tokens=96)      # a validated Person
"""

from __future__ import annotations

import ctypes
import json
import threading
import weakref
from typing import Any

import numpy as np
import llama_cpp

from ..errors import ConstrainError, MatcherError, VocabularyError
from ..matcher import CompiledGrammar, Matcher
from ..vocabulary import Vocabulary

__all__ = ["LogitsProcessor", "generate", "vocabulary"]

_VOCABS: "weakref.WeakKeyDictionary[Any, Vocabulary]" = weakref.WeakKeyDictionary()
_VOCABS_LOCK = threading.Lock()


def vocabulary(llm: Any) -> Vocabulary:
    """The :class:`Vocabulary` of a loaded ``llama_cpp.Llama``, read from the model's own
    vocabulary: each token's exact bytes (``llama_token_to_piece``, no space stripped),
    control tokens as special, end-of-generation tokens as EOS. Memoized per ``Llama``.
    Raises :class:`VocabularyError` when a token's bytes cannot be read."""
    with _VOCABS_LOCK:
        got = _VOCABS.get(llm)
    if got is not None:
        return got
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n = int(llama_cpp.llama_vocab_n_tokens(vocab))
    size = 256
    buf = ctypes.create_string_buffer(size)
    tokens: list[bytes] = []
    special: list[int] = []
    eos: list[int] = []
    for i in range(n):
        k = llama_cpp.llama_token_to_piece(vocab, i, buf, size, 0, False)
        if k < 0:
            raise VocabularyError(f"token {i} of {llm.model_path!r} is longer than {size} bytes")
        piece = buf.raw[:k]
        if llama_cpp.llama_vocab_is_eog(vocab, i):
            eos.append(i)
        if llama_cpp.llama_vocab_is_control(vocab, i) or not piece:
            special.append(i)
            k = llama_cpp.llama_token_to_piece(vocab, i, buf, size, 0, True)
            piece = buf.raw[: max(k, 0)]
        tokens.append(piece)
    got = Vocabulary(tokens, special=special, eos_token_ids=eos, model_vocab_size=llm.n_vocab(),
                     name=str(getattr(llm, "model_path", "llama.cpp")))
    with _VOCABS_LOCK:
        _VOCABS[llm] = got
    return got


class LogitsProcessor:
    """Masks llama.cpp's logits so the generated text stays inside ``grammar``.

    A ``llama_cpp.LogitsProcessor`` (``(input_ids, scores) -> scores``) for one generation
    at a time: llama-cpp-python calls it before each sampled token with the prompt and the
    tokens so far. ``max_tokens``: pass the same value as to ``create_completion`` and a
    generation stopped there still ends in the language; ``n_ctx`` bounds it by the
    context too. A call whose ids do not extend the last one by at most one token starts
    a new generation. An error inside a call (a token the grammar forbids, sampled after
    another processor changed the logits) ends the generation with EOS and is kept in
    :attr:`error`.
    """

    def __init__(self, grammar: CompiledGrammar, *, max_tokens: int | None = None, n_ctx: int | None = None):
        if not isinstance(grammar, CompiledGrammar):
            raise TypeError(f"grammar must be a constrain.CompiledGrammar, not {type(grammar).__name__}")
        self.grammar = grammar
        self.max_tokens = max_tokens
        self.n_ctx = n_ctx
        self.matcher: Matcher | None = None
        self.error: Exception | None = None
        self._prompt: np.ndarray | None = None
        self._seen = 0
        width = grammar.vocab.model_vocab_size
        self._eos_only = np.zeros(width, dtype=bool)
        self._eos_only[list(grammar.vocab.eos_token_ids)] = True

    def reset(self) -> None:
        """Forget the current generation (and its error)."""
        self.matcher = None
        self.error = None

    def _start(self, input_ids: np.ndarray) -> None:
        n = len(input_ids)
        budget = self.max_tokens if self.max_tokens and self.max_tokens > 0 else None
        if self.n_ctx is not None:
            room = self.n_ctx - n
            budget = room if budget is None else min(budget, room)
        # a generation stopped at the budget has no EOS: one more token, so the text is
        # already complete when it stops
        self.matcher = self.grammar.matcher(max_tokens=None if budget is None else budget + 1)
        self._prompt = np.array(input_ids[: min(n, 64)], copy=True)
        self._seen = n

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        try:
            return self._mask(input_ids, scores)
        except Exception as exc:  # noqa: BLE001 - see below
            # llama.cpp calls this from C through ctypes, which prints an exception and goes
            # on with the logits unmasked: end the generation instead (EOS only), and keep
            # the error for the caller (generate raises it).
            self.error = exc
            np.copyto(scores, np.float32(-np.inf), where=~self._eos_only[: scores.shape[0]])
            return scores

    def _mask(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        n = len(input_ids)
        m = self.matcher
        if (m is None or not 0 <= n - self._seen <= 1 or self._prompt is None
                or not np.array_equal(input_ids[: len(self._prompt)], self._prompt)):
            self._start(input_ids)
            m = self.matcher
        if n > self._seen:
            for t in input_ids[self._seen : n].tolist():
                if m.is_terminated():
                    break
                if not m.advance(t):
                    raise MatcherError(f"token {t} was generated although the grammar forbids it "
                                       "(was another logits processor run after this one?)")
            self._seen = n
        if m.is_terminated():
            allowed = self._eos_only
        else:
            words = m.mask_words()
            allowed = np.unpackbits(words.view(np.uint8), bitorder="little", count=scores.shape[0]).view(bool)
            if allowed.shape[0] < scores.shape[0]:  # logit rows past the vocabulary are never allowed
                allowed = np.concatenate([allowed, np.zeros(scores.shape[0] - allowed.shape[0], dtype=bool)])
        np.copyto(scores, np.float32(-np.inf), where=~allowed[: scores.shape[0]])
        return scores


def generate(llm: Any, prompt: str | list[dict], spec: Any, *, max_tokens: int = 256, temperature: float = 0.0,
             **kwargs: Any) -> Any:
    """Generate one document of ``spec`` with ``llm`` and return it parsed.

    ``prompt``: text (``create_completion``) or a chat, a list of messages
    (``create_chat_completion``, with the model's chat template). A pydantic model class
    comes back as a validated instance, a JSON Schema as the decoded JSON value, anything
    else as text. Other keyword arguments go to llama-cpp-python. Raises
    :class:`ConstrainError` when the output is not a complete document (it cannot be
    completed within ``max_tokens``).
    """
    from ..specs import compile as compile_spec

    grammar = compile_spec(spec, vocabulary(llm))
    processor = LogitsProcessor(grammar, max_tokens=max_tokens, n_ctx=llm.n_ctx())
    processors = llama_cpp.LogitsProcessorList([processor])
    if isinstance(prompt, list):
        out = llm.create_chat_completion(messages=prompt, max_tokens=max_tokens, temperature=temperature,
                                         logits_processor=processors, **kwargs)
        text = out["choices"][0]["message"]["content"] or ""
    else:
        out = llm.create_completion(prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                                    logits_processor=processors, **kwargs)
        text = out["choices"][0]["text"]
    if processor.error is not None:
        raise ConstrainError(f"constraining the generation failed: {processor.error}") from processor.error
    check = grammar.matcher()
    if not check.advance_bytes(text.encode("utf-8")) or not check.is_accepting():
        raise ConstrainError(f"generation ended outside the language: {text!r}")
    return _parse(spec, text)


def _parse(spec: Any, text: str) -> Any:
    from pydantic import BaseModel

    from ..specs import JsonSchema

    if isinstance(spec, type) and issubclass(spec, BaseModel):
        return spec.model_validate_json(text)
    if isinstance(spec, (dict, bool, JsonSchema)):
        return json.loads(text)
    return text
