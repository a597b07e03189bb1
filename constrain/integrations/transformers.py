"""Hugging Face ``transformers`` integration: a LogitsProcessor for ``model.generate``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from transformers import LogitsProcessor as _HFLogitsProcessor

from ..bitmask import apply_bitmask
from ..errors import ConstrainError, MatcherError
if TYPE_CHECKING:
    from ..device_masks import DeviceLimits
from ..matcher import CompiledGrammar, Matcher, fill_bitmasks

__all__ = ["LogitsProcessor", "generate"]


class LogitsProcessor(_HFLogitsProcessor):
    """Masks ``model.generate``'s logits so every row stays inside its grammar.

    ``grammars``: one :class:`CompiledGrammar` for every row, or a list with one per row
    (rows may use different grammars; the list length must equal the batch, beams and
    ``num_return_sequences`` included). ``max_new_tokens``: pass the same value as to
    ``generate`` and a generation stopped by the budget still ends in the language.
    State is kept per row; each call advances by the newly generated tokens only.

    ``device_masks=True`` (or a :class:`constrain.DeviceLimits`): grammars whose states are few enough (see
    :class:`constrain.DeviceMasks`) keep every row's state on the logits' device and gather
    its mask there, with no host round trip per token. The token budget is kept exactly:
    the tables serve the steps before the budget can narrow any mask
    (:meth:`DeviceMasks.budget_free_steps`); from there the host matchers replay the
    tokens so far and take over. :attr:`device_reason` says why a generation used host
    masks (None: the tables served every step). On the device path a token the mask
    forbids (another processor run after this one) is not detected.
    """

    def __init__(self, grammars: CompiledGrammar | Sequence[CompiledGrammar], *, max_new_tokens: int | None = None,
                 device_masks: "bool | DeviceLimits" = False):
        self._grammars = grammars
        self.max_new_tokens = max_new_tokens
        self.device_masks = device_masks
        self.device_reason: str | None = None
        self.matchers: list[Matcher] | None = None
        self._prompt_len = 0
        self._seen = 0
        self._bitmask: np.ndarray | None = None
        self._stepper: Any = None
        self._free_steps = -1
        self._device_bitmask: Any = None

    def reset(self) -> None:
        """Forget the rows of the last generation (``generate`` calls it nowhere; reuse needs it)."""
        self.matchers = None

    def _start(self, batch: int, seq_len: int, device: Any = None) -> None:
        if isinstance(self._grammars, CompiledGrammar):
            grammars = [self._grammars] * batch
        else:
            grammars = list(self._grammars)
            if len(grammars) != batch:
                raise ValueError(f"got {len(grammars)} grammars for a batch of {batch} rows")
        # A generation stopped by max_new_tokens has no EOS: budget one more token, so the
        # text is already complete when the budget runs out.
        budget = None if self.max_new_tokens is None else self.max_new_tokens + 1
        self.matchers = [g.matcher(max_tokens=budget) for g in grammars]
        self._prompt_len = seq_len
        self._seen = seq_len
        words = max(g.vocab.bitmask_words for g in grammars)
        self._bitmask = np.full((batch, words), -1, dtype=np.int32)
        self._stepper = None
        if self.device_masks:
            self._start_device(grammars, budget, device)

    def _start_device(self, grammars: list[CompiledGrammar], budget: int | None, device: Any) -> None:
        from ..device_masks import DEFAULT_DEVICE_LIMITS, DeviceLimits, DeviceMasks, DeviceStepper

        limits = self.device_masks if isinstance(self.device_masks, DeviceLimits) else DEFAULT_DEVICE_LIMITS
        tables = {id(g): DeviceMasks.of(g, limits) for g in grammars}
        free = 1 << 62
        for t in tables.values():
            if not t.resident:
                self.device_reason = f"host masks: {t.reason}"
                return
            if budget is not None:
                free = min(free, t.budget_free_steps(budget))
        if free < 0:
            self.device_reason = "host masks: the token budget narrows the first mask"
            return
        self.device_reason = None
        self._free_steps = free
        self._stepper = DeviceStepper([tables[id(g)] for g in grammars], len(grammars), device)
        self._device_bitmask = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, seq_len = input_ids.shape
        # generate calls once per step, one token longer each time; anything else is a new
        # generation (a reused processor).
        if self.matchers is None or not 0 <= seq_len - self._seen <= 1 or len(self.matchers) != batch:
            self._start(batch, seq_len, scores.device)
        if self.matchers is None or self._bitmask is None:  # pragma: no cover - _start sets both
            raise MatcherError("processor state was not initialised")
        if self._stepper is not None:
            if seq_len - self._prompt_len <= self._free_steps:
                return self._device_call(input_ids, scores, seq_len)
            # The budget may narrow masks from here: the host matchers replay the tokens so far.
            self._stepper = None
            self._seen = self._prompt_len
            self.device_reason = (f"device masks for {seq_len - self._prompt_len - 1} tokens, then host masks "
                                  "(the token budget may narrow masks from there)")
        if seq_len > self._seen:
            new = input_ids[:, self._seen : seq_len].tolist()
            for row, m in enumerate(self.matchers):
                for tok in new[row]:
                    if m.is_terminated():
                        break  # generate pads finished rows
                    if not m.advance(tok):
                        raise MatcherError(
                            f"row {row}: token {tok} was generated although the grammar forbids it "
                            "(was another logits processor run after this one?)"
                        )
            self._seen = seq_len
        bitmask = self._bitmask
        live: list[Matcher | None] = []
        for row, m in enumerate(self.matchers):
            if m.is_terminated():
                bitmask[row, :] = -1  # generate ignores finished rows' scores
                live.append(None)
            else:
                live.append(m)
        fill_bitmasks(live, bitmask)
        apply_bitmask(scores, bitmask)
        return scores

    def _device_call(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, seq_len: int) -> torch.FloatTensor:
        stepper = self._stepper
        if seq_len > self._seen:
            stepper.advance(input_ids[:, -1])
            self._seen = seq_len
        self._device_bitmask = stepper.bitmask(self._device_bitmask)
        apply_bitmask(scores, self._device_bitmask)
        return scores


def generate(
    model: Any,
    tokenizer: Any,
    prompt: str | list[dict],
    spec: Any,
    *,
    vocab: Any = None,
    max_new_tokens: int = 256,
    do_sample: bool = False,
    device_masks: "bool | DeviceLimits" = False,
    **generate_kwargs: Any,
) -> Any:
    """Generate one document of ``spec`` for ``prompt`` and return it parsed.

    ``prompt`` is text or a chat (list of messages, formatted with the tokenizer's chat
    template). A pydantic model class comes back as a validated instance, a JSON Schema
    as the decoded JSON value, anything else as text. Raises :class:`ConstrainError`
    when the output cannot be completed within ``max_new_tokens``. ``device_masks``: see
    :class:`LogitsProcessor`.
    """
    from ..specs import compile as compile_spec
    from ..vocabulary import Vocabulary

    if vocab is None:
        vocab = Vocabulary.from_tokenizer(
            tokenizer,
            model_vocab_size=getattr(getattr(model, "config", None), "vocab_size", None),
            generation_config=getattr(model, "generation_config", None),
        )
    grammar = compile_spec(spec, vocab)
    if isinstance(prompt, list):
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    else:
        text = prompt
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    processor = LogitsProcessor(grammar, max_new_tokens=max_new_tokens, device_masks=device_masks)
    eos = list(vocab.eos_token_ids)
    with torch.inference_mode():
        out = model.generate(
            **enc,
            logits_processor=[processor],
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            eos_token_id=eos,
            pad_token_id=eos[0] if eos else None,
            **generate_kwargs,
        )
    generated = out[0, enc["input_ids"].shape[1] :].tolist()
    ids = [t for t in generated if t not in eos]
    data = vocab.decode_bytes(ids).decode("utf-8", errors="replace")
    # The processor never sees the last sampled token; check the whole output afresh.
    check = grammar.matcher()
    if not all(check.advance(t) for t in ids) or not check.is_accepting():
        raise ConstrainError(f"generation ended outside the language: {data!r}")
    return _parse(spec, data)


def _parse(spec: Any, data: str) -> Any:
    from ..specs import JsonSchema

    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover
        BaseModel = None
    if BaseModel is not None and isinstance(spec, type) and issubclass(spec, BaseModel):
        return spec.model_validate_json(data)
    if isinstance(spec, (dict, bool, JsonSchema)):
        return json.loads(data)
    return data
