"""vLLM end to end on its CPU build with the bundled SmolLM2: constrain's logits processor
(SamplingParams.extra_args) and constrain's structured-output backend
(structured_outputs_config={"backend": "constrain"}) in one engine. Oracles: greedy
outputs equal vLLM's unconstrained ones where the grammar allows them; every constrained
output of a mixed batch is valid (jsonschema, re, lark), also when max_tokens cuts it;
bad specs are refused at admission. Runs where vLLM is installed (make test-vllm)."""

import json
import os
import re
import tempfile

import pytest

os.environ.setdefault("VLLM_CACHE_ROOT", tempfile.mkdtemp(prefix="vllm-cache-"))
vllm = pytest.importorskip("vllm")

import jsonschema  # noqa: E402
from lark import Lark  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402
from vllm import SamplingParams  # noqa: E402
from vllm.exceptions import VLLMValidationError  # noqa: E402
from vllm.sampling_params import StructuredOutputsParams  # noqa: E402

import constrain  # noqa: E402
from constrain import assets  # noqa: E402
from constrain.integrations import vllm as cv  # noqa: E402

pytestmark = pytest.mark.engine


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    age: int
    city: str


class Book(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    author: str
    year: int = Field(ge=1400, le=2100)
    tags: list[str] = Field(max_length=3)


class Weather(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: str
    temperature_c: float
    sky: str = Field(pattern="^(clear|cloudy|rain|snow)$")


SCHEMAS = [m.model_json_schema() for m in (Person, Book, Weather)]
DATE = r"20[0-9]{2}-(0[1-9]|1[0-2])-[0-2][0-9]"
LARK = r"""
start: "(" item ("," item)* ")"
item: NUMBER | WORD
NUMBER: /[0-9]+/
WORD: /[a-z]+/
"""
GBNF = 'root ::= "answer: " ("yes" | "no") "."'


@pytest.fixture(scope="module")
def llm():
    from vllm import LLM

    cv.register()
    engine = LLM(
        model=str(assets.smollm2_path()),
        dtype="bfloat16",
        enforce_eager=True,
        max_model_len=1024,
        max_num_seqs=8,  # fewer slots than requests below: slots are reused and rows move
        kv_cache_memory_bytes=192 << 20,
        enable_prefix_caching=False,  # a cached prefix would change bf16 numerics between runs
        seed=0,
        structured_outputs_config={"backend": "constrain"},
    )
    yield engine
    # vLLM 0.32 leaves its engine process running at interpreter exit unless shut down
    engine.llm_engine.engine_core.shutdown()


def _chat(llm, text: str) -> str:
    tok = llm.get_tokenizer()
    return tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)


def _processor(spec: dict, **kw) -> SamplingParams:
    return SamplingParams(extra_args={"constrain": spec}, **kw)


def _backend(**kw) -> SamplingParams:
    so = {k: kw.pop(k) for k in ("json", "regex", "grammar", "choice") if k in kw}
    return SamplingParams(structured_outputs=StructuredOutputsParams(**so), **kw)


def test_greedy_equals_unconstrained_where_the_grammar_allows_it(llm):
    prompts = [_chat(llm, q) for q in ("Name a fruit.", "What is 2+2?", "Say hello in French.", "Count to five.")]
    plain = llm.generate(prompts, SamplingParams(max_tokens=24, temperature=0, logprobs=3), use_tqdm=False)
    texts = [o.outputs[0].text for o in plain]
    ids = [list(o.outputs[0].token_ids) for o in plain]
    tops = [o.outputs[0].logprobs for o in plain]
    # a grammar of exactly that text, and one of any text
    literal = [_processor({"regex": re.escape(t)}, max_tokens=24, temperature=0) for t in texts]
    anything = [_processor({"regex": r"[\s\S]*"}, max_tokens=24, temperature=0) for _ in texts]
    backend = [_backend(regex=re.escape(t), max_tokens=24, temperature=0) for t in texts]
    # vLLM's CPU kernels need not repeat greedy decoding exactly (a batch through other
    # code paths may round differently in bf16): where a constrained run first leaves the
    # unconstrained tokens, the token it took must be one the unconstrained run nearly
    # tied with; a token the mask wrongly took away shows as a departure to a clear loser.
    # Everywhere, a grammar of exactly a text (within a budget that text fits) must write
    # that text.
    for params in (literal, anything, backend):
        out = llm.generate(prompts, params, use_tqdm=False)
        for o, i, t, top in zip(out, ids, texts, tops):
            got = list(o.outputs[0].token_ids)
            k = next((j for j, (a, b) in enumerate(zip(got, i)) if a != b), None)
            if k is not None:
                ranked = top[k]
                assert got[k] in ranked, (k, got, i)
                assert ranked[i[k]].logprob - ranked[got[k]].logprob < 0.5, (k, got, i, ranked)
            if params is not anything:
                assert o.outputs[0].text == t


def _check(kind: str, spec, text: str) -> None:
    if kind == "json":
        jsonschema.validate(json.loads(text), spec)
    elif kind == "regex":
        assert re.fullmatch(spec, text), text
    elif kind == "lark":
        Lark(spec, parser="earley").parse(text)
    elif kind == "gbnf":
        assert re.fullmatch(r"answer: (yes|no)\.", text), text
    else:
        assert kind == "free"


def _mixed_requests(llm):
    """(prompt, params, kind, spec) for a batch mixing both routes, unconstrained rows,
    three schemas, a regex, Lark, GBNF, greedy and seeded sampling, long and short budgets."""
    reqs = []
    for i in range(18):
        budget = 20 if i % 3 == 2 else 64  # shorter budgets for some rows
        sampling = {"temperature": 0} if i % 2 == 0 else {"temperature": 0.8, "seed": i}
        schema = SCHEMAS[i % 3]
        kind = i % 6
        if kind == 0:
            reqs.append((f"Describe a {['person', 'book', 'weather report'][i % 3]} as JSON.",
                         _processor({"json_schema": schema}, max_tokens=budget, **sampling), "json", schema))
        elif kind == 1:
            reqs.append((f"Give one {['person', 'book', 'weather report'][i % 3]} as JSON.",
                         _backend(json=schema, max_tokens=budget, **sampling), "json", schema))
        elif kind == 2:
            reqs.append(("Write a date.", _processor({"regex": DATE}, max_tokens=budget, **sampling), "regex", DATE))
        elif kind == 3:
            reqs.append(("Write a tuple.", _processor({"lark": LARK}, max_tokens=budget, **sampling), "lark", LARK))
        elif kind == 4:
            reqs.append(("Is the sky blue?", _backend(grammar=GBNF, max_tokens=budget, **sampling), "gbnf", GBNF))
        else:
            reqs.append(("Tell me a short story.", SamplingParams(max_tokens=budget, **sampling), "free", None))
    # Two rows whose budget is exactly the fewest tokens a Book document takes: whatever
    # the model prefers, the budget binds, so these end at max_tokens, complete.
    book = SCHEMAS[1]
    tight = constrain.compile(constrain.JsonSchema(book), constrain.Vocabulary.from_tokenizer(llm.get_tokenizer()))
    least = tight.min_tokens()
    reqs.append(("Describe a book as JSON.", _processor({"json_schema": book}, max_tokens=least, temperature=0),
                 "json", book))
    reqs.append(("Give one book as JSON.", _backend(json=book, max_tokens=least, temperature=0.8, seed=3),
                 "json", book))
    return [(_chat(llm, p), sp, k, s) for p, sp, k, s in reqs]


def test_mixed_batch_every_constrained_output_is_valid(llm):
    reqs = _mixed_requests(llm)
    out = llm.generate([r[0] for r in reqs], [r[1] for r in reqs], use_tqdm=False)
    for (_, params, kind, spec), o in zip(reqs, out):
        assert len(o.outputs[0].token_ids) <= params.max_tokens
        _check(kind, spec, o.outputs[0].text)
    for o in out[-2:]:  # the rows with the tightest budget: ended at max_tokens, complete all the same
        assert o.outputs[0].finish_reason == "length"
        assert len(o.outputs[0].token_ids) == reqs[-1][1].max_tokens


@pytest.mark.parametrize("route", ["processor", "backend"])
def test_documents_cut_by_max_tokens_are_complete(llm, route):
    schema = Book.model_json_schema()
    prompts = [_chat(llm, f"Write a long book entry with many tags, number {i}.") for i in range(4)]
    params = [_processor({"json_schema": schema}, max_tokens=n, temperature=0) if route == "processor"
              else _backend(json=schema, max_tokens=n, temperature=0) for n in (24, 27, 30, 34)]
    out = llm.generate(prompts, params, use_tqdm=False)
    for o, p in zip(out, params):
        assert len(o.outputs[0].token_ids) <= p.max_tokens
        jsonschema.validate(json.loads(o.outputs[0].text), schema)


def test_bad_specs_are_refused_at_admission(llm):
    prompt = _chat(llm, "Hi")
    with pytest.raises(VLLMValidationError, match=r"constrain: .*position"):
        llm.generate([prompt], _processor({"regex": "a(b"}, max_tokens=8), use_tqdm=False)
    with pytest.raises(VLLMValidationError, match="exactly one"):
        llm.generate([prompt], _processor({"regex": "a", "gbnf": GBNF}, max_tokens=8), use_tqdm=False)
    with pytest.raises(VLLMValidationError, match="constrain: "):
        llm.generate([prompt], _backend(json={"type": "object", "properties": {"a": {"type": "strin"}}},
                                        max_tokens=8), use_tqdm=False)
    # the engine goes on serving
    out = llm.generate([prompt], _processor({"regex": "(yes|no)"}, max_tokens=8, temperature=0), use_tqdm=False)
    assert out[0].outputs[0].text in ("yes", "no")
