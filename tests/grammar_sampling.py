"""Random sentences from a grammar IR, byte mutations of them, and lark as a reference judge.

Sentences come from random derivations of a :class:`constrain.grammar.ir.Grammar`, with
depth and length bounds after which the sampler takes the shortest way out. Terminals are
sampled by random walks on their byte DFAs (``compile_terminal``), which are trimmed (every
state can still reach acceptance), so every walk ends in the terminal's language.
``%ignore`` terminals are sprinkled between the others.

Sampled sentences are *likely* members of the language, not certain ones (two adjacent
terminals can fuse into something else); tests always ask a reference for the verdict.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Callable, Optional, Sequence

import numpy as np

from constrain.grammar.ir import Grammar, Terminal

__all__ = ["GrammarSampler", "mutate", "lark_judge", "literal_alphabet"]


def _compile_terminal(term: Terminal):
    from constrain.automata import compile_terminal

    return compile_terminal(term)


class _TerminalWalker:
    """Random walks over one terminal's byte DFA."""

    def __init__(self, dfa) -> None:
        self.trans = np.asarray(dfa.transitions)
        self.accepting = np.asarray(dfa.accepting, dtype=bool)
        n = self.trans.shape[0]
        # Distance (in bytes) from each state to the nearest accepting state.
        dist = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        preds: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for s in range(n):
            for b in np.nonzero(self.trans[s] >= 0)[0]:
                preds[int(self.trans[s, b])].append((s, int(b)))
        queue = deque()
        for s in np.nonzero(self.accepting)[0]:
            dist[s] = 0
            queue.append(int(s))
        while queue:
            t = queue.popleft()
            for s, _ in preds[t]:
                if dist[s] > dist[t] + 1:
                    dist[s] = dist[t] + 1
                    queue.append(s)
        self.dist = dist
        self.out = [np.nonzero(self.trans[s] >= 0)[0] for s in range(n)]
        printable = np.zeros(256, dtype=bool)
        printable[0x20:0x7F] = True
        printable[[0x09, 0x0A]] = True
        self.out_printable = [o[printable[o]] for o in self.out]

    def sample(self, rng: random.Random, stop: float = 0.35, max_len: int = 24) -> bytes:
        state, out = 0, bytearray()
        if self.trans.shape[0] == 0:
            raise ValueError("terminal with an empty language")
        while True:
            if self.accepting[state] and (len(out) >= 1 and rng.random() < stop or len(self.out[state]) == 0):
                return bytes(out)
            if len(out) >= max_len:
                if self.accepting[state]:
                    return bytes(out)
                # Head for acceptance along a shortest path.
                choices = [b for b in self.out[state] if self.dist[self.trans[state, b]] < self.dist[state]]
            else:
                choices = self.out_printable[state] if rng.random() < 0.8 else self.out[state]
                if len(choices) == 0:
                    choices = self.out[state]
            b = int(choices[rng.randrange(len(choices))])
            out.append(b)
            state = int(self.trans[state, b])


class GrammarSampler:
    """Random sentences (bytes) of ``grammar`` by bounded random derivation."""

    def __init__(
        self,
        grammar: Grammar,
        *,
        max_depth: int = 12,
        max_len: int = 120,
        ignore_rate: float = 0.15,
        terminal_max_len: int = 12,
        compile_terminal: Optional[Callable] = None,
    ) -> None:
        self.grammar = grammar
        self.max_depth = max_depth
        self.max_len = max_len
        self.ignore_rate = ignore_rate
        self.terminal_max_len = terminal_max_len
        compile_fn = compile_terminal or _compile_terminal
        used = {s for alts in grammar.rules.values() for alt in alts for s in alt if s in grammar.terminals}
        used.update(grammar.ignore)
        self.walkers = {name: _TerminalWalker(compile_fn(grammar.terminals[name])) for name in used}
        self.minlen = self._min_lengths()

    def _min_lengths(self) -> dict[str, int]:
        """Length in bytes of the shortest sentence of each symbol (unreachable: a huge number)."""
        inf = 1 << 40
        minlen = {name: inf for name in self.grammar.terminals}
        minlen.update({name: int(w.dist[0]) for name, w in self.walkers.items()})
        minlen.update({name: inf for name in self.grammar.rules})
        changed = True
        while changed:
            changed = False
            for name, alts in self.grammar.rules.items():
                best = min((self._alt_len(alt, minlen) for alt in alts), default=inf)
                if best < minlen[name]:
                    minlen[name] = best
                    changed = True
        return minlen

    @staticmethod
    def _alt_len(alt: Sequence[str], minlen: dict[str, int]) -> int:
        return min(sum(minlen[s] for s in alt), 1 << 40)

    def sample(self, rng: random.Random) -> bytes:
        """One random sentence (the derivation picks alternatives at random until the bounds bite)."""
        out: list[bytes] = []
        size = [0]
        ignore = list(self.grammar.ignore)

        def emit(term: str) -> None:
            if ignore and rng.random() < self.ignore_rate:
                piece = self.walkers[rng.choice(ignore)].sample(rng, max_len=min(4, self.terminal_max_len))
                out.append(piece)
                size[0] += len(piece)
            piece = self.walkers[term].sample(rng, max_len=self.terminal_max_len)
            out.append(piece)
            size[0] += len(piece)

        def expand(symbol: str, depth: int) -> None:
            if symbol in self.grammar.terminals:
                emit(symbol)
                return
            alts = self.grammar.rules[symbol]
            lengths = [self._alt_len(a, self.minlen) for a in alts]
            if depth >= self.max_depth or size[0] >= self.max_len:
                best = min(lengths)
                alts = [a for a, n in zip(alts, lengths) if n == best]
            else:
                alts = [a for a, n in zip(alts, lengths) if n < (1 << 40)] or alts
            alt = alts[rng.randrange(len(alts))]
            for sym in alt:
                expand(sym, depth + 1)

        expand(self.grammar.start, 0)
        if ignore and rng.random() < self.ignore_rate:
            out.append(self.walkers[rng.choice(ignore)].sample(rng, max_len=min(4, self.terminal_max_len)))
        return b"".join(out)


def literal_alphabet(grammar: Grammar) -> bytes:
    """The bytes of the grammar's string literals: mutations built from them stay on topic."""
    from constrain.grammar.ir import Lit

    seen = set()
    for term in grammar.terminals.values():
        if isinstance(term, Lit):
            text = term.text.encode("utf-8") if isinstance(term.text, str) else term.text
            seen.update(text)
    return bytes(sorted(seen))


def mutate(data: bytes, rng: random.Random, alphabet: bytes = b"", edits: int = 0) -> bytes:
    """``data`` with 1-3 (or ``edits``) random byte insertions, deletions or replacements.

    New bytes come from ``alphabet`` half of the time, otherwise from all 256 values.
    """
    buf = bytearray(data)
    for _ in range(edits or rng.randint(1, 3)):
        op = rng.randrange(3)
        if alphabet and rng.random() < 0.5:
            byte = alphabet[rng.randrange(len(alphabet))]
        else:
            byte = rng.randrange(256) if rng.random() < 0.3 else rng.randrange(0x20, 0x7F)
        if op == 0 or not buf:
            buf.insert(rng.randint(0, len(buf)), byte)
        elif op == 1:
            del buf[rng.randrange(len(buf))]
        else:
            buf[rng.randrange(len(buf))] = byte
    return bytes(buf)


def lark_judge(grammar_text: str, *, start: str = "start", import_paths: Sequence = ()) -> Callable[[bytes], bool]:
    """A reference membership test: lark's Earley parser with ``lexer='dynamic_complete'``.

    Bytes that are not UTF-8 are never members (lark parses text). Note that lark matches
    each terminal with Python's ``re.match`` and then its prefixes, so for a regex whose
    first match is not its longest (``/a|ab/``) lark can miss members; the bundled grammars
    order their alternations longest first.
    """
    import lark
    from lark.exceptions import LarkError

    from constrain.frontends.lark import bundled_loader

    parser = lark.Lark(
        grammar_text,
        parser="earley",
        lexer="dynamic_complete",
        start=start,
        import_paths=list(import_paths) + [bundled_loader()],
        ambiguity="forest",
    )

    def judge(data: bytes) -> bool:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        try:
            parser.parse(text)
        except LarkError:
            return False
        return True

    return judge


def byte_accepts(compiled, data: bytes) -> bool:
    """constrain's verdict, one byte token at a time, then end of sequence."""
    matcher = compiled.matcher()
    for byte in data:
        if not matcher.advance(byte):
            return False
    return matcher.is_accepting()


def check_agreement(compiled, sampler: "GrammarSampler", judge, rng: random.Random, rounds: int, alphabet: bytes):
    """Sample ``rounds`` sentences and one mutation of each; assert constrain's verdict on
    every one equals ``judge``'s. Returns (positives, negatives)."""
    positives = negatives = 0
    for _ in range(rounds):
        sentence = sampler.sample(rng)
        for data in (sentence, mutate(sentence, rng, alphabet)):
            expected = judge(data)
            assert byte_accepts(compiled, data) == expected, (data, expected)
            positives += expected
            negatives += not expected
    return positives, negatives
