"""The bundled real model, plain-words prompts that do not list the fields, 64 new tokens:
outputs are valid, carry no key the pydantic model does not declare, end at their last
character, and fill their required string fields."""

from __future__ import annotations

import json
import os
from typing import Literal, Optional

import pytest
import torch
from pydantic import BaseModel, Field
from transformers import LogitsProcessorList

import constrain
from constrain import assets
from constrain.integrations.transformers import LogitsProcessor


class Item(BaseModel):
    sku: str
    quantity: int = Field(ge=1)


class Order(BaseModel):
    customer: str
    items: list[Item]
    express: bool


class Review(BaseModel):
    product: str
    stars: int = Field(ge=1, le=5)
    verdict: Literal["buy", "skip"]
    pros: list[str]


class Contact(BaseModel):
    name: str
    company: str
    email: str
    phone: Optional[str] = None


class Task(BaseModel):
    title: str
    assignee: str
    priority: Literal["low", "medium", "high"]
    done: bool


CASES = [
    (Order, ["Order two gardening books for Maria.", "Buy a red bicycle and a helmet for Tom."]),
    (Review, ["Review the headphones I bought last week.", "Is the Kindle Paperwhite worth buying?"]),
    (Contact, ["Save the contact of Jane Doe from Globex.", "New contact: Pedro Alvarez of Sunrise Foods."]),
    (Task, ["Ben must fix the login bug today, it is urgent.", "Alice should update the website footer."]),
]
BUDGET = 64


def _strings_and_extras(model: type[BaseModel], value: object, out: dict[str, int]) -> None:
    """Count undeclared keys and (non-empty) required string fields, nested models included."""
    if not isinstance(value, dict):
        return
    fields = model.model_fields
    out["undeclared"] += sum(k not in fields for k in value)
    for name, info in fields.items():
        if info.annotation is str and info.is_required():
            out["strings"] += 1
            out["filled"] += bool(value.get(name))
        inner = info.annotation
        args = getattr(inner, "__args__", ())
        for sub in (inner, *args):
            if isinstance(sub, type) and issubclass(sub, BaseModel) and name in value:
                items = value[name] if isinstance(value[name], list) else [value[name]]
                for v in items:
                    _strings_and_extras(sub, v, out)


@pytest.fixture(scope="module")
def smollm2():
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)  # (see conftest.py)
    tok = assets.smollm2_tokenizer()
    tok.padding_side = "left"
    model = assets.smollm2_model()
    vocab = constrain.Vocabulary.from_tokenizer(tok, model_vocab_size=model.config.vocab_size,
                                                generation_config=model.generation_config)
    return model, tok, vocab


def test_outputs_mean_what_the_model_declares(smollm2):
    model, tok, vocab = smollm2
    counts = {"undeclared": 0, "strings": 0, "filled": 0}
    outputs = []
    for cls, prompts in CASES:
        grammar = constrain.compile(cls, vocab)
        texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                 for p in prompts]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=BUDGET, do_sample=False, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id,
                                 logits_processor=LogitsProcessorList([LogitsProcessor(grammar, max_new_tokens=BUDGET)]))
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            ids = row[: row.index(tok.eos_token_id)] if tok.eos_token_id in row else row
            text = vocab.decode_bytes(ids).decode("utf-8")
            outputs.append(text)
            cls.model_validate_json(text)  # valid, whatever else
            assert text == text.strip(), f"whitespace around the document: {text!r}"
            _strings_and_extras(cls, json.loads(text), counts)
    print("\n".join(outputs))
    assert counts["undeclared"] == 0, outputs
    assert counts["filled"] >= 0.75 * counts["strings"], (counts, outputs)
