"""CompiledGrammar (immutable, shared) and Matcher (one per sequence)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .bitmask import copy_rows, ids_from_words
from .compiler import Plan, assemble, build
from .masking.budget import BudgetPlanner
from .masking.unique import START as _TRACK_START
from .masking.unique import UniqueChecker, fresh_completion
from .errors import MatcherError, UnsatisfiableError
from .grammar.ir import Grammar
from .limits import DEFAULT_LIMITS, Limits
from .vocabulary import Vocabulary

__all__ = ["CompiledGrammar", "Matcher"]

_TERMINATED = -2
_REFUSED = -1  # as MaskEngine.step refuses
# Under a budget with uniqueItems arrays of items other than plain strings: within this
# many tokens of where the reserve binds, the tokens that begin an item again are checked
# to leave a way to make it new that fits (UniqueChecker.fresh_only).
_NEAR_BUDGET = 16


class CompiledGrammar:
    """A grammar compiled against one vocabulary: lexer, parser and memoized token masks.

    Holds what :func:`constrain.compiler.build` makes (and raises what it raises). Its
    attributes are set once, at construction (the budget planner on first use), and it
    is safe to share between threads and requests; create a :class:`Matcher` per
    sequence with :meth:`matcher`.
    """

    __slots__ = ("_grammar", "_source", "vocab", "report", "name", "terminal_names", "parser", "lexer", "engine",
                 "_planner", "_unique")

    def __init__(self, grammar: Grammar, vocab: Vocabulary, *, report: Any = None, name: str = "",
                 limits: Limits = DEFAULT_LIMITS):
        self._set(build(grammar, vocab, limits), grammar, None, vocab, report, name)

    @classmethod
    def from_plan(cls, plan: Plan, vocab: Vocabulary, *, source: Any, report: Any = None, name: str = "",
                  limits: Limits = DEFAULT_LIMITS, grammar: Grammar | None = None) -> "CompiledGrammar":
        """The grammar of a compile plan (see :func:`constrain.compiler.plan`). ``source``
        (spec, limits): what :attr:`grammar` is made from when ``grammar`` is not given
        and someone asks for it."""
        self = cls.__new__(cls)
        self._set(assemble(plan, vocab, limits), grammar, source, vocab, report, name)
        return self

    def _set(self, runtime, grammar, source, vocab, report, name) -> None:
        self.terminal_names, self.parser, self.lexer, self.engine = runtime
        self._grammar = grammar
        self._source = source
        self.vocab = vocab
        self.report = report
        self.name = name
        self._planner: BudgetPlanner | None = None
        self._unique: UniqueChecker | None | bool = False  # False: not looked for yet

    @property
    def grammar(self) -> Grammar:
        """The grammar IR this was compiled from: made again from the spec on first use
        when compiled from one (not kept by the compile: nothing that masks reads it)."""
        if self._grammar is None:
            from .specs import to_grammar

            spec, limits = self._source
            self._grammar = to_grammar(spec, limits)[0]
        return self._grammar

    def matcher(self, max_tokens: int | None = None) -> "Matcher":
        """A fresh matcher at the start of the language.

        With ``max_tokens`` (EOS included), masks keep a way to finish the document
        within the tokens left; raises :class:`UnsatisfiableError` when even the
        shortest document needs more.
        """
        return Matcher(self, max_tokens=max_tokens)

    @property
    def planner(self) -> BudgetPlanner:
        """The token-budget planner, made on first use."""
        if self._planner is None:
            self._planner = BudgetPlanner(self.engine)
        return self._planner

    @property
    def unique_checker(self) -> UniqueChecker | None:
        """The check of the ``uniqueItems`` arrays the grammar leaves to the matcher
        (see :mod:`constrain.masking.unique`), or None when there are none."""
        if self._unique is False:
            self._unique = UniqueChecker.of(self.engine, self.terminal_names)
        return self._unique  # type: ignore[return-value]

    def min_tokens(self) -> int:
        """Tokens (EOS excluded) of the shortest document found, in its fewest-token spelling."""
        return self.planner.min_tokens(self.engine.initial)

    def __repr__(self) -> str:
        # (never the grammar made again from the spec for a repr, nor an error on an
        # instance still being built)
        name = getattr(self, "name", "")
        if not name:
            grammar = getattr(self, "_grammar", None)
            name = repr(grammar.start) if grammar is not None else "?"
        terminals = len(getattr(self, "terminal_names", ()))
        vocab = getattr(self, "vocab", None)
        return f"CompiledGrammar({name}, terminals={terminals}, vocab={vocab.name if vocab else None!r})"


class Matcher:
    """The cursor of one sequence through a :class:`CompiledGrammar`.

    ``advance`` a token at a time; ``fill_bitmask`` writes which tokens may come next
    (EOS exactly when the text so far is in the language). ``rollback`` and ``fork``
    are O(1) per token.
    """

    __slots__ = ("_grammar", "_engine", "_stack", "max_tokens", "_unique", "_tracks", "_commits")

    def __init__(self, grammar: CompiledGrammar, max_tokens: int | None = None):
        self._grammar = grammar
        self._engine = grammar.engine
        self._stack: list[int] = [grammar.engine.initial]
        self.max_tokens = max_tokens
        # uniqueItems checked here: the JSON text's track after each token (see
        # masking.unique), beside the grammar state
        self._unique = grammar.unique_checker
        self._tracks: list | None = None if self._unique is None else [_TRACK_START]
        # Under a budget with uniqueItems checked here: per position, a completion checked
        # to repeat no item and to fit the tokens left, with its spelling (None: not made
        # yet). See masking.unique, "token budgets".
        self._commits: list | None = None
        if max_tokens is not None and self._unique is not None:
            self._commits = [None]
        if max_tokens is not None:
            need = grammar.planner.min_tokens(grammar.engine.initial) + 1
            if need > max_tokens:
                raise UnsatisfiableError(
                    f"the shortest document of this spec needs {need} tokens (EOS included); "
                    f"the budget is {max_tokens}"
                )
            if self._commits is not None and self._commit(max_tokens - 1) is None:
                raise UnsatisfiableError(
                    f"no document of this spec with unique items was found within the budget of {max_tokens} tokens"
                )

    @property
    def grammar(self) -> CompiledGrammar:
        return self._grammar

    @property
    def state(self) -> int:
        """An integer naming the current state; equal states have equal futures."""
        return self._stack[-1]

    @property
    def num_tokens(self) -> int:
        """Tokens advanced so far (EOS included)."""
        return len(self._stack) - 1

    def is_terminated(self) -> bool:
        """True after EOS was accepted."""
        return self._stack[-1] == _TERMINATED

    def is_accepting(self) -> bool:
        """True when the text so far is a complete member of the language."""
        s = self._stack[-1]
        return s != _TERMINATED and self._engine.accepting(s)

    def is_token_allowed(self, token_id: int) -> bool:
        """Whether ``token_id`` may come next, the token budget aside (EOS exactly when
        the text so far is complete)."""
        nxt = self._next_state(token_id, None)
        if nxt == _REFUSED:
            return False
        return self._tracks is None or self._track_after(token_id, nxt) is not None

    def advance(self, token_id: int) -> bool:
        """Consume ``token_id``. A disallowed token returns False and changes nothing."""
        nxt = self._next_state(int(token_id), self.max_tokens)
        if nxt == _REFUSED:
            return False
        if self._tracks is not None:
            track = self._track_after(int(token_id), nxt)
            if track is None:
                return False
            self._tracks.append(track)
        if self._commits is not None:
            self._commits.append(_carried(self._commits[-1], int(token_id), self._grammar.vocab))
        self._stack.append(nxt)
        return True

    def _track_after(self, token_id: int, nxt: int):
        """The uniqueItems track after ``token_id`` (None: it ends a repeated item)."""
        track = self._tracks[-1]  # type: ignore[index]
        if nxt == _TERMINATED:
            return track
        return self._unique.feed(self._stack[-1], track, self._grammar.vocab.token_bytes(token_id))  # type: ignore[union-attr]

    def _next_state(self, token_id: int, max_tokens: int | None) -> int:
        """The state after ``token_id`` (``_TERMINATED`` after EOS), or ``_REFUSED``;
        with ``max_tokens``, a token the budget's mask leaves out is refused too. (The
        uniqueItems check is the caller's.)"""
        s = self._stack[-1]
        if s == _TERMINATED:
            return _REFUSED
        vocab = self._grammar.vocab
        if token_id in vocab.eos_token_ids:
            if not self._engine.accepting(s):
                return _REFUSED
            if max_tokens is not None and len(self._stack) > max_tokens:
                return _REFUSED
            return _TERMINATED
        if not 0 <= token_id < vocab.size or vocab.special_mask[token_id]:
            return _REFUSED
        if max_tokens is not None and not _bit(self.mask_words(), token_id):
            return _REFUSED
        return self._engine.step(s, token_id)

    def advance_bytes(self, data: bytes) -> bool:
        """Consume raw bytes as one step (e.g. a forced continuation). False changes nothing."""
        s = self._stack[-1]
        if s == _TERMINATED:
            return False
        nxt = self._engine.step_bytes(s, data)
        if nxt < 0:
            return False
        if self._tracks is not None:
            track = self._unique.feed(s, self._tracks[-1], data)  # type: ignore[union-attr]
            if track is None:
                return False
            self._tracks.append(track)
        if self._commits is not None:
            self._commits.append(None)
        self._stack.append(nxt)
        return True

    def rollback(self, num_tokens: int = 1) -> None:
        """Undo the last ``num_tokens`` advances (EOS included)."""
        if num_tokens < 0 or num_tokens > len(self._stack) - 1:
            raise MatcherError(f"cannot roll back {num_tokens} tokens: only {len(self._stack) - 1} were advanced")
        if num_tokens:
            del self._stack[-num_tokens:]
            if self._tracks is not None:
                del self._tracks[-num_tokens:]
            if self._commits is not None:
                del self._commits[-num_tokens:]

    def reset(self) -> None:
        del self._stack[1:]
        if self._tracks is not None:
            del self._tracks[1:]
        if self._commits is not None:
            del self._commits[1:]

    def fork(self) -> "Matcher":
        """An independent copy at the same position."""
        m = Matcher.__new__(Matcher)
        m._grammar = self._grammar
        m._engine = self._engine
        m._stack = list(self._stack)
        m.max_tokens = self.max_tokens
        m._unique = self._unique
        m._tracks = None if self._tracks is None else list(self._tracks)
        m._commits = None if self._commits is None else list(self._commits)
        return m

    def mask_words(self) -> np.ndarray:
        """The next-token bitmask as read-only uint32 words (all zero once terminated)."""
        s = self._stack[-1]
        if s == _TERMINATED:
            return np.zeros(self._grammar.vocab.bitmask_words, dtype=np.uint32)
        if self.max_tokens is not None:
            left = self.max_tokens - (len(self._stack) - 1)  # this token included
            limit = left - 2  # tokens after this one, EOS excluded
            planner = self._grammar.planner
            if limit < 0:
                if left == 1 and self._engine.accepting(s):
                    return planner.mask(s, -1)  # EOS only
                return np.zeros(self._grammar.vocab.bitmask_words, dtype=np.uint32)
            if self._commits is not None:
                return self._unique_budget_mask(s, left, limit)
            if planner.max_cost_after(s) > limit:
                return planner.mask(s, limit)
        if self._tracks is not None:
            return self._unique.filter(s, self._tracks[-1], self._engine.mask(s))  # type: ignore[union-attr]
        return self._engine.mask(s)

    def _unique_budget_mask(self, s: int, left: int, limit: int) -> np.ndarray:
        """The mask under a budget with uniqueItems checked here: the tokens after which
        the planner's completion fits :func:`budget_slack` tokens early, and the first
        token of this position's commit; less the tokens that end a repeated item.
        Where some checked array's items are not strings of any content, the reserve is
        not known to be enough: once it binds, only the commit (and EOS, when the text
        is complete) is allowed."""
        track = self._tracks[-1]  # type: ignore[index]
        unique = self._unique
        planner = self._grammar.planner
        slack = unique.reserve(track)  # type: ignore[union-attr]
        cost = planner.max_cost_after(s)
        if cost + slack <= limit:
            words = self._engine.mask(s)
            if not unique.keeps_budgets and limit < cost + slack + _NEAR_BUDGET:  # type: ignore[union-attr]
                # near the end of the budget, a token that begins an item again may leave
                # only long ways to make it new: those found to have none that fits go
                words = unique.fresh_only(s, track, words, left - 2, planner)  # type: ignore[union-attr]
        else:
            if limit >= slack and unique.keeps_budgets:  # type: ignore[union-attr]
                words = planner.mask(s, limit - slack).copy()
            else:
                words = planner.mask(s, -1).copy()  # EOS when complete, else nothing
            _, ids = self._commit(left - 1)  # type: ignore[misc]
            if ids:
                words[ids[0] >> 5] |= np.uint32(1 << (ids[0] & 31))
            words.setflags(write=False)
        return unique.filter(s, track, words)  # type: ignore[union-attr]

    def _commit(self, cap: int) -> tuple[bytes, list[int]] | None:
        """This position's commit: a completion that repeats no item, in at most ``cap``
        tokens (made on first use). Raises MatcherError should none be found where the
        budget promised one."""
        got = self._commits[-1]  # type: ignore[index]
        if got is None:
            s = self._stack[-1]
            planner = self._grammar.planner
            got = fresh_completion(self._unique, s, self._tracks[-1], planner.plan(s)[1], cap, planner)  # type: ignore[arg-type, index]
            if got is None:
                if len(self._stack) == 1:
                    return None
                raise MatcherError(
                    f"uniqueItems under a token budget: no completion with new items fits the {cap} tokens left"
                )
            self._commits[-1] = got  # type: ignore[index]
        return got

    def mask_if_ready(self) -> np.ndarray | None:
        """:meth:`mask_words` when it is already memoized (a dictionary lookup), else None:
        a caller that can compute it later, off its critical path, asks this first."""
        s = self._stack[-1]
        if s == _TERMINATED or self._tracks is not None:
            return None
        if self.max_tokens is not None:
            planner = self._grammar.planner
            left = self.max_tokens - (len(self._stack) - 1)
            if left < 2 or not planner.has_groups(s):
                return None
            if planner.max_cost_after(s) > left - 2:
                return planner.cached_mask(s, left - 2)
        return self._engine.cached_mask(s)

    def fill_bitmask(self, bitmask: Any, index: int = 0) -> None:
        """Write the next-token mask into row ``index`` of an int32 ``[batch, ceil(V/32)]``
        bitmask (numpy array or CPU torch tensor). Raises ValueError on a bad shape or dtype."""
        words = self.mask_words()
        arr = _bitmask_array(bitmask, words.shape[0])
        if not 0 <= index < arr.shape[0]:
            raise ValueError(f"bitmask row {index} out of range for batch {arr.shape[0]}")
        arr[index, : words.shape[0]] = words.view(np.int32)

    def allowed_token_ids(self) -> np.ndarray:
        return ids_from_words(self.mask_words(), self._grammar.vocab.model_vocab_size)

    def forced_bytes(self, limit: int = 4096) -> bytes:
        """The bytes the grammar allows in exactly one way from here (stops where a choice
        or the end of the language is reached)."""
        engine = self._engine
        s = self._stack[-1]
        if s == _TERMINATED:
            return b""
        out = bytearray()
        while len(out) < limit and not engine.accepting(s):
            nxt = engine.viable_bytes(s)
            if len(nxt) != 1:
                break
            out.append(nxt[0])
            s = engine.step_bytes(s, bytes(nxt))
            if s < 0:  # cannot happen for a reduced grammar; stop rather than loop
                break
        if self._tracks is not None:
            # A forced run never ends a string item (a plain string goes on in many ways);
            # cut it before a repeated item all the same, should one ever be forced.
            while out and self._unique.feed(self._stack[-1], self._tracks[-1], bytes(out)) is None:  # type: ignore[union-attr]
                out.pop()
        return bytes(out)

    def forced_tokens(self) -> list[int]:
        """A tokenization of :meth:`forced_bytes` by longest match, without its last token
        when a longer token could run past the forced text (the model may split the
        boundary differently)."""
        data = self.forced_bytes()
        vocab = self._grammar.vocab
        ids = vocab.longest_match(data)
        if ids and sum(len(vocab.token_bytes(t)) for t in ids) == len(data):
            if vocab.extends_token(vocab.token_bytes(ids[-1])):
                ids.pop()  # a longer token may merge across the boundary
        return ids


def _carried(commit: tuple[bytes, list[int]] | None, token_id: int, vocab: Vocabulary):
    """The commit after ``token_id``: the rest of ``commit`` when the token is its first."""
    if commit is None or not commit[1] or commit[1][0] != token_id:
        return None
    return commit[0][len(vocab.token_bytes(token_id)):], commit[1][1:]


def _bit(words: np.ndarray, token_id: int) -> bool:
    return bool((int(words[token_id >> 5]) >> (token_id & 31)) & 1)


def _bitmask_array(bitmask: Any, n_words: int) -> np.ndarray:
    """The int32 ``[batch, >= n_words]`` numpy array behind ``bitmask`` (checked)."""
    if isinstance(bitmask, np.ndarray):
        arr = bitmask
    else:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - torch is a dependency
            raise ValueError("bitmask must be a numpy array or a torch tensor") from exc
        if not isinstance(bitmask, torch.Tensor):
            raise ValueError(f"bitmask must be a numpy array or a torch tensor, not {type(bitmask).__name__}")
        if bitmask.device.type != "cpu":
            raise ValueError("fill_bitmask writes CPU tensors; copy the result to the device afterwards")
        arr = bitmask.numpy()
    if arr.dtype != np.int32 or arr.ndim != 2:
        raise ValueError(f"bitmask must be int32 of shape [batch, {n_words}], got {arr.dtype} {arr.shape}")
    if arr.shape[1] < n_words:
        raise ValueError(f"bitmask rows have {arr.shape[1]} words; this vocabulary needs {n_words}")
    return arr


def fill_bitmasks(matchers: Sequence[Matcher | None], bitmask: Any) -> None:
    """Fill row ``i`` of ``bitmask`` for ``matchers[i]`` (None rows are left alone).

    Each matcher's mask comes from its grammar's memo (computed there on a first visit);
    the rows are then written by one numba call, each distinct mask read once (rows in
    the same state share it). Matchers over vocabularies of different sizes take one
    call per size."""
    groups: dict[int, tuple[list[int], list[int], list[np.ndarray], dict[int, int]]] = {}
    for i, m in enumerate(matchers):
        if m is None:
            continue
        words = m.mask_words()
        rows, which, sources, index = groups.setdefault(words.shape[0], ([], [], [], {}))
        k = index.get(id(words))
        if k is None:
            k = index[id(words)] = len(sources)
            sources.append(words)
        rows.append(i)
        which.append(k)
    for n_words, (rows, which, sources, _) in groups.items():
        arr = _bitmask_array(bitmask, n_words)
        if arr.shape[0] < len(matchers):
            raise ValueError(f"bitmask has {arr.shape[0]} rows for {len(matchers)} matchers")
        copy_rows(arr, np.asarray(rows, dtype=np.int64), np.asarray(which, dtype=np.int64), np.stack(sources).view(np.int32))
