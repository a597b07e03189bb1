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
costs the trie nodes the state allows, not a step per token, and the bookkeeping after
it (token classes, the row) costs the tokens allowed, not the vocabulary. Each distinct
set of hypotheses reached at the end of a token is named by the engine itself (one
``MaskEngine.step`` for one of its tokens), and its mask is the engine's mask, checked
against the walk at every set.

Many hypothesis sets behave alike: a JSON object's optional keys reach one point of the
grammar along many parse paths, and the parser keeps the paths apart. Sets with the same
mask and acceptance whose tokens lead, class by class, to sets that behave alike again
give the same masks along every continuation; the tables keep one state for each such
group (the coarsest one, found by partition refinement and checked state by state before
it is used), so a table state stands for one or more of the engine's sets
(:meth:`DeviceMasks.state_of`).

The build stops at :class:`DeviceLimits`; past one, the result is not device-resident and
:attr:`DeviceMasks.reason` says which limit and by how much: the caller keeps host masks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from ._kernels import njit

from . import _caches
from .bitmask import bits_from_ids
from .errors import ConstrainError

__all__ = ["DeviceLimits", "DeviceMasks", "DeviceStepper"]

_UNKNOWN = -2  # a byte-level transition not made yet
_DEAD = -1
TERMINATED = 0  # the state after EOS


@dataclass(frozen=True)
class DeviceLimits:
    """Bounds on one table build; past any of them the grammar keeps host masks.

    * ``max_states`` (16,384): hypothesis sets reachable from the start, explored one by
      one (the tables keep fewer states: those that behave alike are merged). A grammar
      with unbounded nesting (a JSON Schema with open objects: any value after an extra
      key) has no end of them and stops here, after a few seconds.
    * ``max_table_bytes`` (64 MiB): the masks, the state × token-class table and the
      token → class map together, once alike states are merged (while exploring, the
      unmerged table may take twice as much host memory).
    * ``max_seconds`` (10.0): wall time of the build.
    * ``max_byte_states`` (200,000): byte-level states (sets of hypotheses inside a token)
      the successor walks make.
    """

    max_states: int = 16384
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
        self.hids: list[int] = []  # state -> the first of the engine's hypothesis sets it stands for (-2: TERMINATED)
        self.initial = 1
        self.build_seconds = 0.0
        self.byte_states = 0
        self.explored = 0  # hypothesis sets explored (equivalent ones share a state)
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
        """The table state that stands for the engine's hypothesis set ``hid`` (-1 if none)."""
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
        return (f"DeviceMasks(states={self.n_states} of {self.explored} explored, masks={self.n_masks}, "
                f"classes={self.n_classes}, "
                f"bytes={self.table_bytes:,}, built in {self.build_seconds * 1e3:.0f} ms)")

    # ------------------------------------------------------------------ the token budget

    def budget_free_steps(self, max_tokens: int) -> int:
        """How many tokens may be advanced under a budget of ``max_tokens`` (EOS included,
        as :meth:`CompiledGrammar.matcher`) while the budget's masks still equal the
        tables': a matcher with ``k`` tokens advanced, ``k`` at most the result, has the
        mask of its state. -1 when not even the first mask is free of the budget.

        The budget narrows a mask where the cheapest completion after some allowed token
        needs more than the tokens left (``BudgetPlanner.max_cost_after``); its largest
        value over the hypothesis sets the table stands for bounds where that can first
        happen. Computed once (a cost walk per set)."""
        if not self.resident:
            raise ConstrainError(f"these tables were not made: {self.reason}")
        if self._budget_bound is None:
            planner = self.grammar.planner
            bound = 0
            for hid in self._state_of:  # every hypothesis set of the table, merged ones too
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
    """One breadth-first exploration, then the merge of equivalent states (see
    :meth:`DeviceMasks.build`)."""

    def __init__(self, out: DeviceMasks, grammar: Any, limits: DeviceLimits, t0: float):
        self.out = out
        self.engine = grammar.engine
        self.lexer = self.engine.lexer
        self.lexer.materialize()  # (byte-level states go anywhere in a block, not a token at a time)
        self.vocab = grammar.vocab
        self.limits = limits
        self.deadline = t0 + limits.max_seconds
        self.t0 = t0
        # byte-level states: frozen sets of (parse state, lexer state) inside a token
        self.fr: list[tuple[tuple[int, int], ...]] = []
        self.fr_index: dict[tuple[tuple[int, int], ...], int] = {}
        self.ftab = np.full((256, 256), _UNKNOWN, dtype=np.int32)
        self.fr_state = np.full(256, -1, dtype=np.int32)  # end-of-token byte state -> table state
        n_sorted = len(self.vocab.trie_ids)
        self.live_idx = np.empty(n_sorted, dtype=np.int32)  # a walk's allowed sorted tokens
        self.live_end = np.empty(n_sorted, dtype=np.int32)  # and the byte-level state after each
        self.new_ends = np.empty(n_sorted, dtype=np.int32)
        n_nodes = len(self.vocab.trie.nodes.byte)
        # subtrees whose first transition was not made yet: (source byte-level state, node)
        self.req = (np.empty(n_nodes, dtype=np.int32), np.empty(n_nodes, dtype=np.int32))
        self.todo = (np.empty(n_nodes, dtype=np.int32), np.empty(n_nodes, dtype=np.int32))
        self.stack = np.empty(self.vocab.max_token_length + 2, dtype=np.int32)

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
        cols = trans[np.asarray(cs, dtype=np.int64)]  # per hypothesis, its next lexer state after each byte
        live = np.flatnonzero((cols >= 0).any(axis=0))
        row = np.full(256, _DEAD, dtype=np.int32)
        if len(live):
            # bytes that move every hypothesis alike lead to one byte-level state: one
            # set of hypotheses to make per distinct column
            per_byte = np.ascontiguousarray(cols[:, live].T)
            keys = per_byte.view(np.dtype((np.void, per_byte.dtype.itemsize * per_byte.shape[1]))).reshape(-1)
            _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
            made = np.empty(len(first), dtype=np.int32)
            for j, b in enumerate(first.tolist()):
                col = per_byte[b].tolist()
                made[j] = self._intern(tuple(sorted({(ps[i], c1) for i, c1 in enumerate(col) if c1 >= 0})))
            row[live] = made[inv.reshape(-1)]
        self.ftab[f] = row

    def _walk(self, f0: int) -> int:
        """The sorted tokens allowed from byte-level state ``f0``: ``live_idx[:n]``, and
        the byte-level state after each, ``live_end[:n]``; returns ``n``. Where the walk
        meets a transition not made yet, it makes those of the states met, then walks
        the subtrees it skipped."""
        nodes = self.vocab.trie.nodes
        todo, req = self.todo, self.req
        todo[0][0], todo[1][0] = f0, -1
        n_todo, n = 1, 0
        while True:
            n, n_req = _walk_live(nodes.byte, nodes.depth, nodes.skip, nodes.token, nodes.count, self.ftab,
                                  todo[0], todo[1], n_todo, self.live_idx, self.live_end, n, req[0], req[1],
                                  self.stack)
            if n_req == 0:
                return n
            for f in np.unique(req[0][:n_req]).tolist():
                if self.ftab[f, 0] == _UNKNOWN:  # rows are made whole: an unmade one has -2 everywhere
                    self._expand(f)
            self._check_time("walking successors")
            todo, req = req, todo  # this round's requests are the next round's subtrees
            n_todo = n_req

    def run(self) -> None:
        out, engine, vocab, limits = self.out, self.engine, self.vocab, self.limits
        n_words = vocab.bitmask_words
        width = n_words * 32
        trie_ids = vocab.trie_ids
        eos = vocab.eos_ids_array.astype(np.int64)
        eos_words = np.zeros(n_words, dtype=np.uint32)
        np.bitwise_or.at(eos_words, eos >> 5, (np.uint32(1) << (eos & 31).astype(np.uint32)))
        eos_walked = bool(np.isin(eos, trie_ids).any())  # an EOS with bytes of its own: EOS wins when accepting

        hids = [-2, engine.initial]
        state_of = {engine.initial: 1}
        zero = np.zeros(n_words, dtype=np.int32)
        mask_rows: list[np.ndarray] = [zero]
        mask_index: dict[bytes, int] = {zero.tobytes(): 0}
        mask_of = [0]
        accepting = [False]
        classes = _TokenClasses(width)
        classes.add(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32))  # TERMINATED: nothing allowed
        guard = _EXPLORE_SLACK * limits.max_table_bytes

        i = 1
        while i < len(hids):
            self._check_time(f"{i} states made")
            hid = hids[i]
            words = engine.mask(hid)
            key = words.tobytes()
            m = mask_index.get(key)
            if m is None:
                m = mask_index[key] = len(mask_rows)
                mask_rows.append(words.view(np.int32))
            mask_of.append(m)
            acc = engine.accepting(hid)
            accepting.append(acc)

            f0 = self._intern(tuple(h for h in engine.hyps(hid) if h[1] >= 0))
            n = self._walk(f0)
            idx, ends = self.live_idx[:n], self.live_end[:n]
            # the end states not named yet: one engine step each, with one of their tokens
            for j in _first_of_each(ends, self.fr_state, self.new_ends).tolist():
                tok = int(trie_ids[idx[j]])
                nh = engine.step(hid, tok)
                if nh < 0:
                    raise ConstrainError(f"device tables: the walk allows token {tok} after state {hid}, "
                                         "the engine's step does not")
                s = state_of.get(nh)
                if s is None:
                    s = state_of[nh] = len(hids)
                    hids.append(nh)
                self.fr_state[ends[j]] = s
            ids = trie_ids[idx].astype(np.int64)
            vals = self.fr_state[ends]
            allowed = bits_from_ids(n_words, idx, trie_ids)
            if acc and len(eos):
                if eos_walked:
                    keep = ~np.isin(ids, eos)
                    ids, vals = ids[keep], vals[keep]
                ids = np.concatenate([ids, eos])
                vals = np.concatenate([vals, np.full(len(eos), TERMINATED, dtype=np.int32)])
                allowed |= eos_words
            if not np.array_equal(allowed, words):
                raise ConstrainError(f"device tables: the successors of state {hid} disagree with its mask "
                                     f"({int(np.unpackbits(allowed.view(np.uint8)).sum())} tokens lead on, the mask "
                                     f"allows {int(np.unpackbits(words.view(np.uint8)).sum())})")
            classes.add(ids, vals)

            n_states = len(hids)
            if n_states > limits.max_states:
                raise _TooLarge(f"more than DeviceLimits.max_states={limits.max_states:,} states "
                                f"({i + 1} made, {n_states - i - 1} more found)")
            size = (i + 1) * classes.n * 4 + len(mask_rows) * n_words * 4
            if size > guard:
                raise _TooLarge(f"the tables need more than DeviceLimits.max_table_bytes="
                                f"{limits.max_table_bytes:,} bytes ({size:,} after {i + 1} states, before "
                                "equivalent states are merged)")
            i += 1

        self._check_time("merging equivalent states")
        nxt, class_of, part, rep = _merge(classes.rows[: len(hids), : classes.n], classes.cls,
                                          np.asarray(mask_of, dtype=np.int32), np.asarray(accepting, dtype=np.bool_))
        masks = np.stack(mask_rows)
        size = nxt.nbytes + class_of.nbytes + masks.nbytes + len(rep) * 4
        if size > limits.max_table_bytes:
            raise _TooLarge(f"the tables need more than DeviceLimits.max_table_bytes={limits.max_table_bytes:,} "
                            f"bytes ({size:,}: {len(rep):,} states, {nxt.shape[1]:,} token classes, "
                            f"{len(masks):,} masks)")
        out.next_state = nxt
        out.class_of = class_of
        out.mask_of = np.asarray(mask_of, dtype=np.int32)[rep]
        out.masks = masks
        out.accepting = np.asarray(accepting, dtype=np.bool_)[rep]
        out.hids = [hids[r] for r in rep.tolist()]
        part = part.tolist()
        out._state_of = {h: part[k] for k, h in enumerate(hids) if k}
        out.explored = len(hids)
        out.byte_states = len(self.fr)


# The table as explored, before equivalent states are merged, may take this many times
# DeviceLimits.max_table_bytes (host memory, during the build).
_EXPLORE_SLACK = 2


class _TokenClasses:
    """Tokens that lead to the same state from every state so far share a class; the
    rows over classes (one per state) as they come, each splitting the classes it tells
    apart. A row names few tokens (those allowed): the work per row is theirs, not the
    vocabulary's."""

    def __init__(self, width: int):
        self.cls = np.zeros(width, dtype=np.int32)  # token -> class
        self.n = 1
        self.rows = np.full((64, 64), -1, dtype=np.int32)  # state x class -> state (-1: not allowed)
        self.n_rows = 0
        self.size = np.zeros(64, dtype=np.int64)
        self.size[0] = width
        self.count = np.zeros(64, dtype=np.int64)  # scratch, zero between rows
        self.first = np.zeros(64, dtype=np.int32)
        self.mixed = np.zeros(64, dtype=np.bool_)
        self.touched = np.zeros(64, dtype=np.int32)

    def _grow(self, n_rows: int, n_cls: int) -> None:
        r, c = self.rows.shape
        if n_rows > r or n_cls > c:
            r2, c2 = max(r, 2 * n_rows if n_rows > r else r), max(c, 2 * n_cls if n_cls > c else c)
            rows = np.full((r2, c2), -1, dtype=np.int32)
            rows[:r, :c] = self.rows
            self.rows = rows
        if n_cls > len(self.size):
            extra = 2 * n_cls - len(self.size)
            self.size = np.concatenate([self.size, np.zeros(extra, dtype=np.int64)])
            self.count = np.concatenate([self.count, np.zeros(extra, dtype=np.int64)])
            self.first = np.concatenate([self.first, np.zeros(extra, dtype=np.int32)])
            self.mixed = np.concatenate([self.mixed, np.zeros(extra, dtype=np.bool_)])
            self.touched = np.concatenate([self.touched, np.zeros(extra, dtype=np.int32)])

    def add(self, ids: np.ndarray, vals: np.ndarray) -> None:
        """The next state's row: token ``ids[k]`` leads to ``vals[k]``, every other token
        nowhere."""
        n_t = _count_classes(ids, vals, self.cls, self.count, self.first, self.mixed, self.touched)
        touched = self.touched[:n_t]
        split = touched[self.mixed[touched] | (self.count[touched] != self.size[touched])]
        if len(split):
            self._split(ids, vals, split)
        self.count[touched] = 0
        self.mixed[touched] = False
        self._grow(self.n_rows + 1, self.n)
        row = self.rows[self.n_rows]
        row[: self.n] = -1
        row[self.cls[ids]] = vals
        self.n_rows += 1

    def _split(self, ids: np.ndarray, vals: np.ndarray, split: np.ndarray) -> None:
        """Split classes ``split`` by the state their tokens lead to (the tokens left out
        of ``ids`` stay where they were; a class with every token in ``ids`` keeps its
        first group)."""
        mark = np.zeros(self.n, dtype=np.bool_)
        mark[split] = True
        sel = mark[self.cls[ids]]
        sid, sval = ids[sel], vals[sel]
        key = self.cls[sid].astype(np.int64) << 32 | (sval.astype(np.int64) + 2)
        groups, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        parent = (groups >> 32).astype(np.int64)
        head = np.ones(len(groups), dtype=np.bool_)
        head[1:] = parent[1:] != parent[:-1]
        keep = head & (self.count[parent] == self.size[parent])
        new = ~keep
        n_new = int(np.count_nonzero(new))
        self._grow(self.n_rows, self.n + n_new)
        to = parent.copy()
        to[new] = np.arange(self.n, self.n + n_new)
        # the new classes behaved as their parents in every row so far
        self.rows[: self.n_rows, to[new]] = self.rows[: self.n_rows, parent[new]]
        self.size[to[new]] = counts[new]
        self.size[: self.n] -= np.bincount(parent[new], weights=counts[new], minlength=self.n).astype(np.int64)
        self.cls[sid] = to[inv.reshape(-1)]
        self.n += n_new


def _merge(rows: np.ndarray, cls: np.ndarray, mask_of: np.ndarray, accepting: np.ndarray):
    """The explored table with equivalent states merged, then token classes that became
    alike: (next_state, class_of, block of each explored state, first explored state of
    each block). Blocks are numbered in the order of their first state, so TERMINATED
    stays 0 (alone) and the start stays 1.

    Two states are equivalent when they have the same mask and acceptance and every token
    class leads both to equivalent states (or nowhere): the coarsest such partition
    (Moore's refinement, with each round's signatures hashed). Whatever the hashes do,
    the partition is kept only if it checks out as one where that holds, state by state
    and class by class; else the states stay apart. Merged states give the same masks
    along every sequence of tokens."""
    rows = np.ascontiguousarray(rows)
    n_states = rows.shape[0]
    key = mask_of.astype(np.int64) << 1 | accepting
    key[TERMINATED] = -1  # TERMINATED loops on the device: never merged
    part, n_blocks = _renumber(key)
    sig = np.empty(n_states, dtype=np.uint64)
    while True:
        _signatures(rows, part, sig)
        new, n_new = _renumber(sig)
        if n_new == n_blocks:
            break
        part, n_blocks = new, n_new
    _, rep = np.unique(part, return_index=True)
    if not (_is_congruence(rows, part, rep, mask_of, accepting) and np.count_nonzero(part == part[TERMINATED]) == 1):
        part = np.arange(n_states, dtype=np.int64)
        rep = part.copy()
    nxt = rows[rep]
    nxt = np.where(nxt >= 0, part[np.maximum(nxt, 0)], -1).astype(np.int32)
    # token classes whose columns are now equal
    col_sig = np.empty(nxt.shape[1], dtype=np.uint64)
    _row_hashes(np.ascontiguousarray(nxt.T), col_sig)
    col, _ = _renumber(col_sig)
    _, col_rep = np.unique(col, return_index=True)
    if np.array_equal(nxt, nxt[:, col_rep[col]]):
        nxt = np.ascontiguousarray(nxt[:, col_rep])
        cls = col.astype(np.int32)[cls]
    return nxt, cls.astype(np.int32), part, rep


def _renumber(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Equal keys, equal numbers: 0, 1, ... in the order of each key's first place."""
    _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv.reshape(-1)], len(first)


@njit(cache=True, nogil=True)
def _signatures(rows, part, out):
    """``out[s]``: a 64-bit hash of state ``s``'s block and the block each class leads to."""
    for s in range(rows.shape[0]):
        h = np.uint64(part[s]) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019)
        for c in range(rows.shape[1]):
            t = rows[s, c]
            b = np.uint64(0) if t < 0 else np.uint64(part[t] + 1)
            h = (h ^ b) * np.uint64(0x100000001B3)
            h ^= h >> np.uint64(31)
        out[s] = h


@njit(cache=True, nogil=True)
def _row_hashes(rows, out):
    """``out[k]``: a 64-bit hash of ``rows[k]``."""
    for k in range(rows.shape[0]):
        h = np.uint64(0x632BE59BD9B4E019)
        for c in range(rows.shape[1]):
            h = (h ^ np.uint64(rows[k, c] + 2)) * np.uint64(0x100000001B3)
            h ^= h >> np.uint64(31)
        out[k] = h


@njit(cache=True, nogil=True)
def _is_congruence(rows, part, rep, mask_of, accepting):
    """Whether every state agrees with its block's first state on mask, acceptance and
    the block each class leads to."""
    for s in range(rows.shape[0]):
        r = rep[part[s]]
        if mask_of[s] != mask_of[r] or accepting[s] != accepting[r]:
            return False
        for c in range(rows.shape[1]):
            a = rows[s, c]
            b = rows[r, c]
            if a < 0 or b < 0:
                if a != b:
                    return False
            elif part[a] != part[b]:
                return False
    return True


@njit(cache=True, nogil=True)
def _count_classes(ids, vals, cls, count, first, mixed, touched):
    """Per class of the tokens ``ids``: how many of them (``count``), whether they lead to
    more than one state (``mixed``); the classes seen go to ``touched``, their number is
    returned."""
    n_t = 0
    for k in range(ids.shape[0]):
        c = cls[ids[k]]
        v = vals[k]
        if count[c] == 0:
            touched[n_t] = c
            n_t += 1
            first[c] = v
        elif first[c] != v:
            mixed[c] = True
        count[c] += 1
    return n_t


@njit(cache=True, nogil=True)
def _first_of_each(ends, fr_state, out):
    """Indices of the first of ``ends`` for each byte-level state without a table state
    yet (marked -3 in ``fr_state`` meanwhile: the caller names them all)."""
    n = 0
    for k in range(ends.shape[0]):
        f = ends[k]
        if fr_state[f] == -1:
            fr_state[f] = -3
            out[n] = k
            n += 1
    return out[:n]


@njit(cache=True, nogil=True)
def _walk_live(byte, depth, skip, token, count, ftab, todo_src, todo_node, n_todo, live_idx, live_end, n_live,
               req_src, req_node, stack):
    """Walk trie subtrees (nodes in depth-first order) through the byte-level transitions
    ``ftab``, pruning dead ones, listing each allowed sorted token and its end state in
    ``live_idx``/``live_end`` from ``n_live`` on. Subtree ``i`` of the ``n_todo`` given is
    the one at node ``todo_node[i]`` entered from byte-level state ``todo_src[i]`` (node
    -1: the whole trie). A transition not made yet (-2) is recorded in ``req_src`` /
    ``req_node`` and its subtree skipped, to be walked once it is made. Returns (tokens
    listed in all, transitions missing)."""
    n_req = 0
    for i in range(n_todo):
        node = todo_node[i]
        if node < 0:
            k, end = 0, byte.shape[0]
            stack[0] = todo_src[i]
        else:
            k, end = node, skip[node]
            stack[depth[node] - 1] = todo_src[i]
        while k < end:
            d = depth[k]
            f = ftab[stack[d - 1], byte[k]]
            if f < 0:
                if f == -2:
                    req_src[n_req] = stack[d - 1]
                    req_node[n_req] = k
                    n_req += 1
                k = skip[k]
                continue
            stack[d] = f
            t = token[k]
            if t >= 0:
                for j in range(count[k]):
                    live_idx[n_live] = t + j
                    live_end[n_live] = f
                    n_live += 1
            k += 1
    return n_live, n_req


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
