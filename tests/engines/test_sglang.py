"""SGLang's grammar-backend interface with constrain behind it (make test-sglang; skipped
where SGLang is not installed).

What runs, on a CPU machine, with SGLang installed without its CUDA-only requirements:
SGLang's plug-in loader finding the ``sglang.srt.plugins`` entry point (also in a fresh
process) and ``--grammar-backend constrain`` parsed by SGLang's own argument parser;
SGLang's ``create_grammar_backend`` choosing the backend from its registry; grammars
compiled through the backend's executor and cache as SGLang's grammar manager does
(``get_cached_or_future_value``, ``set_cache``), bad specs ending as SGLang's
``InvalidGrammarObject`` with constrain's message; masks for the Qwen2 tokenizer checked
token by token against ``regex``'s partial matching, and for SmolLM2 along documents; the
grammar objects' accept_token / rollback / copy / is_terminated / jump-forward; SGLang's
``SamplingBatchInfo`` building and applying a mixed batch's masks; greedy decoding with the
bundled SmolLM2 model (transformers on CPU) through those masks, outputs valid against
jsonschema, ``re`` and lark, rows of a mixed batch equal to the same requests alone.

What does not run here: SGLang's scheduler, model runner and server (the GrammarManager,
overlap and speculative decoding, the HTTP/OpenAI path), which need SGLang's CUDA
requirements and a GPU; masks applied to GPU logits (``move_vocab_mask`` to a device and
``constrain.apply_bitmask``'s Triton path there); SGLang's own Triton bitmask kernel
(it does not run under Triton's CPU interpreter) and its Sampler (the loop here takes the
argmax of the masked logits). SGLang's published runtime
configuration imports ``sglang.srt.configs`` and so torchvision, whose PyPI wheels need
CUDA torch: the one value ``create_grammar_backend`` reads from it
(``get_exec().kernel.grammar_backend``) is given from the parsed server arguments instead.
"""

import json
import re
import subprocess
import sys
import types

import pytest

sglang = pytest.importorskip("sglang")

import jsonschema  # noqa: E402
import lark  # noqa: E402
import numpy as np  # noqa: E402
import regex  # noqa: E402
import torch  # noqa: E402
from sglang.srt.constrained import base_grammar_backend as sgl_backend  # noqa: E402
from sglang.srt.constrained.base_grammar_backend import InvalidGrammarObject  # noqa: E402
from sglang.srt.plugins import load_plugins  # noqa: E402
from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo  # noqa: E402
from sglang.srt.server_args import prepare_server_args  # noqa: E402

import constrain  # noqa: E402
from constrain import assets  # noqa: E402
from constrain.integrations import sglang as cs  # noqa: E402

from conftest import real_tokenizer  # noqa: E402

pytestmark = pytest.mark.engine

CITY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "country": {"type": "string", "maxLength": 24},
        "population": {"type": "integer", "minimum": 0, "maximum": 100000000},
    },
    "required": ["name", "country", "population"],
    "additionalProperties": False,
}
DATE = r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
LIST_GBNF = 'root ::= "[" num ("," num){0,3} "]"\nnum ::= [0-9]{1,3}'
LIST_RE = r"\[[0-9]{1,3}(,[0-9]{1,3}){0,3}\]"
ANSWER_LARK = 'start: "The answer is " ANSWER "."\nANSWER: "yes" | "no"'


# ---------------------------------------------------------------- SGLang's own entry points


@pytest.fixture(scope="module")
def server_args():
    load_plugins()  # what SGLang's launcher, engine and scheduler processes call first
    return prepare_server_args(["--model-path", str(assets.smollm2_path()), "--device", "cpu",
                                "--grammar-backend", "constrain"])


def _create(server_args, tokenizer, vocab_size, eos_ids):
    """SGLang's create_grammar_backend, reading the backend's name from ``server_args``."""
    kernel = types.SimpleNamespace(grammar_backend=server_args.grammar_backend)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sgl_backend, "get_exec", lambda: types.SimpleNamespace(kernel=kernel))
        return sgl_backend.create_grammar_backend(server_args, tokenizer, vocab_size, eos_ids)


@pytest.fixture(scope="module")
def smol_tok():
    return assets.smollm2_tokenizer()


@pytest.fixture(scope="module")
def smol(server_args, smol_tok):
    return _create(server_args, smol_tok, 49152, {2})


@pytest.fixture(scope="module")
def qwen_tok():
    return real_tokenizer("qwen2")


@pytest.fixture(scope="module")
def qwen(server_args, qwen_tok):
    # Qwen2 models pad their embedding past the tokenizer's ids
    return _create(server_args, qwen_tok, 151936, set(assets.qwen_eos_token_ids(qwen_tok)))


def _grammar(backend, kind, text):
    """A request's grammar object the way SGLang's GrammarManager gets it: from the cache
    (a copy) or compiled on the backend's executor, then cached."""
    key = (kind, text)
    value, hit = backend.get_cached_or_future_value(key, False)
    if not hit:
        value = value.result(timeout=300)
        backend.set_cache(key, value.copy())
    return value


def _tokens(tok, text):
    return tok.encode(text, add_special_tokens=False)


def test_plugin_makes_constrain_a_grammar_backend(server_args, smol):
    from sglang.srt.arg_groups.choices import GRAMMAR_BACKEND_CHOICES

    assert server_args.grammar_backend == cs.BACKEND_NAME
    assert cs.BACKEND_NAME in GRAMMAR_BACKEND_CHOICES
    assert sgl_backend.GRAMMAR_BACKEND_REGISTRY[cs.BACKEND_NAME] is cs.create_backend
    assert isinstance(smol, cs.GrammarBackend) and isinstance(smol, sgl_backend.BaseGrammarBackend)
    assert sglang.__version__ in cs.TESTED_SGLANG_VERSIONS
    cs.register()  # idempotent
    assert GRAMMAR_BACKEND_CHOICES.count(cs.BACKEND_NAME) == 1
    with pytest.raises(SystemExit):
        prepare_server_args(["--model-path", "m", "--grammar-backend", "no-such-backend"])


def test_a_fresh_sglang_process_finds_the_plugin():
    """Only SGLang's own calls: its loader imports constrain through the entry point."""
    code = ("from sglang.srt.plugins import load_plugins; load_plugins(); "
            "from sglang.srt.server_args import prepare_server_args; "
            "from sglang.srt.constrained.base_grammar_backend import GRAMMAR_BACKEND_REGISTRY as r; "
            "a = prepare_server_args(['--model-path', 'm', '--grammar-backend', 'constrain']); "
            "print(a.grammar_backend, r[a.grammar_backend].__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["constrain", "constrain.integrations.sglang"]


def test_untested_sglang_is_refused_with_a_clear_message(server_args, smol_tok, monkeypatch):
    monkeypatch.setattr(sglang, "__version__", "0.4.0")
    with pytest.raises(cs.UnsupportedSGLangError, match=r"tested with SGLang 0\.5\.23; this is SGLang 0\.4\.0"):
        _create(server_args, smol_tok, 49152, {2})
    with pytest.raises(cs.UnsupportedSGLangError, match="another --grammar-backend"):
        cs.register()
    cs.plugin()  # warns only: selecting another backend still works


def test_json_whitespace_pattern_is_refused(smol_tok):
    args = prepare_server_args(["--model-path", "m", "--grammar-backend", "constrain",
                                "--constrained-json-whitespace-pattern", r"[\n\t ]*"])
    with pytest.raises(ValueError, match="whitespace is bounded"):
        cs.create_backend(args, smol_tok, 49152, {2})


# ---------------------------------------------------------------- masks


def _allowed(grammar, vocab_size):
    mask = grammar.allocate_vocab_mask(vocab_size, 1, "cpu")
    grammar.fill_vocab_mask(mask, 0)
    bits = np.unpackbits(mask.numpy().view(np.uint8), bitorder="little")
    return bits[:vocab_size].astype(bool), bits[vocab_size:]


def test_qwen2_masks_equal_a_regex_reference(qwen, qwen_tok):
    """At each step every token whose text decodes is allowed exactly when the text so far
    plus the token can still be completed to a match (``regex``'s partial matching);
    special tokens and the padding past the tokenizer stay masked, EOS exactly at the end."""
    pattern = r"(cat|dog)s? (ate|saw) [0-9]{1,3} (fish|birds?)\."
    g = _grammar(qwen, "regex", pattern)
    vocab = qwen.vocab
    texts = {}
    for t in range(vocab.size):
        if not vocab.is_special(t):
            try:
                texts[t] = vocab.token_bytes(t).decode("utf-8")
            except UnicodeDecodeError:
                pass
    eos = sorted(vocab.eos_token_ids)
    target = "dogs saw 12 birds."
    ids = _tokens(qwen_tok, target)
    prefix = ""
    for step in range(len(ids) + 1):
        allowed, past = _allowed(g, 151936)
        assert not past.any()
        assert not allowed[vocab.size:].any()
        assert not allowed[[t for t in range(vocab.size) if vocab.is_special(t) and t not in eos]].any()
        want = {t for t, s in texts.items()
                if s and regex.fullmatch(pattern, prefix + s, partial=True) is not None}
        got = {t for t in texts if allowed[t]}
        assert got == want, f"after {prefix!r}: {sorted(got ^ want)[:10]}"
        assert allowed[eos].all() == (step == len(ids)) and allowed[eos].any() == (step == len(ids))
        if step < len(ids):
            g.accept_token(ids[step])
            prefix += qwen_tok.decode([ids[step]])
    g.accept_token(eos[0])
    assert g.is_terminated()


@pytest.mark.parametrize("doc", [{"name": "Lyon", "country": "France", "population": 513275},
                                 {"name": "Ōsaka", "country": "Japan", "population": 2691000}])
def test_smollm2_masks_follow_a_json_document(smol, smol_tok, doc):
    g = _grammar(smol, "json", json.dumps(CITY))
    ids = _tokens(smol_tok, json.dumps(doc))
    for t in ids:
        allowed, _ = _allowed(g, 49152)
        assert allowed[t] and not allowed[2]
        g.accept_token(t)
    allowed, _ = _allowed(g, 49152)
    assert allowed[2]
    g.accept_token(2)
    assert g.is_terminated()


# ---------------------------------------------------------------- grammar objects


def test_accept_rollback_copy_terminated(smol, smol_tok):
    g = _grammar(smol, "regex", r"(yes|no), [a-z]{1,8}\.")
    ids = _tokens(smol_tok, "yes, maybe.")
    for t in ids[:2]:
        g.accept_token(t)
    c = g.copy()
    assert c is not g and c.matcher.num_tokens == g.matcher.num_tokens == 2
    for t in ids[2:]:
        c.accept_token(t)
    assert g.matcher.num_tokens == 2  # the copy moved alone
    assert not _allowed(g, 49152)[0][2] and _allowed(c, 49152)[0][2]
    c.accept_token(2)
    assert c.is_terminated() and c.current_token == 2
    c.accept_token(ids[0])  # after EOS: ignored, as SGLang's own backends do
    assert c.matcher.num_tokens == len(ids) + 1
    c.rollback(1)
    assert not c.is_terminated() and not c.finished
    c.rollback(len(ids))
    assert c.matcher.num_tokens == 0
    assert np.array_equal(_allowed(c, 49152)[0], _allowed(_grammar(smol, "regex", r"(yes|no), [a-z]{1,8}\."), 49152)[0])
    with pytest.raises(ValueError, match="cannot roll back 1 tokens"):
        c.rollback(1)
    bad = _tokens(smol_tok, "maybe")[0]
    with pytest.raises(ValueError, match=rf"token {bad} is outside the grammar after 0 tokens \(regex"):
        c.accept_token(bad)
    assert c.matcher.num_tokens == 0  # refused: nothing changed


def test_cached_grammars_are_fresh_copies(smol, smol_tok):
    text = r"[0-9]{3}"
    a = _grammar(smol, "regex", text)
    a.accept_token(_tokens(smol_tok, "1")[0])
    b = _grammar(smol, "regex", text)  # a cache hit
    assert b is not a and b.matcher.num_tokens == 0
    assert b.grammar_stats.is_cache_hit and b.grammar_stats.dispatch_type == "regex"


def test_jump_forward(smol, smol_tok):
    g = _grammar(smol, "regex", r"Answer: (yes|no)")
    helper = g.try_jump_forward(smol_tok)
    assert helper == ([], "Answer: ")
    text, state = g.jump_forward_str_state(helper)
    assert text == "Answer: "
    chars = [_tokens(smol_tok, ch)[0] for ch in text]  # one token per character
    g.jump_and_retokenize([], chars, state)
    assert g.matcher.num_tokens == len(chars)
    new = _tokens(smol_tok, text)
    assert new != chars
    g.jump_and_retokenize(chars, new, state)  # SGLang retokenized the text: rolled back, then followed
    assert g.matcher.num_tokens == len(new) and g.try_jump_forward(smol_tok) is None
    g.accept_token(_tokens(smol_tok, "yes")[0])
    assert _allowed(g, 49152)[0][2]
    with pytest.raises(ValueError, match="retokenized output is outside the grammar"):
        g.jump_and_retokenize([], _tokens(smol_tok, "Question"), -1)


def test_backend_cache_is_bounded(smol):
    for i in range(cs._MAX_CACHED + 10):
        smol.set_cache(("regex", f"x{i}"), InvalidGrammarObject("placeholder"))
    assert len(smol.cache) == cs._MAX_CACHED
    assert smol.cache.get(("regex", "x0")) is None
    assert smol.cache.get(("regex", f"x{cs._MAX_CACHED + 9}")) is not None
    smol.reset()
    assert len(smol.cache) == 0


# ---------------------------------------------------------------- bad specs


@pytest.mark.parametrize("kind, text, message", [
    ("json", '{"type": "object", "properties": ', "the JSON Schema is not valid JSON"),
    ("json", '{"type": "strng"}', "bad type 'strng' at /type"),
    ("json", '{"type": "string", "minLength": 5, "maxLength": 2}', "the schema admits no JSON value"),
    ("regex", "(ab", "missing ), unterminated subpattern"),
    ("ebnf", "root ::= item\n", "rule 'item' is used but never defined"),
    ("ebnf", 'start: "a" b', "Rule 'b' used but not defined"),
    ("structural_tag", json.dumps({"structures": [], "triggers": []}), "does not support structural tags"),
])
def test_bad_specs_take_sglangs_invalid_grammar_path(smol, kind, text, message):
    first = _grammar(smol, kind, text)  # compiled on the executor
    again = _grammar(smol, kind, text)  # the cached InvalidGrammarObject
    for value in (first, again):
        assert isinstance(value, InvalidGrammarObject)
        assert value.error_message.startswith("constrain")
        assert message in value.error_message
    # what SGLang's GrammarManager then aborts the request with
    assert f"Failed to compile {kind} grammar: constrain" in f"Failed to compile {kind} grammar: {first.error_message}"


def test_any_json_key(smol, smol_tok):
    g = _grammar(smol, "json", "$$ANY$$")
    for t in _tokens(smol_tok, '[1, "a", null]'):
        g.accept_token(t)
    assert _allowed(g, 49152)[0][2]


# ---------------------------------------------------------------- SGLang's batch masks


def _batch_info(grammars, vocab_size):
    n = len(grammars)
    return SamplingBatchInfo(
        temperatures=torch.ones(n, 1), top_ps=torch.ones(n), top_ks=torch.ones(n, dtype=torch.int32),
        min_ps=torch.zeros(n), is_all_greedy=True, is_any_greedy=True, need_top_p_sampling=False,
        need_top_k_sampling=False, need_min_p_sampling=False, vocab_size=vocab_size, grammars=grammars,
        device="cpu",
    )


def test_sampling_batch_info_masks_a_mixed_batch(smol, smol_tok):
    json_g = _grammar(smol, "json", json.dumps(CITY))
    date_g = _grammar(smol, "regex", DATE)
    list_g = _grammar(smol, "ebnf", LIST_GBNF)
    done_g = _grammar(smol, "regex", "ok")
    for t in _tokens(smol_tok, "ok"):
        done_g.accept_token(t)
    done_g.accept_token(2)
    finished_g = _grammar(smol, "regex", DATE)
    finished_g.finished = True  # SGLang marks a finished request's grammar so
    for t in _tokens(smol_tok, "19"):
        date_g.accept_token(t)
    rows = [json_g, None, date_g, done_g, list_g, finished_g]
    info = _batch_info(rows, 49152)
    info.update_regex_vocab_mask()
    assert info.grammar_mask is not None and info.grammar_mask.vocab_mask.dtype == torch.int32
    logits = torch.randn(len(rows), 49152, generator=torch.Generator().manual_seed(0))
    before = logits.clone()
    info.apply_logits_bias(logits)
    for i, g in enumerate(rows):
        if g is None or g.is_terminated() or g.finished:
            assert torch.equal(logits[i], before[i])  # rows without a live grammar: untouched
            continue
        allowed = torch.from_numpy(_allowed(g, 49152)[0])
        assert torch.equal(torch.isinf(logits[i]), ~allowed)
        assert torch.equal(logits[i][allowed], before[i][allowed])
    assert torch.isfinite(logits[2][_tokens(smol_tok, "9")[0]])  # "199" on the way to a date
    assert not torch.isfinite(logits[2][_tokens(smol_tok, "-")[0]])


# ---------------------------------------------------------------- decoding with SmolLM2


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return assets.smollm2_model()


def _prompt(tok, text):
    chat = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)
    return tok(chat, add_special_tokens=False).input_ids


REQUESTS = [
    ("json", json.dumps(CITY), "Describe a large city as JSON with its name, country and population."),
    ("regex", DATE, "When did the first person walk on the moon? Answer with a date."),
    ("ebnf", LIST_GBNF, "List three small prime numbers."),
    ("ebnf", ANSWER_LARK, "Is the sky blue?"),
]


@torch.no_grad()
def _decode(model, tok, backend, requests, max_new_tokens=80):
    """Greedy decoding of a batch: each row runs its own forward (so a row's logits do not
    depend on the batch), the rows' logits are stacked and masked by SGLang's
    SamplingBatchInfo with the rows' grammar objects, and SGLang's order of calls follows:
    accept_token, then ``finished`` from is_terminated."""
    grammars = [_grammar(backend, kind, text) for kind, text, _ in requests]
    caches, last = [], []
    for _, _, question in requests:
        out = model(torch.tensor([_prompt(tok, question)]), use_cache=True)
        caches.append(out.past_key_values)
        last.append(out.logits[0, -1])
    outputs = [[] for _ in requests]
    for _ in range(max_new_tokens):
        if all(g.finished for g in grammars):
            break
        logits = torch.stack(last).float()
        info = _batch_info(grammars, logits.shape[1])
        info.update_regex_vocab_mask()
        info.apply_logits_bias(logits)
        chosen = logits.argmax(-1).tolist()
        for i, g in enumerate(grammars):
            if g.finished:
                continue
            g.accept_token(chosen[i])
            if g.is_terminated():
                g.finished = True
                continue
            outputs[i].append(chosen[i])
            out = model(torch.tensor([[chosen[i]]]), past_key_values=caches[i], use_cache=True)
            caches[i] = out.past_key_values
            last[i] = out.logits[0, -1]
    assert all(g.finished for g in grammars), "a document did not end within max_new_tokens"
    return [tok.decode(o) for o in outputs]


def _check(kind, text, output):
    if kind == "json":
        jsonschema.validate(json.loads(output), json.loads(text))
    elif text == DATE:
        assert re.fullmatch(DATE, output)
    elif text == LIST_GBNF:
        assert re.fullmatch(LIST_RE, output)
    else:
        lark.Lark(text).parse(output)


@pytest.fixture(scope="module")
def solo_outputs(model, smol_tok, smol):
    return [_decode(model, smol_tok, smol, [r])[0] for r in REQUESTS]


@pytest.mark.slow
def test_greedy_outputs_are_valid(solo_outputs):
    for (kind, text, _), output in zip(REQUESTS, solo_outputs):
        _check(kind, text, output)


@pytest.mark.slow
def test_rows_of_a_mixed_batch_do_not_interfere(model, smol_tok, smol, solo_outputs):
    order = [2, 0, 3, 1]
    batch = _decode(model, smol_tok, smol, [REQUESTS[i] for i in order])
    for i, output in zip(order, batch):
        _check(REQUESTS[i][0], REQUESTS[i][1], output)
        assert output == solo_outputs[i]

