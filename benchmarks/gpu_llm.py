"""constrain.LLM on a CUDA device: correctness checks and throughput, in one short run.

Usage:

    python benchmarks/gpu_llm.py --tokenizer DIR [--model DIR] [--dtype bfloat16] [--requests 64]

``--tokenizer`` is a directory with the SmolLM2 tokenizer and ``config.json`` (the
converted checkpoint under constrain's cache directory holds both). Without ``--model``
the model is SmolLM2-135M's architecture with random weights (seeded): the speed of a
step does not depend on the weights, and a random model is an adversarial one for the
soundness checks; its outputs mean nothing.

Checks (printed as PASS/FAIL lines): greedy outputs with ``jump_forward`` off and
``"exact"`` (identical share reported: a multi-token extend and single steps may round
differently at a near-tie), with and without the prefix cache, every constrained output
in its language at temperature 1.5 over several grammars. Figures: tokens/s of
``constrain.LLM`` constrained and unconstrained at several batch sizes beside HF
``generate`` with constrain's logits processor (batch 8) on the same prompts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402


class Pet(BaseModel):
    name: str = Field(max_length=16)
    species: Literal["cat", "dog", "owl"]
    age: int = Field(ge=0, le=30)
    tricks: list[str] = Field(max_length=2)


class Order(BaseModel):
    id: int
    items: list[str] = Field(max_length=3)
    paid: bool


POINT = {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}, "required": ["x", "y"]}
DATE = r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"


def in_language(spec, text: str) -> bool:
    try:
        if spec in (Pet, Order):
            spec.model_validate_json(text)
            return True
        if isinstance(spec, dict):
            value = json.loads(text)
            return isinstance(value, dict) and set(value) >= {"x", "y"} and all(isinstance(value[k], int) for k in "xy")
        return re.fullmatch(DATE, text) is not None
    except Exception:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--model")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--batches", default="8,16,64")
    args = ap.parse_args()

    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    import constrain
    from constrain.integrations.transformers import LogitsProcessor
    from constrain.serving import LLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype)
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    if args.model:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype)
    else:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(args.tokenizer), dtype=dtype)
    model = model.to(device).eval()
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"device {name}; model {'random ' if not args.model else ''}{model.config.model_type} {args.dtype}; "
          f"torch {torch.__version__}")

    t0 = time.perf_counter()
    formats = [Pet, POINT, constrain.Regex(DATE), Order]
    specs = [Pet, POINT, DATE, Order]
    prompts = [f"Request {i}: write the answer." for i in range(8)]
    ok_all = True

    def check(label: str, ok: bool, detail: str = "") -> None:
        nonlocal ok_all
        ok_all &= ok
        print(f"{'PASS' if ok else 'FAIL'} {label} {detail}")

    outs = {}
    for jump in (False, "exact", "bytes"):
        with LLM(model, tok, max_batch_size=8, jump_forward=jump) as llm:
            got = []
            for fmt in formats:
                got += llm.generate(prompts, fmt, max_new_tokens=40)
            outs[jump] = (got, dict(llm.stats))
    base = outs[False][0]
    for jump in ("exact", "bytes"):
        got, stats = outs[jump]
        same = sum(a.token_ids == b.token_ids for a, b in zip(got, base))
        valid = sum(in_language(specs[i // len(prompts)], r.text) for i, r in enumerate(got))
        check(f"jump_forward={jump!r}: in language", valid == len(got), f"{valid}/{len(got)}")
        print(f"     identical to step by step: {same}/{len(got)}; forward passes {stats['forward_passes']} "
              f"(off: {outs[False][1]['forward_passes']}); forced tokens {stats['forced_tokens']}")
        if jump == "exact":
            check("jump_forward='exact' equals step by step (greedy)", same >= len(got) - 2, f"{same}/{len(got)}")
    with LLM(model, tok, max_batch_size=8, kv_cache_tokens=0) as nocache:
        got = []
        for fmt in formats:
            got += nocache.generate(prompts, fmt, max_new_tokens=40)
    same = sum(a.token_ids == b.token_ids for a, b in zip(got, outs["exact"][0]))
    check("prefix cache off equals on", same >= len(got) - 2, f"{same}/{len(got)}")
    with LLM(model, tok, max_batch_size=16) as llm:
        bad = 0
        total = 0
        for spec, fmt in zip(specs, formats):
            for seed in range(3):
                for r in llm.generate(prompts, fmt, max_new_tokens=40, temperature=1.5, seed=seed):
                    total += 1
                    bad += not (r.finish_reason == "stop" and in_language(spec, r.text))
        check("sampled at temperature 1.5, every output in its language", bad == 0, f"{total - bad}/{total}")
    print(f"checks took {time.perf_counter() - t0:.1f}s")

    # ---------------------------------------------------------------- throughput
    system = "You extract records as JSON. Follow the schema exactly. " * 20
    chats = [[{"role": "system", "content": system}, {"role": "user", "content": f"Record {i}."}]
             for i in range(args.requests)]
    workload = [Pet, Order] * (args.requests // 2)
    n = args.max_new_tokens
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for constrained in (True, False):
            with LLM(model, tok, max_batch_size=batch) as llm:
                llm.generate(chats[:batch], workload[:batch] if constrained else None, max_new_tokens=8)
                llm.reset_stats()
                if device == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                res = llm.generate(chats, workload if constrained else None, max_new_tokens=n)
                dt = time.perf_counter() - t
                s = llm.stats
                valid = sum(in_language(f, r.text) for f, r in zip(workload, res)) if constrained else None
                rows.append((f"constrain.LLM {'constrained' if constrained else 'unconstrained'}", batch,
                             s["generated_tokens"] / dt, s["forward_passes"], s["cached_prompt_tokens"] / s["prompt_tokens"],
                             s["forced_tokens"] / max(1, s["generated_tokens"]), valid, s["mask_ms"], s["overlap_ms"]))
    vocab = constrain.Vocabulary.from_tokenizer(tok, model_vocab_size=model.config.vocab_size)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    eos = list(vocab.eos_token_ids)
    for batch in (8,):
        for constrained in (True, False):
            generated = 0
            valid = 0
            t = time.perf_counter()
            for lo in range(0, len(chats), batch):
                part = chats[lo:lo + batch]
                texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in part]
                enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                kw = {}
                if constrained:
                    grammars = [constrain.compile(f, vocab) for f in workload[lo:lo + batch]]
                    kw["logits_processor"] = [LogitsProcessor(grammars, max_new_tokens=n)]
                with torch.inference_mode():
                    out = model.generate(**enc, max_new_tokens=n, do_sample=False, eos_token_id=eos,
                                         pad_token_id=eos[0], **kw)
                for j, row in enumerate(out[:, enc["input_ids"].shape[1]:].tolist()):
                    ids = [x for x in row if x not in eos]
                    generated += len(ids)
                    if constrained:
                        valid += in_language(workload[lo + j], vocab.decode_bytes(ids).decode("utf-8", "replace"))
            dt = time.perf_counter() - t
            rows.append((f"HF generate{' + processor' if constrained else ''}", batch, generated / dt, None, 0.0, 0.0,
                         valid if constrained else None, None, None))
    print(f"\nworkload: {args.requests} requests, shared system prompt, max_new_tokens {n}, greedy")
    print(f"{'system':34} {'batch':>5} {'tok/s':>9} {'passes':>7} {'cached':>7} {'forced':>7} {'valid':>6} "
          f"{'mask ms':>8} {'overlap':>8}")
    for name_, batch, tps, passes, cached, forced, valid, mask, overlap in rows:
        print(f"{name_:34} {batch:>5} {tps:9.1f} {passes if passes is not None else '-':>7} {cached:7.0%} "
              f"{forced:7.0%} {valid if valid is not None else '-':>6} "
              f"{(f'{mask:.0f}' if mask is not None else '-'):>8} {(f'{overlap:.0f}' if overlap is not None else '-'):>8}")
    hf8 = next(r[2] for r in rows if r[0] == "HF generate + processor" and r[1] == 8)
    for r in rows:
        if r[0] == "constrain.LLM constrained":
            unc = next(x[2] for x in rows if x[0] == "constrain.LLM unconstrained" and x[1] == r[1])
            print(f"batch {r[1]}: constrained {r[2] / hf8:.2f}x HF+processor@8; {r[2] / unc:.2f}x unconstrained")
    print("ALL CHECKS PASS" if ok_all else "SOME CHECKS FAILED")


if __name__ == "__main__":
    main()
