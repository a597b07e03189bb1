"""transformers integration: the LogitsProcessor under greedy and sampled generate, batches
with different grammars per row, padded logit widths, budgets; an adversarial
random-weight model over the real Qwen2 tokenizer."""

import json
import re

import pytest
import torch

import constrain
from constrain.integrations.transformers import LogitsProcessor
from conftest import real_tokenizer, real_vocab


def tiny_model(vocab_size: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # spread the logits: the adversary should propose anything
        model.lm_head.weight.normal_(0, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def qwen():
    tok = real_tokenizer("qwen2")
    vocab = constrain.Vocabulary.from_tokenizer(tok, model_vocab_size=151_936, eos_token_ids=[151_643, 151_645])
    return tok, vocab, tiny_model(151_936)


def _generate(model, vocab, grammars, batch, max_new_tokens, seed, **kw):
    torch.manual_seed(seed)
    proc = LogitsProcessor(grammars, max_new_tokens=max_new_tokens)
    prompt = torch.full((batch, 3), 100, dtype=torch.long)
    eos = list(vocab.eos_token_ids)
    out = model.generate(
        input_ids=prompt,
        attention_mask=torch.ones_like(prompt),
        logits_processor=[proc],
        max_new_tokens=max_new_tokens,
        eos_token_id=eos,
        pad_token_id=eos[0],
        **kw,
    )
    texts = []
    for row in out[:, 3:].tolist():
        ids = []
        for t in row:
            if t in eos:
                break
            ids.append(t)
        texts.append(vocab.decode_bytes(ids).decode("utf-8"))
    return texts


@pytest.mark.parametrize("budget", [12, 24])
def test_regex_sampled_batch_within_budget(qwen, budget):
    _, vocab, model = qwen
    pattern = r"(ab|[0-9]{1,3}|é)+(,(ab|[0-9]{1,3}|é)+)*!"
    g = constrain.compile(constrain.Regex(pattern), vocab)
    for seed in range(3):
        texts = _generate(model, vocab, g, 4, budget, seed, do_sample=True, temperature=1.5, top_k=0)
        for t in texts:
            assert re.fullmatch(pattern, t), t


def test_rows_with_different_grammars(qwen):
    _, vocab, model = qwen
    pats = [r"[a-z]{3,8}", r"\d{2}-\d{2}", r"(yes|no)"]
    grammars = [constrain.compile(constrain.Regex(p), vocab) for p in pats]
    texts = _generate(model, vocab, grammars, 3, 16, 0, do_sample=True, temperature=1.5, top_k=0)
    for p, t in zip(pats, texts):
        assert re.fullmatch(p, t), (p, t)
    texts = _generate(model, vocab, grammars, 3, 16, 0, do_sample=False)
    for p, t in zip(pats, texts):
        assert re.fullmatch(p, t), (p, t)


def test_wrong_number_of_grammars(qwen):
    _, vocab, model = qwen
    g = constrain.compile(constrain.Regex("a"), vocab)
    with pytest.raises(ValueError):
        _generate(model, vocab, [g, g], 3, 4, 0)


def test_json_schema_adversarial(qwen):
    _, vocab, model = qwen
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
            "ok": {"type": "boolean"},
        },
        "required": ["name", "age", "tags", "ok"],
        "additionalProperties": False,
    }
    g = constrain.compile(constrain.JsonSchema(schema, whitespace=2), vocab)
    for seed in range(4):
        for text in _generate(model, vocab, g, 2, 48, seed, do_sample=True, temperature=1.5, top_k=0):
            jsonschema.validate(json.loads(text), schema)
