"""llama.cpp (llama-cpp-python) with the bundled SmolLM2 GGUF: the vocabulary read from
the model, greedy outputs equal to unconstrained ones where the grammar allows them,
every constrained output valid (also when max_tokens cuts it), generate() returning a
validated pydantic instance. Runs where llama-cpp-python is installed (make
test-llama-cpp); skipped elsewhere."""

import json
import re

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

import jsonschema  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

import constrain  # noqa: E402
from constrain import assets  # noqa: E402
from constrain.integrations.llama_cpp import LogitsProcessor, generate, vocabulary  # noqa: E402

pytestmark = pytest.mark.engine


class City(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=30)
    country: str
    population: int = Field(ge=0)


class Pet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    species: str = Field(pattern="^(cat|dog|bird|fish)$")
    age_years: int


@pytest.fixture(scope="module")
def llm():
    model = llama_cpp.Llama(model_path=str(assets.smollm2_gguf_path()), n_ctx=1024, n_threads=2, seed=0,
                            verbose=False)
    yield model
    model.close()


def _chat(llm, text, **kw):
    # Without a reset, llama-cpp-python reuses the cached prompt and evaluates only its last
    # token again, in a batch of one: other float rounding than the first evaluation,
    # enough to flip a near tie under greedy decoding.
    llm.reset()
    out = llm.create_chat_completion(messages=[{"role": "user", "content": text}], **kw)
    return out["choices"][0]["message"]["content"] or "", out["choices"][0]["finish_reason"]


def _constrained(llm, spec, max_tokens):
    grammar = constrain.compile(spec, vocabulary(llm))
    return llama_cpp.LogitsProcessorList([LogitsProcessor(grammar, max_tokens=max_tokens, n_ctx=llm.n_ctx())])


def test_vocabulary_is_the_gguf_tokenizers(llm):
    vocab = vocabulary(llm)
    assert vocabulary(llm) is vocab
    reference = constrain.Vocabulary.from_tokenizer(assets.smollm2_tokenizer())  # converted from the same GGUF
    assert vocab.size == reference.size == 49152
    assert set(vocab.eos_token_ids) >= {2}  # <|im_end|>
    ordinary = [i for i in range(vocab.size) if not vocab.is_special(i) and not reference.is_special(i)]
    assert len(ordinary) > 49000
    assert all(vocab.token_bytes(i) == reference.token_bytes(i) for i in ordinary)


def test_greedy_equals_unconstrained_where_the_grammar_allows_it(llm):
    for question in ("Name a fruit.", "What is the capital of Italy?", "Say hello."):
        text, _ = _chat(llm, question, max_tokens=20, temperature=0)
        for spec in (constrain.Regex(re.escape(text)), constrain.Regex(r"[\s\S]*")):
            got, _ = _chat(llm, question, max_tokens=20, temperature=0, logits_processor=_constrained(llm, spec, 20))
            assert got == text


@pytest.mark.parametrize("max_tokens", [14, 24, 64])
def test_constrained_outputs_are_valid_also_when_cut(llm, max_tokens):
    schema = City.model_json_schema()
    cases = [
        ("Describe a city as JSON.", City, lambda t: jsonschema.validate(json.loads(t), schema)),
        ("Describe a pet as JSON.", Pet, lambda t: Pet.model_validate_json(t)),
        ("Write a date.", constrain.Regex(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]"),
         lambda t: re.fullmatch(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]", t) or pytest.fail(t)),
        ("Answer yes or no.", constrain.GBNF('root ::= ("yes" | "no") "."'),
         lambda t: t in ("yes.", "no.") or pytest.fail(t)),
    ]
    for temperature in (0.0, 0.9):
        for prompt, spec, check in cases:
            if max_tokens == 14 and spec is Pet:
                continue  # its shortest document needs more tokens than that
            text, _ = _chat(llm, prompt, max_tokens=max_tokens, temperature=temperature, seed=3,
                            logits_processor=_constrained(llm, spec, max_tokens))
            check(text)


def test_generate_returns_a_validated_instance(llm):
    city = generate(llm, [{"role": "user", "content": "Describe Paris as JSON."}], City, max_tokens=48)
    assert isinstance(city, City)
    value = generate(llm, "The answer, as a JSON list of three integers: ", {"type": "array", "items": {"type": "integer"},
                                                                              "minItems": 3, "maxItems": 3}, max_tokens=24)
    assert isinstance(value, list) and len(value) == 3
    with pytest.raises(constrain.SpecError):
        generate(llm, "x", constrain.Regex("a("), max_tokens=4)


def test_a_token_outside_the_grammar_ends_the_generation(llm):
    """A processor run after constrain's that lets a forbidden token through: the next
    call notices it, ends the generation with EOS and keeps the error."""
    grammar = constrain.compile(constrain.Regex("[0-9]+"), vocabulary(llm))
    proc = LogitsProcessor(grammar, max_tokens=8)
    letter = vocabulary(llm).longest_match(b"a")[0]

    def force_letter(input_ids, scores):
        scores[:] = -1e9
        scores[letter] = 0.0
        return scores

    text, _ = _chat(llm, "Count.", max_tokens=8, temperature=0,
                    logits_processor=llama_cpp.LogitsProcessorList([proc, force_letter]))
    assert isinstance(proc.error, constrain.MatcherError)
