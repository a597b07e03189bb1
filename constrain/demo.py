"""The quick-start job: the bundled SmolLM2-135M-Instruct writes a typed JSON object.

Run with ``python -m constrain.demo``. Everything comes from installed packages; no
model hub is contacted.
"""

from __future__ import annotations

import argparse
import time
from typing import Literal

from pydantic import BaseModel, Field


class Character(BaseModel):
    name: str = Field(max_length=24)
    age: int = Field(ge=0, le=120)
    role: Literal["wizard", "knight", "thief", "bard"]
    alive: bool
    skills: list[str] = Field(max_length=3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--prompt", default="Invent a fantasy character for my story. Answer in JSON.")
    # A 135M model gains little from threads, and on a busy machine OpenMP threads that
    # wait for each other can slow every step down by an order of magnitude.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from . import assets
    from .integrations.transformers import generate

    torch.manual_seed(0)
    t0 = time.perf_counter()
    tokenizer = assets.smollm2_tokenizer()
    model = assets.smollm2_model()
    t1 = time.perf_counter()
    chat = [{"role": "user", "content": args.prompt}]
    character = generate(model, tokenizer, chat, Character, max_new_tokens=args.max_new_tokens)
    t2 = time.perf_counter()
    print(f"model loaded in {t1 - t0:.1f}s; generated in {t2 - t1:.1f}s (at most {args.max_new_tokens} new tokens)")
    print(repr(character))
    print(character.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
