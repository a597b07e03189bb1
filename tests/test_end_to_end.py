"""The bundled real model under constrain: typed JSON out, within the token budget."""

from typing import Literal

import pytest
import torch
from pydantic import BaseModel, Field

from constrain import assets
from constrain.integrations.transformers import generate


class Book(BaseModel):
    title: str = Field(max_length=40)
    year: int = Field(ge=1400, le=2030)
    genre: Literal["fantasy", "mystery", "history", "science"]
    authors: list[str] = Field(min_length=1, max_length=3)
    in_print: bool


@pytest.fixture(scope="module")
def smollm2():
    torch.set_num_threads(1)
    return assets.smollm2_model(), assets.smollm2_tokenizer()


@pytest.mark.parametrize("budget", [40, 96])
def test_bundled_model_returns_a_valid_instance(smollm2, budget):
    model, tok = smollm2
    chat = [{"role": "user", "content": "Describe a famous book as JSON."}]
    book = generate(model, tok, chat, Book, max_new_tokens=budget)
    assert isinstance(book, Book)
    assert 1400 <= book.year <= 2030 and 1 <= len(book.authors) <= 3


def test_sampled_outputs_stay_valid_at_a_tight_budget(smollm2):
    model, tok = smollm2
    for seed in range(3):
        torch.manual_seed(seed)
        chat = [{"role": "user", "content": f"Invent book number {seed} as JSON."}]
        book = generate(model, tok, chat, Book, max_new_tokens=32, do_sample=True, temperature=1.2)
        assert isinstance(book, Book)
