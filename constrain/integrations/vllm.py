"""vLLM integration: a logits processor for vLLM's model runners and a structured-output
backend for vLLM's own ``structured_outputs`` / ``response_format``.

Per request, through the logits processor (any vLLM with the V1 logits-processor
interface; the ``vllm.logits_processors`` entry point loads it in every engine)::

    SamplingParams(max_tokens=128, extra_args={"constrain": {"json_schema": schema}})
    # or {"regex": ...}, {"lark": ...}, {"gbnf": ...}; over the OpenAI server:
    # extra_body={"vllm_xargs": {"constrain": json.dumps({"json_schema": schema})}}

As vLLM's structured-output backend (tested with the vLLM versions in
:data:`TESTED_VLLM_VERSIONS`)::

    constrain.integrations.vllm.register()   # vLLM's general-plugin entry point calls it in its processes
    LLM(model, structured_outputs_config={"backend": "constrain"})
    # vllm serve MODEL --structured-outputs-config.backend constrain

Either way a document cut by ``max_tokens`` is still complete: masks keep the shortest
way to finish within the tokens left.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

import numpy as np
import torch
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality
from vllm.v1.sample.logits_processor import LogitsProcessor as _V1LogitsProcessor
from vllm.v1.structured_output.backend_types import StructuredOutputBackend as _Backend
from vllm.v1.structured_output.backend_types import StructuredOutputGrammar as _Grammar
from vllm.v1.structured_output.backend_types import StructuredOutputOptions

try:  # the V2 model runner's interface (GPU); absent from older vLLM releases
    from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as _V2LogitsProcessor
except ImportError:  # pragma: no cover - depends on the installed vLLM
    _V2LogitsProcessor = None

from constrain_vllm_plugin import BACKEND_NAME, TESTED_VLLM_VERSIONS, UnsupportedVLLMError, register

from ..bitmask import apply_bitmask
from ..errors import CompileLimitError, ConstrainError, SpecError
from ..matcher import CompiledGrammar, Matcher, fill_bitmasks
from ..specs import GBNF, JsonSchema, Lark, Regex

__all__ = [
    "BACKEND_NAME",
    "EXTRA_ARGS_KEY",
    "TESTED_VLLM_VERSIONS",
    "LogitsProcessor",
    "StructuredOutputBackend",
    "StructuredOutputGrammar",
    "UnsupportedVLLMError",
    "check_request",
    "compile_request",
    "register",
    "spec_from_extra_args",
]

logger = logging.getLogger(__name__)

EXTRA_ARGS_KEY = "constrain"
"""The key of ``SamplingParams.extra_args`` (and ``vllm_xargs``) that carries a request's spec."""

_SPEC_KINDS = ("json_schema", "regex", "lark", "gbnf")
_JSON_OPTIONS = ("whitespace", "strict", "extra_properties", "property_order")


# --------------------------------------------------------------------------- specs


def spec_from_extra_args(value: Any) -> Any:
    """The spec of ``extra_args["constrain"]``: an object (or its JSON text) with exactly one
    of ``json_schema`` (a schema, or its JSON text), ``regex``, ``lark``, ``gbnf``; with
    ``json_schema`` also ``whitespace``, ``strict``, ``extra_properties``,
    ``property_order`` (as :class:`constrain.JsonSchema`), with ``lark``/``gbnf`` a
    ``start`` rule. Raises :class:`SpecError` naming what is malformed."""
    where = f"extra_args[{EXTRA_ARGS_KEY!r}]"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SpecError(f"{where} must be an object such as {{'json_schema': {{...}}}}, not {type(value).__name__}")
    kinds = [k for k in _SPEC_KINDS if k in value]
    if len(kinds) != 1:
        raise SpecError(f"{where} must have exactly one of {', '.join(_SPEC_KINDS)}; got {sorted(value) or 'none'}")
    kind = kinds[0]
    allowed = {kind, *(_JSON_OPTIONS if kind == "json_schema" else ("start",) if kind in ("lark", "gbnf") else ())}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} beside {kind!r} "
                        f"(allowed: {', '.join(sorted(allowed))})")
    body = value[kind]
    if kind == "json_schema":
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except json.JSONDecodeError as exc:
                raise SpecError(f"{where}['json_schema'] is not valid JSON: {exc}") from None
        if not isinstance(body, (dict, bool)):
            raise SpecError(f"{where}['json_schema'] must be a JSON Schema object, not {type(body).__name__}")
        return JsonSchema(body, **{k: value[k] for k in _JSON_OPTIONS if k in value})
    if not isinstance(body, str):
        raise SpecError(f"{where}[{kind!r}] must be a string, not {type(body).__name__}")
    start = value.get("start")
    if start is not None and not isinstance(start, str):
        raise SpecError(f"{where}['start'] must be a rule name")
    if kind == "regex":
        return Regex(body)
    if kind == "lark":
        return Lark(body) if start is None else Lark(body, start=start)
    return GBNF(body) if start is None else GBNF(body, start=start)


def _spec_of_request(request_type: StructuredOutputOptions, text: str) -> Any:
    """The spec of one of vLLM's structured-output requests (its kind and its text)."""
    if request_type == StructuredOutputOptions.JSON:
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"the JSON Schema is not valid JSON: {exc}") from None
        return JsonSchema(schema)
    if request_type == StructuredOutputOptions.JSON_OBJECT:
        return JsonSchema({"type": "object"})
    if request_type == StructuredOutputOptions.REGEX:
        return Regex(text)
    if request_type == StructuredOutputOptions.CHOICE:
        choices = json.loads(text) if isinstance(text, str) else text
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
            raise SpecError("choice must be a non-empty list of strings")
        return Regex("|".join(re.escape(c) for c in choices))
    if request_type == StructuredOutputOptions.GRAMMAR:
        from vllm.v1.structured_output.utils import grammar_is_likely_lark

        return Lark(text) if grammar_is_likely_lark(text) else GBNF(text)
    raise SpecError(f"constrain's backend does not support {request_type.name.lower()} requests")


@lru_cache(maxsize=256)
def _check_spec(kind: str, key: str) -> None:
    """Compile the vocabulary-independent part of a spec (front end, terminal automata,
    grammar analysis): what :func:`constrain.compile` would raise for it, raised here.
    Memoized on the spec's text; the plan is built again (or read from the disk cache) by
    the engine's compile."""
    from ..compiler import plan
    from ..specs import to_grammar

    spec = spec_from_extra_args(key) if kind == "extra_args" else _spec_of_request(StructuredOutputOptions[kind], key)
    try:
        grammar = to_grammar(spec)[0]
        plan(grammar)
    except CompileLimitError as exc:
        raise SpecError(str(exc)) from None


def _check(kind: str, value: Any) -> None:
    key = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    try:
        _check_spec(kind, key)
    except ConstrainError as exc:
        raise ValueError(f"constrain: {exc}") from None


# --------------------------------------------------------------------------- vocabularies


class _Vocabularies:
    """The engine's vocabulary (from vLLM's own tokenizer), and variants whose EOS set also
    holds a request's extra stop-token ids (so those stay masked until the document is
    complete, as EOS is). Built on first use; thread-safe."""

    _MAX_VARIANTS = 8

    def __init__(self, tokenizer: Any, model_config: Any):
        self._tokenizer = tokenizer
        self._model_config = model_config
        self._base = None
        self._variants: OrderedDict[frozenset, Any] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def of_config(cls, vllm_config: Any) -> "_Vocabularies":
        return cls(None, vllm_config.model_config)

    @property
    def base(self):
        if self._base is None:
            with self._lock:
                if self._base is None:
                    from ..vocabulary import Vocabulary

                    tok = self._tokenizer
                    if tok is None:
                        from vllm.tokenizers import cached_tokenizer_from_config

                        tok = cached_tokenizer_from_config(model_config=self._model_config)
                    cfg = self._model_config
                    self._base = Vocabulary.from_tokenizer(
                        tok,
                        model_vocab_size=cfg.get_vocab_size(),
                        generation_config=cfg.try_get_generation_config() or None,
                    )
        return self._base

    def for_stop_ids(self, stop_ids: Iterable[int] | None):
        """The vocabulary whose EOS ids are the engine's plus ``stop_ids``."""
        base = self.base
        extra = frozenset(int(t) for t in (stop_ids or ()) if 0 <= int(t) < base.size) - set(base.eos_token_ids)
        if not extra:
            return base
        with self._lock:
            got = self._variants.get(extra)
            if got is None:
                from ..vocabulary import Vocabulary

                got = Vocabulary(
                    [base.token_bytes(i) for i in range(base.size)],
                    special=np.nonzero(base.special_mask)[0].tolist(),
                    eos_token_ids=(*base.eos_token_ids, *sorted(extra)),
                    model_vocab_size=base.model_vocab_size,
                    add_prefix_space=base.add_prefix_space,
                    name=base.name,
                )
                self._variants[extra] = got
                while len(self._variants) > self._MAX_VARIANTS:
                    self._variants.popitem(last=False)
            else:
                self._variants.move_to_end(extra)
            return got


def _budget(max_tokens: int | None, max_model_len: int | None, prompt_len: int | None) -> int | None:
    """The matcher's token budget (EOS included) for a request generating at most
    ``max_tokens`` tokens: one more, so that the text is complete when vLLM stops at
    ``max_tokens`` without an EOS."""
    limit = max_tokens
    if max_model_len is not None and prompt_len is not None:
        room = max_model_len - prompt_len
        limit = room if limit is None else min(limit, room)
    return None if limit is None else limit + 1


# --------------------------------------------------------------------------- logits processor


_V2_BASES = () if _V2LogitsProcessor is None else (_V2LogitsProcessor,)


class _Row:
    """One constrained request in a batch slot: its matcher and how much of its output the
    matcher has consumed."""

    __slots__ = ("grammar", "matcher", "budget", "out_ids", "seen", "prompt_len", "eos_only", "req")

    def __init__(self, grammar: CompiledGrammar | None, budget: int | None, out_ids: list[int] | None,
                 prompt_len: int | None, req: str):
        self.grammar = grammar
        self.matcher: Matcher | None = None
        self.budget = budget
        self.out_ids = out_ids
        self.seen = 0
        self.prompt_len = prompt_len
        self.eos_only = grammar is None  # a request that failed in the engine ends at once
        self.req = req

    def start(self, max_model_len: int | None) -> None:
        """Make the matcher (once the prompt length is known)."""
        if self.matcher is not None or self.eos_only or self.grammar is None:
            return
        budget = self.budget
        if max_model_len is not None and self.prompt_len is not None:
            room = max_model_len - self.prompt_len + 1
            budget = room if budget is None else min(budget, room)
        try:
            self.matcher = self.grammar.matcher(max_tokens=budget)
        except ConstrainError as exc:
            logger.error("constrain: %s: %s; generating without a token budget (the output may be cut)",
                         self.req, exc)
            self.matcher = self.grammar.matcher()

    def consume(self, tokens: Iterable[int]) -> None:
        m = self.matcher
        if m is None:
            return
        for t in tokens:
            if m.is_terminated():
                break  # after EOS (ignore_eos): nothing more to check
            if not m.advance(t):
                logger.error("constrain: %s: token %d is outside the grammar (another processor changed the "
                             "logits after constrain's?); ending the request", self.req, t)
                self.eos_only = True
                break

    def live(self) -> Matcher | None:
        m = self.matcher
        return None if self.eos_only or m is None or m.is_terminated() else m


_ACTIVE: dict[int, weakref.ref] = {}
_ACTIVE_LOCK = threading.Lock()


class LogitsProcessor(_V1LogitsProcessor, *_V2_BASES):
    """Masks each constrained request's logits so its output stays inside its spec.

    One class for both of vLLM's model runners: the V1 interface (``update_state``,
    ``apply(logits)``; the runner vLLM uses on CPU) and, where the installed vLLM has it,
    the V2 runner's (``add_request``, ``apply(logits, ctx)``). A request opts in with
    ``SamplingParams(extra_args={"constrain": {...}})`` (see :func:`spec_from_extra_args`);
    others pass through untouched. A spec that does not compile is rejected at admission
    (``validate_params``, an HTTP 400 over vLLM's server). The token budget is the
    request's ``max_tokens`` (and the model's length): a document cut there is complete.

    Registered by the ``vllm.logits_processors`` entry point, and accepted in
    ``LLM(..., logits_processors=[...])`` as well; loaded twice into one engine, the
    second instance stands aside.
    """

    def __init__(self, vllm_config: Any, *args: Any):
        self._config = vllm_config
        self._v2 = len(args) == 1
        self._req_states = args[0] if self._v2 else None
        self._rows: dict[int, _Row] = {}
        self._vocabs = _Vocabularies.of_config(vllm_config)
        self._bitmask: np.ndarray | None = None
        self._eos_words: np.ndarray | None = None
        self._max_model_len = getattr(vllm_config.model_config, "max_model_len", None)
        self._max_rows = max(1, int(vllm_config.scheduler_config.max_num_seqs))
        self._spec_decode = getattr(vllm_config, "speculative_config", None) is not None
        with _ACTIVE_LOCK:
            other = _ACTIVE.get(id(vllm_config))
            first = other is None or other() is None or other()._config is not vllm_config
            if first:
                _ACTIVE[id(vllm_config)] = weakref.ref(self)
        self._inert = not first
        if self._inert:
            logger.info("constrain: logits processor loaded twice (entry point and logits_processors); "
                        "this instance stands aside")

    # ------------------------------------------------------------------ both runners

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """Raise ValueError when the request's ``extra_args["constrain"]`` is malformed or
        does not compile (checked without the vocabulary; memoized per spec text)."""
        extra = getattr(sampling_params, "extra_args", None)
        if not extra or EXTRA_ARGS_KEY not in extra:
            return
        _check("extra_args", extra[EXTRA_ARGS_KEY])

    def is_argmax_invariant(self) -> bool:
        """Masking changes which token is the argmax."""
        return False

    def _new_row(self, params: Any, prompt_len: int | None, out_ids: list[int] | None) -> _Row | None:
        extra = getattr(params, "extra_args", None)
        if self._inert or not extra or EXTRA_ARGS_KEY not in extra:
            return None
        req = f"request with {EXTRA_ARGS_KEY} spec"
        try:
            spec = spec_from_extra_args(extra[EXTRA_ARGS_KEY])
            from ..specs import compile as compile_spec

            vocab = self._vocabs.for_stop_ids(getattr(params, "all_stop_token_ids", None))
            grammar = compile_spec(spec, vocab)
        except ConstrainError as exc:  # validate_params admitted it: a vocabulary-specific failure
            logger.error("constrain: %s cannot be constrained: %s; ending it", req, exc)
            grammar = None
        if self._spec_decode and grammar is not None:
            logger.error("constrain: the logits processor does not support speculative decoding; ending the %s "
                         "(use structured_outputs_config={'backend': 'constrain'} instead)", req)
            grammar = None
        budget = _budget(getattr(params, "max_tokens", None), None, None)
        return _Row(grammar, budget, out_ids, prompt_len, req)

    def _words(self) -> int:
        return self._vocabs.base.bitmask_words

    def _mask_rows(self, logits: torch.Tensor, rows: list[int], rowstates: list[_Row]) -> torch.Tensor:
        """Fill the bitmask rows of ``rows`` and apply them to ``logits``."""
        batch = logits.shape[0]
        if self._bitmask is None or self._bitmask.shape[0] < batch:
            self._bitmask = np.full((max(self._max_rows, batch), self._words()), -1, dtype=np.int32)
        bitmask = self._bitmask[:batch]
        matchers: list[Matcher | None] = [None] * batch
        eos_rows = []
        for i, r in zip(rows, rowstates):
            m = r.live()
            if m is None:
                eos_rows.append(i)
            else:
                matchers[i] = m
        fill_bitmasks(matchers, bitmask)
        if eos_rows:
            bitmask[eos_rows] = self._eos_mask()
        apply_bitmask(logits, bitmask, np.asarray(rows, dtype=np.int64))
        return logits

    def _eos_mask(self) -> np.ndarray:
        if self._eos_words is None:
            vocab = self._vocabs.base
            words = np.zeros(vocab.bitmask_words, dtype=np.uint32)
            for t in vocab.eos_token_ids:
                words[t >> 5] |= np.uint32(1 << (t & 31))
            self._eos_words = words.view(np.int32)
        return self._eos_words

    # ------------------------------------------------------------------ V1 runner

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        """Follow the persistent batch: ``removed``, then ``added`` (a slot is reused
        without a removal, so every addition starts afresh), then ``moved``."""
        if batch_update is None or self._inert:
            return
        rows = self._rows
        for index in batch_update.removed:
            rows.pop(index, None)
        for index, params, prompt_ids, out_ids in batch_update.added:
            rows.pop(index, None)
            row = self._new_row(params, None if prompt_ids is None else len(prompt_ids), out_ids)
            if row is not None:
                rows[index] = row
        for a, b, direction in batch_update.moved:
            ra = rows.pop(a, None)
            rb = rows.pop(b, None)
            if ra is not None:
                rows[b] = ra
            if rb is not None and direction == MoveDirectionality.SWAP:
                rows[a] = rb

    def _apply_v1(self, logits: torch.Tensor) -> torch.Tensor:
        batch = logits.shape[0]
        rows, states = [], []
        for index, row in self._rows.items():
            if index >= batch:
                continue
            row.start(self._max_model_len)
            out = row.out_ids
            if out is not None and len(out) > row.seen:
                new = out[row.seen:]
                if -1 in new:  # a placeholder of asynchronous scheduling, filled in later
                    new = new[: new.index(-1)]
                row.consume(new)
                row.seen += len(new)
            rows.append(index)
            states.append(row)
        return self._mask_rows(logits, rows, states)

    # ------------------------------------------------------------------ V2 runner (untested: GPU only)

    def add_request(self, req_idx: int, sampling_params: Any) -> bool:
        """Start slot ``req_idx`` afresh; True when the request is constrained."""
        self._rows.pop(req_idx, None)
        row = self._new_row(sampling_params, None, None)
        if row is None:
            return False
        self._rows[req_idx] = row
        return True

    def apply_staged_writes(self) -> None:
        """Nothing is staged: masks are computed on the host in ``apply``."""

    def _apply_v2(self, logits: torch.Tensor, ctx: Any) -> torch.Tensor:
        slots = np.asarray(ctx.idx_mapping_np)
        if logits.shape[0] != slots.shape[0]:  # rows per draft token: only when speculating
            slots = ctx.expanded_idx_mapping.cpu().numpy()
        seq_lens = np.asarray(ctx.seq_lens_upper_bound_np)
        states = self._req_states
        rows, rowstates, need = [], [], []
        gather_slots: list[int] = []
        gather_pos: list[int] = []
        for b, slot in enumerate(slots.tolist()):
            row = self._rows.get(slot)
            if row is None:
                continue
            if row.prompt_len is None:
                row.prompt_len = int(states.prompt_len.np[slot])
            row.start(self._max_model_len)
            if b < seq_lens.shape[0] and logits.shape[0] == seq_lens.shape[0]:
                start = row.prompt_len + row.seen
                end = int(seq_lens[b])
                if end > start:
                    need.append((row, end - start))
                    gather_slots.extend([slot] * (end - start))
                    gather_pos.extend(range(start, end))
            rows.append(b)
            rowstates.append(row)
        if gather_slots:
            table = states.all_token_ids.gpu
            idx = torch.as_tensor(gather_slots, device=table.device)
            pos = torch.as_tensor(gather_pos, device=table.device)
            tokens = table[idx, pos].tolist()
            k = 0
            for row, n in need:
                row.consume(tokens[k : k + n])
                row.seen += n
                k += n
        if not rows:
            return logits
        return self._mask_rows(logits, rows, rowstates)

    def apply(self, logits: torch.Tensor, ctx: Any = None) -> torch.Tensor:
        """Mask the rows of constrained requests (in place)."""
        if self._inert or not self._rows:
            return logits
        if ctx is None:
            return self._apply_v1(logits)
        return self._apply_v2(logits, ctx)


# --------------------------------------------------------------------------- structured-output backend


class StructuredOutputGrammar(_Grammar):
    """One request's cursor for vLLM's structured-output manager (a :class:`Matcher`)."""

    def __init__(self, matcher: Matcher):
        self.matcher = matcher

    def accept_tokens(self, request_id: str, tokens: list[int]) -> bool:
        """Advance by ``tokens``; False (state as far as accepted) at the first token outside
        the grammar. Tokens after EOS are ignored."""
        m = self.matcher
        for t in tokens:
            if m.is_terminated():
                return True
            if not m.advance(t):
                logger.error("constrain: request %s: token %d is outside the grammar", request_id, t)
                return False
        return True

    def validate_tokens(self, tokens: list[int]) -> list[int]:
        """The longest prefix of ``tokens`` the grammar accepts from here (state unchanged)."""
        m = self.matcher
        n = 0
        for t in tokens:
            if m.is_terminated() or not m.advance(t):
                break
            n += 1
        if n:
            m.rollback(n)
        return list(tokens[:n])

    def rollback(self, num_tokens: int) -> None:
        if num_tokens > 0:
            self.matcher.rollback(num_tokens)

    def fill_bitmask(self, bitmask: torch.Tensor, batch_index: int) -> None:
        self.matcher.fill_bitmask(bitmask, batch_index)

    def is_terminated(self) -> bool:
        return self.matcher.is_terminated()

    def reset(self) -> None:
        self.matcher.reset()


@dataclass
class StructuredOutputBackend(_Backend):
    """constrain as vLLM's structured-output backend: JSON Schemas, JSON objects, regexes,
    choices, Lark and GBNF grammars (vLLM's ``grammar`` field: Lark when it looks like Lark).
    Structural tags are rejected at admission. Selected by
    ``structured_outputs_config={"backend": "constrain"}`` after :func:`register`."""

    def __post_init__(self) -> None:
        self._vocabs = _Vocabularies(self.tokenizer, self.vllm_config.model_config)

    def compile_grammar(self, request_type: StructuredOutputOptions, grammar_spec: str,
                        stop_token_ids: set[int] | None = None, max_tokens: int | None = None
                        ) -> StructuredOutputGrammar:
        """Compile one request's spec. ``stop_token_ids`` stay masked until the document is
        complete; ``max_tokens`` (the matcher's budget, EOS included) keeps a way to finish
        within it. Raises :class:`ConstrainError` subclasses."""
        from ..specs import compile as compile_spec

        spec = _spec_of_request(request_type, grammar_spec)
        vocab = self._vocabs.for_stop_ids(stop_token_ids)
        return StructuredOutputGrammar(compile_spec(spec, vocab).matcher(max_tokens=max_tokens))

    def allocate_token_bitmask(self, max_num_seqs: int) -> torch.Tensor:
        words = (int(self.vocab_size) + 31) // 32
        return torch.full((max_num_seqs, words), -1, dtype=torch.int32)

    def destroy(self) -> None:
        pass


def check_request(request_type: StructuredOutputOptions, text: str) -> None:
    """Raise ValueError when one of vLLM's structured-output requests (its kind and text)
    does not compile (checked without the vocabulary; memoized per text)."""
    _check(request_type.name, text)


def compile_request(backend: StructuredOutputBackend, request: Any, vllm_config: Any) -> StructuredOutputGrammar:
    """The grammar of one of vLLM's requests: its spec, its stop ids, and a budget of its
    ``max_tokens`` (bounded by the model's length)."""
    request_type, text = request.structured_output_request.structured_output_key
    params = request.sampling_params
    try:
        return backend.compile_grammar(
            request_type,
            text,
            stop_token_ids=params.all_stop_token_ids if params is not None else None,
            max_tokens=_budget(request.max_tokens, vllm_config.model_config.max_model_len, request.num_prompt_tokens),
        )
    except Exception:  # noqa: BLE001 - logged as vLLM logs its own backends' failures, then re-raised
        logger.exception("constrain: failed to compile the grammar of request %s", request.request_id)
        raise
