"""constrain.LLM: equal to step-by-step decoding, batching, the prefix cache, jump-forward,
sampling, streaming, and soundness under a random-weight model."""

from __future__ import annotations

import gc
import json
import re
from typing import Literal

import jsonschema
import pytest
import torch
from pydantic import BaseModel, Field

import constrain
from constrain import GBNF, JsonSchema, Lark, Regex
from constrain.errors import UnsatisfiableError
from constrain.integrations.transformers import LogitsProcessor
from constrain.serving import LLM
from constrain.serving.partial import MISSING


class Pet(BaseModel):
    name: str = Field(max_length=16)
    species: Literal["cat", "dog", "owl"]
    age: int = Field(ge=0, le=30)
    tricks: list[str] = Field(max_length=2)


POINT = {
    "type": "object",
    "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}, "label": {"type": "string", "maxLength": 10}},
    "required": ["x", "y", "label"],
}
DATE = Regex(r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
LIST_GRAMMAR = Lark(r"""
start: "[" item ("," item)* "]"
item: WORD
WORD: /[a-z]{1,8}/
""")

CHATS = [
    [{"role": "user", "content": "Describe a pet as JSON."}],
    [{"role": "user", "content": "Give me a point with a label, in JSON."}],
    [{"role": "user", "content": "When did the Berlin wall fall? Answer with a date."}],
    [{"role": "user", "content": "List three fruits."}],
]
FORMATS = [Pet, POINT, DATE, LIST_GRAMMAR]
# items compared by the matcher under the budget (see masking.unique)
TAGS = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
        "required": ["tags"], "additionalProperties": False}


@pytest.fixture(scope="module")
def smol():
    from constrain import assets

    return assets.smollm2_model(), assets.smollm2_tokenizer()


@pytest.fixture(scope="module")
def llm(smol):
    model, tok = smol
    with LLM(model, tok, max_batch_size=4) as llm:
        # what the load made is out of the cyclic collector's reach (full collections
        # would otherwise scan torch's and transformers' objects in a request's step)
        assert gc.get_freeze_count() > 100_000
        yield llm


def hf_greedy(model, tok, vocab, chat, spec, max_new_tokens):
    """Token ids from HF generate + constrain's processor, one row, EOS dropped."""
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    enc = tok(text, return_tensors="pt", add_special_tokens=False)
    eos = list(vocab.eos_token_ids)
    proc = LogitsProcessor(constrain.compile(spec, vocab), max_new_tokens=max_new_tokens)
    with torch.inference_mode():
        out = model.generate(**enc, logits_processor=[proc], max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos[0])
    return [t for t in out[0, enc["input_ids"].shape[1]:].tolist() if t not in eos]


def in_language(spec, text: str) -> bool:
    if spec is Pet:
        Pet.model_validate_json(text)
        return True
    if isinstance(spec, dict):
        jsonschema.validate(json.loads(text), spec)
        return True
    if spec is DATE:
        return re.fullmatch(DATE.pattern, text) is not None
    return re.fullmatch(r"\[[a-z]{1,8}(,[a-z]{1,8})*\]", text) is not None


def test_greedy_equals_hf_generate_with_the_processor(llm, smol):
    model, tok = smol
    got = llm.generate(CHATS, FORMATS, max_new_tokens=40)
    for chat, spec, result in zip(CHATS, FORMATS, got):
        assert result.token_ids == hf_greedy(model, tok, llm.vocab, chat, spec, 40), spec
        assert result.finish_reason == "stop"
        assert in_language(spec, result.text)
    assert isinstance(got[0].value, Pet)
    assert got[1].value == json.loads(got[1].text)
    assert got[2].value is None  # not a JSON format: read .text


def test_jump_forward_exact_equals_step_by_step(smol):
    model, tok = smol
    outs = {}
    for mode in (False, "exact"):
        with LLM(model, tok, max_batch_size=4, jump_forward=mode) as llm:
            outs[mode] = llm.generate(CHATS, FORMATS, max_new_tokens=40)
            outs[mode, "passes"] = llm.stats["forward_passes"]
    assert [r.token_ids for r in outs["exact"]] == [r.token_ids for r in outs[False]]
    assert sum(r.forced_tokens for r in outs["exact"]) > 0
    assert outs["exact", "passes"] < outs[False, "passes"]


def test_jump_forward_bytes_stays_in_the_language(smol):
    model, tok = smol
    with LLM(model, tok, max_batch_size=4, jump_forward="bytes") as llm:
        got = llm.generate(CHATS, FORMATS, max_new_tokens=40)
        assert llm.stats["forced_tokens"] > 0
    for spec, result in zip(FORMATS, got):
        assert result.finish_reason == "stop"
        assert in_language(spec, result.text)


def test_rows_join_and_leave_mid_batch(llm):
    # Two slots, five requests of different lengths: rows leave as they finish and
    # waiting requests take their slots; every output equals the request run alone.
    prompts = [f"Count to {n}:" for n in range(5)]
    lengths = [3, 9, 5, 12, 7]
    alone = [llm.generate(p, None, max_new_tokens=n).token_ids for p, n in zip(prompts, lengths)]
    with LLM(llm.model, llm.tokenizer, max_batch_size=2) as small:
        reqs = [small.submit(p, max_new_tokens=n) for p, n in zip(prompts[:3], lengths[:3])]
        for _ in range(4):
            small.engine.step()
        assert small.engine.running == 2  # the third waits for a slot
        reqs += [small.submit(p, max_new_tokens=n) for p, n in zip(prompts[3:], lengths[3:])]
        while small.engine.has_work():
            small.engine.step()
        assert [r.output_ids for r in reqs] == alone
        assert all(r.finish_reason == "length" for r in reqs)
        assert sorted(small.engine._free) == [0, 1]


def test_prefix_cache_hits_misses_and_eviction(smol):
    model, tok = smol
    header = "You are a careful assistant. " * 12
    with LLM(model, tok, max_batch_size=2, kv_cache_tokens=96) as llm:
        pool = llm.engine.cache
        assert pool.num_blocks == 6
        first = llm.generate(header + "Name a color.", None, max_new_tokens=6)
        assert first.cached_tokens == 0
        again = llm.generate(header + "Name a color.", None, max_new_tokens=6)
        assert again.cached_tokens >= 64 and again.cached_tokens % 16 == 0
        assert again.token_ids == first.token_ids
        assert llm.stats["cached_prompt_tokens"] == again.cached_tokens
        # Other prompts push the header's blocks out of a six-block pool.
        for i in range(4):
            llm.generate(f"{i} unrelated words " * 10, None, max_new_tokens=4)
            assert len(pool) <= pool.num_blocks
        assert pool.evictions > 0
        evicted = llm.generate(header + "Name a color.", None, max_new_tokens=6)
        assert evicted.cached_tokens < again.cached_tokens
        assert evicted.token_ids == first.token_ids
        assert pool.nbytes() == 6 * 16 * llm.engine.store.bytes_per_token()
    with LLM(model, tok, max_batch_size=2, kv_cache_tokens=0) as nocache:
        assert nocache.generate(header + "Name a color.", None, max_new_tokens=6).token_ids == first.token_ids


def test_shared_prefix_is_prefilled_once_in_a_batch(llm):
    header = "Rules: answer briefly, in lower case, without punctuation. " * 6
    llm.reset_stats()
    llm.engine.cache.clear()
    llm.generate([header + f"Question {i}: say hi" for i in range(4)], None, max_new_tokens=3)
    stats = llm.stats
    shared = len(llm.encode(header)) // 16 * 16
    assert stats["cached_prompt_tokens"] >= 3 * (shared - 16)


def test_seeded_sampling_is_reproducible(llm):
    kw = dict(max_new_tokens=24, temperature=0.9, top_p=0.95, top_k=50)
    a = llm.generate(CHATS[:2], [Pet, None], seed=7, **kw)
    b = llm.generate(CHATS[:2], [Pet, None], seed=7, **kw)
    c = llm.generate(CHATS[:2], [Pet, None], seed=8, **kw)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    assert [r.token_ids for r in a] != [r.token_ids for r in c]
    assert isinstance(a[0].value, Pet)
    # A token's draw depends on (seed, position) only: forced runs do not shift it.
    with LLM(llm.model, llm.tokenizer, max_batch_size=4, jump_forward=False) as stepwise:
        d = stepwise.generate(CHATS[:2], [Pet, None], seed=7, **kw)
    assert [r.token_ids for r in d] == [r.token_ids for r in a]


def test_stop_strings_and_length(llm):
    free = llm.generate("1, 2, 3, 4, 5, 6,", None, max_new_tokens=24, stop=[" 9"])
    assert free.finish_reason == "stop" and " 9" not in free.text and free.text.strip().startswith("7")
    short = llm.generate("Once upon a time", None, max_new_tokens=5)
    assert short.finish_reason == "length" and len(short.token_ids) == 5


def test_stream_partial_values_are_prefixes_of_the_result(llm):
    chunks = list(llm.stream(CHATS[0], Pet, max_new_tokens=48))
    final = chunks[-1]
    assert final.finish_reason == "stop" and isinstance(final.value, Pet)
    assert "".join(c.text for c in chunks) == final.completion.text
    assert sum(len(c.token_ids) for c in chunks) == len(final.completion.token_ids)
    done = final.value.model_dump()
    seen = 0
    for c in chunks[:-1]:
        if c.value is None:
            continue
        assert isinstance(c.value, Pet)  # built with model_construct from the fields complete so far
        partial = {k: getattr(c.value, k) for k in c.value.model_fields_set}
        assert len(partial) >= seen
        seen = len(partial)
        for key, value in partial.items():
            if isinstance(value, list):
                assert value == done[key][: len(value)]
            else:
                assert value == done[key]
    assert seen >= 3


def test_closing_a_stream_frees_its_slot(llm):
    it = llm.stream("Tell me a long story.", None, max_new_tokens=64)
    next(it)
    it.close()
    assert not llm.engine.running and not llm.engine.waiting


def test_bad_requests_fail_before_any_work(llm):
    with pytest.raises(ValueError, match="prompt"):
        llm.generate([3.5], None)
    with pytest.raises(ValueError, match="response formats"):
        llm.generate(["a", "b"], [None])
    with pytest.raises(UnsatisfiableError):
        llm.generate("x", Pet, max_new_tokens=3)
    with pytest.raises(ValueError, match="positions"):
        llm.generate("x", None, max_new_tokens=10**6)
    with pytest.raises(constrain.SchemaError):
        llm.generate("x", {"type": "strnig"})
    assert not llm.engine.has_work()


def test_every_grammar_kind_and_compiled_grammars(llm):
    gbnf = GBNF('root ::= "yes" | "no"')
    compiled = constrain.compile(JsonSchema({"type": "boolean"}), llm.vocab)
    got = llm.generate(["Is water wet?", "Is fire cold?"], [gbnf, compiled], max_new_tokens=8)
    assert got[0].text in ("yes", "no")
    assert got[1].text in ("true", "false")


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("jump", ["exact", "bytes", False])
def test_random_weight_model_never_leaves_the_language(smol, arch, jump):
    """An adversarial model: random weights, sampled at temperature 1.5, tight budgets."""
    _, tok = smol
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    cls = LlamaConfig if arch == "llama" else Qwen2Config
    config = cls(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        model.lm_head.weight.normal_(0, 2.0)
    model.eval()
    specs = [Pet, POINT, DATE, LIST_GRAMMAR, TAGS]
    budgets = [48, 30, 12, 20, 24]
    with LLM(model, tok, max_batch_size=4, jump_forward=jump) as llm:
        for spec, budget in zip(specs, budgets):
            got = llm.generate(["a", "b c", "d e f", "g"], spec, max_new_tokens=budget, temperature=1.5, seed=budget)
            for result in got:
                assert result.finish_reason == "stop", (spec, result)
                assert len(result.token_ids) <= budget
                assert in_language(spec, result.text), (spec, result.text)
