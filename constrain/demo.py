"""The quick-start job: the bundled SmolLM2-135M-Instruct writes typed JSON objects.

A small batch of requests runs through :class:`constrain.LLM` (continuous batching, a
shared system prompt served from the prefix cache, forced tokens joined to the model's
passes). Run with ``python -m constrain.demo``. Everything comes from installed packages;
no model hub is contacted.
"""

from __future__ import annotations

import argparse
import time
from typing import Annotated, Literal

from pydantic import BaseModel, Field


class Character(BaseModel):
    name: str = Field(max_length=24)
    age: int = Field(ge=0, le=120)
    role: Literal["wizard", "knight", "thief", "bard"]
    alive: bool
    skills: list[Annotated[str, Field(max_length=32)]] = Field(max_length=3)


SYSTEM = (
    "You are the game master's assistant. Characters you invent are original, fit a classic "
    "fantasy setting, and come with a short name, an age in years, one role and a few skills."
)
REQUESTS = [
    "Invent a fantasy character for my story. Answer in JSON.",
    "Invent an old wizard who lives in a tower. Answer in JSON.",
    "Invent a young thief from the harbour district. Answer in JSON.",
    "Invent a knight who lost a battle. Answer in JSON.",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="constrain demo", description=__doc__)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--requests", type=int, default=len(REQUESTS), help="how many of the built-in prompts to run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from .serving import LLM

    t0 = time.perf_counter()
    llm = LLM.bundled(max_batch_size=8)
    t1 = time.perf_counter()
    chats = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": REQUESTS[i % len(REQUESTS)]}]
             for i in range(args.requests)]
    results = llm.generate(chats, Character, max_new_tokens=args.max_new_tokens)
    t2 = time.perf_counter()
    for r in results:
        print(repr(r.value))
    stats = llm.stats
    generated = int(stats["generated_tokens"])
    print(
        f"model loaded in {t1 - t0:.1f}s; {len(results)} objects, {generated} tokens in {t2 - t1:.1f}s "
        f"({generated / (t2 - t1):.1f} tokens/s, first run includes compiling the schema)"
    )
    print(
        f"prompt tokens {int(stats['prompt_tokens'])}, from the prefix cache {int(stats['cached_prompt_tokens'])}; "
        f"forced tokens {int(stats['forced_tokens'])} of {generated}; forward passes {int(stats['forward_passes'])}"
    )
    llm.shutdown()


if __name__ == "__main__":
    main()
