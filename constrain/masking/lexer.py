"""The lexer: every terminal's byte DFA run in parallel, as one lazily built product DFA.

A lexer state is the set of (terminal, DFA state) scans still alive in the current
lexeme, plus whether the lexeme is still empty. States are interned to integers and
their 256-way transition rows stored in one int32 table, which is all the numba trie
walk needs. The table is built per set of terminals the parser allows at a lexeme
start, closed eagerly under transitions (with a state limit), and shared by every
parse state that allows the same terminals.

With ``separate_literals`` a lexeme start is one state per *group* of the allowed
terminals: the narrow terminals (finite languages with few bytes per state: literals,
keys, enum values) run together, the others together. A string terminal then runs on
its own, its states the same in every parse state and every grammar (so are its
whole-vocabulary walks), where a product of it with a changing set of keys would make
every combination walk the vocabulary anew. The longest-match lexer keeps all
terminals in one product: which lexeme ends depends on all of them.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from hashlib import blake2b
from typing import Sequence

import numpy as np
from .._kernels import njit

from .._hashtable import first_slot, hash_run, next_slot, put
from .._tables import pairs_key
from ..automata.dfa import joint_class_bytes, joint_classes
from ..errors import CompileLimitError
from ..limits import DEFAULT_LIMITS, limit_error

__all__ = ["Lexer"]


# Lexer rows (about 261 bytes each) made up front for every terminal's own block; past
# this many, only blocks of at least LAZY_BLOCK_MAX_ROWS rows are, the others when a
# lexeme start first needs them.
EAGER_BLOCK_ROWS = 16_384
LAZY_BLOCK_MAX_ROWS = 1_024
# Lexers whose terminals' DFAs have at least this many states in all reserve their rows
# up front (see Lexer.__init__).
RESERVE_FROM_ROWS = 4_096
# A terminal's block of at least this many rows is written in part where the lexer has a
# horizon (see Lexer.ensure).
WINDOW_FROM_ROWS = 4_096


class Lexer:
    def __init__(
        self,
        dfas: Sequence,
        ignore: Sequence[int],
        *,
        follow_bytes: Sequence[np.ndarray] | None = None,
        longest_match: bool = False,
        separate_literals: bool = False,
        references: dict | None = None,
        max_states: int = DEFAULT_LIMITS.max_lexer_states,
        horizon: int | None = None,
    ):
        self.dfas = list(dfas)
        # With a horizon (the longest token of the vocabulary, plus one): a large
        # terminal's block is written only as far as a token can read from the states in
        # use (see _windowed), the rest as hypotheses come near it (ensure).
        self.horizon = horizon
        self._windows: dict[int, list] = {}  # terminal -> [rows written, BFS depth of each DFA state]
        self._longest_paths: dict[int, np.ndarray] = {}  # see _longest
        self.longest_match = longest_match
        self.separate_literals = separate_literals
        # follow_bytes[t][b]: a lexeme may start with byte b right after a lexeme of t.
        # Boundaries followed by other bytes need no parser visit inside a token.
        if follow_bytes is None:
            follow_bytes = [np.ones(256, dtype=np.bool_) for _ in self.dfas]
        self._follow_bytes = [np.asarray(f, dtype=np.bool_) for f in follow_bytes]
        # Reference terminals: for terminal t (say, a string that is not one of some
        # names), a DFA most of whose states t's states are equivalent to (any string),
        # with t's following bytes. No lexeme ever uses one; a walk of t is patched from
        # the reference's walk, which every grammar shares (see MaskEngine._alike_walk).
        # A terminal's name: its DFA's size and content key and the bytes that may follow
        # its lexemes. Names are made when first asked for (_term_name): a grammar whose
        # walks are all quick never needs them, and a DFA of many states (a string of a
        # large maxLength: tens of thousands) is keyed only where a terminal of its size
        # and following bytes must be told apart from it.
        self._term_names: list = [None] * len(self.dfas)
        self._name_terms: dict = {}  # terminals by DFA size and following bytes
        self._named = False  # _name_terms made (product states are named when asked for)
        self._reference_of: dict[int, int] = {}
        self._reference_pairs: dict[int, tuple] = {}
        if references:
            self._index_terms()
            for t, ref in references.items():
                follow = self._follow_bytes[t].tobytes()
                key = (ref.n_states, ref.key, follow)
                same = self._name_terms.setdefault((ref.n_states, follow), [])
                h = next((u for u in same if self._term_name(u) == key), None)
                if h is None:  # one reference block per DFA and following bytes
                    h = len(self.dfas)
                    self.dfas.append(ref)
                    self._follow_bytes.append(self._follow_bytes[t].copy())
                    self._term_names.append(key)
                    same.append(h)
                if h != t:
                    self._reference_of[t] = h
        self.ignore = frozenset(ignore)
        self.max_states = max_states
        self._lock = threading.RLock()
        self._keys: dict[bytes, int] = {}  # _start_key(members, is_start, exclude) -> state
        self._joint: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}  # see _classes_of
        # Product states that are not lexeme starts, by their sorted lone members (for
        # the numba subset construction): offsets, members, state ids, hash table, count;
        # made with the first product of two or more members.
        self._products: tuple | None = None
        # What is known of each state is kept for product states only, in dicts by state
        # id: the states of single-terminal blocks (most of them, 10^4-10^5 in a large
        # schema's lexer) are read off arrays (their terminal ``_block_term``, whether its
        # lexeme may end there ``_done``), so that no Python object per state is left for
        # the cyclic collector to read at every full collection (lists of 65,000 entries
        # each made a third of a 10 ms collection).
        self._n = 0  # states made
        # Members of product states made as lexeme starts; those of a state a product
        # closure reached are read off the arrays of ``_closures`` (first state id,
        # offsets, terminals, DFA states; ``_closure_firsts``: their first ids) when first
        # asked for, then kept here.
        self._members: dict[int, tuple[tuple[int, int], ...]] = {}
        self._closures: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self._closure_firsts: list[int] = []
        self._completed: dict[int, tuple[int, ...]] = {}  # product states: see completes()
        self._one = tuple((t,) for t in range(len(self.dfas)))
        # accept[s]: some lexeme may end in state s and be followed by more bytes;
        # follow[s, b]: ... by a lexeme starting with byte b.
        self._start_ids: set[int] = set()  # lexeme starts
        self._exclude: dict[int, bytes] = {}  # lexeme starts that exclude bytes: those bytes
        # A grammar-independent name for each state: its members' terminals (DFA content
        # and the bytes that may follow their lexemes) and DFA states, flags and the bytes
        # that may follow. Equal names walk the vocabulary the same way in any grammar,
        # so whole-vocabulary walks are shared across grammars. Product states' names,
        # made when first asked for; see name().
        self.canon: dict[int, tuple] = {}
        self._terms_by_name: dict = {}  # see _term_of_name
        self._single_base: dict[int, int] = {}
        self._state_keys: dict[int, bytes] = {}  # see state_key
        self._starts: dict[tuple[tuple[int, ...], bytes], tuple[int, ...]] = {}
        self._narrow_flags: list[bool | None] = [None] * len(self.dfas)  # None: not known yet
        self._ignore_excl: dict[tuple[int, int], bytes] = {}
        # Every terminal's lone block up front (compile time rather than mask time): one
        # allocation, one copy of each DFA. When they are many (a schema of a thousand
        # keys has 10^5 rows, 100+ MB and hundreds of milliseconds, most of it for
        # terminals no document visits), only the large blocks are: a small one costs
        # a mask well under a millisecond when first needed, a large one would stall it.
        # Past the state limit, blocks come on demand. Rows are written when their state
        # is made (see _grow).
        sizes = [d.n_states for d in self.dfas]
        total = sum(sizes)
        if total <= min(self.max_states, EAGER_BLOCK_ROWS):
            eager = list(range(len(self.dfas)))
        else:
            eager = [t for t, n in enumerate(sizes) if n >= LAZY_BLOCK_MAX_ROWS]
            if sum(sizes[t] for t in eager) > self.max_states:
                eager = []
        rows = sum(sizes[t] for t in eager)
        self._cap = rows + 64 + max(rows, total - rows) // 4  # headroom for product states
        if total >= RESERVE_FROM_ROWS:
            # A large lexer gets room for all the states it is likely to make, as address
            # space only: a row's pages are touched when its state is made (see _grow),
            # the rest take no memory. Growing later copies every row in use (60 MB and
            # 20-140 ms at 45,000 rows), in the middle of a mask.
            self._cap = max(self._cap, min(self.max_states, 4 * total + 65_536))
        self.trans = np.empty((self._cap, 256), dtype=np.int32)
        self.accept = np.empty(self._cap, dtype=np.bool_)
        self.follow = np.empty((self._cap, 256), dtype=np.bool_)
        self._block_term = np.empty(self._cap, dtype=np.int32)
        # The live transitions of lone-block rows, sparse (for the product closure, which
        # would otherwise read 256 bytes of every member of every subset): per row the
        # range [lo, hi) of (byte, target) pairs in ``_sparse``, written by the closure
        # when it first meets the row (lo = -1 until then).
        self._sp_lo = np.empty(self._cap, dtype=np.int64)
        self._sp_hi = np.empty(self._cap, dtype=np.int64)
        self._sparse = (np.empty(1024, dtype=np.int32), np.empty(1024, dtype=np.int32), 0)  # bytes, targets, used
        self._done = np.empty(self._cap, dtype=np.bool_)  # lone rows: whether the lexeme may end there
        self._follow_rows: np.ndarray | None = None  # _follow_bytes as one array, made when needed
        for t in eager:
            self._single_block(t)

    def reference(self, t: int):
        """For terminal ``t`` with a reference terminal: (the reference's first lexer
        state, for each of its DFA states the equivalent lexer state of ``t`` or -1, for
        each DFA state of ``t`` the reference's DFA state reached by the same strings
        or -1); else None."""
        h = self._reference_of.get(t)
        if h is None:
            return None
        got = self._reference_pairs.get(t)
        if got is None:
            with self._lock:
                a, b = self.dfas[t], self.dfas[h]
                ta, tb = _class_columns(a, b)
                pair_of, eq = _pair_states(
                    ta, a.start, np.asarray(a.accepting, dtype=np.bool_),
                    tb, b.start, np.asarray(b.accepting, dtype=np.bool_),
                )
                base = self._single_block(t)
                eq = np.where(eq >= 0, eq + base, -1).astype(np.int32)
                got = self._reference_pairs[t] = (self._single_block(h), eq, pair_of)
        return got

    @property
    def n_states(self) -> int:
        return self._n

    def completes(self, sid: int) -> tuple[int, ...]:
        """The terminals whose lexeme may end in state ``sid``, sorted."""
        got = self._completed.get(sid)
        if got is None:
            got = self._one[self._block_term[sid]] if self._done[sid] else ()
        return got

    def is_lexeme_start(self, sid: int) -> bool:
        return sid in self._start_ids

    def excluded(self, sid: int) -> bytes:
        """The bytes a lexeme start excludes (none elsewhere)."""
        return self._exclude.get(sid, b"")

    def start(self, allowed: tuple[int, ...], exclude: bytes = b"") -> tuple[int, ...]:
        """The lexer states at a lexeme start where the parser allows ``allowed`` (ignores
        added), whose first byte is not in ``exclude``: one per group of terminals (empty
        when nothing at all may follow).
        """
        key = (allowed, exclude)
        got = self._starts.get(key)
        if got is not None:
            return got
        with self._lock:
            got = self._starts.get(key)
            if got is None:
                terms = sorted(set(allowed) | self.ignore)
                if self.longest_match or not self.separate_literals:
                    groups = [terms] if terms else []
                else:
                    flags = self._narrow(terms)
                    narrow = [t for t, f in zip(terms, flags) if f]
                    wide = [t for t, f in zip(terms, flags) if not f]
                    groups = [g for g in (narrow, wide) if g]
                dfas = self.dfas
                got = tuple(
                    self._build(frozenset((t, dfas[t].start) for t in g), True, exclude) for g in groups
                )
                self._starts[key] = got
        return got

    def _narrow(self, terms: list[int]) -> list[bool]:
        """Whether each terminal's language is finite (its DFA has no cycle) and its DFA
        has few transitions per state (a trie of literals, not a bounded string)."""
        flags = self._narrow_flags
        out = []
        for t in terms:
            f = flags[t]
            if f is None:
                f = flags[t] = bool(_is_narrow(*self.dfas[t].class_table()))
            out.append(f)
        return out

    def start_after(self, allowed: tuple[int, ...], state: int, term: int) -> tuple[int, ...]:
        """The next lexeme's start after ``term`` ends in lexer state ``state``.

        Ignored lexemes are longest-match (as lark matches them): the next lexeme may not
        begin with a byte that would have extended the ignored one.
        """
        if self.longest_match:
            return self.start(allowed, self._live_bytes(state))
        if term not in self.ignore:
            return self.start(allowed)
        key = (state, term)
        excl = self._ignore_excl.get(key)
        if excl is None:
            dfa = self.dfas[term]
            sub = [s for t, s in self.members(state) if t == term]
            excl = bytes(np.nonzero(dfa.row(sub[0]) >= 0)[0].tolist()) if sub else b""
            self._ignore_excl[key] = excl
        return self.start(allowed, excl)

    def _live_bytes(self, state: int) -> bytes:
        got = self._ignore_excl.get((state, -1))
        if got is None:
            got = bytes(np.nonzero(self.trans[state] >= 0)[0].tolist())
            self._ignore_excl[(state, -1)] = got
        return got

    # ------------------------------------------------------------------ building

    def _grow(self, need: int) -> None:
        """Room for ``need`` states. New rows are left unset: every state writes its own
        rows when it is made (``_new_state``, ``_fill_block``), so growing copies only the
        states in use and never touches the rest."""
        if need <= self._cap:
            return
        used = self._n
        self._cap = max(need, self._cap + self._cap // 2)

        def grown(a: np.ndarray) -> np.ndarray:
            out = np.empty((self._cap,) + a.shape[1:], dtype=a.dtype)
            out[:used] = a[:used]
            return out

        self.trans, self.accept, self.follow, self._block_term = (
            grown(self.trans), grown(self.accept), grown(self.follow), grown(self._block_term))
        self._sp_lo, self._sp_hi, self._done = grown(self._sp_lo), grown(self._sp_hi), grown(self._done)

    def _single_block(self, t: int) -> int:
        """Ids of the states where only terminal ``t`` is alive: one block per terminal,
        its rows a shifted copy of the DFA's (most lexer states are of this kind)."""
        base = self._single_base.get(t)
        if base is not None:
            return base
        dfa = self.dfas[t]
        n = dfa.n_states
        base = self._n
        if base + n > self.max_states:
            raise self._limit_error()
        self._grow(base + n)
        self._single_base[t] = base
        acc = dfa.accepting
        if self._windowed(t):
            # Rows written as far as tokens from the start can read; the other rows are
            # written before a hypothesis in this block can reach them (ensure).
            depth = np.full(n, -1, dtype=np.int32)
            depth[0] = 0
            self._block_term[base:base + n] = t
            window = self._windows[t] = [0, depth]
            window[0] = _fill_rows(
                self.trans, self.follow, self.accept, *dfa.class_table(), acc, self._follow_bytes[t], base,
                self.longest_match, depth, 0, self.horizon,
            )
        else:
            _fill_block(
                self.trans, self.follow, self.accept, self._block_term, *dfa.class_table(), acc,
                self._follow_bytes[t], base, t, self.longest_match,
            )
        self._done[base:base + n] = acc
        self._sp_lo[base:base + n] = -1
        self._n = base + n
        return base

    def _windowed(self, t: int) -> bool:
        """Whether terminal ``t``'s block is written in part (see :meth:`ensure`): a large
        DFA (a string of a large ``maxLength``: tens of thousands of rows, tens of MB and
        of milliseconds to write, where a token reads a hundred rows past where it
        starts), with a horizon, and no reference terminal on either side (a walk patched
        from a reference reads states of both anywhere)."""
        return (self.horizon is not None and self.dfas[t].n_states >= WINDOW_FROM_ROWS
                and t not in self._reference_of and t not in self._reference_of.values())

    def ensure(self, states) -> None:
        """Write the rows that walks and steps from ``states`` (lexer states a hypothesis
        holds) may read: of a partly written block, every state within ``horizon`` bytes
        of them. States are numbered breadth-first in their DFA, so those rows are a prefix
        of the block. Cheap where nothing is missing."""
        windows = self._windows
        if not windows:
            return
        for c in states:
            if c < 0:
                continue
            t = int(self._block_term[c])
            if t < 0:
                continue  # (a product state: its blocks are written past where it can go, see _build)
            window = windows.get(t)
            if window is None:
                continue
            base = self._single_base[t]
            rows, depth = window
            d = int(depth[c - base])
            if d < 0:  # (a state past the rows written: never handed out, but if so, all of them)
                self._write_window(t, 1 << 30)
            elif rows < len(depth) and depth[rows] <= d + self.horizon:
                self._write_window(t, d + self.horizon)

    def _write_window(self, t: int, max_depth: int) -> None:
        with self._lock:
            window = self._windows.get(t)
            if window is None:
                return
            dfa = self.dfas[t]
            window[0] = _fill_rows(
                self.trans, self.follow, self.accept, *dfa.class_table(), dfa.accepting, self._follow_bytes[t],
                self._single_base[t], self.longest_match, window[1], window[0], max_depth,
            )
            if window[0] == len(window[1]):
                del self._windows[t]

    def _longest(self, t: int, k: int) -> int:
        """The most bytes a lexeme of terminal ``t`` may still take from its DFA state
        ``k``; ``_UNBOUNDED`` where there is no bound (a cycle)."""
        got = self._longest_paths.get(t)
        if got is None:
            got = self._longest_paths[t] = _longest_paths(*self.dfas[t].class_table())
        return int(got[k]) if got[k] >= 0 else _UNBOUNDED

    def materialize(self) -> None:
        """Write every row of the blocks written in part: for code that reads the table
        beyond the states hypotheses hold (a table of all states, a test)."""
        for t in list(self._windows):
            self._write_window(t, 1 << 30)

    def lone_terminal(self, sid: int) -> int:
        """The terminal of a single-terminal state (its DFA state is ``sid - single_base(t)``), else -1."""
        return int(self._block_term[sid])

    def single_base(self, t: int) -> int:
        return self._single_base[t]

    def members(self, sid: int) -> tuple[tuple[int, int], ...]:
        """The (terminal, DFA state) scans alive in lexer state ``sid``."""
        got = self._members.get(sid)
        if got is None:
            t = int(self._block_term[sid])
            if t >= 0:
                return ((t, sid - self._single_base[t]),)
            # a state a product closure reached: made now
            first, bounds, terms, states = self._closures[bisect_right(self._closure_firsts, sid) - 1]
            a, z = bounds[sid - first], bounds[sid - first + 1]
            got = self._members[sid] = tuple(zip(terms[a:z].tolist(), states[a:z].tolist()))
        return got

    def state_key(self, sid: int) -> bytes:
        """A key of lexer state ``sid`` that does not depend on the order states were made
        in: its members (terminal id, DFA state), whether it is a lexeme start and the
        bytes excluded there, which fix its row, its following bytes and the terminals it
        completes; 16 bytes, hashed. -1 (nothing more may be read) has a key too."""
        if sid < 0:
            return _NO_STATE_KEY
        got = self._state_keys.get(sid)
        if got is None:
            got = self._state_keys[sid] = blake2b(repr((
                tuple(sorted(self.members(sid))), sid in self._start_ids, self.excluded(sid))).encode(),
                digest_size=16).digest()
        return got

    def _ensure_names(self) -> None:
        """Index the terminals by size and following bytes (their names, and product
        states' names, are made when first asked for)."""
        if self._named:
            return
        with self._lock:
            if not self._named:
                self._index_terms()

    def _index_terms(self) -> None:
        for t, d in enumerate(self.dfas):
            self._name_terms.setdefault((d.n_states, self._follow_bytes[t].tobytes()), []).append(t)
        self._named = True

    def _term_name(self, t: int) -> tuple:
        got = self._term_names[t]
        if got is None:
            d = self.dfas[t]
            got = self._term_names[t] = (d.n_states, d.key, self._follow_bytes[t].tobytes())
        return got

    def nameable(self, sid: int) -> bool:
        """Whether :meth:`name` of ``sid`` is cheap: no member's DFA is large and not yet
        keyed (hashing a DFA of tens of thousands of states costs tens of milliseconds,
        more than the walk a name lets grammars share)."""
        t = int(self._block_term[sid])
        if t >= 0:
            return self._cheap(t)
        return all(self._cheap(t) for t, _ in self.members(sid))

    def _cheap(self, t: int) -> bool:
        return self._term_names[t] is not None or self.dfas[t].n_states < _NAME_EAGER_STATES

    def name(self, sid: int) -> tuple:
        """``sid``'s grammar-independent name: its members' terminals and DFA states,
        whether it is a lexeme start, the bytes excluded there and the bytes that may follow."""
        if not self._named:
            self._ensure_names()
        got = self.canon.get(sid)
        if got is None:
            t = int(self._block_term[sid])
            if t >= 0:  # a single-terminal state
                return (((self._term_name(t), sid - self._single_base[t]),), False, b"", self.follow[sid].tobytes())
            with self._lock:  # a product state not named yet
                got = self.canon.get(sid)
                if got is None:
                    got = self._name(sid)
        return got

    def find(self, name: tuple) -> int:
        """The state here with that name, or -1 (none, or a member's terminal that no
        terminal here, or more than one, has the name of).

        Looked up by its members, not among the names made so far: the members' terminals
        by their names, then a lone state by its block, a lexeme start by its key, any
        other product state in the table of products (no state is named to find one)."""
        if not self._named:
            self._ensure_names()
        members, is_start, exclude, follow = name
        local = []
        for key, k in members:
            t = self._term_of_name(key)
            if t < 0:
                return -1
            local.append((t, k))
        if is_start:
            sid = self._keys.get(_start_key(frozenset(local), True, exclude), -1)
        elif exclude:
            return -1
        elif len(local) == 1:
            base = self._single_base.get(local[0][0])
            sid = -1 if base is None else base + local[0][1]
        else:
            lone = []
            for t, k in local:
                base = self._single_base.get(t)
                if base is None:
                    return -1  # a block not made: no product of it either
                lone.append(base + k)
            if self._products is None:
                return -1
            p_off, p_dat, p_sid, p_table, _ = self._products
            sid = int(_find_product(p_off, p_dat, p_sid, p_table, np.array(sorted(lone), dtype=np.int32)))
        if sid < 0 or self.follow[sid].tobytes() != follow:
            return -1
        return sid

    def _term_of_name(self, key) -> int:
        """The terminal here whose name (:meth:`_term_name`) is ``key``, or -1 (none, more
        than one, or one that would need a large DFA keyed to tell)."""
        got = self._terms_by_name.get(key)
        if got is None:
            got = -1
            if type(key) is tuple:
                n, _, fb = key
                alike = self._name_terms.get((n, fb), ())
                if all(self._cheap(t) for t in alike):  # (not worth keying a large DFA for)
                    terms = [t for t in alike if self._term_name(t) == key]
                    if len(terms) == 1:
                        got = terms[0]
            self._terms_by_name[key] = got
        return got

    def _new_state(self, ordered: tuple, is_start: bool, exclude: bytes = b"") -> int:
        """Book-keeping of a new product state (``ordered``: its members, sorted); its
        rows (transitions, and following bytes where no member completes) are written by
        :meth:`_build`."""
        sid = self._n
        self._n = sid + 1
        self._members[sid] = ordered
        if exclude:
            self._exclude[sid] = exclude
        if is_start:
            self._start_ids.add(sid)
        # members are sorted, one per terminal at most: the terminals completed come sorted
        # (a member completes where its lone state does)
        base, lone_done = self._single_base, self._done
        done = tuple(t for t, s in ordered if lone_done[base[t] + s])
        if done:
            self._completed[sid] = done
            fb = self._follow_bytes[done[0]].copy()
            for t in done[1:]:
                fb |= self._follow_bytes[t]
            self.follow[sid] = fb
            self.accept[sid] = bool(fb.any())
        return sid

    def _limit_error(self) -> CompileLimitError:
        return limit_error(
            f"lexer limit: more than {self.max_states} combined lexer states (too many overlapping terminals?)",
            "max_lexer_states", self.max_states)

    def _name(self, sid: int) -> tuple:
        if not self.nameable(sid):
            # a member's DFA is large and not keyed: a name no other state shares
            name = (((_UNSHARED, sid),), False, b"", b"")
        else:
            name = (
                tuple(sorted((self._term_name(t), s) for t, s in self.members(sid))),
                sid in self._start_ids,
                self.excluded(sid),
                self.follow[sid].tobytes(),
            )
        self.canon[sid] = name
        return name

    def _build(self, members: frozenset, is_start: bool, exclude: bytes = b"") -> int:
        key = _start_key(members, is_start, exclude)
        got = self._keys.get(key)
        if got is not None:
            return got
        # Members as lone-block states; one numba pass finds the product states they
        # reach that do not exist yet (a subset construction over the lone blocks' rows,
        # stopping at products made before) and writes every row.
        lone = sorted(self._single_block(t) + k for t, k in members)
        if len(lone) > 1 and self._windows:
            # The closure of a product reads a member's rows while it and another member
            # are alive: not past the first byte where no other member starts with a byte
            # it takes, else as far as the shorter of their longest lexemes goes. Walks
            # from those states read a token further: that far into a partly written block.
            for t, k in members:
                window = self._windows.get(t)
                if window is None:
                    continue
                first = self.dfas[t].row(k) >= 0
                reach = 0
                for t2, k2 in members:
                    if t2 != t and (first & (self.dfas[t2].row(k2) >= 0)).any():
                        reach = max(reach, min(self._longest(t, k), self._longest(t2, k2)))
                d = int(window[1][k])
                self._write_window(t, 1 << 30 if reach == _UNBOUNDED or d < 0 else d + reach + self.horizon)
        first = self._n
        if len(lone) == 1:
            # one member: its row is its lone state's, every step lands in that block
            rows = None
            n = 1
        else:
            if self._products is None:
                self._products = (
                    np.zeros(17, dtype=np.int64), np.empty(64, dtype=np.int32), np.empty(16, dtype=np.int32),
                    np.full(64, -1, dtype=np.int64), 0,
                )
            reps, cls = self._classes_of(tuple(sorted({t for t, _ in members})))
            ok, off, dat, rows, self._products, self._sparse = _product_closure(
                self.trans, np.array(lone, dtype=np.int32), self._products, first, self.max_states,
                self._sp_lo, self._sp_hi, self._sparse, cls, reps,
            )
            n = len(off) - 1 if ok else -1
        if n < 0 or first + n > self.max_states:
            raise self._limit_error()
        self._grow(first + n)
        end = first + n
        if rows is None:
            self.trans[first] = self.trans[lone[0]]
        else:
            self.trans[first:end] = rows[:n]
        if exclude:
            self.trans[first, list(exclude)] = -1
        self._block_term[first:end] = -1
        self._done[first:end] = False  # (product states' completions: _completed)
        self.follow[first:end] = False  # most product states: inside every member's lexeme
        self.accept[first:end] = False
        self._keys[key] = self._new_state(tuple(sorted(members)), is_start, exclude)
        if n > 1:
            # (only lexeme starts are looked up by their members: the states the closure
            # reached are kept by the numba table of products)
            self._new_states(first, off, dat, n)
        if self.longest_match:
            rows = self.follow[first:end]
            rows &= self.trans[first:end] < 0
            self.accept[first:end] = rows.any(axis=1)
        return first

    def _classes_of(self, terms: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The classes of bytes that no block of ``terms`` tells apart (one byte of each,
        the class of each byte): every state of a product of their members has the same
        row on the bytes of a class, so its closure reads and hashes one byte per class
        (68 of 256 for 28 terminals of JSON keys)."""
        got = self._joint.get(terms)
        if got is None:
            got = self._joint[terms] = joint_classes([self.dfas[t] for t in terms])
        return got

    def _new_states(self, first: int, off: np.ndarray, dat: np.ndarray, n: int) -> None:
        """:meth:`_new_state` for subsets 1 .. n - 1 of a product closure (sorted lone
        members ``dat[off[j]:off[j + 1]]``, ids ``first + j``), with array operations:
        a closure can reach thousands of them in one mask."""
        lone = dat[off[1]:off[n]]
        sizes = np.diff(off[1:n + 1])
        seg = np.repeat(np.arange(1, n), sizes)
        terms = self._block_term[lone]
        bases = np.zeros(len(self.dfas), dtype=np.int64)
        for t, b in self._single_base.items():
            bases[t] = b
        states = lone - bases[terms]
        # each subset's members by terminal: one stable sort by (subset, terminal); a
        # subset's members come sorted by lone state, so by DFA state within a terminal
        # (a lexsort of the three keys took most of this method's time)
        order = np.argsort(seg * len(self.dfas) + terms, kind="stable")
        terms, states, lone, seg = terms[order], states[order], lone[order], seg[order]
        done = self._done[lone]
        k = n - 1
        # members are made into tuples when asked for (see members())
        self._closures.append((first + 1, off[1:n + 1] - off[1], terms, states))
        self._closure_firsts.append(first + 1)
        self._n += k
        at = np.flatnonzero(done)
        if len(at):
            which = seg[at]
            # one member per terminal, sorted: the terminals completed come sorted
            completed = self._completed
            for sid, t in zip((which + first).tolist(), terms[at].tolist()):
                completed[sid] = completed.get(sid, ()) + (t,)
            if self._follow_rows is None:
                self._follow_rows = np.array(self._follow_bytes, dtype=np.bool_).reshape(len(self._follow_bytes), 256)
            starts = np.flatnonzero(np.concatenate(([True], which[1:] != which[:-1])))
            fb = np.logical_or.reduceat(self._follow_rows[terms[at]], starts, axis=0)
            sids = first + which[starts]
            self.follow[sids] = fb
            self.accept[sids] = fb.any(axis=1)


# A terminal whose DFA has this many states or more is keyed only where needed (see
# Lexer._term_name); a name holding this is never shared.
_NAME_EAGER_STATES = 4096
_UNSHARED = object()
_UNBOUNDED = 1 << 62  # a lexeme of no bounded length (see Lexer._longest)


def _start_key(members: frozenset, is_start: bool, exclude: bytes) -> bytes:
    """The key of a product state by its members ((terminal, state) pairs),
    whether it starts a lexeme and the bytes it excludes: bytes, which keep the dict of
    them out of the cyclic collector's reach (see constrain._tables)."""
    return len(members).to_bytes(4, "little") + pairs_key(sorted(members)) + (b"\1" if is_start else b"\0") + exclude


_NO_STATE_KEY = b"\xff" * 16  # Lexer.state_key of -1


@njit(cache=True, nogil=True)
def _expand_subset(trans, i, n, off, dat, rows, table, scratch, p_off, p_dat, p_sid, p_table, first, cap,
                   sp_lo, sp_hi, sp_b, sp_d, sp_n, count, fill, bucket, cls, reps, target):
    """Row of subset ``i`` of :func:`_product_closure`, adding the subsets it reaches that
    are new (the arrays have room for them). Returns the new count, or -1 past ``cap``.

    Bytes of one class (``cls``: class of each byte; ``reps``: the first byte of each)
    lead every member to the same state: one target per class, put in the row for each
    of its bytes. A member with few live transitions is read sparse (written to ``sp_*``
    the first time a member is met; ``sp_n[0]``: entries used, room left for 256 per
    member), keeping the classes' first bytes; another, one byte per class. Targets go
    in buckets by class, in member order, so each bucket is sorted (a member's target
    stays in its block). Classes come in the order of their first bytes: subsets are
    numbered as a byte-by-byte pass would number them."""
    n_cls = reps.shape[0]
    a = off[i]
    z = off[i + 1]
    count[:n_cls] = 0
    for x in range(a, z):
        m = dat[x]
        if sp_lo[m] < 0:
            e = sp_n[0]
            sp_lo[m] = e
            for b in range(256):
                nx = trans[m, b]
                if nx >= 0:
                    sp_b[e] = b
                    sp_d[e] = nx
                    e += 1
            sp_hi[m] = e
            sp_n[0] = e
        if sp_hi[m] - sp_lo[m] <= n_cls:
            for e in range(sp_lo[m], sp_hi[m]):
                b = sp_b[e]
                if reps[cls[b]] == b:
                    count[cls[b]] += 1
        else:
            for c in range(n_cls):
                if trans[m, reps[c]] >= 0:
                    count[c] += 1
    fill[0] = 0
    for c in range(n_cls):
        fill[c + 1] = fill[c] + count[c]
    for x in range(a, z):
        m = dat[x]
        if sp_hi[m] - sp_lo[m] <= n_cls:
            for e in range(sp_lo[m], sp_hi[m]):
                b = sp_b[e]
                c = cls[b]
                if reps[c] == b:
                    bucket[fill[c]] = sp_d[e]
                    fill[c] += 1
        else:
            for c in range(n_cls):
                nx = trans[m, reps[c]]
                if nx >= 0:
                    bucket[fill[c]] = nx
                    fill[c] += 1
    for c in range(n_cls):
        k = count[c]
        if k == 0:
            target[c] = -1
            continue
        lo = fill[c] - k
        if k == 1:
            target[c] = bucket[lo]
            continue
        for q in range(k):
            scratch[q] = bucket[lo + q]
        h = hash_run(scratch, 0, k, 0)
        found = _find_members(p_off, p_dat, p_table, h, scratch, k)
        if found >= 0:
            target[c] = p_sid[found]
            continue
        found = _find_members(off, dat, table, h, scratch, k)
        if found >= 0:
            target[c] = first + found
            continue
        if first + n >= cap:
            return -1
        start = off[n]
        dat[start : start + k] = scratch[:k]
        off[n + 1] = start + k
        _place(off, dat, table, n)
        target[c] = first + n
        n += 1
    for b in range(256):
        rows[i, b] = target[cls[b]]
    return n


@njit(cache=True, nogil=True)
def _product_closure(trans, root, products, first, cap, sp_lo, sp_hi, sparse, cls, reps):
    """Subset construction over lone-block rows of ``trans`` from the sorted lone states
    ``root``. ``products`` (off, dat, sid, table, n): the product states made so far
    (their sorted lone members), found by hash. Returns (ok, offsets, members, rows,
    products): the root and each new subset it reaches, numbered ``first``, ``first +
    1``, ..., their rows written in lexer ids, and ``products`` with the new subsets
    added. Subsets have at most one state per block, so members stay sorted. The root
    is a lexeme start, kept apart from an equal subset reached later. ``ok`` is False
    (and ``products`` unchanged) past ``cap`` lexer states. ``sp_lo``, ``sp_hi``,
    ``sparse`` (bytes, targets, used): the members' live transitions (see
    ``Lexer._sp_lo``), returned grown. ``cls``, ``reps``: classes of bytes that no
    member's block tells apart (see :func:`_expand_subset`)."""
    p_off, p_dat, p_sid, p_table, p_n = products
    m = root.shape[0]
    off = np.empty(17, dtype=np.int64)
    dat = np.empty(16 * m, dtype=np.int32)
    rows = np.empty((16, 256), dtype=np.int32)
    off[0] = 0
    off[1] = m
    dat[:m] = root
    n = 1
    table = np.full(64, -1, dtype=np.int64)  # the new subsets (not the root)
    scratch = np.empty(m, dtype=np.int32)
    count = np.empty(256, dtype=np.int64)
    fill = np.empty(257, dtype=np.int64)
    bucket = np.empty(256 * m, dtype=np.int32)
    target = np.empty(reps.shape[0], dtype=np.int32)
    sp_b, sp_d, used = sparse
    sp_n = np.zeros(1, dtype=np.int64)
    sp_n[0] = used
    i = 0
    while i < n:
        # Room for the at most 256 new subsets (of at most m members: one per block) that
        # subset i may reach, so that the loop over its bytes, a function of its own,
        # never grows an array (numba's code for a loop that does is several times slower).
        if off.shape[0] < n + 258:
            off2 = np.empty(2 * (n + 258), dtype=np.int64)
            off2[: n + 1] = off[: n + 1]
            off = off2
        if rows.shape[0] < n + 257:
            rows2 = np.empty((2 * (n + 257), 256), dtype=np.int32)
            rows2[:n] = rows[:n]
            rows = rows2
        if dat.shape[0] < off[n] + 256 * m:
            dat2 = np.empty(2 * (off[n] + 256 * m), dtype=np.int32)
            dat2[: off[n]] = dat[: off[n]]
            dat = dat2
        if 2 * (n + 256) > table.shape[0]:
            size = table.shape[0]
            while 2 * (n + 256) > size:
                size *= 4
            table = np.full(size, -1, dtype=np.int64)
            for q in range(1, n):
                _place(off, dat, table, q)
        if sp_b.shape[0] < sp_n[0] + 256 * (off[i + 1] - off[i]):
            size = 2 * (sp_n[0] + 256 * (off[i + 1] - off[i]))
            sp_b2 = np.empty(size, dtype=np.int32)
            sp_b2[: sp_n[0]] = sp_b[: sp_n[0]]
            sp_b = sp_b2
            sp_d2 = np.empty(size, dtype=np.int32)
            sp_d2[: sp_n[0]] = sp_d[: sp_n[0]]
            sp_d = sp_d2
        n = _expand_subset(trans, i, n, off, dat, rows, table, scratch, p_off, p_dat, p_sid, p_table, first, cap,
                           sp_lo, sp_hi, sp_b, sp_d, sp_n, count, fill, bucket, cls, reps, target)
        if n < 0:
            return False, off[:1], dat[:0], rows[:0], products, (sp_b, sp_d, sp_n[0])
        i += 1
    # Success: the new subsets join the products.
    if n > 1:
        need = p_n + n
        if p_off.shape[0] < need + 1:
            p_off2 = np.empty(2 * need + 1, dtype=np.int64)
            p_off2[: p_n + 1] = p_off[: p_n + 1]
            p_off = p_off2
            p_sid2 = np.empty(2 * need + 1, dtype=np.int32)
            p_sid2[:p_n] = p_sid[:p_n]
            p_sid = p_sid2
        size = p_off[p_n] + off[n] - off[1]
        if p_dat.shape[0] < size:
            p_dat2 = np.empty(2 * size, dtype=np.int32)
            p_dat2[: p_off[p_n]] = p_dat[: p_off[p_n]]
            p_dat = p_dat2
        for j in range(1, n):
            ps = p_off[p_n]
            k = off[j + 1] - off[j]
            p_dat[ps : ps + k] = dat[off[j] : off[j + 1]]
            p_off[p_n + 1] = ps + k
            p_sid[p_n] = first + j
            p_table = _put_members(p_off, p_dat, p_table, 0, p_n)
            p_n += 1
    return True, off[: n + 1], dat[: off[n]], rows[:n], (p_off, p_dat, p_sid, p_table, p_n), (sp_b, sp_d, sp_n[0])


@njit(cache=True, nogil=True)
def _find_product(p_off, p_dat, p_sid, p_table, lone):
    """The product state (not a lexeme start) whose sorted lone members are ``lone``, or -1."""
    j = _find_members(p_off, p_dat, p_table, hash_run(lone, 0, lone.shape[0], 0), lone, lone.shape[0])
    return p_sid[j] if j >= 0 else -1


@njit(cache=True, nogil=True)
def _find_members(off, dat, table, h, scratch, k):
    """Index of the subset equal to ``scratch[:k]`` (hash ``h``) in ``table``, or -1."""
    slot = first_slot(table, h)
    while table[slot] != -1:
        j = table[slot]
        if _same_members(dat, off[j], off[j + 1], scratch, k):
            return j
        slot = next_slot(table, slot)
    return -1


@njit(cache=True, nogil=True)
def _put_members(off, dat, table, lo, j):
    """Add subset ``j`` to ``table``, which holds subsets ``lo .. j - 1``, growing it to
    keep it at most half full; returns the table."""
    cap = table.shape[0]
    if 2 * (j - lo + 1) > cap:
        cap *= 4
        table = np.full(cap, -1, dtype=np.int64)
        for q in range(lo, j):
            _place(off, dat, table, q)
    _place(off, dat, table, j)
    return table


@njit(cache=True, nogil=True)
def _place(off, dat, table, j):
    put(table, hash_run(dat, off[j], off[j + 1], 0), j)


@njit(cache=True, nogil=True)
def _same_members(dat, lo, hi, scratch, k):
    if hi - lo != k:
        return False
    for x in range(k):
        if dat[lo + x] != scratch[x]:
            return False
    return True


@njit(cache=True, nogil=True)
def _pair_states(ta, sa, acc_a, tb, sb, acc_b):
    """Walk DFAs ``a`` and ``b`` side by side from their starts. Returns (for each state
    of ``a``, the state of ``b`` first reached with it, or -1; for each state of ``b``,
    a state of ``a`` reached with it that accepts exactly the same strings from there,
    or -1). The tables' columns are classes of bytes that neither DFA tells apart (one
    column per class: a string DFA of 9,525 states has 11 beside JSON's), or all 256."""
    na = ta.shape[0]
    nb = tb.shape[0]
    pair_of = np.full(na, -1, dtype=np.int32)
    eq = np.full(nb, -1, dtype=np.int32)
    if na * nb > 4_000_000:
        return pair_of, eq
    index = np.full(na * nb, -1, dtype=np.int32)
    xs = np.empty(64, dtype=np.int32)
    ys = np.empty(64, dtype=np.int32)
    bad = np.zeros(64, dtype=np.bool_)
    xs[0] = sa
    ys[0] = sb
    index[sa * nb + sb] = 0
    n = 1
    i = 0
    while i < n:
        x = xs[i]
        y = ys[i]
        if pair_of[x] < 0:
            pair_of[x] = y
        differs = acc_a[x] != acc_b[y]
        for c in range(ta.shape[1]):
            x2 = ta[x, c]
            y2 = tb[y, c]
            if (x2 < 0) != (y2 < 0):
                differs = True
                continue
            if x2 < 0 or index[x2 * nb + y2] >= 0:
                continue
            if n == xs.shape[0]:
                xs = np.concatenate((xs, xs))
                ys = np.concatenate((ys, ys))
                bad = np.concatenate((bad, bad))
            xs[n] = x2
            ys[n] = y2
            bad[n] = False
            index[x2 * nb + y2] = n
            n += 1
        bad[i] = differs
        i += 1
    # A pair is equivalent unless a pair that differs is reachable from it.
    changed = True
    while changed:
        changed = False
        for j in range(n - 1, -1, -1):
            if bad[j]:
                continue
            x = xs[j]
            y = ys[j]
            for c in range(ta.shape[1]):
                x2 = ta[x, c]
                if x2 >= 0 and bad[index[x2 * nb + tb[y, c]]]:
                    bad[j] = True
                    changed = True
                    break
    for j in range(n):
        if not bad[j] and eq[ys[j]] < 0:
            eq[ys[j]] = xs[j]
    return pair_of, eq


def _class_columns(a, b) -> tuple[np.ndarray, np.ndarray]:
    """The transition tables of DFAs ``a`` and ``b`` with one column per class of bytes
    that neither tells apart."""
    reps = joint_class_bytes(a, b)
    return (np.ascontiguousarray(np.take(a.transitions, reps, axis=1), dtype=np.int32),
            np.ascontiguousarray(np.take(b.transitions, reps, axis=1), dtype=np.int32))


@njit(cache=True, nogil=True)
def _is_narrow(trans, cls):
    """No cycle (a finite language) and at most four transitions per state on average
    (the table over byte classes ``cls``, see ByteDFA.class_table)."""
    n = trans.shape[0]
    indeg = np.zeros(n, dtype=np.int64)
    edges = 0
    for u in range(n):
        for b in range(256):
            v = trans[u, cls[b]]
            if v >= 0:
                indeg[v] += 1
                edges += 1
        if edges > 4 * n:
            return 0  # wide rows (a string's states) tell at once
    ready = np.empty(n, dtype=np.int64)
    top = 0
    for v in range(n):
        if indeg[v] == 0:
            ready[top] = v
            top += 1
    seen = 0
    while top > 0:
        top -= 1
        u = ready[top]
        seen += 1
        for b in range(256):
            v = trans[u, cls[b]]
            if v >= 0:
                indeg[v] -= 1
                if indeg[v] == 0:
                    ready[top] = v
                    top += 1
    return 1 if seen == n else 0


@njit(cache=True, nogil=True)
def _longest_paths(trans, cls):
    """Per state of a trimmed DFA (its table over byte classes ``cls``): the longest
    string it may still read, -1 where that has no bound (a cycle is reachable)."""
    n = trans.shape[0]
    k = trans.shape[1]
    used = np.zeros(k, dtype=np.bool_)
    for b in range(256):
        used[cls[b]] = True
    out = np.full(n, -2, dtype=np.int64)  # -2 not done, -3 on the stack
    stack = np.empty(2 * n + 2, dtype=np.int64)
    for root in range(n):
        if out[root] != -2:
            continue
        top = 0
        stack[0] = root
        out[root] = -3
        while top >= 0:
            s = stack[top]
            ready = True
            best = 0
            for c in range(k):
                if not used[c]:
                    continue
                x = trans[s, c]
                if x < 0:
                    continue
                if out[x] == -3 or out[x] == -1:
                    best = -1
                    break
                if out[x] == -2:
                    out[x] = -3
                    top += 1
                    stack[top] = x
                    ready = False
                    break
                if best >= 0 and out[x] + 1 > best:
                    best = out[x] + 1
            if best == -1:
                out[s] = -1
                top -= 1
            elif ready:
                out[s] = best
                top -= 1
    return out


@njit(cache=True, nogil=True)
def _fill_rows(trans, follow, accept, dfa_trans, dfa_cls, acc, follow_bytes, base, longest_match, depth, lo,
               max_depth):
    """Rows ``base + lo ..`` of the lexer tables for one terminal's DFA (its table over
    byte classes ``dfa_cls``, see ByteDFA.class_table), in order, up to the first DFA
    state deeper than ``max_depth`` bytes from the start: its transitions shifted by
    ``base``; at accepting states the bytes that may start the next lexeme (with longest
    match, only those the DFA cannot take itself). Returns the rows written then. ``depth``: per DFA state its distance from the start,
    -1 where not known yet; the DFA's states are numbered breadth-first, so a state's
    depth is known (from an earlier state) when its row comes."""
    n = dfa_trans.shape[0]
    k = lo
    while k < n:
        d = depth[k]
        if d > max_depth:
            break
        s = base + k
        for b in range(256):
            nxt = dfa_trans[k, dfa_cls[b]]
            if nxt >= 0:
                trans[s, b] = nxt + base
                if depth[nxt] < 0:
                    depth[nxt] = d + 1
            else:
                trans[s, b] = -1
        if not acc[k]:
            follow[s, :] = False
            accept[s] = False
        else:
            any_follow = False
            for b in range(256):
                f = follow_bytes[b] and not (longest_match and dfa_trans[k, dfa_cls[b]] >= 0)
                follow[s, b] = f
                any_follow = any_follow or f
            accept[s] = any_follow
        k += 1
    return k


@njit(cache=True, nogil=True)
def _fill_block(trans, follow, accept, block_term, dfa_trans, dfa_cls, acc, follow_bytes, base, term, longest_match):
    """Every row of one terminal's block (as :func:`_fill_rows` writes them) and the
    terminal of each."""
    n = dfa_trans.shape[0]
    block_term[base:base + n] = term
    depth = np.full(n, -1, dtype=np.int32)
    depth[0] = 0
    _fill_rows(trans, follow, accept, dfa_trans, dfa_cls, acc, follow_bytes, base, longest_match, depth, 0, n)
