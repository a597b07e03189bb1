"""Token budgets: keep the shortest way to finish the document inside the tokens left.

For a hypothesis (parse state, lexer state) we build the shortest byte string that
completes it (shortest suffix of each live terminal's DFA, then a Dijkstra search over
parse states with terminals weighted by their shortest member) and count the tokens
of its fewest-token spelling: an upper bound on the tokens really needed, since the
matcher accepts any tokenization of viable bytes. (Spelt so, the rest of the string
after its first token needs one token fewer: the plan stays the plan.) A token is allowed
under a budget only when some hypothesis it leads to can still finish in time, so a
generation stopped by ``max_new_tokens`` still ends in the language.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .masks import MaskEngine
from .parser import DEAD
from ..bitmask import set_bits

__all__ = ["BudgetPlanner"]

_INF = 1 << 30
# Preferred filler bytes when several shortest suffixes exist: letters, digits, then the rest.
_PREF = np.full(256, 200, dtype=np.int64)
for _rank, _b in enumerate(b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_ "):
    _PREF[_b] = _rank


class BudgetPlanner:
    """Shortest completions and budget masks for the hypothesis sets of one mask engine."""

    def __init__(self, engine: MaskEngine, *, group_cache: int = 256):
        self.engine = engine
        self.parser = engine.parser
        self.lexer = engine.lexer
        self.vocab = engine.vocab
        self._lock = threading.RLock()
        self._suffix_tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._parser_completion: dict[int, bytes | None] = {}
        self._hyp_plans: dict[tuple[int, int], tuple[int, bytes | None]] = {}
        self._groups: OrderedDict[int, list[tuple[int, np.ndarray]]] = OrderedDict()
        self._group_cap = group_cache
        self._yields: list[bytes | None] | None = None
        self._term_yield: list[bytes] = []
        self._rest_memo: dict[int, bytes | None] = {}
        self._after_memo: dict[int, dict[int, bytes]] = {}
        self._masks: dict[tuple[int, int], np.ndarray] = {}
        self._plans: dict[int, tuple[int, bytes | None]] = {}
        self._plan_parts: dict[int, int] = {}  # merged hypotheses read into _plans[hid]

    # ------------------------------------------------------------------ shortest strings

    def _suffix_table(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        got = self._suffix_tables.get(t)
        if got is None:
            dfa = self.lexer.dfas[t]
            trans = dfa.transitions
            dist = np.where(dfa.accepting, 0, _INF).astype(np.int64)
            while True:
                via = np.where(trans >= 0, dist[np.maximum(trans, 0)] + 1, _INF)
                best = np.minimum(dist, via.min(axis=1))
                if np.array_equal(best, dist):
                    break
                dist = best
            via = np.where(trans >= 0, dist[np.maximum(trans, 0)] + 1, _INF)
            choice = np.argmin(via * 512 + _PREF[None, :], axis=1).astype(np.int64)
            choice[dfa.accepting] = -1
            got = (dist, choice)
            self._suffix_tables[t] = got
        return got

    def terminal_suffix(self, t: int, state: int) -> bytes:
        dist, choice = self._suffix_table(t)
        trans = self.lexer.dfas[t].transitions
        out = bytearray()
        s = state
        while dist[s] > 0:
            b = int(choice[s])
            out.append(b)
            s = int(trans[s, b])
        return bytes(out)

    # The shortest completion of a parse state is read off its Earley items: finish the
    # rest of an item's rule with each symbol's shortest yield, then whatever completes
    # the rule's left-hand side at the item's origin set, recursively (memoized per
    # (set, nonterminal); items predicted in the same set are relaxed to a fixpoint).

    def _spell(self, dr: int, yields: list[bytes | None]) -> bytes | None:
        """The rest of dotted rule ``dr`` spelled with each symbol's shortest yield."""
        parser = self.parser
        n_nt, ns = parser.n_nt, parser.next_symbols
        parts = []
        while ns[dr] >= 0:
            x = ns[dr]
            y = self._term_yield[x - n_nt] if x >= n_nt else yields[x]
            if y is None:
                return None
            parts.append(y)
            dr += 1
        return b"".join(parts)

    def _symbol_yields(self) -> list[bytes | None]:
        """Shortest string each nonterminal derives (a fixpoint over the rules)."""
        if self._yields is not None:
            return self._yields
        parser = self.parser
        self._term_yield = [self.terminal_suffix(t, self.lexer.dfas[t].start) for t in range(parser.n_terminals)]
        best: list[bytes | None] = [None] * parser.n_nt
        changed = True
        while changed:
            changed = False
            for a in range(parser.n_nt):
                for dr in parser.alternatives(a):
                    cand = self._spell(dr, best)
                    if cand is not None and (best[a] is None or len(cand) < len(best[a])):
                        best[a] = cand
                        changed = True
        self._yields = best
        return best

    def _rest(self, dr: int) -> bytes | None:
        if dr not in self._rest_memo:
            self._rest_memo[dr] = self._spell(dr, self._symbol_yields())
        return self._rest_memo[dr]

    def _finish(self, rest: bytes | None, dr: int, org: int, here: dict[int, bytes]) -> bytes | None:
        """``rest`` then what completes the rule of item (``dr``, ``org``) at its origin;
        ``here`` answers for items predicted in the set being read (origin HERE)."""
        if rest is None:
            return None
        heads = self.parser.rule_heads
        b = heads[dr]
        if b == heads[0]:  # the augmented start rule: done
            return rest
        tail = self._after(org - 1).get(b) if org else here.get(b)
        return None if tail is None else rest + tail

    def _after(self, k: int) -> dict[int, bytes]:
        """For set ``k``: nonterminal A -> shortest bytes that finish the document once an
        A that started at set ``k`` is complete."""
        got = self._after_memo.get(k)
        if got is not None:
            return got
        parser = self.parser
        ns, n_nt = parser.next_symbols, parser.n_nt
        waiting = []
        for it in parser.items(k):
            dr, org = parser.item_parts(it)
            a = ns[dr]
            if 0 <= a < n_nt:
                waiting.append((a, dr, org))
        best: dict[int, bytes] = {}
        changed = True
        while changed:
            changed = False
            for a, dr, org in waiting:
                cand = self._finish(self._rest(dr + 1), dr, org, best)
                if cand is not None and (a not in best or len(cand) < len(best[a])):
                    best[a] = cand
                    changed = True
        self._after_memo[k] = best
        return best

    def parser_completion(self, p: int) -> bytes | None:
        """Shortest bytes from a lexeme boundary in parse state ``p`` to acceptance."""
        if p in self._parser_completion:
            return self._parser_completion[p]
        here = self._after(p)
        result: bytes | None = None
        for it in self.parser.items(p):
            dr, org = self.parser.item_parts(it)
            cand = self._finish(self._rest(dr), dr, org, here)
            if cand is not None and (result is None or len(cand) < len(result)):
                result = cand
        self._parser_completion[p] = result
        return result

    def _completions(self, p: int, c: int) -> list[bytes]:
        """Completions of hypothesis (p, c): the parser's from a lexeme boundary, and each
        live terminal's shortest suffix followed by the parser's after that terminal."""
        lexer = self.lexer
        candidates: list[bytes] = []
        if c < 0 or lexer.is_lexeme_start(c):
            done = self.parser_completion(p)
            if done is not None:
                candidates.append(done)
        if c >= 0:
            for t, s in lexer.members(c):
                suffix = self.terminal_suffix(t, s)
                p2 = p if t in lexer.ignore else self.parser.advance(p, t)
                if p2 == DEAD:
                    continue
                rest = self.parser_completion(p2)
                if rest is not None:
                    candidates.append(suffix + rest)
        return candidates

    # ------------------------------------------------------------------ token counts

    def _count(self, data: bytes) -> int:
        """Tokens of the fewest-token spelling of ``data`` (``_INF`` when no tokens spell
        it: nothing can be promised)."""
        ids = self.vocab.fewest_tokens(data, max_span=24)
        return _INF if ids is None else len(ids)

    def hyp_plan(self, p: int, c: int) -> tuple[int, bytes | None]:
        """(tokens, bytes): the completion of hypothesis (p, c) with the fewest tokens
        (then bytes) in its fewest-token spelling, EOS excluded; (huge, None) if none."""
        key = (p, c)
        got = self._hyp_plans.get(key)
        if got is None:
            n, _, _, data = min(((self._count(d), len(d), i, d) for i, d in enumerate(self._completions(p, c))),
                                default=(_INF, 0, 0, None))
            got = self._hyp_plans[key] = (n, data)
        return got

    def hyp_tokens(self, p: int, c: int) -> int:
        """Upper bound on the tokens needed to finish hypothesis (p, c), EOS excluded."""
        return self.hyp_plan(p, c)[0]

    def plan(self, hid: int) -> tuple[int, bytes | None]:
        """(tokens, bytes): the fewest tokens known to finish from hypothesis set ``hid``
        (EOS excluded) and bytes whose fewest-token spelling takes that many.

        Estimates made afresh in each state can disagree: the shortest completion of the
        state after a token may tokenize into more tokens than the rest of the one
        before. So a state reached by the first token of a plan inherits the rest of that
        plan (:meth:`_compute_mask`), and a plan never gets longer along its own path:
        under any budget that admitted a state, some token (or EOS) stays allowed.

        Hypotheses the engine merged into those of ``hid`` (:meth:`MaskEngine.parts`)
        count with their own plans: the costs of tokens (:meth:`_token_groups`) are read
        off them, and a merged parse state's shortest completion may take more tokens."""
        got = self._plans.get(hid)
        parts = self.engine.parts(hid)
        if got is None:
            got = min((self.hyp_plan(p, c) for p, c in self.engine.hyps(hid)), key=lambda plan: plan[0],
                      default=(_INF, None))
        elif self._plan_parts.get(hid, 0) == len(parts):
            return got
        if parts:
            got = min([got] + [self.hyp_plan(p, c) for p, c in parts], key=lambda plan: plan[0])
            self._plan_parts[hid] = len(parts)
        self._plans[hid] = got
        return got

    def min_tokens(self, hid: int) -> int:
        """Upper bound on the tokens needed to finish from hypothesis set ``hid``."""
        return self.plan(hid)[0]

    def _inherit(self, hid: int, n: int, data: bytes) -> None:
        if n < self.plan(hid)[0]:
            self._plans[hid] = (n, data)
            for key in [k for k in self._masks if k[0] == hid]:
                del self._masks[key]

    # ------------------------------------------------------------------ budget masks

    def _token_groups(self, hid: int) -> list[tuple[int, np.ndarray]]:
        """Allowed tokens grouped by the cost of the cheapest hypothesis they reach."""
        got = self._groups.get(hid)
        if got is not None:
            self._groups.move_to_end(hid)
            return got
        best = self.engine.token_costs(hid, self.hyp_tokens)
        groups = []
        finite = best < _INF
        for cost in np.unique(best[finite]).tolist():
            groups.append((int(cost), self.vocab.trie_ids[np.nonzero(best == cost)[0]]))
        self._groups[hid] = groups
        if len(self._groups) > self._group_cap:
            self._groups.popitem(last=False)
        return groups

    def has_groups(self, hid: int) -> bool:
        """Whether the token costs after ``hid`` are already known."""
        return hid in self._groups

    def cached_mask(self, hid: int, limit: int) -> np.ndarray | None:
        return self._masks.get((hid, limit))

    def max_cost_after(self, hid: int) -> int:
        groups = self._token_groups(hid)
        return max((c for c, _ in groups), default=0)

    def mask(self, hid: int, limit: int) -> np.ndarray:
        """Words of the tokens after which some completion needs at most ``limit`` tokens
        (read-only; memoized per (state, limit) in a small LRU)."""
        key = (hid, limit)
        got = self._masks.get(key)
        if got is not None:
            return got
        with self._lock:
            words = self._compute_mask(hid, limit)
            words.setflags(write=False)
            self._masks[key] = words
            if len(self._masks) > 64:
                self._masks.pop(next(iter(self._masks)))
            return words

    def _compute_mask(self, hid: int, limit: int) -> np.ndarray:
        words = np.zeros(self.engine.n_words, dtype=np.uint32)
        for cost, ids in self._token_groups(hid):
            if cost <= limit:
                set_bits(words, ids.astype(np.int64))
        n, data = self.plan(hid)
        if data and n - 1 <= limit:
            # The plan's next token, whatever the estimate of the state it leads to.
            head = self.vocab.fewest_tokens(data, max_span=24)[0]  # (the rest then needs n - 2)
            nxt = self.engine.step(hid, head)
            if nxt >= 0:
                set_bits(words, np.asarray([head], dtype=np.int64))
                self._inherit(nxt, n - 1, data[len(self.vocab.token_bytes(head)):])
        if self.engine.accepting(hid) and self.vocab.eos_token_ids:
            set_bits(words, np.asarray(self.vocab.eos_token_ids, dtype=np.int64))
        return words
