"""The batched generation loop: continuous batching over slots, a prefix cache, jump-forward
over forced tokens, and token masks computed while the model runs.

One :meth:`Engine.step` admits waiting requests into free slots (loading cached prompt
blocks), packs every running row's unfed tokens (a decode token, a forced run, or a
prefill chunk) into one forward pass, masks and samples the rows that reached the end of
their sequence, and retires finished rows at once. Masks already memoized are read
before the pass (so forced tokens join it); the others are computed on a worker thread
while the pass runs.
"""

from __future__ import annotations

import codecs
import itertools
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..bitmask import apply_bitmask
from ..errors import ConstrainError, PromptTooLongError, UnsatisfiableError
from ..matcher import CompiledGrammar, Matcher
from .kv import BLOCK, PrefixCache, Segment, SlotStore, StepLayout, model_geometry, register_attention, slot_attention
from .sampling import SamplingParams, choose

__all__ = ["Engine", "Event", "Request"]

_ids = itertools.count(1)


@dataclass
class Event:
    """What one step did to one request: new text and tokens, and whether it finished."""

    request_id: str
    text: str
    token_ids: list[int]
    finished: bool = False
    finish_reason: str | None = None
    error: str | None = None


@dataclass(eq=False)
class Request:
    """One prompt on its way through the loop. Fields after ``on_event`` are its state."""

    prompt_ids: list[int]
    grammar: CompiledGrammar | None
    params: SamplingParams
    on_event: Callable[[Event], None] | None = None
    request_id: str = field(default_factory=lambda: f"req-{next(_ids)}")
    output_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None
    error: str | None = None
    cached_tokens: int = 0
    forced_tokens: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    matcher: Matcher | None = None
    seed: int = 0
    arrival: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    finished_at: float | None = None
    _decoder: Any = None
    _emitted: int = 0  # characters of text sent as events
    _sent: int = 0  # output tokens sent as events

    @property
    def finished(self) -> bool:
        return self.done.is_set()


class _Row:
    """A request holding a slot. ``computed``: positions whose keys are in the slot; the
    sequence is the prompt then the output, so the tokens to feed next are
    ``sequence[computed:]``."""

    __slots__ = ("req", "slot", "computed", "mask", "prompt_len", "draft", "draft_masks", "table", "table_state",
                 "free_steps")

    def __init__(self, req: Request, slot: int):
        self.req = req
        self.slot = slot
        self.computed = 0
        self.mask: np.ndarray | None = None  # the next-token mask, when known before the pass
        self.prompt_len = len(req.prompt_ids)
        # Forced text, tokenized, fed after the sequence and checked against the model's own
        # choices (the masks after each draft token come with it).
        self.draft: list[int] = []
        self.draft_masks: list[np.ndarray] = []
        # Device-resident masks (Engine(device_masks=...)): the grammar's tables, the
        # table state whose mask ``mask`` is (-1: a host mask), and how many tokens the
        # budget leaves the tables' masks exact for.
        self.table: Any = None
        self.table_state = -1
        self.free_steps = -1

    def length(self) -> int:
        return self.prompt_len + len(self.req.output_ids)

    def token(self, i: int) -> int:
        return self.req.prompt_ids[i] if i < self.prompt_len else self.req.output_ids[i - self.prompt_len]

    def tokens(self, lo: int, hi: int) -> list[int]:
        p = self.req.prompt_ids
        out = self.req.output_ids
        n = self.prompt_len
        return p[lo:min(hi, n)] + out[max(lo - n, 0):max(hi - n, 0)]


STATS_KEYS = (
    "requests", "prompt_tokens", "cached_prompt_tokens", "prefill_tokens", "generated_tokens", "forced_tokens",
    "draft_tokens", "forward_passes", "forward_tokens", "mask_ms", "overlap_ms", "forward_ms", "cache_evictions",
    "device_mask_rows",
)


class Engine:
    """The loop over one model. Thread-safe submission (:meth:`add`, :meth:`abort`); one
    thread at a time runs :meth:`step` (the caller of ``LLM.generate`` or the server's
    background thread).

    ``device_masks=True`` (or a :class:`constrain.DeviceLimits`): requests whose grammar
    freezes into tables (:class:`constrain.DeviceMasks`) take their masks from the tables,
    gathered on the model's device by state (no mask computed on the host, none uploaded),
    for as long as the token budget cannot narrow them
    (:meth:`DeviceMasks.budget_free_steps`); host masks otherwise. Outputs are the same."""

    def __init__(self, model: Any, vocab: Any, *, max_batch_size: int = 16, kv_cache_tokens: int | None = None,
                 jump_forward: str | bool = "exact", max_step_tokens: int = 512, device: Any = None,
                 device_masks: Any = False):
        if jump_forward not in ("exact", "bytes", False, None):
            raise ValueError(f"jump_forward must be 'exact', 'bytes' or False, got {jump_forward!r}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_step_tokens < 1:
            raise ValueError(f"max_step_tokens must be at least 1, got {max_step_tokens}")
        layers, kv_heads, head_dim = model_geometry(model)
        register_attention()
        self.model = model
        self.vocab = vocab
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        self.store = SlotStore(layers, kv_heads, head_dim, max_batch_size, dtype, self.device)
        if kv_cache_tokens is None:
            # A quarter GiB of keys and values by default (about 5,800 tokens of SmolLM2-135M in float32).
            kv_cache_tokens = max(BLOCK, (256 << 20) // self.store.bytes_per_token())
        if kv_cache_tokens < 0:
            raise ValueError(f"kv_cache_tokens must be >= 0, got {kv_cache_tokens}")
        self.cache = PrefixCache(self.store, kv_cache_tokens)
        self.max_batch_size = max_batch_size
        self.max_step_tokens = max_step_tokens
        self.jump_forward = jump_forward or False
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30)
        self.eos = frozenset(vocab.eos_token_ids)
        self.words = vocab.bitmask_words
        self._waiting: list[Request] = []
        self._rows: list[_Row] = []
        self._free = list(range(max_batch_size - 1, -1, -1))
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="constrain-masks")
        self.device_masks = device_masks
        self.stats: dict[str, float] = dict.fromkeys(STATS_KEYS, 0)

    # ------------------------------------------------------------------ submission

    def add(self, req: Request) -> Request:
        """Queue ``req`` (checked here: its prompt must fit the model and its grammar the budget)."""
        if not req.prompt_ids:
            raise ValueError("the prompt is empty")
        total = len(req.prompt_ids) + req.params.max_new_tokens
        if total > self.max_positions:
            raise PromptTooLongError(
                f"the prompt ({len(req.prompt_ids)} tokens) plus max_new_tokens ({req.params.max_new_tokens}) "
                f"exceeds the model's {self.max_positions} positions"
            )
        if req.grammar is not None:
            # The budget counts the closing EOS too.
            need = req.grammar.min_tokens()
            if need > req.params.max_new_tokens:
                raise UnsatisfiableError(
                    f"the shortest output of this format takes {need} tokens; max_new_tokens is {req.params.max_new_tokens}"
                )
            req.matcher = req.grammar.matcher(max_tokens=req.params.max_new_tokens + 1)
        req.seed = req.params.seed if req.params.seed is not None else secrets.randbits(63)
        req._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with self._wake:
            self._waiting.append(req)
            self._wake.notify_all()
        return req

    def abort(self, req: Request) -> None:
        """Stop ``req`` at the next step boundary; its slot is freed then."""
        req.cancelled = True
        with self._wake:
            self._wake.notify_all()

    def has_work(self) -> bool:
        return bool(self._rows or self._waiting)

    @property
    def running(self) -> int:
        """Requests holding a slot."""
        return len(self._rows)

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return len(self._waiting)

    def abort_all(self) -> None:
        """Finish every queued and running request with ``"abort"`` (the loop must be stopped)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for req in waiting:
            self._complete(req, "abort")
        for row in list(self._rows):
            self._finish(row, "abort")

    def wait_for_work(self, timeout: float) -> None:
        with self._wake:
            if not self._rows and not self._waiting:
                self._wake.wait(timeout)

    def reset_stats(self) -> None:
        self.stats = dict.fromkeys(STATS_KEYS, 0)

    # ------------------------------------------------------------------ the step

    def step(self) -> bool:
        """One forward pass over every running row; False when there was nothing to do."""
        self._drop_cancelled()
        self._admit()
        if not self._rows:
            return False
        try:
            self._run_pass()
        except Exception as exc:
            for row in list(self._rows):
                self._finish(row, "error", error=f"{type(exc).__name__}: {exc}")
            raise
        return True

    def _drop_cancelled(self) -> None:
        with self._lock:
            gone = [r for r in self._waiting if r.cancelled]
            self._waiting = [r for r in self._waiting if not r.cancelled]
        for req in gone:
            self._complete(req, "abort")
        for row in [r for r in self._rows if r.req.cancelled]:
            self._finish(row, "abort")

    def _admit(self) -> None:
        with self._lock:
            waiting = list(self._waiting)
        admitted: list[Request] = []
        for req in waiting:
            if not self._free:
                break
            blocks = self.cache.match(req.prompt_ids, len(req.prompt_ids) - 1)
            matched = len(blocks) * BLOCK
            if self._shares_pending_prefill(req, matched):
                continue  # the next block is being computed for another row: reuse it next step
            row = _Row(req, self._free.pop())
            if self.device_masks and req.matcher is not None:
                self._attach_table(row)
            self.store.reserve(row.prompt_len + req.params.max_new_tokens)
            self.cache.load(blocks, row.slot)
            row.computed = matched
            req.cached_tokens = matched
            self.stats["requests"] += 1
            self.stats["prompt_tokens"] += row.prompt_len
            self.stats["cached_prompt_tokens"] += matched
            self._rows.append(row)
            admitted.append(req)
            if req.matcher is not None:
                self._after_token(row)  # a document that starts with forced tokens
        if admitted:
            with self._lock:
                gone = set(map(id, admitted))
                self._waiting = [r for r in self._waiting if id(r) not in gone]

    def _attach_table(self, row: _Row) -> None:
        from ..device_masks import DEFAULT_DEVICE_LIMITS, DeviceLimits, DeviceMasks

        limits = self.device_masks if isinstance(self.device_masks, DeviceLimits) else DEFAULT_DEVICE_LIMITS
        table = DeviceMasks.of(row.req.grammar, limits)
        if table.resident:
            row.table = table
            row.free_steps = table.budget_free_steps(row.req.params.max_new_tokens + 1)

    def _table_mask(self, row: _Row) -> np.ndarray | None:
        """The row's next mask from its grammar's tables (a view, nothing computed), or
        None where the tables do not serve it."""
        m = row.req.matcher
        row.table_state = -1
        if row.table is None or m.num_tokens > row.free_steps:
            return None
        s = row.table.state_of(m.state)
        if s < 0:
            return None
        row.table_state = s
        return row.table.mask(s).view(np.uint32)

    def _shares_pending_prefill(self, req: Request, matched: int) -> bool:
        end = matched + BLOCK
        if len(req.prompt_ids) <= end:
            return False
        head = req.prompt_ids[:end]
        return any(
            row.computed < end <= row.prompt_len and row.req.prompt_ids[:end] == head for row in self._rows
        )

    def _run_pass(self) -> None:
        stats = self.stats
        # Rows whose unfed tokens end their sequence need logits; prefill chunks fill the
        # token budget left after them.
        budget = self.max_step_tokens
        plan: list[tuple[_Row, int]] = []
        for row in self._rows:
            if row.computed >= row.prompt_len:
                n = row.length() - row.computed
                plan.append((row, n))
                budget -= n
        for row in self._rows:
            if row.computed < row.prompt_len and budget > 0:
                n = min(row.length() - row.computed, budget)
                plan.append((row, n))
                budget -= n
        if not plan:
            return
        ids: list[int] = []
        positions: list[int] = []
        segments: list[Segment] = []
        keep: list[int] = []
        sampled_rows: list[_Row] = []
        # One-token rows first, in slot order, so that attention reads them as one dense block.
        plan.sort(key=lambda item: (item[1] != 1, item[0].slot))
        for row, n in plan:
            start = len(ids)
            ids.extend(row.tokens(row.computed, row.computed + n))
            positions.extend(range(row.computed, row.computed + n))
            if row.computed + n == row.length():
                k = len(row.draft)
                ids.extend(row.draft)
                positions.extend(range(row.computed + n, row.computed + n + k))
                n += k
                keep.extend(range(start + n - 1 - k, start + n))
                sampled_rows.append(row)
            segments.append(Segment(start, n, row.slot, row.computed))
        self.store.reserve(max(s.pos + s.count for s in segments))
        layout = StepLayout.build(self.store, segments)

        pending = [r for r in sampled_rows if r.req.matcher is not None and (r.mask is None or r.draft)]
        future = self._pool.submit(self._compute_masks, pending) if pending else None
        t0 = time.perf_counter()
        device = self.device
        with torch.inference_mode(), slot_attention(self.model, layout):
            out = self.model(
                input_ids=torch.tensor([ids], device=device),
                position_ids=torch.tensor([positions], device=device),
                logits_to_keep=torch.tensor(keep, device=device) if keep else 1,
                use_cache=False,
            )
        forward_s = time.perf_counter() - t0
        stats["forward_ms"] += forward_s * 1e3
        stats["forward_passes"] += 1
        stats["forward_tokens"] += len(ids)
        for seg, (row, _) in zip(segments, plan):
            prefill = max(0, min(seg.pos + seg.count, row.prompt_len) - seg.pos)
            stats["prefill_tokens"] += prefill
            row.computed = min(seg.pos + seg.count, row.length())  # draft positions are settled below
            if prefill:
                self.cache.insert(row.req.prompt_ids, row.slot, min(row.computed, row.prompt_len))
        if future is not None:
            mask_s = future.result()
            stats["mask_ms"] += mask_s * 1e3
            stats["overlap_ms"] += min(mask_s, forward_s) * 1e3
        if not sampled_rows:
            return
        logits = out.logits[0].float()
        masks: list[np.ndarray | None] = []
        for row in sampled_rows:
            if row.req.matcher is None:
                masks.extend([None] * (len(row.draft) + 1))
            else:
                masks.append(row.mask)
                masks.extend(row.draft_masks + [None] * (len(row.draft) - len(row.draft_masks)))
        # rows whose mask comes from the tables: gathered on the device by state
        gather: dict[int, tuple[Any, list[int], list[int]]] = {}
        i = 0
        for row in sampled_rows:
            if row.req.matcher is not None and row.table_state >= 0 and masks[i] is not None:
                _, at, states = gather.setdefault(id(row.table), (row.table, [], []))
                at.append(i)
                states.append(row.table_state)
                masks[i] = None
            i += len(row.draft) + 1
        if gather or any(m is not None for m in masks):
            bitmask = np.full((len(masks), self.words), -1, dtype=np.int32)
            for i, m in enumerate(masks):
                if m is not None:
                    bitmask[i] = m.view(np.int32)
            if logits.device.type == "cpu":
                logits = logits.contiguous()
            bm = torch.from_numpy(bitmask).to(logits.device)
            for table, at, states in gather.values():
                tens = table.tensors(logits.device)
                which = tens["mask_of"][torch.tensor(states, device=logits.device)]
                rows = tens["masks"][which]
                bm[torch.tensor(at, device=logits.device), : rows.shape[1]] = rows
                stats["device_mask_rows"] += len(at)
            apply_bitmask(logits, bm)
        choices = choose(logits, [(r.req.params, r.req.seed, len(r.req.output_ids), r.draft) for r in sampled_rows])
        for row, (accepted, tok) in zip(sampled_rows, choices):
            draft = row.draft
            row.mask, row.draft, row.draft_masks, row.table_state = None, [], [], -1
            stats["draft_tokens"] += len(draft)
            for d in draft[:accepted]:
                row.req.matcher.advance(d)
                self._append(row, d, forced=True)
                if row.req.finished:
                    break
            if not row.req.finished:
                row.computed = row.length()
                self._take_token(row, tok)

    def _compute_masks(self, rows: list[_Row]) -> float:
        t0 = time.perf_counter()
        for row in rows:
            m = row.req.matcher
            if row.mask is None:
                row.mask = m.mask_words()
            if row.draft:
                f = m.fork()
                masks = []
                for d in row.draft:
                    if not f.advance(d):
                        break
                    masks.append(f.mask_words())
                row.draft_masks = masks
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ tokens

    def _take_token(self, row: _Row, tok: int) -> None:
        req = row.req
        if tok in self.eos:
            if req.matcher is not None and not req.matcher.advance(tok):
                raise ConstrainError(f"{req.request_id}: EOS sampled outside the language (a masking bug)")
            self._finish(row, "stop")
            return
        if req.matcher is not None and not req.matcher.advance(tok):
            raise ConstrainError(f"{req.request_id}: token {tok} sampled although its mask forbids it (a masking bug)")
        self._append(row, tok)
        if not row.req.finished and req.matcher is not None:
            self._after_token(row)

    def _append(self, row: _Row, tok: int, forced: bool = False) -> None:
        req = row.req
        if req.first_token_at is None:
            req.first_token_at = time.perf_counter()
        req.output_ids.append(tok)
        self.stats["generated_tokens"] += 1
        if forced:
            req.forced_tokens += 1
            self.stats["forced_tokens"] += 1
        req.text += req._decoder.decode(self.vocab.token_bytes(tok))
        if req.params.stop and req.matcher is None and self._hit_stop(req):
            self._finish(row, "stop")
        elif len(req.output_ids) >= req.params.max_new_tokens:
            if req.matcher is None or not req.matcher.is_accepting():
                self._finish(row, "length")
            else:
                self._finish(row, "stop")
        else:
            self._emit(req)

    def _hit_stop(self, req: Request) -> bool:
        longest = max(map(len, req.params.stop))
        lo = max(0, req._emitted - longest)
        cut = min((i for i in (req.text.find(s, lo) for s in req.params.stop) if i >= 0), default=-1)
        if cut < 0:
            return False
        req.text = req.text[:cut]
        return True

    def _after_token(self, row: _Row) -> None:
        """Forced continuations: EOS alone ends the row; with jump-forward, tokens the mask
        leaves no choice about are appended now (they join the next pass together)."""
        req, m = row.req, row.req.matcher
        if self.jump_forward == "bytes":
            for tok in m.forced_tokens():
                if len(req.output_ids) >= req.params.max_new_tokens - 1 or not m.advance(tok):
                    break
                self._append(row, tok, forced=True)
                if req.finished:
                    return
        while True:
            t0 = time.perf_counter()
            words = self._table_mask(row)
            if words is None:
                words = m.mask_if_ready()
            self.stats["mask_ms"] += (time.perf_counter() - t0) * 1e3
            if words is None:  # computed during the next pass
                if self.jump_forward == "exact":
                    room = req.params.max_new_tokens - len(req.output_ids) - 1
                    row.draft = m.forced_tokens()[: max(room, 0)]
                return
            row.mask = words
            only = _single_token(words)
            if only < 0:
                if self.jump_forward == "exact":
                    room = req.params.max_new_tokens - len(req.output_ids) - 1
                    row.draft = m.forced_tokens()[: max(room, 0)]
                return
            if only in self.eos:
                m.advance(only)
                self._finish(row, "stop")
                return
            if not self.jump_forward:
                return
            if not m.advance(only):
                return
            row.mask = None
            row.table_state = -1
            self._append(row, only, forced=True)
            if req.finished:
                return

    # ------------------------------------------------------------------ finishing

    def _emit(self, req: Request, final: bool = False) -> None:
        hold = 0 if final or not req.params.stop or req.matcher is not None else max(map(len, req.params.stop)) - 1
        upto = max(req._emitted, len(req.text) - hold)
        delta = req.text[req._emitted : upto]
        new_ids = req.output_ids[req._sent:]
        req._emitted = upto
        req._sent = len(req.output_ids)
        if req.on_event is not None and (delta or new_ids or final):
            try:
                req.on_event(Event(req.request_id, delta, new_ids, final, req.finish_reason, req.error))
            except Exception as exc:  # the caller's bug ends its own request, not the batch
                req.on_event = None
                req.cancelled = True
                req.error = f"on_event raised {type(exc).__name__}: {exc}"

    def _finish(self, row: _Row, reason: str, error: str | None = None) -> None:
        if row in self._rows:
            self._rows.remove(row)
            self._free.append(row.slot)
            self._free.sort(reverse=True)  # lowest slots first keeps one-token rows dense
            if reason in ("stop", "length"):
                self.cache.insert(row.tokens(0, row.computed), row.slot, row.computed)
                self.stats["cache_evictions"] = self.cache.evictions
        self._complete(row.req, reason, error)

    def _complete(self, req: Request, reason: str, error: str | None = None) -> None:
        if req.finished:
            return
        req.text += req._decoder.decode(b"", final=True) if req._decoder is not None else ""
        req.finish_reason = reason
        req.error = error or req.error
        req.finished_at = time.perf_counter()
        req.done.set()  # before the last event: whoever handles it sees a finished request
        self._emit(req, final=True)

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def _single_token(words: np.ndarray) -> int:
    """The one token ``words`` allows, or -1 (none or several)."""
    nz = np.flatnonzero(words)
    if nz.shape[0] != 1:
        return -1
    w = int(words[nz[0]])
    if w & (w - 1):
        return -1
    return int(nz[0]) * 32 + w.bit_length() - 1
