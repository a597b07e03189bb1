"""Token masks that live on the device: a grammar whose reachable states are few, frozen
into tables, so that a decode step advances each row's state and gathers its mask with
tensor ops alone (no host round trip per token).

For a regular language (a regex, a JSON Schema without recursion) or any grammar whose
parse states repeat, the hypothesis sets a matcher can reach from the start are finite.
:meth:`DeviceMasks.build` explores them breadth-first with the grammar's own
:class:`~constrain.masking.masks.MaskEngine` and keeps

* ``masks``: the distinct token masks, int32 ``[n_masks, ceil(V/32)]`` words;
* ``next_state``: int32 ``[n_states, n_classes]``, the state after a token of each token
  class (-1: the token is not allowed), with ``class_of`` (int32 ``[V']``) naming each
  token's class: tokens that lead to the same state from every state share a class, which
  keeps the table small (a 151k vocabulary has a few hundred classes for most schemas);
* ``mask_of`` (state → mask row) and ``accepting`` (state → bool).

State 0 is the state after EOS (an empty mask); :attr:`DeviceMasks.initial` is the start.
A step on the device is then ``s = next_state[s, class_of[token]]`` and
``mask = masks[mask_of[s]]`` (see :class:`DeviceStepper`), followed by
:func:`constrain.apply_bitmask`.

The successors of a state come from one walk of the vocabulary's trie over a byte-level
automaton of the matcher's own hypothesis sets (the same steps as
``MaskEngine.step_bytes``, made once per set of hypotheses and byte class), so the walk
costs the trie nodes the state allows, not a step per token. Each distinct set of
hypotheses reached at the end of a token is named by the engine itself (one
``MaskEngine.step`` for one of its tokens): the tables' states are the engine's states,
and their masks are the engine's masks, checked against the walk at every state.

The build stops at :class:`DeviceLimits`; past one, the result is not device-resident and
:attr:`DeviceMasks.reason` says which limit and by how much: the caller keeps host masks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numba import njit

from . import _caches
from .errors import ConstrainError

__all__ = ["DeviceLimits", "DeviceMasks", "DeviceStepper"]

_UNKNOWN = -2  # a byte-level transition not made yet
_DEAD = -1
TERMINATED = 0  # the state after EOS


@dataclass(frozen=True)
class DeviceLimits:
    """Bounds on one table build; past any of them the grammar keeps host masks.

    * ``max_states`` (4,096): token-level states (hypothesis sets reachable from the start).
    * ``max_table_bytes`` (64 MiB): the masks, the state × token-class table and the
      token → class map together.
    * ``max_seconds`` (10.0): wall time of the build.
    * ``max_byte_states`` (200,000): byte-level states (sets of hypotheses inside a token)
      the successor walks make.
    """

    max_states: int = 4096
    max_table_bytes: int = 64 << 20
    max_seconds: float = 10.0
    max_byte_states: int = 200_000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"DeviceLimits.{name} must be a positive number, not {value!r}")


DEFAULT_DEVICE_LIMITS = DeviceLimits()


class _TooLarge(Exception):
    """A build limit was reached (internal: the result carries the reason)."""


class DeviceMasks:
    """A grammar's states, token transitions and masks as tables (see the module's text).

    Build with :meth:`build` (or :meth:`of`, which memoizes per grammar and limits).
    :attr:`resident` says whether the tables were made; when not, :attr:`reason` says why
    and the tables are None. Host tables are numpy arrays; :meth:`tensors` gives them on a
    torch device (made once per device).
    """

    def __init__(self, grammar: Any, limits: DeviceLimits):
        self.grammar = grammar
        self.limits = limits
        self.resident = False
        self.reason: str | None = None
        self.next_state: np.ndarray | None = None
        self.class_of: np.ndarray | None = None
        self.mask_of: np.ndarray | None = None
        self.masks: np.ndarray | None = None
        self.accepting: np.ndarray | None = None
        self.hids: list[int] = []  # state -> the engine's hypothesis set (-2 for TERMINATED)
        self.initial = 1
        self.build_seconds = 0.0
        self.byte_states = 0
        self._state_of: dict[int, int] = {}
        self._device: dict[str, dict[str, Any]] = {}
        self._budget_bound: int | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, grammar: Any, limits: DeviceLimits = DEFAULT_DEVICE_LIMITS) -> "DeviceMasks":
        """Explore ``grammar`` (a :class:`~constrain.CompiledGrammar`) from its start and
        freeze it into tables, within ``limits``. Never raises for a grammar too large:
        the result says so. Raises :class:`ConstrainError` when the engine's masks and
        steps disagree (a bug)."""
        self = cls(grammar, limits)
        t0 = time.perf_counter()
        try:
            if getattr(grammar, "unique_checker", None) is not None:
                # the matcher removes tokens that would repeat an item: its masks depend
                # on the text so far, not on the state alone
                raise _TooLarge("the grammar has uniqueItems arrays checked per sequence: its masks are not "
                                "a function of the state")
            _Builder(self, grammar, limits, t0).run()
        except _TooLarge as exc:
            self.reason = str(exc)
            self.next_state = self.class_of = self.mask_of = self.masks = self.accepting = None
            self.hids = []
            self._state_of = {}
        else:
            self.resident = True
        self.build_seconds = time.perf_counter() - t0
        return self

    @classmethod
    def of(cls, grammar: Any, limits: DeviceLimits = DEFAULT_DEVICE_LIMITS) -> "DeviceMasks":
        """:meth:`build`, memoized per grammar (its mask engine) and ``limits`` in a small
        process-wide LRU (an entry keeps its grammar alive, so the engine's id names it)."""
        engine = grammar.engine
        key = (id(engine), limits)
        got = _TABLES.get(key)
        if got is None or got.grammar.engine is not engine:
            got = cls.build(grammar, limits)
            _TABLES.put(key, got)
        return got

    # ------------------------------------------------------------------ reading

    @property
    def n_states(self) -> int:
        return 0 if self.next_state is None else self.next_state.shape[0]

    @property
    def n_masks(self) -> int:
        return 0 if self.masks is None else self.masks.shape[0]

    @property
    def n_classes(self) -> int:
        return 0 if self.next_state is None else self.next_state.shape[1]

    @property
    def table_bytes(self) -> int:
        if not self.resident:
            return 0
        return self.next_state.nbytes + self.class_of.nbytes + self.masks.nbytes + self.mask_of.nbytes

    def state_of(self, hid: int) -> int:
        """The table state of the engine's hypothesis set ``hid`` (-1 if not in the table)."""
        return self._state_of.get(hid, -1)

    def step(self, state: int, token: int) -> int:
        """Host lookup of ``next_state[state, class_of[token]]`` (-1: not allowed)."""
        if not 0 <= token < self.class_of.shape[0]:
            return -1
        return int(self.next_state[state, self.class_of[token]])

    def mask(self, state: int) -> np.ndarray:
        """The mask words (int32) of ``state``, a view into :attr:`masks`."""
        return self.masks[self.mask_of[state]]

    def __repr__(self) -> str:
        if not self.resident:
            return f"DeviceMasks(resident=False, reason={self.reason!r})"
        return (f"DeviceMasks(states={self.n_states}, masks={self.n_masks}, classes={self.n_classes}, "
                f"bytes={self.table_bytes:,}, built in {self.build_seconds * 1e3:.0f} ms)")

    # ------------------------------------------------------------------ the token budget

    def budget_free_steps(self, max_tokens: int) -> int:
        """How many tokens may be advanced under a budget of ``max_tokens`` (EOS included,
        as :meth:`CompiledGrammar.matcher`) while the budget's masks still equal the
        tables': a matcher with ``k`` tokens advanced, ``k`` at most the result, has the
        mask of its state. -1 when not even the first mask is free of the budget.

        The budget narrows a mask where the cheapest completion after some allowed token
        needs more than the tokens left (``BudgetPlanner.max_cost_after``); its largest
        value over the table's states bounds where that can first happen. Computed once
        (a cost walk per state)."""
        if not self.resident:
            raise ConstrainError(f"these tables were not made: {self.reason}")
        if self._budget_bound is None:
            planner = self.grammar.planner
            bound = 0
            for hid in self.hids[1:]:
                bound = max(bound, planner.max_cost_after(hid))
            self._budget_bound = bound
        return max(-1, int(max_tokens) - 2 - self._budget_bound)

    # ------------------------------------------------------------------ the device

    def tensors(self, device: Any) -> dict[str, Any]:
        """The tables on torch ``device``, as the :class:`DeviceStepper` reads them:
        ``next`` (int64 ``[n_states + 1, n_classes]``, every -1 and every transition out of
        the terminated state sent to the extra last state, DEAD, which loops on itself),
        ``class_of`` (int64 ``[V']``), ``mask_of`` (int64 ``[n_states + 1]``; DEAD's mask
        row allows nothing), ``masks`` (int32 ``[n_masks + 1, W]``, the last row all ones),
        ``accepting`` (bool). The terminated state loops on itself."""
        import torch

        if not self.resident:
            raise ConstrainError(f"these tables were not made: {self.reason}")
        dev = torch.device(device)
        key = str(dev)
        got = self._device.get(key)
        if got is not None:
            return got
        with self._lock:
            got = self._device.get(key)
            if got is not None:
                return got
            n_states, n_cls = self.next_state.shape
            dead = n_states
            nxt = np.full((n_states + 1, n_cls), dead, dtype=np.int64)
            nxt[:n_states] = np.where(self.next_state >= 0, self.next_state, dead)
            nxt[TERMINATED] = TERMINATED
            zero = int(self.mask_of[TERMINATED])
            masks = np.concatenate([self.masks, np.full((1, self.masks.shape[1]), -1, dtype=np.int32)])
            got = {
                "next": torch.from_numpy(nxt).to(dev),
                "class_of": torch.from_numpy(self.class_of.astype(np.int64)).to(dev),
                "mask_of": torch.from_numpy(np.append(self.mask_of, zero).astype(np.int64)).to(dev),
                "masks": torch.from_numpy(masks).to(dev),
                "accepting": torch.from_numpy(np.append(self.accepting, False)).to(dev),
                "dead": dead,
                "allow_all": self.masks.shape[0],
            }
            self._device[key] = got
        return got


_TABLES = _caches.cache(
    "device_masks.tables", 8,
    "device tables per (grammar, limits); each up to DeviceLimits.max_table_bytes (64 MiB by default) on the host, "
    "and as much again per torch device it was moved to")


class _Builder:
    """One breadth-first exploration (see :meth:`DeviceMasks.build`)."""

    def __init__(self, out: DeviceMasks, grammar: Any, limits: DeviceLimits, t0: float):
        self.out = out
        self.engine = grammar.engine
        self.lexer = self.engine.lexer
        self.vocab = grammar.vocab
        self.limits = limits
        self.deadline = t0 + limits.max_seconds
        self.t0 = t0
        # byte-level states: frozen sets of (parse state, lexer state) inside a token
        self.fr: list[tuple[tuple[int, int], ...]] = []
        self.fr_index: dict[tuple[tuple[int, int], ...], int] = {}
        self.ftab = np.full((256, 256), _UNKNOWN, dtype=np.int32)
        self.fr_state = np.full(256, -1, dtype=np.int32)  # end-of-token byte state -> table state

    def _check_time(self, what: str) -> None:
        if time.perf_counter() > self.deadline:
            raise _TooLarge(f"the table build took more than DeviceLimits.max_seconds={self.limits.max_seconds} "
                            f"({what})")

    def _intern(self, hyps: tuple[tuple[int, int], ...]) -> int:
        got = self.fr_index.get(hyps)
        if got is None:
            got = len(self.fr)
            if got >= self.limits.max_byte_states:
                raise _TooLarge(f"more than DeviceLimits.max_byte_states={self.limits.max_byte_states:,} "
                                "byte-level states")
            self.fr.append(hyps)
            self.fr_index[hyps] = got
            if got >= self.ftab.shape[0]:
                grown = np.full((2 * self.ftab.shape[0], 256), _UNKNOWN, dtype=np.int32)
                grown[: self.ftab.shape[0]] = self.ftab
                self.ftab = grown
                fs = np.full(2 * len(self.fr_state), -1, dtype=np.int32)
                fs[: len(self.fr_state)] = self.fr_state
                self.fr_state = fs
        return got

    def _expand(self, f: int) -> None:
        """Every byte's transition out of byte-level state ``f``: what
        ``MaskEngine.step_bytes`` does for one byte, for all 256 at once."""
        ps: list[int] = []
        cs: list[int] = []
        nexts = self.engine._nexts
        for p, c in self.fr[f]:
            ps.append(p)
            cs.append(c)
            for p2, starts in nexts(p, c):
                for c2 in starts:
                    ps.append(p2)
                    cs.append(c2)
        trans = self.lexer.trans  # read after _nexts: the lexer grows it lazily
        cols = trans[np.asarray(cs, dtype=np.int64)].T.tolist()  # per byte, each hypothesis's next lexer state
        made: dict[tuple[int, ...], int] = {}
        row = np.empty(256, dtype=np.int32)
        for b, col in enumerate(cols):
            key = tuple(col)
            got = made.get(key)
            if got is None:
                hyps = tuple(sorted({(ps[i], c1) for i, c1 in enumerate(col) if c1 >= 0}))
                got = made[key] = self._intern(hyps) if hyps else _DEAD
            row[b] = got
        self.ftab[f] = row

    def _walk(self, f0: int, end: np.ndarray) -> None:
        """``end[i]``: the byte-level state after sorted token ``i`` from ``f0`` (-1 dead)."""
        nodes = self.vocab.trie.nodes
        req = np.empty(4096, dtype=np.int64)
        stack = np.empty(self.vocab.max_token_length + 2, dtype=np.int32)
        while True:
            end.fill(-1)
            n = _walk_byte_states(nodes.byte, nodes.depth, nodes.skip, nodes.token, nodes.count, self.ftab, f0,
                                  end, req, stack)
            if n == 0:
                return
            for f in np.unique(req[: min(n, len(req))]).tolist():
                self._expand(f)
            self._check_time("walking successors")

    def run(self) -> None:
        out, engine, vocab, limits = self.out, self.engine, self.vocab, self.limits
        n_words = vocab.bitmask_words
        width = n_words * 32
        trie_ids = vocab.trie_ids.astype(np.int64)
        eos = vocab.eos_ids_array
        end = np.empty(len(trie_ids), dtype=np.int32)

        hids = [-2, engine.initial]
        state_of = {engine.initial: 1}
        zero = np.zeros(n_words, dtype=np.int32)
        mask_rows: list[np.ndarray] = [zero]
        mask_index: dict[bytes, int] = {zero.tobytes(): 0}
        mask_of = [0]
        accepting = [False]
        cls = np.zeros(width, dtype=np.int64)
        reps = np.zeros(1, dtype=np.int64)  # a token of each class
        comp: list[np.ndarray] = [np.full(1, -1, dtype=np.int32)]  # rows over classes; TERMINATED's first

        i = 1
        while i < len(hids):
            self._check_time(f"{i} states made")
            hid = hids[i]
            words = engine.mask(hid).view(np.int32)
            key = words.tobytes()
            m = mask_index.get(key)
            if m is None:
                m = mask_index[key] = len(mask_rows)
                mask_rows.append(words)
            mask_of.append(m)
            acc = engine.accepting(hid)
            accepting.append(acc)

            row = np.full(width, -1, dtype=np.int32)
            f0 = self._intern(tuple(h for h in engine.hyps(hid) if h[1] >= 0))
            self._walk(f0, end)
            live = end >= 0
            ends = end[live]
            if len(ends):
                for u in np.unique(ends).tolist():
                    if self.fr_state[u] >= 0:
                        continue
                    tok = int(trie_ids[int(np.argmax(end == u))])
                    nh = engine.step(hid, tok)
                    if nh < 0:
                        raise ConstrainError(f"device tables: the walk allows token {tok} after state {hid}, "
                                             "the engine's step does not")
                    s = state_of.get(nh)
                    if s is None:
                        s = state_of[nh] = len(hids)
                        hids.append(nh)
                    self.fr_state[u] = s
                row[trie_ids[live]] = self.fr_state[ends]
            if acc and len(eos):
                row[eos] = TERMINATED
            allowed = np.packbits(row >= 0, bitorder="little").view(np.int32)
            if not np.array_equal(allowed, words):
                raise ConstrainError(f"device tables: the successors of state {hid} disagree with its mask "
                                     f"({int(np.count_nonzero(row >= 0))} tokens lead on, the mask allows "
                                     f"{int(np.unpackbits(words.view(np.uint8)).sum())})")

            # token classes: refine where this row tells apart tokens of one class
            cand = row[reps]
            if not np.array_equal(cand[cls], row):
                key2 = cls << 32 | (row.astype(np.int64) + 2)
                _, first, inv = np.unique(key2, return_index=True, return_inverse=True)
                old = cls[first]
                comp = [c[old] for c in comp]
                cls = inv.reshape(-1).astype(np.int64)
                reps = first.astype(np.int64)
                cand = row[reps]
            comp.append(cand)

            n_states = len(hids)
            if n_states > limits.max_states:
                raise _TooLarge(f"more than DeviceLimits.max_states={limits.max_states:,} states "
                                f"({i + 1} made, {n_states - i - 1} more found)")
            size = n_states * len(reps) * 4 + width * 4 + len(mask_rows) * n_words * 4
            if size > limits.max_table_bytes:
                raise _TooLarge(f"the tables need more than DeviceLimits.max_table_bytes="
                                f"{limits.max_table_bytes:,} bytes ({size:,} after {i + 1} states)")
            i += 1

        out.next_state = np.stack(comp).astype(np.int32)
        out.class_of = cls.astype(np.int32)
        out.mask_of = np.asarray(mask_of, dtype=np.int32)
        out.masks = np.stack(mask_rows)
        out.accepting = np.asarray(accepting, dtype=np.bool_)
        out.hids = hids
        out._state_of = state_of
        out.byte_states = len(self.fr)


@njit(cache=True, nogil=True)
def _walk_byte_states(byte, depth, skip, token, count, ftab, f0, end, req, stack):
    """Walk the trie (nodes in depth-first order) from byte-level state ``f0`` through the
    transitions ``ftab``, writing each token's end state into ``end`` (sorted order) and
    pruning dead subtrees. Transitions not made yet (-2) are recorded in ``req`` (their
    source state) and their subtree skipped: returns how many; 0 means ``end`` is whole."""
    n = byte.shape[0]
    stack[0] = f0
    n_req = 0
    k = 0
    while k < n:
        d = depth[k]
        f = ftab[stack[d - 1], byte[k]]
        if f < 0:
            if f == -2:
                if n_req < req.shape[0]:
                    req[n_req] = stack[d - 1]
                n_req += 1
            k = skip[k]
            continue
        stack[d] = f
        t = token[k]
        if t >= 0:
            for j in range(count[k]):
                end[t + j] = f
        k += 1
    return n_req


class DeviceStepper:
    """The states of a batch of rows on a torch device, advanced and masked with tensor ops.

    ``tables``: one :class:`DeviceMasks` for every row, or a sequence with one per row (all
    resident). ``finished``: the mask of a row after EOS (and of a row that took a token its
    mask did not allow: see :meth:`dead`), ``"all"`` (every token: a generation loop that
    pads finished rows ignores their logits) or ``"none"`` (the exact, empty mask).
    """

    def __init__(self, tables: "DeviceMasks | Sequence[DeviceMasks]", batch: int, device: Any, *,
                 finished: str = "all"):
        import torch

        if finished not in ("all", "none"):
            raise ValueError(f"finished must be 'all' or 'none', got {finished!r}")
        if isinstance(tables, DeviceMasks):
            tables = [tables] * batch
        tables = list(tables)
        if len(tables) != batch:
            raise ValueError(f"got {len(tables)} tables for a batch of {batch} rows")
        for t in tables:
            if not t.resident:
                raise ConstrainError(f"a grammar's tables were not made: {t.reason}")
        self.device = torch.device(device)
        self.batch = batch
        self.finished = finished
        self.n_words = max(t.masks.shape[1] for t in tables)
        groups: dict[int, tuple[DeviceMasks, list[int]]] = {}
        for row, t in enumerate(tables):
            groups.setdefault(id(t), (t, []))[1].append(row)
        self._groups = []
        for t, rows in groups.values():
            tens = t.tensors(self.device)
            idx = torch.tensor(rows, dtype=torch.int64, device=self.device)
            self._groups.append((t, tens, idx, len(rows) == batch))
        self.states = torch.empty(batch, dtype=torch.int64, device=self.device)
        self.reset()

    def reset(self) -> None:
        """Every row back at its grammar's start."""
        for t, _, idx, _ in self._groups:
            self.states.index_fill_(0, idx, t.initial)

    def advance(self, tokens: Any) -> None:
        """Advance every row by one token (int tensor ``[batch]`` on the device)."""
        tokens = tokens.to(device=self.device, dtype=self.states.dtype)
        for _, tens, idx, whole in self._groups:
            if whole:
                self.states = self._next(tens, self.states, tokens)
            else:
                self.states.index_copy_(0, idx, self._next(tens, self.states[idx], tokens[idx]))

    @staticmethod
    def _next(tens: dict, states: Any, tokens: Any) -> Any:
        import torch

        cls_of = tens["class_of"]
        ok = tokens < cls_of.shape[0]
        cls = cls_of[torch.where(ok, tokens, torch.zeros_like(tokens))]
        nxt = tens["next"][states, cls]
        return torch.where(ok | (states == TERMINATED), nxt, torch.full_like(nxt, tens["dead"]))

    def bitmask(self, out: Any = None) -> Any:
        """The next-token masks of every row, int32 ``[batch, W]`` on the device (written
        into ``out`` when given)."""
        import torch

        if out is None:
            out = torch.empty((self.batch, self.n_words), dtype=torch.int32, device=self.device)
        for _, tens, idx, whole in self._groups:
            states = self.states if whole else self.states[idx]
            which = tens["mask_of"][states]
            if self.finished == "all":
                done = (states == TERMINATED) | (states == tens["dead"])
                which = torch.where(done, torch.full_like(which, tens["allow_all"]), which)
            rows = tens["masks"][which]
            if rows.shape[1] < out.shape[1]:  # a smaller vocabulary: its rows allow nothing past it
                rows = torch.nn.functional.pad(rows, (0, out.shape[1] - rows.shape[1]))
            if whole:
                out.copy_(rows)
            else:
                out.index_copy_(0, idx, rows)
        return out

    def terminated(self) -> Any:
        """Bool tensor: rows that took EOS."""
        return self.states == TERMINATED

    def dead(self) -> Any:
        """Bool tensor: rows that took a token their mask did not allow."""
        import torch

        out = torch.zeros(self.batch, dtype=torch.bool, device=self.device)
        for _, tens, idx, _ in self._groups:
            out[idx] = self.states[idx] == tens["dead"]
        return out

    def accepting(self) -> Any:
        """Bool tensor: rows whose text so far is complete."""
        import torch

        out = torch.zeros(self.batch, dtype=torch.bool, device=self.device)
        for _, tens, idx, _ in self._groups:
            out[idx] = tens["accepting"][self.states[idx]]
        return out
