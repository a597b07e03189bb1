"""Regexes at the token level with real tokenizers: every matching string's tokenization
is accepted token by token (each token inside the mask), nothing else ends accepting."""

import random
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain import Regex, compile
from conftest import real_tokenizer, real_vocab

REALISTIC = {
    "email": r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}",
    "date": r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])",
    "datetime": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})",
    "uuid": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "ipv4": r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)",
    "phone": r"\+?1?[ -]?\(?\d{3}\)?[ -]?\d{3}[ -]?\d{4}",
    "url": r"https?://[a-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~%-]*)*(\?[A-Za-z0-9=&_%-]*)?",
    "quoted": r'"[^"]{0,500}"',
    "nested": r"((ab|cd){1,3}-){2,4}[xyz]{0,2}",
    "words": "(" + "|".join(f"w{i:03d}x" for i in range(1000)) + ")",
}

SAMPLES = {
    "email": ["john.doe@example.com", "a_b+c@x.io", "bad@", "@bad.com", "x@y.z"],
    "date": ["2024-02-29", "1999-12-31", "2024-13-01", "2024-1-01"],
    "datetime": ["2024-02-29T12:30:59Z", "2024-02-29T12:30:59.123+05:30", "2024-02-29 12:30:59Z"],
    "uuid": ["550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-44665544000"],
    "ipv4": ["192.168.0.1", "255.255.255.255", "256.1.1.1", "1.2.3"],
    "phone": ["+1 (555) 123-4567", "555-123-4567", "5551234567", "55-123-4567"],
    "url": ["https://example.com/a/b?q=1", "http://x.org:8080/", "ftp://x.org"],
    "quoted": ['"hello world"', '"' + "x" * 500 + '"', '"' + "x" * 501 + '"', '"a"b"'],
    "nested": ["ab-cd-xy", "abcdab-cd-", "ab-", "ab-cd-xyzz"],
    "words": ["w000x", "w999x", "w1000x", "w12x"],
}


def _walk(grammar, ids):
    """Advance token by token checking the mask agrees; return accepted-and-accepting."""
    m = grammar.matcher()
    for t in ids:
        words = m.mask_words()
        in_mask = bool((int(words[t >> 5]) >> (t & 31)) & 1)
        ok = m.advance(t)
        assert in_mask == ok, f"mask says {in_mask}, advance says {ok} for token {t}"
        if not ok:
            return False
    return m.is_accepting()


@pytest.mark.parametrize("tok_name", ["qwen2", "smollm2", "mistral_sp"])
def test_realistic_patterns(tok_name):
    tok, vocab = real_tokenizer(tok_name), real_vocab(tok_name)
    for name, pattern in REALISTIC.items():
        g = compile(Regex(pattern), vocab)
        for text in SAMPLES[name]:
            ids = tok.encode(text, add_special_tokens=False)
            if vocab.decode_bytes(ids) != text.encode():
                continue  # a SentencePiece prefix space: not this text
            want = re.fullmatch(pattern, text) is not None
            assert _walk(g, ids) == want, (tok_name, name, text)


def _random_walk(dfa, rng, max_len=40):
    """A random member of the DFA's language (bytes), or None."""
    s, out = 0, bytearray()
    for _ in range(max_len):
        if dfa.accepting[s] and rng.random() < 0.3:
            return bytes(out)
        live = np.nonzero(dfa.transitions[s] >= 0)[0]
        if not len(live):
            break
        b = int(rng.choice(live.tolist()))
        out.append(b)
        s = int(dfa.transitions[s, b])
    return bytes(out) if dfa.accepting[s] else None


ATOMS = ["a", "b", "ab", "[a-c]", "[^a]", r"\d", "x", "é", "日", ".", r"\s", "[α-ω]", "🎉", " "]


@st.composite
def small_regex(draw, depth=0):
    kind = draw(st.integers(0, 5 if depth < 3 else 0))
    if kind == 0:
        return draw(st.sampled_from(ATOMS))
    if kind == 1:
        return draw(small_regex(depth + 1)) + draw(small_regex(depth + 1))
    if kind == 2:
        return "(?:" + draw(small_regex(depth + 1)) + "|" + draw(small_regex(depth + 1)) + ")"
    if kind == 3:
        return "(?:" + draw(small_regex(depth + 1)) + ")" + draw(st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "*?"]))
    if kind == 4:
        return "(" + draw(small_regex(depth + 1)) + ")"
    return draw(small_regex(depth + 1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=small_regex(), seed=st.integers(0, 2**32 - 1))
def test_random_regexes_token_level(pattern, seed):
    tok, vocab = real_tokenizer("qwen2"), real_vocab("qwen2")
    g = compile(Regex(pattern), vocab)
    dfa = g.lexer.dfas[0] if g.lexer.dfas else None
    rng = random.Random(seed)
    texts = []
    for _ in range(6):
        if dfa is not None:
            got = _random_walk(dfa, rng)
            if got is not None:
                texts.append(got.decode("utf-8"))
    alphabet = "abxé日1 \n🎉α"
    for _ in range(6):
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))))
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        assert vocab.decode_bytes(ids) == text.encode()
        want = re.fullmatch(pattern, text) is not None
        assert _walk(g, ids) == want, (pattern, text)
