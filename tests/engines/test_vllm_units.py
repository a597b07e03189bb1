"""vLLM integration without a model: constrain's backend driven through vLLM's own
StructuredOutputManager and SamplingParams validation, and the logits processor driven
through the batch updates vLLM's V1 runner sends (slots added, reused, moved, swapped,
removed) and through a simulated V2 runner state. Runs where vLLM is installed
(make test-vllm); skipped elsewhere."""

import json
import os
import re
import tempfile

import pytest

os.environ.setdefault("VLLM_CACHE_ROOT", tempfile.mkdtemp(prefix="vllm-cache-"))
vllm = pytest.importorskip("vllm")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from vllm import SamplingParams  # noqa: E402
from vllm.exceptions import VLLMValidationError  # noqa: E402
from vllm.sampling_params import StructuredOutputsParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality  # noqa: E402

import constrain  # noqa: E402
from constrain import assets  # noqa: E402
from constrain.integrations import vllm as cv  # noqa: E402

pytestmark = pytest.mark.engine

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def config():
    from vllm.engine.arg_utils import EngineArgs

    cv.register()
    args = EngineArgs(model=str(assets.smollm2_path()), dtype="bfloat16", enforce_eager=True, max_model_len=512,
                      max_num_seqs=8, structured_outputs_config={"backend": "constrain"})
    return args.create_engine_config()


@pytest.fixture(scope="module")
def vocab(config):
    return cv._Vocabularies.of_config(config).base


def _tokens(vocab, text: str) -> list[int]:
    ids = vocab.longest_match(text.encode())
    assert vocab.decode_bytes(ids) == text.encode()
    return ids


# ---------------------------------------------------------------- specs and admission


def test_spec_from_extra_args_forms():
    assert cv.spec_from_extra_args({"regex": "a+"}) == constrain.Regex("a+")
    assert cv.spec_from_extra_args(json.dumps({"gbnf": 'root ::= "x"'})) == constrain.GBNF('root ::= "x"')
    spec = cv.spec_from_extra_args({"json_schema": json.dumps(SCHEMA), "whitespace": "compact"})
    assert isinstance(spec, constrain.JsonSchema) and spec.schema == SCHEMA and spec.whitespace == "compact"
    assert cv.spec_from_extra_args({"lark": "start: 'a'", "start": "start"}) == constrain.Lark("start: 'a'")


@pytest.mark.parametrize("bad, words", [
    ({"regex": "a", "lark": "start: 'a'"}, "exactly one"),
    ({}, "exactly one"),
    ({"regex": "a", "whitespace": "compact"}, "unknown key"),
    ({"json_schema": [1]}, "JSON Schema object"),
    ("{not json", "not valid JSON"),
    ({"regex": 3}, "must be a string"),
])
def test_malformed_extra_args_say_what(bad, words):
    with pytest.raises(constrain.SpecError, match=words):
        cv.spec_from_extra_args(bad)


def test_processor_rejects_bad_specs_at_admission():
    cv.LogitsProcessor.validate_params(SamplingParams(max_tokens=8))  # not constrained: nothing to check
    cv.LogitsProcessor.validate_params(SamplingParams(max_tokens=8, extra_args={"constrain": {"regex": "[0-9]+"}}))
    with pytest.raises(ValueError, match=r"constrain: .*position 1"):
        cv.LogitsProcessor.validate_params(SamplingParams(max_tokens=8, extra_args={"constrain": {"regex": "a("}}))
    with pytest.raises(ValueError, match="constrain: .*type"):
        cv.LogitsProcessor.validate_params(
            SamplingParams(max_tokens=8, extra_args={"constrain": {"json_schema": {"type": "nope"}}}))
    # vLLM's own admission turns the ValueError into its validation error (HTTP 400 over the server)
    from vllm.v1.sample.logits_processor import validate_logits_processors_parameters

    with pytest.raises(VLLMValidationError, match="constrain"):
        validate_logits_processors_parameters(
            [cv.LogitsProcessor], SamplingParams(max_tokens=8, extra_args={"constrain": {"lark": "start: undefined"}}))


def test_backend_admission_through_sampling_params(config):
    ok = _admit(config, SamplingParams(max_tokens=8, structured_outputs=StructuredOutputsParams(json=SCHEMA)))
    assert ok.structured_outputs._backend == "constrain"
    for params, words in [
        (StructuredOutputsParams(regex="(ab"), "missing \\)"),
        (StructuredOutputsParams(json={"type": "object", "properties": {"a": {"type": "strin"}}}), "strin"),
        (StructuredOutputsParams(structural_tag=json.dumps({"structures": [], "triggers": []})), "structural_tag"),
    ]:
        with pytest.raises(VLLMValidationError, match=words):
            _admit(config, SamplingParams(max_tokens=8, structured_outputs=params))


def test_backend_choice_is_extended(config):
    from vllm.config import StructuredOutputsConfig

    assert StructuredOutputsConfig(backend="constrain").backend == "constrain"
    assert StructuredOutputsConfig(backend="xgrammar").backend == "xgrammar"
    with pytest.raises(Exception, match="constrain"):  # the listed choices name it
        StructuredOutputsConfig(backend="nope")


# ---------------------------------------------------------------- through vLLM's StructuredOutputManager


def _tokenizer(config):
    from vllm.tokenizers import cached_tokenizer_from_config

    return cached_tokenizer_from_config(model_config=config.model_config)


def _admit(config, params):
    """What vLLM's frontend does to a request's parameters before the engine sees them."""
    params.verify(config.model_config, config.speculative_config, config.structured_outputs_config, _tokenizer(config))
    return params


def _request(config, rid, prompt, params):
    from vllm.v1.request import Request

    return Request(rid, prompt, _admit(config, params), None)


def _ready(manager, request):
    manager.grammar_init(request)
    so = request.structured_output_request
    for _ in range(2000):
        if so.is_grammar_ready:
            break
        import time

        time.sleep(0.005)
    grammar = so.grammar
    if isinstance(grammar, Exception):
        raise grammar
    return grammar


def _allowed(row: np.ndarray, token: int) -> bool:
    return bool((int(row[token >> 5]) >> (token & 31)) & 1)


def test_manager_bitmasks_accept_and_rollback(config, vocab):
    from vllm.v1.structured_output import StructuredOutputManager

    manager = StructuredOutputManager(config)
    prompt = [1, 2, 3]
    reqs = {
        "json": _request(config, "json", prompt, SamplingParams(max_tokens=64, structured_outputs=StructuredOutputsParams(json=SCHEMA))),
        "regex": _request(config, "regex", prompt, SamplingParams(max_tokens=64, structured_outputs=StructuredOutputsParams(regex=r"\d{3}-\d{2}"))),
        "choice": _request(config, "choice", prompt, SamplingParams(max_tokens=64, structured_outputs=StructuredOutputsParams(choice=["yes", "no way"]))),
        "lark": _request(config, "lark", prompt, SamplingParams(max_tokens=64, structured_outputs=StructuredOutputsParams(grammar='start: "a"+ "!"'))),
        "gbnf": _request(config, "gbnf", prompt, SamplingParams(max_tokens=64, structured_outputs=StructuredOutputsParams(grammar='root ::= [0-9]+ "."'))),
    }
    grammars = {rid: _ready(manager, r) for rid, r in reqs.items()}
    assert all(isinstance(g, cv.StructuredOutputGrammar) for g in grammars.values())
    assert isinstance(manager.backend, cv.StructuredOutputBackend)
    texts = {"json": '{"name": "Ann", "age": 31}', "regex": "123-45", "choice": "no way", "lark": "aaa!", "gbnf": "42."}
    eos = vocab.eos_token_ids[0]
    for rid, text in texts.items():
        ids = _tokens(vocab, text)
        g = grammars[rid]
        assert g.validate_tokens(ids + [eos]) == ids + [eos]
        assert g.validate_tokens([eos]) == []  # the document is not complete yet
        for k, t in enumerate(ids):
            bitmask = manager.grammar_bitmask(reqs, [rid], {})
            assert bitmask.shape == (1, (config.model_config.get_vocab_size() + 31) // 32)
            assert _allowed(bitmask[0], t), (rid, k)
            assert not _allowed(bitmask[0], eos)
            assert manager.accept_tokens(reqs[rid], [t])
        bitmask = manager.grammar_bitmask(reqs, [rid], {})
        assert _allowed(bitmask[0], eos)
        g.rollback(2)
        assert manager.accept_tokens(reqs[rid], ids[-2:])
        assert manager.accept_tokens(reqs[rid], [eos]) and g.is_terminated()
        g.reset()
        assert not g.is_terminated() and g.validate_tokens(ids) == ids
    # a token outside the grammar is refused, and the state stays where it was
    g = grammars["regex"]
    assert not g.accept_tokens("regex", _tokens(vocab, "12a"))


def test_manager_budget_and_stop_ids(config, vocab):
    """max_tokens becomes the matcher's budget (a document cut there is complete); a
    request's extra stop-token ids are masked until the document is complete, as EOS is."""
    from vllm.v1.structured_output import StructuredOutputManager

    manager = StructuredOutputManager(config)
    newline = _tokens(vocab, "\n")[0]
    params = SamplingParams(max_tokens=10, stop_token_ids=[newline],
                            structured_outputs=StructuredOutputsParams(json={"type": "array", "items": {"type": "string"}}))
    req = _request(config, "budget", [1, 2, 3], params)
    g = _ready(manager, req)
    rng = np.random.default_rng(0)
    out = []
    for step in range(10):
        row = manager.grammar_bitmask({"budget": req}, ["budget"], {})[0]
        allowed = [t for t in range(vocab.size) if _allowed(row, t)]
        assert newline not in allowed or g.matcher.is_accepting()
        t = int(rng.choice(allowed))
        if t in vocab.eos_token_ids:
            break
        out.append(t)
        assert manager.accept_tokens(req, [t])
    text = vocab.decode_bytes(out).decode()
    assert isinstance(json.loads(text), list), text


def test_manager_fails_only_the_request_on_an_unsatisfiable_budget(config):
    from vllm.v1.structured_output import StructuredOutputManager

    manager = StructuredOutputManager(config)
    params = SamplingParams(max_tokens=3, structured_outputs=StructuredOutputsParams(regex="[a-z]{20}"))
    with pytest.raises(constrain.UnsatisfiableError, match="budget"):
        _ready(manager, _request(config, "short", [1], params))


# ---------------------------------------------------------------- the logits processor, V1 batch updates


def _params(spec=None, max_tokens=32):
    return SamplingParams(max_tokens=max_tokens, extra_args=None if spec is None else {"constrain": spec})


def _logits(batch, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, width, generator=g)


def test_v1_processor_follows_the_persistent_batch(config, vocab):
    proc = cv.LogitsProcessor(config, torch.device("cpu"), False)
    assert not proc.is_argmax_invariant()
    width = config.model_config.get_vocab_size()
    digits = _params({"regex": r"[0-9]{2,4}"})
    letters = _params({"regex": r"[a-z]{2,4}"})
    out0, out1, out2 = [], [], []
    proc.update_state(BatchUpdate(batch_size=3, removed=[], moved=[],
                                  added=[(0, digits, [1, 2], out0), (1, _params(), [1], out1), (2, letters, [5], out2)]))

    def step(outs, batch):
        logits = proc.apply(_logits(batch, width))
        picks = logits.argmax(dim=1).tolist()
        for out, t in zip(outs, picks):
            if out is not None:
                out.append(t)
        return logits

    logits = step([out0, out1, out2], 3)
    assert torch.isinf(logits[0]).sum() > 0 and not torch.isinf(logits[1]).any()
    step([out0, out1, out2], 3)
    assert re.fullmatch(r"[0-9]+", vocab.decode_bytes(out0).decode())
    assert re.fullmatch(r"[a-z]+", vocab.decode_bytes(out2).decode())
    # slot 0 is reused without a removal: a new request starts afresh there
    out3 = []
    proc.update_state(BatchUpdate(batch_size=3, removed=[], moved=[], added=[(0, letters, [7], out3)]))
    step([out3, out1, out2], 3)
    assert re.fullmatch(r"[a-z]+", vocab.decode_bytes(out3).decode())
    # swap 0 <-> 2, then a one-way move 2 -> 1 after slot 1 is removed
    proc.update_state(BatchUpdate(batch_size=3, removed=[], added=[], moved=[(0, 2, MoveDirectionality.SWAP)]))
    step([out2, out1, out3], 3)
    proc.update_state(BatchUpdate(batch_size=2, removed=[1], added=[], moved=[(2, 1, MoveDirectionality.UNIDIRECTIONAL)]))
    step([out2, out3], 2)
    # after four letters (or EOS) only EOS may follow
    final = proc.apply(_logits(2, width, seed=1))
    for r, out in ((0, out2), (1, out3)):
        ids = [t for t in out if t not in vocab.eos_token_ids]
        text = vocab.decode_bytes(ids).decode()
        assert re.fullmatch(r"[a-z]{2,4}", text), text
        if len(text) == 4:
            allowed = torch.nonzero(~torch.isinf(final[r])).flatten().tolist()
            assert set(allowed) <= set(vocab.eos_token_ids)


def test_v1_processor_budget_and_placeholders(config, vocab):
    """max_tokens is the budget: after max_tokens tokens the text is complete. A -1
    placeholder (asynchronous scheduling) is read once it is filled in."""
    proc = cv.LogitsProcessor(config, torch.device("cpu"), False)
    width = config.model_config.get_vocab_size()
    out = []
    proc.update_state(BatchUpdate(batch_size=1, removed=[], moved=[],
                                  added=[(0, _params({"json_schema": {"type": "array", "items": {"type": "integer"}}}, 9),
                                          [1], out)]))
    for step in range(9):
        logits = proc.apply(_logits(1, width, seed=step))
        t = int(logits.argmax())
        if t in vocab.eos_token_ids:
            break
        out.append(-1)  # the placeholder first, as vLLM's async scheduler writes it
        proc.apply(_logits(1, width, seed=100 + step))
        out[-1] = t
    text = vocab.decode_bytes([t for t in out if t not in vocab.eos_token_ids]).decode()
    assert isinstance(json.loads(text), list), text


def test_processor_loaded_twice_stands_aside(config):
    a = cv.LogitsProcessor(config, torch.device("cpu"), False)
    b = cv.LogitsProcessor(config, torch.device("cpu"), False)
    assert not a._inert and b._inert
    b.update_state(BatchUpdate(batch_size=1, removed=[], moved=[], added=[(0, _params({"regex": "a"}), [1], [])]))
    logits = _logits(1, 64)
    assert b.apply(logits.clone()).equal(logits)


# ---------------------------------------------------------------- the logits processor, a simulated V2 runner


class _Buf:
    def __init__(self, arr):
        self.np = arr
        self.gpu = torch.from_numpy(arr)


def test_v2_processor_on_a_simulated_runner_state(config, vocab):
    """The V2 interface (add_request / apply(logits, ctx)) against request state laid out as
    the V2 runner documents it: tokens in all_token_ids up to the sequence length, batch
    rows mapped to slots. The real V2 runner needs a GPU and is not run here."""
    from types import SimpleNamespace

    max_reqs, max_len = 4, 64
    all_ids = np.zeros((max_reqs, max_len), dtype=np.int32)
    prompt_len = np.zeros(max_reqs, dtype=np.int32)
    states = SimpleNamespace(all_token_ids=_Buf(all_ids), prompt_len=_Buf(prompt_len))
    proc = cv.LogitsProcessor(config, states)
    width = config.model_config.get_vocab_size()
    assert proc.add_request(2, _params({"regex": r"[0-9]{3}"}))
    assert not proc.add_request(0, _params())
    assert proc.add_request(1, _params({"regex": r"(yes|no)"}))
    lens = {}
    for slot, plen in ((2, 5), (0, 3), (1, 4)):
        prompt_len[slot] = plen
        all_ids[slot, :plen] = 7
        lens[slot] = plen
    order = [1, 2, 0]  # batch position -> slot, reordered each step below
    for step in range(6):
        ctx = SimpleNamespace(idx_mapping_np=np.asarray(order), seq_lens_upper_bound_np=np.asarray([lens[s] for s in order]),
                              expanded_idx_mapping=torch.as_tensor(order))
        logits = proc.apply(_logits(len(order), width, seed=step), ctx)
        for b, slot in enumerate(order):
            t = int(logits[b].argmax())
            all_ids[slot, lens[slot]] = t
            lens[slot] += 1
        order = order[1:] + order[:1]

    def text(slot):
        ids = all_ids[slot, prompt_len[slot]:lens[slot]].tolist()
        ids = ids[: next((i for i, t in enumerate(ids) if t in vocab.eos_token_ids), len(ids))]
        return vocab.decode_bytes(ids).decode()

    assert re.fullmatch(r"[0-9]{3}", text(2)), text(2)
    assert re.fullmatch(r"yes|no", text(1)), text(1)
