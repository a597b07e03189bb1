"""Serving throughput and latency: ``constrain.LLM`` against ``transformers`` generation.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_llm.py                 # 32 requests, 96 new tokens (~20 min on 2 cores)
    .venv/bin/python benchmarks/bench_llm.py --quick         # 8 requests, 48 new tokens, batch sweep 1 and 8
    .venv/bin/python benchmarks/bench_llm.py --server        # OpenAI-compatible server under load

A JSON-extraction workload: ``--requests`` requests over four bounded pydantic models (a
game character, a contact card, an order with a list of items, a product review with a
rating enum), every prompt the same ~300-token system prompt (an extraction assistant's
rules and two worked examples) then a short user message, SmolLM2 chat template, greedy,
``--max-new-tokens`` new tokens at most. The bundled SmolLM2-135M-Instruct runs on the CPU
in float32 with ``--threads`` torch threads. In one process, on the same prompts:

* ``constrain.LLM`` constrained (one pydantic model per request), ``max_batch_size`` 1, 4,
  8, 16, 32 (``--sweep``); the default 16 is the headline row;
* ``constrain.LLM`` unconstrained (``response_format=None``), the same sweep;
* ``constrain.LLM`` constrained with ``jump_forward`` False / ``"exact"`` / ``"bytes"`` at
  the default batch size: forward passes, tokens/s and the share of outputs identical to
  the ``jump_forward=False`` run;
* ``model.generate`` with constrain's ``transformers`` ``LogitsProcessor`` (one grammar
  per row), requests in order in chunks of 1, 2, 4, 8, left padded;
* ``transformers``' own continuous batching, ``model.generate_batch`` (unconstrained), on a
  separate copy of the model, when this ``transformers`` runs it on this machine.

Every path is warmed up first with a few requests under a different system prompt (torch's
first passes, numba's kernels, the grammars' compiles), and the prefix cache of
``constrain.LLM`` is cleared before each timed run: a timed run is a burst of requests
arriving together at a warm server that has not seen the benchmark's prompts. Each
configuration is timed once (a 2-core machine cannot afford repeats); compiled grammars
are shared by every run, as a server shares them, so masks memoized in one run are reused
by the next.

Time to first token is measured from the submission of the whole burst: queueing included.
``constrain.LLM``: ``Completion.ttft_s``. ``model.generate``: chunks run one after another,
so a request's TTFT is the wall time of the chunks before its own plus a separate
``max_new_tokens=1`` generate of its chunk (prefill and the first token, its processor
included), timed apart and not counted in the wall time. ``generate_batch``: the first of
``record_timestamps`` from the start of the call (manager start-up included).

Generated tokens exclude the closing EOS (for every system); an output is *valid* when
``Model.model_validate_json`` accepts the text before EOS as it is.

``--server`` starts ``constrain.serving.server.create_app(llm)`` under uvicorn on a
background thread and sends ``--server-requests`` chat completions with a strict
``json_schema`` response format from ``--clients`` threads through the ``openai`` client:
latency p50/p99/max, every output checked with ``jsonschema``, the process's resident
memory before and after, and the KV budget (running slots and prefix cache).

Figures go to ``benchmarks/results/llm.json`` and the throughput/latency frontier to
``benchmarks/results/llm_frontier.png`` (matplotlib, when installed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pydantic import BaseModel, Field  # noqa: E402

import _harness  # noqa: E402

RESULTS_DIR = _harness.BENCH_DIR / "results"


# --------------------------------------------------------------------------- workload


class Character(BaseModel):
    name: str = Field(max_length=24)
    species: Literal["human", "elf", "dwarf", "orc", "robot", "dragon"]
    age: int = Field(ge=0, le=999)
    skills: list[Annotated[str, Field(max_length=16)]] = Field(max_length=3)


class Contact(BaseModel):
    name: str = Field(max_length=30)
    email: str = Field(max_length=40)
    phone: str = Field(max_length=20)
    city: str = Field(max_length=24)
    country: str = Field(max_length=24)


class OrderItem(BaseModel):
    product: str = Field(max_length=20)
    quantity: int = Field(ge=1, le=99)
    unit_price: float = Field(ge=0, le=10000)


class Order(BaseModel):
    order_id: str = Field(max_length=10)
    customer: str = Field(max_length=24)
    items: list[OrderItem] = Field(max_length=3)
    express: bool


class Review(BaseModel):
    product: str = Field(max_length=30)
    rating: Literal[1, 2, 3, 4, 5]
    sentiment: Literal["positive", "neutral", "negative"]
    summary: str = Field(max_length=60)


MODELS: tuple[type[BaseModel], ...] = (Character, Contact, Order, Review)

SYSTEM_PROMPT = """You are ExtractBot, a careful data-extraction assistant. Each user message holds a short
text and names the record to fill in: a Character, a Contact, an Order or a Review. Read the
text and return the record as one JSON object.

Rules:
1. Reply with one JSON object only: no markdown, no comments, no text around it.
2. Use exactly the record's field names; add none, leave none out.
3. Copy names, places, products and identifiers exactly as written.
4. Numbers are plain JSON numbers: no units, currency signs or separators.
5. When the text does not say something, make a short, plausible guess.
6. Keep free-text fields to a few words. Lists hold three entries at most.

Example 1
User: Record a Contact. "Reach Maria Lopez at maria.lopez@example.com or +34 612 345 678; she lives in Valencia, Spain."
Assistant: {"name": "Maria Lopez", "email": "maria.lopez@example.com", "phone": "+34 612 345 678", "city": "Valencia", "country": "Spain"}

Example 2
User: Record a Review. "The TrailMax 2 boots leak after a week. Two stars, and only because they look nice."
Assistant: {"product": "TrailMax 2 boots", "rating": 2, "sentiment": "negative", "summary": "Leak after a week but look nice"}
"""

# The warm-up prompts are as long as the benchmark's (the running batch's key/value slots
# grow, by reallocation, to the longest prompt plus max_new_tokens: that must happen in the
# warm-up) but start differently, so none of their prefix-cache blocks match a timed prompt.
WARMUP_SYSTEM_PROMPT = ("Warm-up run. You are a helpful assistant who always answers in JSON, briefly and "
                        "politely, whatever the question, and never adds text around the JSON object.\n\n"
                        + SYSTEM_PROMPT)

USER_TEXTS: dict[type[BaseModel], list[str]] = {
    Character: [
        "Thorin Oakenshield, a 195-year-old dwarf, is a master smith and a stubborn negotiator.",
        "Unit K-7 is a cleaning robot, built 12 years ago, that has learned to paint and to sing.",
        "Lyra Windwhisper is an elf archer of 340 who also tracks animals and speaks five languages.",
        "Grok the orc, 31, is the camp cook; he can also wrestle bears.",
        "Ember is a young dragon, barely 80, who hoards books instead of gold and can read runes.",
        "Captain Elena Voss, 42, a human pilot, knows navigation, engine repair and card games.",
        "Pip Underbough is a human child of 9 who climbs trees and picks locks.",
        "Old Master Quill, a 610-year-old elf, teaches calligraphy, astronomy and patience.",
    ],
    Contact: [
        "Please add Jonas Berg, jonas.berg@nordmail.se, phone +46 70 123 45 67, based in Gothenburg, Sweden.",
        "Our new supplier contact is Aiko Tanaka (aiko@tanaka-fabrics.jp), Osaka office, tel. 06-1234-5678.",
        "Call Dr. Samuel Okafor on +234 803 555 0199 or email s.okafor@lagosclinic.ng, Lagos, Nigeria.",
        "Write to Claire Dubois at claire.dubois@atelier.fr; she is in Lyon, France, phone 04 72 00 11 22.",
        "Raj Patel, raj.patel@example.in, mobile +91 98200 12345, lives in Mumbai.",
        "The venue manager is Tom Harris, tom@harrishall.co.uk, 020 7946 0018, London, UK.",
        "Contact Ana Silva in Porto, Portugal: ana.silva@correio.pt, +351 912 345 678.",
        "Lukas Novak handles billing: lukas.novak@firma.cz, +420 602 111 222, Brno, Czech Republic.",
    ],
    Order: [
        "Order A-1042 from Jane Smith: two USB-C cables at 9.99 each and one laptop stand at 34.50, express.",
        "Bob's Bakery orders 20 bags of flour at 3.20 and 5 kilos of butter at 8.75. Order B-77, standard post.",
        "Order 5531 for Mei Chen: one espresso machine, 249.00. Ship it express please.",
        "Customer Omar Haddad, order OH-9: 3 notebooks at 4.50, 10 pens at 1.20, 1 stapler at 12.00.",
        "Order Z-300: Lena Fischer buys one yoga mat for 29.90 and two water bottles at 15.00 each, express.",
        "Please log order 8812 for Carlos Mendez, 4 tyres at 89.99, regular delivery.",
        "Order K-5 from Priya Nair: one desk lamp at 42.00 and 6 light bulbs at 2.49, no rush.",
        "Order Q-61 for Hans Weber: a chess set at 55.00, express shipping.",
    ],
    Review: [
        "Review of the Zenith X headphones: crisp sound, comfy, battery lasts forever. Five stars!",
        "The QuickBrew kettle is fine. Boils fast, a bit loud. Three out of five.",
        "Terrible experience with the FlexiDesk: wobbly, missing screws. One star.",
        "Sunny Days sunscreen works well and does not smell. I'd give it four stars.",
        "The Nimbus umbrella broke in the first storm. Two stars at most.",
        "Loved the Aurora reading lamp, warm light and easy to adjust, 5/5.",
        "PixelPad tablet: decent screen, slow charger, average overall, 3 stars.",
        "The HomeChef knife set is sharp and well balanced; four stars.",
    ],
}


def workload(n: int) -> list[tuple[type[BaseModel], list[dict[str, str]]]]:
    """``n`` requests, the four models in turn, each a (model, chat) pair."""
    out = []
    for i in range(n):
        model = MODELS[i % len(MODELS)]
        texts = USER_TEXTS[model]
        text = texts[(i // len(MODELS)) % len(texts)]
        user = f'Record a {model.__name__}. "{text}"'
        out.append((model, [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]))
    return out


def warmup_workload() -> list[tuple[type[BaseModel], list[dict[str, str]]]]:
    """One request per model under a different system prompt of the same length or more."""
    return [(m, [{"role": "system", "content": WARMUP_SYSTEM_PROMPT},
                 {"role": "user", "content": f'Record a {m.__name__}. "{USER_TEXTS[m][-1]}"'}]) for m in MODELS]


# --------------------------------------------------------------------------- figures


def pct(values: Sequence[float], q: float) -> float:
    return _harness.percentile(sorted(values), q)


def validate(model: type[BaseModel], text: str) -> bool:
    try:
        model.model_validate_json(text)
        return True
    except Exception:  # pydantic.ValidationError; a malformed text can raise nothing else here
        return False


def summarize(name: str, system: str, batch: int, wall: float, texts: list[str], token_counts: list[int],
              ttfts: list[float], models: list[type[BaseModel]], *, forward_passes: int | None = None,
              prefill_tokens: int | None = None, prompt_tokens: int | None = None,
              cached_tokens: int | None = None, forced_tokens: int | None = None,
              finish: list[str] | None = None, extra: dict | None = None) -> dict:
    gen = sum(token_counts)
    rec = {
        "name": name, "system": system, "batch": batch, "requests": len(texts), "wall_s": wall,
        "generated_tokens": gen, "tokens_per_s": gen / wall if wall else 0.0,
        "requests_per_s": len(texts) / wall if wall else 0.0,
        "ttft_mean_s": statistics.fmean(ttfts) if ttfts else None,
        "ttft_p50_s": pct(ttfts, 50) if ttfts else None,
        "ttft_p90_s": pct(ttfts, 90) if ttfts else None,
        "forward_passes": forward_passes, "prefill_tokens": prefill_tokens, "prompt_tokens": prompt_tokens,
        "cached_prompt_tokens": cached_tokens,
        "cache_hit_rate": (cached_tokens / prompt_tokens) if cached_tokens is not None and prompt_tokens else None,
        "forced_tokens": forced_tokens,
        "forced_share": (forced_tokens / gen) if forced_tokens is not None and gen else None,
        "valid": sum(validate(m, t) for m, t in zip(models, texts)),
        "finish_reasons": {r: finish.count(r) for r in sorted(set(finish))} if finish else None,
        "texts": texts, "ttfts_s": ttfts,
    }
    if extra:
        rec.update(extra)
    return rec


def table_row(r: dict) -> list[str]:
    def f(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    return [
        r["name"], str(r["batch"]), f"{r['wall_s']:.1f}", str(r["generated_tokens"]), f"{r['tokens_per_s']:.1f}",
        f"{r['requests_per_s']:.2f}", f(r["ttft_mean_s"], ".2f"), f(r["ttft_p50_s"], ".2f"), f(r["ttft_p90_s"], ".2f"),
        f(r["forward_passes"], "d"), f(r["prefill_tokens"], "d"),
        "-" if r["cache_hit_rate"] is None else f"{100 * r['cache_hit_rate']:.0f}%",
        "-" if r["forced_share"] is None else f"{100 * r['forced_share']:.1f}%",
        f"{r['valid']}/{r['requests']}",
    ]


TABLE_HEADERS = ["system", "batch", "wall s", "gen tokens", "tokens/s", "req/s", "TTFT mean s", "p50 s", "p90 s",
                 "forward passes", "prefill tokens", "prefix hit", "forced", "valid"]


# --------------------------------------------------------------------------- constrain.LLM


def make_llm(model, tok, **kw):
    import constrain

    return constrain.LLM(model, tok, **kw)


def warm_llm(llm, max_new: int) -> None:
    """A few constrained and free requests under the warm-up system prompt (with the timed
    runs' ``max_new_tokens``: the key/value slots are sized at admission); then an empty prefix cache."""
    wl = warmup_workload()
    llm.generate([c for _, c in wl], [m for m, _ in wl], max_new_tokens=max_new)
    llm.generate([c for _, c in wl[:2]], None, max_new_tokens=8)
    llm.engine.cache.clear()
    llm.reset_stats()


def run_llm(llm, wl, constrained: bool, max_new: int, name: str, batch: int) -> dict:
    llm.engine.cache.clear()
    llm.reset_stats()
    capacity = llm.engine.store.capacity
    chats = [c for _, c in wl]
    models = [m for m, _ in wl]
    t0 = time.perf_counter()
    out = llm.generate(chats, models if constrained else None, max_new_tokens=max_new, temperature=0.0)
    wall = time.perf_counter() - t0
    st = llm.stats
    return summarize(
        name, "constrain.LLM", batch, wall, [c.text for c in out], [len(c.token_ids) for c in out],
        [c.ttft_s for c in out if c.ttft_s is not None], models,
        forward_passes=int(st["forward_passes"]), prefill_tokens=int(st["prefill_tokens"]),
        prompt_tokens=int(st["prompt_tokens"]), cached_tokens=int(st["cached_prompt_tokens"]),
        forced_tokens=int(st["forced_tokens"]), finish=[c.finish_reason for c in out],
        extra={"constrained": constrained, "stats": st, "token_ids": [c.token_ids for c in out],
               "kv_slots_mib": llm.engine.store.nbytes() / 2**20, "kv_slot_positions": llm.engine.store.capacity,
               "prefix_cache_mib": llm.engine.cache.nbytes() / 2**20,
               "kv_slots_grew_in_run": llm.engine.store.capacity > capacity},
    )


# --------------------------------------------------------------------------- model.generate + processor


def hf_batch(tok, chats: list[list[dict[str, str]]]):
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
    return tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)


def hf_generate(model, enc, grammars, max_new: int, eos_ids: list[int], budget: int | None = None):
    """Greedy ``model.generate`` with a fresh processor (its token budget ``budget``, default
    ``max_new``); returns (generated rows, wall seconds)."""
    import torch
    from transformers import LogitsProcessorList

    from constrain.integrations.transformers import LogitsProcessor

    proc = LogitsProcessor(grammars, max_new_tokens=budget or max_new)
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = model.generate(**enc, logits_processor=LogitsProcessorList([proc]), max_new_tokens=max_new,
                             do_sample=False, eos_token_id=eos_ids, pad_token_id=eos_ids[0])
        wall = time.perf_counter() - t0
    return out[:, enc["input_ids"].shape[1]:].tolist(), wall


def before_eos(row: list[int], eos_ids: set[int]) -> list[int]:
    for i, t in enumerate(row):
        if t in eos_ids:
            return row[:i]
    return row


def run_hf(model, tok, wl, grammars: dict, batch: int, max_new: int, eos_ids: list[int]) -> dict:
    eos = set(eos_ids)
    texts: list[str] = []
    counts: list[int] = []
    ttfts: list[float] = []
    finish: list[str] = []
    wall = 0.0
    passes = 0
    prefill = 0
    prompt = 0
    for lo in range(0, len(wl), batch):
        chunk = wl[lo:lo + batch]
        enc = hf_batch(tok, [c for _, c in chunk])
        gs = [grammars[m] for m, _ in chunk]
        # Prefill and the first token, timed apart; the processor keeps the real budget so the
        # first mask is the one of the full run.
        _, first = hf_generate(model, enc, gs, 1, eos_ids, budget=max_new)
        ttfts.extend([wall + first] * len(chunk))
        rows, w = hf_generate(model, enc, gs, max_new, eos_ids)
        wall += w
        passes += max(len(r) for r in rows)  # one pass per step (the first is the prefill)
        prefill += int(enc["input_ids"].numel())  # padding included: generate computes it
        prompt += int(enc["attention_mask"].sum())
        for r in rows:
            ids = before_eos(r, eos)
            texts.append(tok.decode(ids, skip_special_tokens=True))
            counts.append(len(ids))
            finish.append("stop" if len(ids) < len(r) else "length")
    return summarize(f"HF generate + LogitsProcessor", "hf+processor", batch, wall, texts, counts, ttfts,
                     [m for m, _ in wl], forward_passes=passes, prefill_tokens=prefill, prompt_tokens=prompt,
                     cached_tokens=None, forced_tokens=None, finish=finish)


# --------------------------------------------------------------------------- generate_batch


def run_generate_batch(tok, wl, max_new: int, eos_ids: list[int], warm_chats) -> tuple[dict | None, str | None]:
    """``transformers``' continuous batching on a fresh copy of the model; (record, None) or (None, why)."""
    import torch

    from constrain import assets

    try:
        from transformers import GenerationConfig
    except ImportError as exc:
        return None, f"transformers has no GenerationConfig: {exc}"
    model = assets.smollm2_model()
    if not hasattr(model, "generate_batch"):
        return None, f"transformers {_version('transformers')} has no model.generate_batch"

    def ids_of(chats):
        out = []
        for c in chats:
            text = tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            out.append(list(tok(text, add_special_tokens=False)["input_ids"]))
        return out

    cfg = GenerationConfig(max_new_tokens=max_new, do_sample=False, eos_token_id=eos_ids, pad_token_id=eos_ids[0])
    inputs = ids_of([c for _, c in wl])
    attn_before = model.config._attn_implementation
    eos = set(eos_ids)
    try:
        with torch.inference_mode():
            warm = model.generate_batch(inputs=ids_of(warm_chats), generation_config=cfg)
            if not warm or any(o.error for o in warm.values()):
                return None, f"warm-up failed: {[o.error for o in warm.values()] if warm else 'no outputs'}"
            t0 = time.perf_counter()
            res = model.generate_batch(inputs=inputs, generation_config=cfg, record_timestamps=True)
            wall = time.perf_counter() - t0
    except Exception as exc:  # whatever the peer raises on this machine is reported, never fatal
        return None, f"generate_batch failed: {type(exc).__name__}: {str(exc)[:300]}"
    outs = list(res.values())
    if len(outs) != len(inputs) or any(o.error for o in outs):
        return None, f"generate_batch returned {len(outs)}/{len(inputs)} outputs, errors: " \
                     f"{[o.error for o in outs if o.error][:2]}"
    texts, counts, ttfts, finish = [], [], [], []
    for o in outs:
        ids = before_eos(list(o.generated_tokens), eos)
        texts.append(tok.decode(ids, skip_special_tokens=True))
        counts.append(len(ids))
        finish.append("stop" if len(ids) < len(o.generated_tokens) else "length")
        if o.timestamps:
            ttfts.append(o.timestamps[0] - t0)
    busy = max(o.lifespan[1] for o in outs) - min(o.created_time for o in outs)
    rec = summarize("transformers generate_batch (free)", "generate_batch", len(inputs), wall, texts, counts, ttfts,
                    [m for m, _ in wl], prompt_tokens=sum(map(len, inputs)), finish=finish,
                    extra={"busy_s": busy, "attn_implementation": model.config._attn_implementation,
                           "attn_implementation_before": attn_before})
    return rec, None


# --------------------------------------------------------------------------- reporting


def _version(pkg: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def plot_frontier(records: list[dict], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no frontier picture"
    series = [
        ("constrain.LLM constrained", lambda r: r["name"] == "constrain.LLM constrained", "o-"),
        ("constrain.LLM unconstrained", lambda r: r["name"] == "constrain.LLM unconstrained", "s--"),
        ("HF generate + constrain LogitsProcessor", lambda r: r["system"] == "hf+processor", "^-"),
        ("transformers generate_batch (unconstrained)", lambda r: r["system"] == "generate_batch", "D"),
    ]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for label, pick, style in series:
        pts = sorted({(r["batch"], r["ttft_mean_s"], r["tokens_per_s"]) for r in records
                      if pick(r) and r["ttft_mean_s"] is not None})
        if not pts:
            continue
        xs = [p[1] for p in pts]
        ys = [p[2] for p in pts]
        ax.plot(xs, ys, style, label=label)
        for b, x, y in pts:
            ax.annotate("all" if label.startswith("transformers") else f"{b}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("mean time to first token (s), burst submitted at once")
    ax.set_ylabel("generated tokens / s")
    ax.set_title("SmolLM2-135M, CPU: throughput vs time to first token (labels: batch size)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"frontier picture: {path.relative_to(_harness.REPO_ROOT)}"


def machine_lines(threads: int) -> str:
    import torch

    info = _harness.machine_info(("constrain",))
    lines = [ln for ln in info.splitlines() if not ln.startswith("threads")]
    lines.append(f"threads : torch {torch.get_num_threads()} intra-op (--threads {threads}); "
                 f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    lines.append("model   : SmolLM2-135M-Instruct (bundled), CPU float32, greedy")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main benchmark


def main_bench(args) -> None:
    import torch

    import constrain
    from constrain import assets

    t_start = time.perf_counter()
    n_req = args.requests or (8 if args.quick else 32)
    max_new = args.max_new_tokens or (48 if args.quick else 96)
    sweep = [int(b) for b in (args.sweep or ("1,8" if args.quick else "1,4,8,16,32")).split(",") if b.strip()]
    hf_batches = [int(b) for b in (args.hf_batches or ("1,8" if args.quick else "1,2,4,8")).split(",") if b.strip()]
    default_bs = args.max_batch_size
    llm_batches = sorted(set(sweep) | {default_bs})

    print(machine_lines(args.threads))
    tok = assets.smollm2_tokenizer()
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = assets.smollm2_model()
    wl = workload(n_req)
    sys_tokens = len(tok(SYSTEM_PROMPT, add_special_tokens=False)["input_ids"])
    prompt_lens = [len(tok(tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True),
                           add_special_tokens=False)["input_ids"]) for _, c in wl]
    print(f"workload: {n_req} requests over {', '.join(m.__name__ for m in MODELS)}; system prompt {sys_tokens} "
          f"tokens; prompts {min(prompt_lens)}-{max(prompt_lens)} tokens (chat template); max_new_tokens {max_new}")
    print(f"runs    : constrain.LLM max_batch_size {llm_batches} (headline {default_bs}); "
          f"HF generate + processor batch {hf_batches}; one timed run each after warm-up")
    print("warm-up : every path first runs a few requests under another system prompt (torch first passes, numba "
          "kernels, grammar compiles: not timed); constrain.LLM's prefix cache is cleared before each timed run")
    print()

    llms: dict[int, Any] = {}
    first = make_llm(model, tok, max_batch_size=default_bs)
    vocab = first.vocab
    eos_ids = list(vocab.eos_token_ids)
    t0 = time.perf_counter()
    grammars = {m: constrain.compile(m, vocab) for m in MODELS}
    print(f"compile : {len(MODELS)} pydantic models in {time.perf_counter() - t0:.2f} s (first compile "
          f"in the process: includes numba kernel loading); EOS ids {eos_ids}")
    t0 = time.perf_counter()
    warm_llm(first, max_new)
    print(f"warm-up : constrain.LLM first warm-up {time.perf_counter() - t0:.1f} s")
    llms[default_bs] = first
    records: list[dict] = []
    notes: list[str] = []

    def progress(rec: dict) -> None:
        print(f"  done: {rec['name']} batch {rec['batch']}: {rec['wall_s']:.1f} s, {rec['tokens_per_s']:.1f} tok/s, "
              f"valid {rec['valid']}/{rec['requests']}  [{time.perf_counter() - t_start:.0f} s elapsed]", flush=True)

    # 1-2. constrain.LLM, constrained and free, across max_batch_size.
    for bs in llm_batches:
        llm = llms.get(bs)
        if llm is None:
            llm = llms[bs] = make_llm(model, tok, max_batch_size=bs)
            warm_llm(llm, max_new)
        for constrained in (True, False):
            name = f"constrain.LLM {'constrained' if constrained else 'unconstrained'}"
            rec = run_llm(llm, wl, constrained, max_new, name, bs)
            rec["jump_forward"] = "exact"
            records.append(rec)
            progress(rec)
        if bs != default_bs:
            llm.shutdown()
            del llms[bs]

    # Jump-forward modes at the default batch size (constrained); "exact" is the run above.
    jf_records: dict[str, dict] = {}
    jf_records["exact"] = next(r for r in records if r["name"] == "constrain.LLM constrained"
                               and r["batch"] == default_bs)
    for jf in (False, "bytes"):
        llm = make_llm(model, tok, max_batch_size=default_bs, jump_forward=jf)
        warm_llm(llm, max_new)
        rec = run_llm(llm, wl, True, max_new, f"constrain.LLM constrained, jump_forward={jf}", default_bs)
        rec["jump_forward"] = jf
        jf_records[str(jf)] = rec
        progress(rec)
        llm.shutdown()

    # 3. model.generate + constrain's LogitsProcessor.
    hf_warm = warmup_workload()[:2]
    t0 = time.perf_counter()
    hf_generate(model, hf_batch(tok, [c for _, c in hf_warm]), [grammars[m] for m, _ in hf_warm], min(max_new, 48), eos_ids)
    notes.append(f"HF warm-up: {time.perf_counter() - t0:.1f} s")
    for b in hf_batches:
        rec = run_hf(model, tok, wl, grammars, b, max_new, eos_ids)
        records.append(rec)
        progress(rec)

    # 4. transformers' continuous batching (unconstrained), on its own model copy.
    gb_rec, why = run_generate_batch(tok, wl, max_new, eos_ids, [c for _, c in warmup_workload()[:2]])
    if gb_rec is None:
        print(f"  skipped: transformers generate_batch: {why}")
        notes.append(f"transformers generate_batch skipped: {why}")
    else:
        records.append(gb_rec)
        progress(gb_rec)
        notes.append(f"generate_batch ran with attn_implementation {gb_rec['attn_implementation']!r} (model loaded as "
                     f"{gb_rec['attn_implementation_before']!r}); its wall time includes the manager's start-up and "
                     f"shut-down: the requests' own span (first created to last finished) was {gb_rec['busy_s']:.1f} s")
    for llm in llms.values():
        llm.shutdown()

    # ------------------------------------------------------------------ print
    print()
    main_rows = [r for r in records if r["batch"] == default_bs and r["system"] == "constrain.LLM"]
    main_rows += [r for r in records if r["system"] == "hf+processor" and r["batch"] in (1, 8)]
    main_rows += [r for r in records if r["system"] == "generate_batch"]
    print(_harness.format_table(TABLE_HEADERS, [table_row(r) for r in main_rows],
                                title=f"{n_req} requests, max_new_tokens {max_new}, greedy (batch: max_batch_size for "
                                      f"constrain.LLM, chunk size for HF generate, all requests for generate_batch)"))
    print()
    sweep_rows = [r for r in records if r["system"] == "constrain.LLM"] + \
                 [r for r in records if r["system"] == "hf+processor"]
    print(_harness.format_table(TABLE_HEADERS, [table_row(r) for r in sweep_rows],
                                title="batch sweep (the frontier)"))
    print()
    base = jf_records["False"]
    jf_rows = []
    for key in ("False", "exact", "bytes"):
        r = jf_records[key]
        same = sum(a == b for a, b in zip(r["texts"], base["texts"]))
        r["identical_to_no_jump"] = same
        jf_rows.append([f"jump_forward={key}", r["forward_passes"], r["generated_tokens"], f"{r['tokens_per_s']:.1f}",
                        f"{r['wall_s']:.1f}", f"{100 * (r['forced_share'] or 0):.1f}%",
                        f"{same}/{r['requests']} ({100 * same / r['requests']:.0f}%)",
                        f"{r['valid']}/{r['requests']}"])
    print(_harness.format_table(
        ["constrain.LLM constrained", "forward passes", "gen tokens", "tokens/s", "wall s", "forced",
         "text identical to jump_forward=False", "valid"], jf_rows,
        title=f"jump-forward at max_batch_size {default_bs}"))
    print()

    def get(name_or_system: str, batch: int) -> dict | None:
        for r in records:
            if (r["name"] == name_or_system or r["system"] == name_or_system) and r["batch"] == batch:
                return r
        return None

    con = get("constrain.LLM constrained", default_bs)
    free = get("constrain.LLM unconstrained", default_bs)
    hf8 = get("hf+processor", max(hf_batches))
    ratios = {}
    if con and hf8:
        ratios["constrained_vs_hf_processor"] = con["tokens_per_s"] / hf8["tokens_per_s"]
        print(f"ratio: constrain.LLM constrained (max_batch_size {default_bs}) tokens/s / HF generate + processor "
              f"(batch {hf8['batch']}) tokens/s = {ratios['constrained_vs_hf_processor']:.2f}x "
              f"(requests/s: {con['requests_per_s'] / hf8['requests_per_s']:.2f}x; "
              f"mean TTFT {con['ttft_mean_s']:.2f} s vs {hf8['ttft_mean_s']:.2f} s)")
    if con and free:
        ratios["constrained_vs_unconstrained"] = con["tokens_per_s"] / free["tokens_per_s"]
        print(f"ratio: constrain.LLM constrained / unconstrained tokens/s (max_batch_size {default_bs}) = "
              f"{ratios['constrained_vs_unconstrained']:.2f}x (requests/s: "
              f"{con['requests_per_s'] / free['requests_per_s']:.2f}x; the free outputs are "
              f"{free['generated_tokens'] / max(con['generated_tokens'], 1):.2f}x as long)")
    if con and gb_rec:
        ratios["constrained_vs_generate_batch"] = con["tokens_per_s"] / gb_rec["tokens_per_s"]
        print(f"ratio: constrain.LLM constrained tokens/s / transformers generate_batch (unconstrained) tokens/s = "
              f"{ratios['constrained_vs_generate_batch']:.2f}x")
    print()
    print("tokens/s = generated tokens (EOS excluded) / wall time of the burst; TTFT from the burst's submission "
          "(queueing included). HF TTFT: wall of the earlier chunks + a separate max_new_tokens=1 generate of the "
          "request's chunk (not a streamer; the probe runs are not in the wall time). HF prefill tokens include "
          "padding; HF forward passes = decode steps of each chunk (the first one is the prefill). prefix hit = "
          "cached prompt tokens / prompt tokens; forced = tokens appended by jump-forward / generated tokens; "
          "valid = Model.model_validate_json of the text before EOS.")
    for r in records:
        if r["system"] == "constrain.LLM" and r["batch"] == default_bs:
            st = r["stats"]
            notes.append(f"{r['name']}: mask {st['mask_ms']:.0f} ms ({st['overlap_ms']:.0f} ms beside passes), "
                         f"forward {st['forward_ms']:.0f} ms over {st['forward_passes']} passes "
                         f"({st['forward_ms'] / max(st['forward_passes'], 1):.1f} ms/pass, "
                         f"{st['forward_tokens'] / max(st['forward_passes'], 1):.1f} tokens/pass), "
                         f"finish {r['finish_reasons']}")
    kv = sorted({(r["batch"], r["kv_slot_positions"], r["kv_slots_mib"]) for r in records if "kv_slots_mib" in r})
    notes.append("constrain.LLM key/value slots (max_batch_size: positions per slot, MiB): "
                 + ", ".join(f"{b}: {p}, {m:.0f}" for b, p, m in kv)
                 + f"; prefix cache {records[0].get('prefix_cache_mib', 0):.0f} MiB")
    grew = [f"{r['name']} {r['batch']}" for r in records if r.get("kv_slots_grew_in_run")]
    if grew:
        notes.append(f"key/value slots grew (reallocated) inside timed runs: {grew}")
    for r in records:
        if r["valid"] < r["requests"] and r["name"] != "constrain.LLM unconstrained" \
                and r["system"] != "generate_batch":
            bad = [t for m, t in zip([m for m, _ in wl], r["texts"]) if not validate(m, t)]
            notes.append(f"{r['name']} batch {r['batch']}: {len(bad)} invalid, first: {bad[0][:200]!r}")
    if con:
        for i in range(min(2, len(con["texts"]))):
            notes.append(f"sample constrained output {i}: {con['texts'][i][:200]!r}")
    if free:
        notes.append(f"sample unconstrained output 0: {free['texts'][0][:200]!r}")
    for line in notes:
        print("note: " + line)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out_json = RESULTS_DIR / "llm.json"
    doc = {
        "machine": machine_lines(args.threads), "python": platform.python_version(),
        "args": {"requests": n_req, "max_new_tokens": max_new, "sweep": llm_batches, "hf_batches": hf_batches,
                 "threads": args.threads, "max_batch_size": default_bs, "quick": args.quick},
        "system_prompt_tokens": sys_tokens, "prompt_tokens": prompt_lens, "ratios": ratios,
        "records": [{k: v for k, v in r.items() if k != "token_ids"} for r in records],
        "jump_forward": {k: {kk: vv for kk, vv in v.items() if kk != "token_ids"} for k, v in jf_records.items()},
        "notes": notes, "total_s": time.perf_counter() - t_start,
    }
    out_json.write_text(json.dumps(doc, indent=1, default=str))
    print(f"figures : {out_json.relative_to(_harness.REPO_ROOT)}")
    print(plot_frontier(records, RESULTS_DIR / "llm_frontier.png"))
    print(f"total   : {time.perf_counter() - t_start:.0f} s")


# --------------------------------------------------------------------------- server load test


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    return float("nan")


def main_server(args) -> None:
    import torch  # noqa: F401

    try:
        import jsonschema
        import openai
        import uvicorn

        from constrain.serving.server import create_app
    except ImportError as exc:
        raise SystemExit(f"--server needs fastapi, uvicorn, openai, jsonschema and constrain.serving.server: {exc}")
    import constrain

    print(machine_lines(args.threads))
    n_total = args.server_requests
    max_tokens = args.server_max_tokens
    llm = constrain.LLM.bundled(max_batch_size=args.max_batch_size)
    app = create_app(llm)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    llm.start()
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise SystemExit("the server did not start within 60 s")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    print(f"server  : create_app(LLM.bundled(max_batch_size={args.max_batch_size})) on {base_url}, "
          f"{args.clients} client threads, {n_total} requests, max_tokens {max_tokens}, temperature 0")

    schemas = {m: m.model_json_schema() for m in MODELS}
    validators = {m: jsonschema.Draft202012Validator(s) for m, s in schemas.items()}
    wl = workload(len(MODELS) * 8)
    local = threading.local()

    def client():
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
        return c

    def one(i: int) -> tuple[float, bool, str | None]:
        model, chat = wl[i % len(wl)]
        msgs = [dict(m) for m in chat]
        msgs[-1]["content"] += f" (ticket {i})"  # every prompt differs after the shared system prompt
        t0 = time.perf_counter()
        try:
            resp = client().chat.completions.create(
                model="any", messages=msgs, max_tokens=max_tokens, temperature=0,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": model.__name__, "schema": schemas[model], "strict": True}})
        except openai.OpenAIError as exc:
            return time.perf_counter() - t0, False, f"{type(exc).__name__}: {str(exc)[:200]}"
        lat = time.perf_counter() - t0
        text = resp.choices[0].message.content or ""
        try:
            validators[model].validate(json.loads(text))
        except (ValueError, jsonschema.ValidationError) as exc:
            return lat, False, f"invalid output {text[:120]!r}: {str(exc)[:120]}"
        return lat, True, None

    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(args.clients) as pool:
            warm = list(pool.map(one, range(min(args.clients, 8))))  # compiles, first passes
            warm_bad = [e for _, ok, e in warm if not ok]
            if warm_bad:
                print(f"warm-up errors: {warm_bad[:3]}")
            rss0 = rss_mb()
            llm.reset_stats()
            t0 = time.perf_counter()
            results = list(pool.map(one, range(n_total)))
            wall = time.perf_counter() - t0
        rss1 = rss_mb()
        st = llm.stats
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        llm.shutdown()
    lats = sorted(r[0] for r in results)
    ok = sum(r[1] for r in results)
    errors = [r[2] for r in results if r[2]]
    print()
    print(_harness.format_table(
        ["requests", "clients", "wall s", "req/s", "gen tokens/s", "latency p50 s", "p99 s", "max s", "valid",
         "prefix hit", "RSS before MB", "RSS after MB"],
        [[n_total, args.clients, f"{wall:.1f}", f"{n_total / wall:.2f}", f"{st['generated_tokens'] / wall:.1f}",
          f"{pct(lats, 50):.2f}", f"{pct(lats, 99):.2f}", f"{lats[-1]:.2f}", f"{ok}/{n_total}",
          f"{100 * st['cached_prompt_tokens'] / max(st['prompt_tokens'], 1):.0f}%", f"{rss0:.0f}", f"{rss1:.0f}"]],
        title="OpenAI-compatible server under load (chat completions, strict json_schema, jsonschema-checked)"))
    eng = llm.engine
    print(f"KV budget: running slots {eng.store.nbytes() / 2**20:.1f} MiB (engine.store.nbytes()), prefix cache "
          f"{eng.cache.nbytes() / 2**20:.1f} MiB (engine.cache.nbytes()); RSS change "
          f"{rss1 - rss0:+.0f} MB over {n_total} requests")
    print(f"engine  : {json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in st.items()})}")
    for e in errors[:5]:
        print(f"error: {e}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "llm_server.json").write_text(json.dumps({
        "machine": machine_lines(args.threads), "requests": n_total, "clients": args.clients,
        "max_tokens": max_tokens, "wall_s": wall, "latency_p50_s": pct(lats, 50), "latency_p99_s": pct(lats, 99),
        "latency_max_s": lats[-1], "valid": ok, "rss_before_mb": rss0, "rss_after_mb": rss1,
        "store_bytes": eng.store.nbytes(), "cache_bytes": eng.cache.nbytes(), "stats": st, "errors": errors[:20],
    }, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 requests, 48 new tokens, sweep 1,8, HF batches 1,8")
    ap.add_argument("--requests", type=int, help="number of requests (default 32; --quick 8)")
    ap.add_argument("--max-new-tokens", type=int, help="new tokens per request at most (default 96; --quick 48)")
    ap.add_argument("--sweep", help="constrain.LLM max_batch_size values (default 1,4,8,16,32; --quick 1,8)")
    ap.add_argument("--hf-batches", help="HF generate chunk sizes (default 1,2,4,8; --quick 1,8)")
    ap.add_argument("--max-batch-size", type=int, default=16, help="headline constrain.LLM max_batch_size")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    ap.add_argument("--server", action="store_true", help="run the server load test instead")
    ap.add_argument("--clients", type=int, default=16, help="--server: concurrent client threads")
    ap.add_argument("--server-requests", type=int, default=1000, help="--server: requests")
    ap.add_argument("--server-max-tokens", type=int, default=24, help="--server: max_tokens per request")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.server:
        main_server(args)
    else:
        main_bench(args)


if __name__ == "__main__":
    main()
