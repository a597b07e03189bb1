"""Bundled grammars of languages whose lexemes may touch (S-expressions, a shell-like
command language, INI/TOML-like configuration files, a small programming language),
under the default dynamic lexer with real vocabularies: constrain must accept exactly
what lark's own Earley parser accepts, token by token, with the mask checked before
every token.

Under the dynamic lexer any split of a token's bytes into lexemes counts: a run of
letters may be one symbol or several, a keyword may touch a name. The mask of such a
token is computed by one walk of the vocabulary trie in which the splits that reach the
same lexer state are merged, so these grammars compile and mask without limit errors.
"""

from __future__ import annotations

import random
import re
import zlib

import lark
import numpy as np
import pytest

import constrain
from constrain import grammars
from constrain.frontends.lark import bundled_loader, lark_to_grammar

from conftest import real_tokenizer, real_vocab
from grammar_sampling import GrammarSampler, lark_judge, literal_alphabet, mutate

LANGUAGES = ["lisp", "shell", "config", "minilang"]
VOCABS = ["qwen2", "smollm2"]

# Cases per (grammar, vocabulary) beside the examples, (sampled, mutated): sized so that
# this file takes seconds (each new state's mask walks a 49k- or 151k-token trie).
CASES = {"smollm2": (6, 16), "qwen2": (3, 8)}


@pytest.mark.parametrize("name", LANGUAGES)
def test_examples_are_accepted_by_lark(name):
    examples = grammars.examples(name)
    assert len(examples) >= 10 and len(set(examples)) == len(examples)
    parser = lark.Lark(grammars.read(name), parser="earley", lexer="dynamic_complete",
                       import_paths=[bundled_loader()])
    for example in examples:
        parser.parse(example)  # raises on rejection


@pytest.mark.parametrize("name", LANGUAGES)
def test_grammar_uses_the_dynamic_lexer(name):
    assert name in grammars.names()
    assert not constrain.compile(constrain.Lark(grammars.read(name)), real_vocab("smollm2")).grammar.longest_match


_compiled: dict = {}


def _compiled_grammar(name: str, vocab_name: str):
    key = (name, vocab_name)
    if key not in _compiled:
        _compiled[key] = constrain.compile(constrain.Lark(grammars.read(name)), real_vocab(vocab_name))
    return _compiled[key]


def _tokens(tokenizer, vocab, data: bytes, rng: random.Random) -> list[int] | None:
    """A tokenization of ``data``: the tokenizer's own (text), or greedy longest match
    (any bytes, and every other text: other splits of the same bytes); None when no
    token spells some byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and rng.random() < 0.5:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if b"".join(vocab.token_bytes(t) for t in ids) == data:  # (not for some control bytes)
            return ids
    ids = vocab.longest_match(data, max_span=32)
    return ids if b"".join(vocab.token_bytes(t) for t in ids) == data else None


def _verdict(compiled, ids: list[int]) -> bool:
    """constrain's verdict on ``ids``: every token in the mask before it (and the step
    taking it exactly when it is), then acceptance, which EOS's bit must agree with."""
    vocab = compiled.vocab
    matcher = compiled.matcher()
    for t in ids:
        words = matcher.mask_words()
        allowed = bool(words[t >> 5] >> np.uint32(t & 31) & 1)
        assert matcher.advance(t) == allowed, (t, vocab.token_bytes(t))
        if not allowed:
            return False
    words = matcher.mask_words()
    eos = vocab.eos_token_ids[0]
    accepting = matcher.is_accepting()
    assert bool(words[eos >> 5] >> np.uint32(eos & 31) & 1) == accepting
    return accepting


def _spaced(data: bytes, rng: random.Random) -> bytes:
    """``data`` with a space doubled, or one dropped, or a line break doubled."""
    spots = [i for i, b in enumerate(data) if b in b" \n"]
    if not spots:
        return data + b" "
    i = rng.choice(spots)
    if rng.random() < 0.6:
        return data[:i] + data[i : i + 1] + data[i:]
    return data[:i] + data[i + 1 :]


def _cases(name: str, vocab_name: str, rng: random.Random) -> list[bytes]:
    text = grammars.read(name)
    g = lark_to_grammar(text)
    examples = [e.encode() for e in grammars.examples(name)]
    sampler = GrammarSampler(g, max_depth=6, max_len=30, terminal_max_len=8, ignore_rate=0.3)
    alphabet = literal_alphabet(g) + b" \n"
    sampled, mutated = CASES[vocab_name]
    out = list(examples)
    out += [sampler.sample(rng) for _ in range(sampled)]
    for _ in range(mutated):
        base = rng.choice(examples)
        kind = rng.randrange(3)
        if kind == 0:
            out.append(mutate(base, rng, alphabet))
        elif kind == 1:
            out.append(_spaced(base, rng))
        else:  # a piece cut out: a prefix, or a span deleted
            i, j = sorted(rng.sample(range(len(base) + 1), 2))
            out.append(base[:i] if rng.random() < 0.3 else base[:i] + base[j:])
    return out


@pytest.mark.parametrize("vocab_name", VOCABS)
@pytest.mark.parametrize("name", LANGUAGES)
def test_engine_agrees_with_lark_on_real_tokens(name, vocab_name):
    compiled = _compiled_grammar(name, vocab_name)
    tokenizer = real_tokenizer(vocab_name)
    judge = lark_judge(grammars.read(name))
    rng = random.Random(zlib.crc32(f"{name}/{vocab_name}".encode()))
    verdicts = []
    for data in _cases(name, vocab_name, rng):
        ids = _tokens(tokenizer, compiled.vocab, data, rng)
        if ids is None:
            continue
        expected = judge(data)
        assert _verdict(compiled, ids) == expected, (data, expected)
        verdicts.append(expected)
    assert sum(verdicts) >= len(grammars.examples(name)) and not all(verdicts)


def test_touching_lexemes_split_in_every_way():
    """A run of letters may be one symbol or several; each split reaches the same lexer
    and parse state, so the work does not grow with the splits."""
    compiled = _compiled_grammar("lisp", "qwen2")
    vocab = compiled.vocab
    tokenizer = real_tokenizer("qwen2")
    engine = compiled.engine
    for text in ["(foo  bar)", "(abcdefghijklmnop qrstuvwxyz)", "(define (f x) (+ x  1))"]:
        m = compiled.matcher()
        for t in tokenizer.encode(text, add_special_tokens=False):
            m.mask_words()
            assert engine._work <= 2 * len(vocab.trie.nodes.byte)
            assert m.advance(t)
            assert len(engine.hyps(m.state)) <= 2  # the parse does not count the splits
        assert m.is_accepting()


GAME_MODES = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["name", "description", "modes"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "description": {"type": ["string", "null"], "minLength": 1},
            "modes": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        },
    },
}


def test_boundary_tokens_of_masks_along_a_document_step():
    """Along a document, every token that may close a string and go on is in the mask
    exactly when a step takes it. Masks made along the way patch walks from
    their neighbours', whose lexeme boundaries come out of the trie's order."""
    vocab = real_vocab("qwen2")
    tokenizer = real_tokenizer("qwen2")
    compiled = constrain.compile(constrain.JsonSchema(GAME_MODES), vocab, cache=False)
    engine = compiled.engine
    # tokens that close a string inside them, then go on past it
    quoted = [t for t in range(vocab.size)
              if re.search(rb'[^"]"[,}\]:]', vocab.token_bytes(t)) and not vocab.special_mask[t]]
    text = '[{"name": "Game Mode 1", "description": "A mode！", "modes": ["Single Player", "Multi"]}]'
    matcher = compiled.matcher()
    for t in tokenizer.encode(text, add_special_tokens=False):
        words = matcher.mask_words()
        for q in quoted:
            assert bool(words[q >> 5] >> np.uint32(q & 31) & 1) == (engine.step(matcher.state, q) >= 0), \
                (matcher.num_tokens, vocab.token_bytes(q))
        assert matcher.advance(t)
    assert matcher.is_accepting()
