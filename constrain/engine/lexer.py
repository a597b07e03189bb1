"""The lexer: every terminal's byte DFA run in parallel, as one lazily built product DFA.

A lexer state is the set of (terminal, DFA state) scans still alive in the current
lexeme, plus whether the lexeme is still empty. States are interned to integers and
their 256-way transition rows stored in one int32 table, which is all the numba trie
walk needs. The table is built per set of terminals the parser allows at a lexeme
start, closed eagerly under transitions (with a state limit), and shared by every
parse state that allows the same terminals.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from ..errors import CompileLimitError

__all__ = ["Lexer"]


class Lexer:
    def __init__(
        self,
        dfas: Sequence,
        ignore: Sequence[int],
        *,
        follow_bytes: Sequence[np.ndarray] | None = None,
        longest_match: bool = False,
        max_states: int = 200_000,
    ):
        self.dfas = list(dfas)
        self.longest_match = longest_match
        # follow_bytes[t][b]: a lexeme may start with byte b right after a lexeme of t.
        # Boundaries followed by other bytes need no parser visit inside a token.
        if follow_bytes is None:
            follow_bytes = [np.ones(256, dtype=np.bool_) for _ in self.dfas]
        self._follow_bytes = [np.asarray(f, dtype=np.bool_) for f in follow_bytes]
        self.ignore = frozenset(ignore)
        self.max_states = max_states
        self._lock = threading.RLock()
        self._keys: dict[tuple[frozenset, bool, bytes], int] = {}
        self._members: list[tuple[tuple[int, int], ...]] = []
        self.completed: list[tuple[int, ...]] = []  # terminals whose lexeme may end here
        # accept[s]: some lexeme may end in state s and be followed by more bytes;
        # follow[s, b]: ... by a lexeme starting with byte b.
        self.is_start: list[bool] = []
        self._exclude: list[bytes] = []
        # A grammar-independent name for each state: DFA content keys, flags and the
        # bytes that may follow. Equal names walk the vocabulary the same way in any
        # grammar, so whole-vocabulary walks are shared across grammars.
        self.canon: list[tuple] = []
        self.canon_index: dict[tuple, int] = {}
        self._dfa_keys = [d.key for d in self.dfas]
        self._cap = 64
        self.trans = np.full((self._cap, 256), -1, dtype=np.int32)
        self.accept = np.zeros(self._cap, dtype=np.bool_)
        self.follow = np.zeros((self._cap, 256), dtype=np.bool_)
        self._starts: dict[tuple[tuple[int, ...], bytes], int] = {}
        self._ignore_excl: dict[tuple[int, int], bytes] = {}

    @property
    def n_states(self) -> int:
        return len(self._members)

    def start(self, allowed: tuple[int, ...], exclude: bytes = b"") -> int:
        """The lexer state at a lexeme start where the parser allows ``allowed`` (ignores added),
        whose first byte is not in ``exclude``. Returns -1 when nothing at all may follow.
        """
        key = (allowed, exclude)
        got = self._starts.get(key)
        if got is not None:
            return got
        with self._lock:
            got = self._starts.get(key)
            if got is None:
                terms = set(allowed) | self.ignore
                if not terms:
                    got = -1
                else:
                    got = self._build(frozenset((t, self.dfas[t].start) for t in terms), True, exclude)
                self._starts[key] = got
        return got

    def start_after(self, allowed: tuple[int, ...], state: int, term: int) -> int:
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
            sub = [s for t, s in self._members[state] if t == term]
            excl = bytes(np.nonzero(dfa.transitions[sub[0]] >= 0)[0].tolist()) if sub else b""
            self._ignore_excl[key] = excl
        return self.start(allowed, excl)

    def _live_bytes(self, state: int) -> bytes:
        got = self._ignore_excl.get((state, -1))
        if got is None:
            got = bytes(np.nonzero(self.trans[state] >= 0)[0].tolist())
            self._ignore_excl[(state, -1)] = got
        return got

    def step(self, state: int, byte: int) -> int:
        return int(self.trans[state, byte])

    # ------------------------------------------------------------------ building

    def _new_state(self, members: frozenset, is_start: bool, exclude: bytes = b"") -> int:
        sid = len(self._members)
        if sid >= self.max_states:
            raise CompileLimitError(
                f"lexer limit: more than {self.max_states} combined lexer states (too many overlapping terminals?)"
            )
        if sid >= self._cap:
            self._cap *= 2
            trans = np.full((self._cap, 256), -1, dtype=np.int32)
            trans[:sid] = self.trans[:sid]
            accept = np.zeros(self._cap, dtype=np.bool_)
            accept[:sid] = self.accept[:sid]
            follow = np.zeros((self._cap, 256), dtype=np.bool_)
            follow[:sid] = self.follow[:sid]
            self.trans, self.accept, self.follow = trans, accept, follow
        ordered = tuple(sorted(members))
        self._members.append(ordered)
        self._keys[(members, is_start, exclude)] = sid
        self._exclude.append(exclude)
        done = tuple(sorted({t for t, s in ordered if self.dfas[t].accepting[s]}))
        self.completed.append(done)
        self.is_start.append(is_start)
        fb = np.zeros(256, dtype=np.bool_)
        for t in done:
            fb |= self._follow_bytes[t]
        self.follow[sid] = fb
        self.accept[sid] = bool(fb.any())
        return sid

    def _name(self, sid: int) -> None:
        keys = self._dfa_keys
        name = (
            tuple(sorted((keys[t], s) for t, s in self._members[sid])),
            self.is_start[sid],
            self._exclude[sid],
            self.follow[sid].tobytes(),
        )
        while len(self.canon) <= sid:
            self.canon.append(())
        self.canon[sid] = name
        # Two states with one name (terminals with equal DFAs) are told apart by their
        # local terminal ids only: such names are not used for sharing.
        self.canon_index[name] = sid if name not in self.canon_index else -1

    def _build(self, members: frozenset, is_start: bool, exclude: bytes = b"") -> int:
        key = (members, is_start, exclude)
        got = self._keys.get(key)
        if got is not None:
            return got
        root = self._new_state(members, is_start, exclude)
        todo = [root]
        while todo:
            sid = todo.pop()
            ordered = self._members[sid]
            terms = [t for t, _ in ordered]
            table = np.stack([self.dfas[t].transitions[s] for t, s in ordered])  # [m, 256]
            cols, inverse = np.unique(table.T, axis=0, return_inverse=True)
            row = np.full(256, -1, dtype=np.int32)
            targets = np.empty(len(cols), dtype=np.int32)
            for c, col in enumerate(cols):
                nxt = frozenset((terms[k], int(col[k])) for k in range(len(terms)) if col[k] >= 0)
                if not nxt:
                    targets[c] = -1
                    continue
                k2 = (nxt, False, b"")
                tid = self._keys.get(k2)
                if tid is None:
                    tid = self._new_state(nxt, False)
                    todo.append(tid)
                targets[c] = tid
            row[:] = targets[inverse.reshape(-1)]
            if self._exclude[sid]:
                row[list(self._exclude[sid])] = -1
            self.trans[sid] = row
            if self.longest_match:
                self.follow[sid] &= row < 0
                self.accept[sid] = bool(self.follow[sid].any())
            self._name(sid)
        return root
