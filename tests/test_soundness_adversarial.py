"""Soundness against an adversary: a randomly initialised model over the real Qwen2
tokenizer samples at temperature 1.5 under the constraint of real JSON Schemas from the
MaskBench dev set; every output, finished within its token budget, must validate."""

import gzip
import json
import warnings
from pathlib import Path

import pytest

import constrain
from conftest import real_tokenizer
from test_transformers import _generate, tiny_model

DEV = Path(__file__).resolve().parents[2] / "shared" / "maskbench" / "dev.jsonl.gz"
N_SCHEMAS = 200
BATCH = 8
MAX_NEW = 40


def _schemas():
    if not DEV.exists():
        pytest.skip(f"{DEV} not found (MaskBench data lives in ../shared)")
    rows = [json.loads(line) for line in gzip.open(DEV, "rt")]
    rows.sort(key=lambda r: r["id"])
    return rows[:: max(1, len(rows) // (N_SCHEMAS * 2))]


def _check_random_outputs(n_schemas: int, seed: int, **options) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    tok = real_tokenizer("qwen2")
    vocab = constrain.Vocabulary.from_tokenizer(tok, model_vocab_size=151_936, eos_token_ids=[151_643, 151_645])
    model = tiny_model(151_936, seed=seed)
    checked = skipped = 0
    rows = iter(_schemas())
    while checked < n_schemas:
        chunk = []
        for row in rows:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # Not cached: each batch's grammars are freed once it is checked.
                    g = constrain.compile(constrain.JsonSchema(row["schema"], **options), vocab, cache=False)
                    g.matcher(max_tokens=MAX_NEW + 1)
            except constrain.ConstrainError:
                skipped += 1  # an honest compile error, or a document longer than the budget
                continue
            chunk.append((row, g))
            if len(chunk) == BATCH:
                break
        if not chunk:
            break
        texts = _generate(
            model, vocab, [g for _, g in chunk], len(chunk), MAX_NEW, checked, do_sample=True, temperature=1.5, top_k=0
        )
        for (row, _), text in zip(chunk, texts):
            value = json.loads(text)
            validator = jsonschema.validators.validator_for(row["schema"])
            errors = list(validator(row["schema"], format_checker=validator.FORMAT_CHECKER).iter_errors(value))
            assert not errors, (row["id"], text, errors[0].message)
            if options.get("whitespace", "bounded") == "bounded":
                assert text == text.strip(), (row["id"], text)
            checked += 1
    assert checked >= n_schemas, f"only {checked} schemas checked ({skipped} skipped)"


def test_random_model_outputs_validate():
    _check_random_outputs(N_SCHEMAS, 3, whitespace=3)


def test_random_model_outputs_validate_closed_any_order():
    """The generation options: objects closed, declared keys in any order, bounded whitespace."""
    _check_random_outputs(64, 4, extra_properties=False, property_order="any")
