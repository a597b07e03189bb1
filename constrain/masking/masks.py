"""Token masks for one compiled grammar over one vocabulary.

A matcher's state is a set of hypotheses (parse state, lexer state), interned to an
integer. The mask of a hypothesis is the union of

* the tokens that stay inside the current lexeme: a trie walk from the lexer state
  alone, independent of the parse, computed once per lexer state; and
* the tokens that cross lexeme boundaries: at each trie node where a lexeme may end,
  the parser (a memoized automaton) names the next lexer state and the walk resumes
  on that subtree only.

Masks are memoized per hypothesis set in a bounded LRU. Everything here is exact: a
token is allowed iff some split of its bytes into lexemes is accepted by the grammar's
lexer and parser, and (the grammar being reduced, every terminal non-empty and every
DFA trimmed) every allowed token leaves a completion open.
"""

from __future__ import annotations

import threading
import weakref
from hashlib import blake2b
from itertools import accumulate
from time import perf_counter_ns

import numpy as np

from .. import _caches
from .._caches import LRU
from .._tables import LOW, SHIFT, Chunked, Recent, ints_key, pairs_key
from ..errors import CompileLimitError, ConstrainError
from ..automata.regex import is_syntax_key
from ..limits import DEFAULT_LIMITS, limit_error
from ..vocabulary import Vocabulary
from .lexer import Lexer
from .parser import DEAD, EarleyParser
from ..bitmask import bits_from_ids, mask_hash, masks_equal, set_bits
from .walk import (
    alike_depth, merge_events, next_table_insert, pair_table_insert, resolve, scratch, walk_alloc, walk_ids, walk_mask, walk_patch, walk_sliced,
)

__all__ = ["MaskEngine", "Hyp", "ALIKE_MIN_STATES"]

Hyp = tuple[int, int]  # (parse state, lexer state); lexer state -1: nothing more may be read


class MaskEngine:
    def __init__(
        self,
        parser: EarleyParser,
        lexer: Lexer,
        vocab: Vocabulary,
        *,
        mask_cache_size: int = 4096,
        max_distinct_masks: int = 2048,
        walk_cache_size: int = 16384,
        root_walk_cache_size: int = 1024,
        max_walks_per_mask: int = DEFAULT_LIMITS.max_walks_per_mask,
    ):
        self.parser = parser
        self.lexer = lexer
        self.vocab = vocab
        self.n_words = vocab.bitmask_words
        self._lock = threading.RLock()
        # Hypothesis sets as sorted tuples, in tables the cyclic collector does not read
        # (constrain._tables): the many states of a large grammar cost a full collection
        # next to nothing.
        self._hyps = Chunked()
        self._hyp_index: dict[bytes, int] = {}  # pairs_key(hypotheses) -> id
        # Masks per hypothesis set. Equal masks are stored once (many parse states allow
        # the same tokens): at most ``max_distinct_masks`` arrays are kept alive.
        self._masks = Recent(mask_cache_size)
        self._mask_store: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.max_distinct_masks = max_distinct_masks
        # Bounded memory: a dense mask or whole-vocabulary walk is ceil(V/32) words
        # (19 KB for a 151k vocabulary); subtree walks hold a few token ids each.
        self._walks = LRU(walk_cache_size)  # (lexer state, subtree) -> allowed ids, events
        self._root_walks = LRU(root_walk_cache_size)
        self._walk_states = LRU(256)
        self._ev_nodes = LRU(64)  # id of a walk's events -> (them, their trie nodes)
        self.max_walks_per_mask = max_walks_per_mask
        self._work = 0
        self.resolve_visits = (0, 0)  # the last resolution's trie nodes and configurations
        self.keep_walk_states = False
        self._merge = not lexer.longest_match
        self._parts: dict[int, set[Hyp]] = {}
        # int keys (id << 32 | id): nothing the cyclic GC counts or visits per entry
        self._steps: dict[int, int] = {}  # hypothesis set << 32 | token -> hypothesis set
        self._nexts_memo: dict[int, int] = {}  # p << 32 | s -> index in _nexts_vals
        self._nexts_vals = Chunked([()])
        # The same, flattened for the numba resolution of lexeme boundaries: an
        # open-addressing table keyed by (parse state << 32 | lexer state); made by the
        # first mask with a token that crosses a lexeme boundary (see _resolve).
        self._nx_keys: np.ndarray | None = None
        self._nx_count = 0
        self._nx_pairs = 0
        self._nx_max = 0  # the most starts of one entry
        # Sets of parse states (sorted tuples) by id: the resolution merges the ways a
        # token may split into lexemes per lexer state, joining their parse states; the
        # joins it asked for, as a table (a << 32 | b -> id of a | b).
        self._psets = Chunked()
        self._pset_index: dict[bytes, int] = {}  # ints_key(members) -> id
        self._un_count = 0
        self._resolve_scratch: list[np.ndarray] | None = None  # see _resolve
        # token costs (see token_costs): (set << 32 | lexer state) -> cost
        self._co_keys: np.ndarray | None = None
        self._co_vals = np.zeros(1, dtype=np.int64)
        self._co_count = 0
        self._recent: dict[tuple[int, int, int, int], list[int]] = {}
        self._class_bytes: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # see _alike_walk
        # Per lone terminal: the time of its last whole-vocabulary walk and of its last
        # patch (a failed one counted with the walk that follows). A patch visits two
        # states' trie paths where they differ: among the states of a bounded counter
        # (all different, all alive) that is most of a walk, at a higher cost per node.
        self._walk_ns: dict[int, int] = {}
        self._patch_ns: dict[int, int] = {}
        self._patch_skips: dict[int, tuple[int, int]] = {}
        self._accepting: dict[int, bool] = {}
        self._store = None  # masks on disk (constrain._mask_store.MaskStore), see attach_store
        self._eos = vocab.eos_ids_array
        self._trie = vocab.trie
        self._n_sorted = len(vocab.trie_ids)
        p0 = parser.initial
        self.initial = self.intern(frozenset((p0, c) for c in lexer.start(parser.allowed(p0))) or frozenset({(p0, -1)}))

    # ------------------------------------------------------------------ hypotheses

    def intern(self, hyps) -> int:
        """The id of the set of hypotheses ``hyps`` (any iterable of them)."""
        hyps = tuple(sorted(set(hyps)))
        key = pairs_key(hyps)
        got = self._hyp_index.get(key)
        if got is None:
            with self._lock:
                got = self._hyp_index.get(key)
                if got is None:
                    got = self._hyps.append(hyps)
                    self._hyp_index[key] = got
        return got

    def prepare(self, max_states: int = 64, budget_ns: int = 1_000_000) -> int:
        """Parse states and their lexeme starts ahead of any mask, breadth-first from the
        start of the language, up to ``max_states`` parse states or about ``budget_ns``.

        Work a mask at a lexeme boundary would otherwise do on its first visit, done at
        compile time instead (where an engine can overlap it with the prompt's prefill).
        The states nearest the start are the ones every document passes through. Stops
        quietly at a limit error: the mask that needs that state reports it. Returns the
        parse states reached."""
        if max_states <= 0 or budget_ns <= 0:
            return 0
        deadline = perf_counter_ns() + budget_ns
        parser, lexer = self.parser, self.lexer
        ignore = lexer.ignore
        # With longest-match lexemes a start also depends on the lexeme before it
        # (Lexer.start_after): only the parse states are made ahead.
        starts = not lexer.longest_match
        p0 = parser.initial
        seen = {p0}
        queue = [p0]
        i = 0
        try:
            while i < len(queue) and len(seen) < max_states:
                p = queue[i]
                i += 1
                for t in parser.allowed(p):
                    if t in ignore:
                        continue
                    p2 = parser.advance(p, t)
                    if p2 == DEAD or p2 in seen:
                        continue
                    seen.add(p2)
                    queue.append(p2)
                    if starts:
                        lexer.start(parser.allowed(p2))
                    if len(seen) >= max_states or perf_counter_ns() > deadline:
                        return len(seen)
        except ConstrainError:
            pass
        return len(seen)

    def hyps(self, hid: int) -> tuple[Hyp, ...]:
        return self._hyps[hid]

    def _after_lexeme(self, p: int, term: int) -> int:
        return p if term in self.lexer.ignore else self.parser.advance(p, term)

    def _nexts(self, p: int, s: int) -> tuple[tuple[int, tuple[int, ...]], ...]:
        """Where a lexeme ending in lexer state ``s`` leads from parse state ``p``: for
        each terminal it may complete (and the parser takes), the parse state after it
        and the next lexeme's start states. Memoized."""
        key = p << 32 | s
        i = self._nexts_memo.get(key)
        if i is not None:
            return self._nexts_vals.chunks[i >> SHIFT][i & LOW]
        out = []
        for t in self.lexer.completes(s):
            p2 = self._after_lexeme(p, t)
            if p2 != DEAD:
                out.append((p2, self.lexer.start_after(self.parser.allowed(p2), s, t)))
        got = tuple(out)
        if not got:
            self._nexts_memo[key] = 0
        else:
            with self._lock:  # (steps come here without the engine's lock; appends must not interleave)
                i = self._nexts_memo.get(key)
                if i is None:
                    self._nexts_memo[key] = self._nexts_vals.append(got)
        return got

    def accepting(self, hid: int) -> bool:
        got = self._accepting.get(hid)
        if got is None:
            got = any(self._hyp_accepting(p, c) for p, c in self._hyps[hid])
            self._accepting[hid] = got
        return got

    def _hyp_accepting(self, p: int, c: int) -> bool:
        if c < 0 or self.lexer.is_lexeme_start(c):
            return self.parser.accepting(p)
        for t in self.lexer.completes(c):
            p2 = self._after_lexeme(p, t)
            if p2 != DEAD and self.parser.accepting(p2):
                return True
        return False

    # ------------------------------------------------------------------ stepping

    def step(self, hid: int, token: int) -> int:
        """Hypothesis set after ``token``'s bytes, or -1 if no split of them is allowed."""
        key = hid << 32 | token
        got = self._steps.get(key)
        if got is None:
            got = self.step_bytes(hid, self.vocab.token_bytes(token))
            self._steps[key] = got
        return got

    def step_bytes(self, hid: int, data: bytes) -> int:
        frontier = set(self._hyps[hid])
        lexer = self.lexer
        if lexer._windows:
            # Blocks written in part (Lexer.ensure): a step reads rows as far as its bytes
            # go from where it starts, so a long one goes a horizon at a time.
            step = lexer.horizon
            for i in range(0, len(data), step):
                frontier = self._after_bytes(frontier, data[i:i + step])
                if frontier is None:
                    return -1
                lexer.ensure([c for _, c in frontier])
        else:
            frontier = self._after_bytes(frontier, data)
            if frontier is None:
                return -1
        if not self._merge or len(frontier) < 2:
            return self.intern(frontier)
        merged = self._merged(frontier)
        hid = self.intern(merged)
        if merged != frontier:
            # The hypotheses before the merge, each of a language inside the merged one:
            # the token budget reads their plans (see BudgetPlanner.plan).
            parts = self._parts.setdefault(hid, set())
            parts.update(frontier - merged)
        return hid

    def _after_bytes(self, frontier: set[Hyp], data: bytes) -> set[Hyp] | None:
        """The hypotheses after ``data`` from those of ``frontier``, or None where none is left."""
        trans = self.lexer.trans
        for b in data:
            nxt: set[Hyp] = set()
            for p, c in frontier:
                if c < 0:
                    continue
                c1 = int(trans[c, b])
                if c1 >= 0:
                    nxt.add((p, c1))
                for p2, starts in self._nexts(p, c):
                    trans = self.lexer.trans  # the table may have grown
                    for c2 in starts:
                        c3 = int(trans[c2, b])
                        if c3 >= 0:
                            nxt.add((p2, c3))
            if not nxt:
                return None
            frontier = nxt
        return frontier

    def parts(self, hid: int) -> frozenset[Hyp] | set[Hyp]:
        """Hypotheses that some step merged into those of ``hid`` (empty if none): the
        text that led there may go on as any of them."""
        return self._parts.get(hid, ())

    def _merged(self, hyps: set[Hyp]) -> set[Hyp]:
        """``hyps`` with the parse states of each lexer state joined into one (see
        :meth:`EarleyParser.join`).

        Splits of a token's bytes into different lexemes that end in one lexer state
        go on alike from there, whatever the parse: kept apart, their parse states would
        multiply with every ambiguity of the text (a word that may be a keyword or a
        name), and with them the masks to compute. Merged at the end of each token
        (inside one, the resolution of masks merges them its own way). Not with
        longest-match lexemes, where the terminals a parse allows decide where a lexeme
        ends."""
        if len(hyps) < 2:
            return hyps
        by_state: dict[int, int] = {}
        out: set[Hyp] = set()
        join = self.parser.join
        for p, c in sorted(hyps):
            q = by_state.get(c)
            if q is None:
                by_state[c] = p
                continue
            j = join(q, p)
            if j == DEAD:  # not to be joined: kept apart
                out.add((p, c))
            else:
                by_state[c] = j
        out.update((p, c) for c, p in by_state.items())
        return out

    def viable_bytes(self, hid: int) -> list[int]:
        """Bytes that may come next (sorted)."""
        out: set[int] = set()
        for p, c in self._hyps[hid]:
            if c < 0:
                continue
            row = self.lexer.trans[c]
            out.update(np.nonzero(row >= 0)[0].tolist())
            for _, starts in self._nexts(p, c):
                for c2 in starts:
                    out.update(np.nonzero(self.lexer.trans[c2] >= 0)[0].tolist())
        return sorted(out)

    # ------------------------------------------------------------------ masks

    def mask(self, hid: int) -> np.ndarray:
        """uint32 words of the allowed-token bitmask (EOS included when accepting). Read-only."""
        got = self._masks.get(hid)
        if got is None:
            with self._lock:
                got = self._masks.get(hid)
                if got is None:
                    store = self._store
                    if store is None:
                        got = self._shared_mask(self._compute_mask(hid))
                    else:
                        key = self.hyp_key(hid)
                        got = store.get(key)
                        if got is None:
                            t0 = perf_counter_ns()
                            got = self._shared_mask(self._compute_mask(hid))
                            if perf_counter_ns() - t0 >= _FILE_MIN_NS:
                                store.add(key, got)
                        else:
                            got = self._shared_mask(got)
                    self._masks.put(hid, got)
                    while len(self._mask_store) > self.max_distinct_masks and self._masks.drop_oldest():
                        pass
        return got

    def attach_store(self, store) -> None:
        """Serve masks from ``store`` (a :class:`constrain._mask_store.MaskStore`: the masks
        an earlier process computed for this grammar and vocabulary) and file the masks
        computed here in it."""
        self._store = store

    def hyp_key(self, hid: int) -> bytes:
        """A 16-byte key of hypothesis set ``hid`` that does not depend on the order states
        were made in (see :meth:`EarleyParser.state_key`, :meth:`Lexer.state_key`): the
        same grammar and vocabulary in another process give its mask the same key."""
        state_key, lexer_key = self.parser.state_key, self.lexer.state_key
        parts = sorted([state_key(p) + lexer_key(c) for p, c in self._hyps[hid]])  # (16 bytes each)
        return blake2b(b"".join(parts), digest_size=16).digest()

    def cached_mask(self, hid: int) -> np.ndarray | None:
        """The memoized mask of ``hid``, or None (never computes one)."""
        return self._masks.peek(hid)

    def _shared_mask(self, mask: np.ndarray) -> np.ndarray:
        """``mask``, or an equal read-only mask already kept."""
        h = mask_hash(mask)
        other = self._mask_store.get(h)
        if other is not None and masks_equal(other, mask):
            return other
        mask.setflags(write=False)
        if other is None:
            self._mask_store[h] = mask
        return mask

    def _compute_mask(self, hid: int) -> np.ndarray:
        self._work = 0
        n = self._n_sorted
        mask = None
        starts = []  # (parse states, events of a whole-vocabulary walk)
        for c, ps in self._starts_of(hid).items():
            ids, events = self._walk(c, 0, n, 0)
            # whole-vocabulary walks come back as dense words (cached: not to be written)
            if mask is None:
                mask = ids.copy()
            else:
                mask |= ids
            starts.append((tuple(sorted(ps)), events))
        if mask is None:
            mask = np.zeros(self.n_words, dtype=np.uint32)
        self._resolve(starts, mask)
        if self.accepting(hid) and len(self._eos):
            set_bits(mask, self._eos)
        return mask

    def _starts_of(self, hid: int) -> dict[int, set[int]]:
        """The lexemes the next token may start inside, by lexer state, with their parse
        states: each hypothesis's, and, where its lexeme may also end exactly at the token
        boundary, the next lexeme's start. Hypotheses in one lexer state walk the
        vocabulary alike: one walk for all of them, its boundaries resolved with their
        parse states as one set."""
        by_state: dict[int, set[int]] = {}
        for p, c in self._hyps[hid]:
            if c < 0:
                continue
            by_state.setdefault(c, set()).add(p)
            if self.lexer.completes(c):
                for p2, cs in self._nexts(p, c):
                    for c2 in cs:
                        by_state.setdefault(c2, set()).add(p2)
        return by_state

    def _resolve(self, starts, mask: np.ndarray, best: np.ndarray | None = None, cost_of=None) -> None:
        """Add the tokens that cross a lexeme boundary at the events of the walks in
        ``starts`` (each with its parse states), to any number of boundaries per token.
        With ``best`` (per sorted token), also lower each such token's cost there to the
        least ``cost_of(parse state, lexer state)`` of the hypotheses it may end in.

        A numba pass walks the trie below the events (see :func:`walk.resolve`), the
        splits of a token's bytes into lexemes merged per trie node and lexer state: the
        work is the trie nodes below which lexemes start, however many splits reach
        them. Nodes that meet a (set of parse states, lexer state) whose next lexeme
        starts are not known yet, or two sets to join, are put off; the parser and
        lexer answer here, and the next pass takes those nodes up.
        """
        starts = [(p, ev) for p, ev in starts if len(ev[0])]
        if not starts:
            return
        # Each walk's events come in the trie's depth-first order; merged, they are the
        # events of the first pass (kind 0: a lexeme may end there).
        if len(starts) == 1:
            (ps, events), = starts
            nodes, states = self._event_nodes(events)
            run_end = np.array([len(nodes)], dtype=np.int64)
            run_set = np.array([self._pset(ps)], dtype=np.int64)
        else:
            sorted_events = [self._event_nodes(ev) for _, ev in starts]
            nodes = np.concatenate([nodes for nodes, _ in sorted_events])
            states = np.concatenate([states for _, states in sorted_events])
            run_end = np.fromiter(accumulate(len(ev[0]) for _, ev in starts), dtype=np.int64, count=len(starts))
            run_set = np.array([self._pset(p) for p, _ in starts], dtype=np.int64)
        ev_node, ev = merge_events(nodes, states, run_end, run_set)
        # Scratch of the numba passes, kept with the engine for the next mask rather
        # than allocated per mask; taken while in use (a cost callback may come back
        # here), grown when a pass asks.
        scratch_ = self._resolve_scratch
        self._resolve_scratch = None
        if scratch_ is None:
            depth = self.vocab.max_token_length + 2
            scratch_ = [
                np.zeros(depth, dtype=np.int64), np.zeros(depth, dtype=np.int64),
                np.empty(256, dtype=np.int64), np.empty(256, dtype=np.int32), np.empty((256, 2), dtype=np.int64),
                np.empty((256, 3), dtype=np.int64), np.empty(256, dtype=np.int64), np.empty((256, 3), dtype=np.int64),
                np.zeros(8, dtype=np.int64),
            ]
        lvl_lo, lvl_hi, lvl_s, lvl_c, stage, req, dfr_node, dfr, cur = scratch_
        lvl_lo.fill(0)
        lvl_hi.fill(0)
        cur.fill(0)
        cur[3] = self._work
        lexer = self.lexer
        if self._nx_keys is None:
            self._nx_keys = np.full(256, -1, dtype=np.int64)
            self._nx_offs = np.zeros(256, dtype=np.int64)
            self._nx_cnts = np.zeros(256, dtype=np.int32)
            self._nx_p2 = np.empty(256, dtype=np.int32)
            self._nx_c2 = np.empty(256, dtype=np.int32)
            self._un_keys = np.full(64, -1, dtype=np.int64)
            self._un_vals = np.zeros(64, dtype=np.int64)
        if best is None:
            best = _NO_COSTS
        elif self._co_keys is None:
            self._co_keys = np.full(256, -1, dtype=np.int64)
            self._co_vals = np.zeros(256, dtype=np.int64)
        co_keys = self._co_keys if self._co_keys is not None else _NO_KEYS
        while True:
            status = resolve(
                lexer.trans, lexer.accept, lexer.follow, self._trie.nodes, self.vocab.trie_ids, mask,
                self._nx_keys, self._nx_offs, self._nx_cnts, self._nx_p2, self._nx_c2, self._nx_max,
                self._un_keys, self._un_vals, ev_node, ev, lvl_lo, lvl_hi, lvl_s, lvl_c, stage, req,
                dfr_node, dfr, cur, self.max_walks_per_mask, co_keys, self._co_vals, best,
            )
            self._work = int(cur[3])
            if status == 0:
                self.resolve_visits = (int(cur[5]), int(cur[6]))
                self._resolve_scratch = scratch_
                return
            if status == 1:
                raise self._limit_error()
            if status == 2:
                used = int(lvl_hi.max())
                size = 2 * len(lvl_s)
                lvl_s = np.concatenate([lvl_s[:used], np.empty(size - used, dtype=np.int64)])
                lvl_c = np.concatenate([lvl_c[:used], np.empty(size - used, dtype=np.int32)])
                stage = np.empty((size, 2), dtype=np.int64)
                scratch_[2:5] = lvl_s, lvl_c, stage
            elif status == 4:
                req = np.concatenate([req, np.empty_like(req)])
                dfr_node = np.concatenate([dfr_node, np.empty_like(dfr_node)])
                dfr = np.concatenate([dfr, np.empty_like(dfr)])
                scratch_[5:8] = req, dfr_node, dfr
            else:
                asked = req[: int(cur[4])].tolist()
                cur[4] = 0
                self._add_nexts(sorted({a << 32 | b for kind, a, b in asked if kind == 0}))
                self._add_joins(sorted({(a, b) for kind, a, b in asked if kind == 1}))
                costs = sorted({(a, b) for kind, a, b in asked if kind == 2})
                if costs:
                    co_keys = self._add_costs(costs, cost_of)
                if status == 5:
                    # the nodes put off, in the trie's order: the next pass's events
                    n = int(cur[7])
                    ev_node, ev = dfr_node[:n].copy(), dfr[:n].copy()
                    cur[[0, 1, 2, 7]] = 0

    def _event_nodes(self, events) -> tuple[np.ndarray, np.ndarray]:
        """The events of a walk as (trie node where the lexeme ends, as int64; lexer
        state), in the trie's depth-first order; memoized for the walks still cached.
        A walk comes in that order, one patched from another's does not."""
        lo, _hi, d, states = events
        got = self._ev_nodes.get(id(lo))
        if got is not None and got[0] is lo:
            return got[1]
        trie = self._trie
        nodes = (trie.token_node[lo] + d - trie.lcp[lo] - 1).astype(np.int64)
        if len(nodes) > 1 and (nodes[1:] < nodes[:-1]).any():
            order = np.argsort(nodes, kind="stable")
            nodes, states = nodes[order], states[order]
        self._ev_nodes.put(id(lo), (lo, (nodes, states)))
        return nodes, states

    def _add_costs(self, pairs: list[tuple[int, int]], cost_of) -> np.ndarray:
        """Enter the cost of each (set of parse states, lexer state) in ``pairs`` (the
        least ``cost_of`` of its hypotheses) into the table the numba resolution reads;
        returns the table's keys (grown, they are a new array)."""
        keys = np.asarray([a << 32 | b for a, b in pairs], dtype=np.int64)
        vals = np.asarray([min(cost_of(p, b) for p in self._psets[a]) for a, b in pairs], dtype=np.int64)
        self._co_count += len(pairs)
        if 2 * self._co_count > len(self._co_keys):
            old = self._co_keys >= 0
            size = len(self._co_keys)
            while 2 * self._co_count > size:
                size *= 2
            table = (np.full(size, -1, dtype=np.int64), np.zeros(size, dtype=np.int64))
            pair_table_insert(*table, self._co_keys[old], self._co_vals[old])
            self._co_keys, self._co_vals = table
        pair_table_insert(self._co_keys, self._co_vals, keys, vals)
        return self._co_keys

    def token_costs(self, hid: int, cost_of) -> np.ndarray:
        """Per sorted token (``vocab.trie_ids`` order), the least ``cost_of(parse state,
        lexer state)`` of the hypotheses the token may lead to from ``hid``; a huge number
        for a token not allowed. ``cost_of`` must not change its answers (they are kept
        with the engine, for whatever asks next)."""
        with self._lock:
            self._work = 0
            n = self._n_sorted
            best = np.full(n, _INF_COST, dtype=np.int64)
            starts = []
            for c, ps in self._starts_of(hid).items():
                idx, states = self.walk_states(c, 0, n, 0)
                for f in np.unique(states).tolist():
                    np.minimum.at(best, idx[states == f], min(cost_of(p, f) for p in ps))
                starts.append((tuple(sorted(ps)), self.walk_boundaries(c, 0, n, 0)))
            self._resolve(starts, np.zeros(self.n_words, dtype=np.uint32), best, cost_of)
            return best

    def _pset(self, members: tuple[int, ...]) -> int:
        """The id of the set of parse states ``members`` (sorted, distinct)."""
        key = ints_key(members)
        got = self._pset_index.get(key)
        if got is None:
            got = self._pset_index[key] = self._psets.append(members)
        return got

    def _set_nexts(self, s: int, c: int) -> list[tuple[int, int]]:
        """Where a lexeme ending in lexer state ``c`` leads from any parse state of set
        ``s``: (set of the parse states after it, next lexeme's start), one per start."""
        by_start: dict[int, set[int]] = {}
        for p in self._psets[s]:
            for p2, cs in self._nexts(p, c):
                for c2 in cs:
                    got = by_start.get(c2)
                    if got is None:
                        by_start[c2] = {p2}
                    else:
                        got.add(p2)
        return [(self._pset(tuple(sorted(ps))), c2) for c2, ps in sorted(by_start.items())]

    def _add_joins(self, pairs: list[tuple[int, int]]) -> None:
        """Enter the joins ``a | b`` of the sets of parse states in ``pairs`` into the
        table the numba resolution reads."""
        if not pairs:
            return
        keys = np.asarray([a << 32 | b for a, b in pairs], dtype=np.int64)
        vals = np.asarray([self._pset(tuple(sorted(set(self._psets[a]) | set(self._psets[b])))) for a, b in pairs],
                          dtype=np.int64)
        self._un_count += len(pairs)
        if 2 * self._un_count > len(self._un_keys):
            old = self._un_keys >= 0
            size = len(self._un_keys)
            while 2 * self._un_count > size:
                size *= 2
            table = (np.full(size, -1, dtype=np.int64), np.zeros(size, dtype=np.int64))
            pair_table_insert(*table, self._un_keys[old], self._un_vals[old])
            self._un_keys, self._un_vals = table
        pair_table_insert(self._un_keys, self._un_vals, keys, vals)

    def _add_nexts(self, keys: list[int]) -> None:
        """Enter :meth:`_set_nexts` of each (set of parse states << 32 | lexer state) key
        into the table the numba resolution reads: per key, a run of (set, lexer state)
        starts in ``_nx_p2``/``_nx_c2``."""
        if not keys:
            return
        offs, cnts = [], []
        for key in keys:
            pairs = self._set_nexts(key >> 32, key & 0xFFFFFFFF)
            used = self._nx_pairs
            if used + len(pairs) > len(self._nx_p2):
                size = max(2 * len(self._nx_p2), used + len(pairs))
                for name in ("_nx_p2", "_nx_c2"):
                    grown = np.empty(size, dtype=np.int32)
                    grown[:used] = getattr(self, name)[:used]
                    setattr(self, name, grown)
            for j, (p2, c2) in enumerate(pairs):
                self._nx_p2[used + j] = p2
                self._nx_c2[used + j] = c2
            offs.append(used)
            cnts.append(len(pairs))
            self._nx_max = max(self._nx_max, len(pairs))
            self._nx_pairs = used + len(pairs)
        self._nx_count += len(keys)
        if 2 * self._nx_count > len(self._nx_keys):
            old = self._nx_keys >= 0
            size = len(self._nx_keys)
            while 2 * self._nx_count > size:
                size *= 2
            table = (np.full(size, -1, dtype=np.int64), np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int32))
            next_table_insert(*table, self._nx_keys[old], self._nx_offs[old], self._nx_cnts[old])
            self._nx_keys, self._nx_offs, self._nx_cnts = table
        next_table_insert(
            self._nx_keys, self._nx_offs, self._nx_cnts,
            np.asarray(keys, dtype=np.int64), np.asarray(offs, dtype=np.int64), np.asarray(cnts, dtype=np.int32),
        )

    def _count_work(self) -> None:
        self._work += 1
        if self._work > self.max_walks_per_mask:
            raise self._limit_error()

    def _limit_error(self) -> CompileLimitError:
        return limit_error(
            f"mask limit: more than {self.max_walks_per_mask} trie walks for one token mask "
            "(the grammar lets lexemes split tokens in too many ways, e.g. keywords that may "
            "touch identifiers without whitespace)", "max_walks_per_mask", self.max_walks_per_mask)

    def _walk(self, c: int, lo: int, hi: int, depth: int):
        """Cached walk of sorted tokens [lo, hi) from lexer state ``c`` at ``depth``.

        A whole-vocabulary walk returns dense uint32 words, a subtree walk token ids.
        """
        key = (c, lo, hi, depth)
        root = lo == 0 and hi == self._n_sorted and depth == 0
        cache = self._root_walks if root else self._walks
        got = cache.get(key)
        if got is not None:
            return got
        if not self.keep_walk_states:
            got = self._alike_walk(c, lo, hi, depth, cache, root)
            if got is not None:
                cache.put(key, got)
                return got
        self._count_work()
        if root and not self.keep_walk_states and (_SHARED_WALKS or (_SYNTAX_WALKS and _of_syntax_dfas(self.lexer, c))):
            shared = _shared_root_walk(self, c)
            if shared is not None:
                cache.put(key, shared)
                return shared
        lexer = self.lexer
        if self.keep_walk_states:
            idx, states, ev_lo, ev_hi, ev_depth, ev_state = walk_alloc(
                lexer.trans, lexer.accept, lexer.follow, self._trie,
                lo, hi, depth, c, self.vocab.max_token_length, self._scratch(),
            )
            self._walk_states.put(key, (idx, states))
            if root:
                ids = bits_from_ids(self.n_words, idx, self.vocab.trie_ids)
            else:
                ids = self.vocab.trie_ids[idx]
            got = (ids, (ev_lo, ev_hi, ev_depth, ev_state))
            cache.put(key, got)
            return got
        spent = 0
        if root:
            t0 = perf_counter_ns()
            ids, ev = walk_mask(
                lexer.trans, lexer.accept, lexer.follow, self._trie, self.vocab.trie_ids, self.n_words,
                c, self.vocab.max_token_length, self._scratch(),
            )
            spent = perf_counter_ns() - t0
            t = lexer.lone_terminal(c)
            if t >= 0:
                self._walk_ns[t] = _mean(self._walk_ns.get(t), spent)
        else:
            ids, ev = walk_ids(
                lexer.trans, lexer.accept, lexer.follow, self._trie, self.vocab.trie_ids,
                lo, hi, depth, c, self.vocab.max_token_length, self._scratch(),
            )
        got = (ids, (ev[0], ev[1], ev[2], ev[3]))
        cache.put(key, got)
        if spent >= _SHARE_MIN_NS:
            _share_root_walk(self, c, got)
        return got

    def _alike_walk(self, c: int, lo: int, hi: int, depth: int, cache: LRU, root: bool):
        """The walk of lone-terminal state ``c`` from those of states of the same terminal
        walked before, or None: the cached walk of a state that behaves like ``c`` for
        as many bytes as a token may still have (a string with a large ``maxLength``
        has thousands of states that only its last characters tell apart), else, for a
        whole-vocabulary walk, the last one patched where the two states differ."""
        lexer = self.lexer
        t = lexer.lone_terminal(c)
        if t < 0:
            return None
        dfa = lexer.dfas[t]
        if dfa.n_states < ALIKE_MIN_STATES:
            return None
        base = lexer.single_base(t)
        recent = self._recent.setdefault((t, lo, hi, depth), [])
        k = c - base
        found = None
        reps = None
        full = self.vocab.max_token_length - depth + 1
        best, best_ref = -1, None
        for r in recent:
            hit = cache.get((base + r, lo, hi, depth))
            if hit is None:
                continue
            if reps is None:
                got = self._class_bytes.get(t)
                if got is None:
                    # the DFA's rows over byte classes where it has them (a bounded string's
                    # 256-column table is not made for this), else one byte per class
                    tab, cls = dfa.class_table()
                    dense = tab.shape[1] == 256 and bool((cls == np.arange(256)).all())
                    reps = dfa.class_bytes() if dense else np.arange(tab.shape[1], dtype=np.int64)
                    got = self._class_bytes[t] = (tab, reps)
                tab, reps = got
            d = alike_depth(tab, dfa.accepting, reps, k, r, full, _ALIKE_MAX_PAIRS)
            if d >= full:
                found = hit
                break
            if d > best:
                best, best_ref = d, hit
        twin = found is not None
        if not twin and root and best_ref is not None:
            # Alike for the first ``cut`` bytes only (a bounded string near its end, where
            # the count of characters left tells states apart): the walk of the state
            # found, redone for the few tokens longer than that.
            cut = max((x for x in self.vocab.SLICE_CUTS if x <= best), default=0)
            if cut:
                nodes, long_mask, n_long = self.vocab.trie_longer(cut)
                mask, (ev_lo, ev_hi, ev_depth, ev_state) = best_ref
                mask, ev_lo, ev_hi, ev_depth, ev_state = walk_sliced(
                    lexer.trans, lexer.accept, lexer.follow, nodes, long_mask, n_long, self.vocab.trie_ids, c, cut,
                    mask, ev_lo, ev_hi, ev_depth, ev_state, self.vocab.max_token_length, self._scratch(),
                )
                found = (mask, (ev_lo, ev_hi, ev_depth, ev_state))
        if found is None and recent and root and self._patch_pays(t):
            # No twin: patch the walk of the last state walked (a key-name string that
            # excludes the declared names differs from its neighbours only along them).
            ref = cache.get((base + recent[0], lo, hi, depth))
            if ref is not None:
                t0 = perf_counter_ns()
                found = self._patched(c, base + recent[0], ref, _NO_EQ, 0)
                spent = perf_counter_ns() - t0
                if found is None:
                    spent += self._walk_ns.get(t, 0)
                self._patch_ns[t] = _mean(self._patch_ns.get(t), spent)
        if found is None and not recent and root:
            # The first walk of this terminal: patch that of its reference terminal (a
            # key-name string from any string), shared by every grammar in the process.
            ref = lexer.reference(t)
            if ref is not None:
                ref_base, eq, pair_of = ref
                if pair_of[k] >= 0:
                    r = ref_base + int(pair_of[k])
                    found = self._patched(c, r, self._walk(r, lo, hi, depth), eq, ref_base)
        if not twin:
            # This state's own walk is about to be cached: a reference for the next ones.
            recent.insert(0, k)
            del recent[_ALIKE_TRIES:]
        return found

    def _patch_pays(self, t: int) -> bool:
        """Whether to patch the next walk of terminal ``t``: yes while its patches take no
        longer than its walks (running means). A slow patch before any walk is known asks
        for a walk, to compare. Once patches lose, one is tried again after
        :data:`_PATCH_RETRY` walks, then after twice as many, and so on."""
        patch, walk = self._patch_ns.get(t), self._walk_ns.get(t)
        if patch is None or patch <= _PATCH_FAST_NS:
            return True
        if walk is None:
            return False
        if patch <= walk:
            return True
        skips, every = self._patch_skips.get(t, (0, _PATCH_RETRY))
        skips += 1
        if skips < every:
            self._patch_skips[t] = (skips, every)
            return False
        self._patch_skips[t] = (0, 2 * every)
        return True

    def _patched(self, q: int, r: int, ref, eq: np.ndarray, eq_lo: int):
        """The whole-vocabulary walk of ``q`` patched from ``ref``, that of ``r`` (see
        :func:`walk_patch`), or None when they differ too widely."""
        mask, (ev_lo, ev_hi, ev_depth, ev_state) = ref
        lexer = self.lexer
        ok, mask, ev_lo, ev_hi, ev_depth, ev_state = walk_patch(
            lexer.trans, lexer.accept, lexer.follow, self._trie, self.vocab.trie_ids, q, r,
            mask, ev_lo, ev_hi, ev_depth, ev_state, self.vocab.max_token_length, len(self._trie.nodes.byte) // 8,
            eq, eq_lo, self._scratch(),
        )
        return (mask, (ev_lo, ev_hi, ev_depth, ev_state)) if ok else None

    def _scratch(self) -> tuple[np.ndarray, ...]:
        return scratch(self._n_sorted, len(self._trie.nodes.byte))

    def walk_boundaries(self, c: int, lo: int, hi: int, depth: int):
        """Where a walk of sorted tokens [lo, hi) from lexer state ``c`` at ``depth`` finds
        a lexeme that may end with bytes of the token still to read: arrays (lo, hi,
        depth, lexer state) of those trie subtrees and the lexer state there, from which
        the parser names the lexemes that may come next."""
        return self._walk(c, lo, hi, depth)[1]

    def walk_states(self, c: int, lo: int, hi: int, depth: int):
        """(sorted token indices, final lexer states) of a walk; computed on demand."""
        key = (c, lo, hi, depth)
        got = self._walk_states.get(key)
        if got is None:
            self.keep_walk_states = True
            self._walks.data.pop(key, None)
            self._root_walks.data.pop(key, None)
            self._walk(c, lo, hi, depth)
            got = self._walk_states.get(key)
        return got


# Terminals of fewer DFA states are walked afresh, never from an alike state's walk.
ALIKE_MIN_STATES = 16
_ALIKE_TRIES = 4
_ALIKE_MAX_PAIRS = 8192
_PATCH_RETRY = 16
_PATCH_FAST_NS = 150_000  # a patch this quick is taken without comparing
_NO_EQ = np.empty(0, dtype=np.int32)
_NO_COSTS = np.empty(0, dtype=np.int64)  # resolve without token costs
_NO_KEYS = np.full(1, -1, dtype=np.int64)
_INF_COST = 1 << 30

# Whole-vocabulary walks keyed by grammar-independent lexer state names, shared by every
# grammar compiled in the process against the same vocabulary.
_SHARED_WALKS = _caches.cache(
    "masking.shared_walks", 1024,
    "whole-vocabulary walks by (vocabulary, lexer state name), shared between grammars; "
    "each a dense mask of ceil(V/32) words (19 KB for a 151k vocabulary) and its events")
# The same for lexer states made only of syntax terminals (a JSON string's body, say,
# with the bytes that may follow it): their walks depend on the vocabulary and on no spec
# (llguidance and XGrammar likewise work out such token sets once per tokenizer), so
# clearing the caches of specs keeps them, as it keeps those terminals' DFAs.
_SYNTAX_WALKS = _caches.cache(
    "masking.syntax_walks", 256,
    "whole-vocabulary walks of lexer states whose members are all syntax terminals (JSON "
    "strings, numbers, punctuation) by (vocabulary, state name): a few per whitespace "
    "policy, following bytes and mix of syntax terminals; 19 KB each for a 151k vocabulary "
    "(5 MB at most)", spec_free=True)
# Masks quicker than this to compute are not filed on disk (finding one there costs
# about 20 us, writing it a share of a background save).
_FILE_MIN_NS = 50_000
# Walks quicker than this are not shared: naming, storing and finding one costs about
# as much as walking again.
_SHARE_MIN_NS = 20_000


def _mean(old: int | None, new: int) -> int:
    return new if old is None else (old + new) // 2


def _share_root_walk(engine: MaskEngine, c: int, got) -> None:
    mask, (ev_lo, ev_hi, ev_depth, ev_state) = got
    lexer = engine.lexer
    name = lexer.name
    # a walk through a name-like terminal has an event at most nodes, in a few states
    seen = np.zeros(engine.lexer.n_states, dtype=np.bool_)
    seen[ev_state] = True
    states = np.flatnonzero(seen)
    if not lexer.nameable(c) or not all(lexer.nameable(s) for s in states.tolist()):
        return
    index = np.zeros(len(seen), dtype=np.int32)
    index[states] = np.arange(len(states), dtype=np.int32)
    which = index[ev_state]
    names = tuple(name(s) for s in states.tolist())
    own = name(c)
    cache = _SYNTAX_WALKS if all(_of_syntax(n) for n in names + (own,)) else _SHARED_WALKS
    cache.put((engine.vocab.fingerprint, own), (mask, ev_lo, ev_hi, ev_depth, names, which))


def _of_syntax_dfas(lexer: Lexer, c: int) -> bool:
    """Whether every member of lexer state ``c`` is a syntax terminal's DFA, as far as
    is known without hashing one (a syntax DFA is keyed when it is built)."""
    t = lexer.lone_terminal(c)
    for u in (t,) if t >= 0 else {u for u, _ in lexer.members(c)}:
        key = lexer.dfas[u]._key
        if key is None or not is_syntax_key(key):
            return False
    return True


def _of_syntax(name: tuple) -> bool:
    """Whether a lexer state name has syntax terminals alone among its members."""
    return all(type(term) is tuple and is_syntax_key(term[1]) for term, _ in name[0])


def _shared_root_walk(engine: MaskEngine, c: int):
    lexer = engine.lexer
    if not lexer.nameable(c):
        return None
    key = (engine.vocab.fingerprint, lexer.name(c))
    hit = _SHARED_WALKS.get(key)
    if hit is None:
        hit = _SYNTAX_WALKS.get(key)
        if hit is None:
            return None
    mask, ev_lo, ev_hi, ev_depth, names, which = hit
    if lexer.find(lexer.name(c)) != c:
        return None
    local = [lexer.find(n) for n in names]
    if any(x < 0 for x in local):
        return None  # an event state is missing here or ambiguous: walk afresh
    return mask, (ev_lo, ev_hi, ev_depth, np.asarray(local, dtype=np.int32)[which])
