import os

# Under pytest-xdist each worker runs its own models: one torch thread each, or two
# workers' thread pools fight over the cores (OpenMP spin-waits make that many times slower).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# The suite runs compiled kernels (the setup's warm-up filled their cache), its
# subprocesses too; tests of the interpreted start choose their own mode.
os.environ.setdefault("CONSTRAIN_KERNELS", "compiled")
# Masks filed on disk by one run would serve the next run's masks without a walk (see
# constrain._mask_store): tests of the mask machinery see it walk; tests/test_mask_store.py
# turns the mask files on for itself.
os.environ.setdefault("CONSTRAIN_DISK_CACHE_MASKS", "0")

import pytest

from constrain import Vocabulary


def _load(name: str):
    from constrain import assets

    if name == "smollm2":
        return assets.smollm2_tokenizer()
    if name == "qwen2":
        return assets.qwen2_tokenizer()
    if name == "qwen3_6":
        return assets.qwen3_6_tokenizer()
    if name == "mistral_sp":
        return assets.mistral_sentencepiece_tokenizer()
    raise KeyError(name)


_vocabs: dict = {}


def real_tokenizer(name: str):
    return _load(name)


def real_vocab(name: str) -> Vocabulary:
    if name not in _vocabs:
        tok = _load(name)
        if name.startswith("qwen"):
            from constrain import assets

            _vocabs[name] = Vocabulary.from_tokenizer(tok, eos_token_ids=assets.qwen_eos_token_ids(tok))
        else:
            _vocabs[name] = Vocabulary.from_tokenizer(tok)
    return _vocabs[name]


@pytest.fixture(scope="session")
def qwen2_vocab() -> Vocabulary:
    return real_vocab("qwen2")


@pytest.fixture(scope="session")
def smollm2_vocab() -> Vocabulary:
    return real_vocab("smollm2")


def byte_vocab(extra=()) -> Vocabulary:
    """The 256 single bytes, then ``extra`` multi-byte tokens, then an EOS token."""
    toks = [bytes([i]) for i in range(256)] + [bytes(t) for t in extra] + [b"<eos>"]
    eos = len(toks) - 1
    return Vocabulary(toks, special=[eos], eos_token_ids=[eos], name="bytes")
