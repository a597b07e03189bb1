"""Valid within the token budget: does every output parse when ``max_new_tokens`` runs out?

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_budget.py                       # 10 prompts x 5 models
    .venv/bin/python benchmarks/bench_budget.py --prompts 50          # the full run, 250 prompts
    .venv/bin/python benchmarks/bench_budget.py --models person,invoice --engines constrain,xgrammar

Five realistic pydantic models (a person, a product with a nested object, an event with a
date and an enum, an invoice with line items, a recipe with lists), each with up to 50
prompts. The bundled SmolLM2-135M-Instruct answers every prompt greedily through
``model.generate`` with the SmolLM2 chat template, batches of ``--batch`` prompts with
left padding, ``--max-new-tokens`` new tokens at most (default 64: short enough that a
small model looping inside a list runs out). Engines: constrain (its ``transformers``
processor, given the same ``max_new_tokens``), XGrammar (``xgrammar.contrib.hf``),
llguidance (``LLMatcher`` and its mask helpers) and no constraint at all. Every output (the
text before EOS) is parsed with ``Model.model_validate_json``; the table gives the share
that validates, how many hit the budget without EOS, mean tokens generated and wall time.
Outputs of constrain that fail validation are printed in full.
"""

from __future__ import annotations

import argparse
import datetime
import enum
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pydantic import BaseModel, Field, ValidationError  # noqa: E402

import _harness  # noqa: E402
import bench_generate as bg  # noqa: E402


# --------------------------------------------------------------------------- models


class Person(BaseModel):
    name: str
    age: int
    email: str
    occupation: str
    hobbies: list[str]


class Dimensions(BaseModel):
    width_cm: float
    height_cm: float
    depth_cm: float


class Product(BaseModel):
    name: str
    sku: str
    price: float
    in_stock: bool
    dimensions: Dimensions


class Category(str, enum.Enum):
    conference = "conference"
    concert = "concert"
    workshop = "workshop"
    sports = "sports"
    meetup = "meetup"


class Event(BaseModel):
    title: str
    date: datetime.date
    category: Category
    city: str
    attendees: int


class LineItem(BaseModel):
    description: str
    quantity: int
    unit_price: float


class Invoice(BaseModel):
    invoice_number: str
    customer: str
    items: list[LineItem]
    total: float


class Recipe(BaseModel):
    name: str
    servings: int
    ingredients: list[str]
    steps: list[str]


# Each model: its class and 50 prompts (a template over two lists of 10 and 5 fillers).
_PEOPLE = ["nurse", "software engineer", "farmer", "pilot", "teacher", "chef", "architect", "firefighter",
           "librarian", "marine biologist"]
_CITIES = ["Lisbon", "Nairobi", "Osaka", "Toronto", "Lima"]
_PRODUCTS = ["desk lamp", "espresso machine", "office chair", "bookshelf", "electric kettle", "backpack",
             "standing desk", "bluetooth speaker", "toaster", "monitor stand"]
_SHOPS = ["a furniture store", "an electronics shop", "a kitchen supply store", "an online marketplace",
          "a discount outlet"]
_EVENTS = ["a machine learning conference", "a jazz concert", "a pottery workshop", "a marathon",
           "a Python meetup", "a rock concert", "a startup conference", "a chess tournament",
           "a photography workshop", "a football match"]
_WHEN = ["next spring", "on 14 July 2025", "in early December", "on the first Saturday of March 2026",
         "in autumn 2025"]
_CUSTOMERS = ["Acme Corp", "a local bakery", "Globex Ltd", "a dental clinic", "a university lab",
              "a law firm", "a coffee shop", "a bike repair shop", "a hotel", "a school"]
_GOODS = ["office supplies", "cleaning services", "IT consulting", "catering", "printing"]
_DISHES = ["pancakes", "vegetable curry", "tomato soup", "banana bread", "chicken salad", "guacamole",
           "lasagna", "lemonade", "fried rice", "apple pie"]
_STYLES = ["a quick weeknight", "a family dinner", "a beginner cook", "a picnic", "a holiday party"]

MODELS: dict[str, tuple[type[BaseModel], list[str]]] = {
    "person": (Person, [f"Create a profile of a fictional {p} living in {c}: name, age, email, occupation "
                        "and hobbies." for c in _CITIES for p in _PEOPLE]),
    "product": (Product, [f"Describe a {p} sold by {s}: name, SKU, price, whether it is in stock, and its "
                          "dimensions in centimetres." for s in _SHOPS for p in _PRODUCTS]),
    "event": (Event, [f"Announce {e} taking place {w}: title, date, category, city and expected "
                      "attendees." for w in _WHEN for e in _EVENTS]),
    "invoice": (Invoice, [f"Write an invoice to {c} for {g}, with a few line items and the total."
                          for g in _GOODS for c in _CUSTOMERS]),
    "recipe": (Recipe, [f"Give a recipe for {d} for {s}: name, servings, ingredients and steps."
                        for s in _STYLES for d in _DISHES]),
}


def user_message(prompt: str) -> str:
    return prompt + " Reply with a JSON object only."


def validates(model: type[BaseModel], text: str) -> tuple[bool, str]:
    try:
        model.model_validate_json(text)
        return True, ""
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        return False, f"{first.get('type', 'invalid')}: {first.get('msg', str(exc))}"[:120]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", help=f"comma-separated subset of {','.join(bg.GEN_ENGINES)} (default: all)")
    ap.add_argument("--models", help=f"comma-separated subset of {','.join(MODELS)} (default: all)")
    ap.add_argument("--prompts", type=int, default=10, help="prompts per model (at most 50)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8, help="prompts per generate call (left padding)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--whitespace", default="default", choices=("default", "json", "compact"))
    ap.add_argument("--llg-apply", default="numpy", choices=("numpy", "torch"))
    ap.add_argument("--show", type=int, default=2, help="invalid outputs of peers to print per model (constrain: all)")
    args = ap.parse_args()

    threads_line = bg.setup_threads(args.threads)
    engines = bg.parse_engines(args.engines)
    names = [n.strip() for n in args.models.split(",")] if args.models else list(MODELS)
    bad = [n for n in names if n not in MODELS]
    if bad:
        raise SystemExit(f"unknown model(s) {bad}; choose from {', '.join(MODELS)}")
    if not 1 <= args.prompts <= 50:
        raise SystemExit("--prompts must be between 1 and 50")
    bg.print_machine(threads_line)
    print(f"run     : {args.prompts} prompts x {len(names)} models, max_new_tokens={args.max_new_tokens}, "
          f"batch {args.batch} (left padding), whitespace={args.whitespace}, SmolLM2 chat template")
    print()

    tok, model = bg.load_model()
    eng = bg.Engines(tok, model, whitespace=args.whitespace, llg_apply=args.llg_apply)
    eos = tok.eos_token_id
    # stats[engine][model] = dict(valid, n, budget, tokens, seconds, compile_s, error)
    stats: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in engines}
    shown: list[str] = []
    for name in names:
        cls, prompts = MODELS[name]
        prompts = prompts[: args.prompts]
        for e in engines:
            st = {"valid": 0, "n": 0, "budget": 0, "tokens": 0, "seconds": 0.0, "compile_s": 0.0, "error": ""}
            stats[e][name] = st
            try:
                t0 = time.perf_counter()
                compiled = eng.compile(e, cls)
                st["compile_s"] = time.perf_counter() - t0
            except Exception as exc:  # a peer that cannot compile the schema is a result
                st["error"] = f"compile: {type(exc).__name__}: {str(exc)[:150]}"
                print(f"  {e:13s} {name:8s} {st['error']}", file=sys.stderr, flush=True)
                continue
            peer_shown = 0
            for start in range(0, len(prompts), args.batch):
                chunk = prompts[start: start + args.batch]
                enc = bg.chat_batch(tok, [user_message(p) for p in chunk])
                proc = eng.processor(e, compiled, args.max_new_tokens)
                try:
                    gen, wall = bg.run_generate(model, tok, enc, proc, args.max_new_tokens)
                except Exception as exc:  # a processor that breaks mid-generation: its rows are invalid
                    st["n"] += len(chunk)
                    st["error"] = f"generate: {type(exc).__name__}: {str(exc)[:150]}"
                    print(f"  {e:13s} {name:8s} {st['error']}", file=sys.stderr, flush=True)
                    continue
                st["seconds"] += wall
                for prompt, row in zip(chunk, gen.tolist()):
                    ids, ended = bg.content_ids(row, eos)
                    text = tok.decode(ids, skip_special_tokens=False)
                    ok, why = validates(cls, text)
                    st["n"] += 1
                    st["valid"] += ok
                    st["budget"] += not ended
                    st["tokens"] += len(ids) + ended
                    if not ok and (e == "constrain" or peer_shown < args.show):
                        peer_shown += e != "constrain"
                        shown.append(f"[{e} / {name}] {'budget hit' if not ended else 'EOS'}, {why}\n"
                                     f"    prompt: {prompt}\n    output: {text!r}")
            print(f"  {e:13s} {name:8s} valid {st['valid']}/{st['n']} in {st['seconds']:.0f} s",
                  file=sys.stderr, flush=True)

    rows = []
    for name in names + ["overall"]:
        for e in engines:
            group = [stats[e][n] for n in names] if name == "overall" else [stats[e][name]]
            n = sum(g["n"] for g in group)
            err = "; ".join(sorted({g["error"] for g in group if g["error"]}))
            if n == 0:
                rows.append([name, e, "-", "-", "-", "-", "-", err[:80]])
                continue
            valid = sum(g["valid"] for g in group)
            rows.append([
                name, e, f"{100 * valid / n:.0f}% ({valid}/{n})",
                f"{100 * sum(g['budget'] for g in group) / n:.0f}%",
                f"{sum(g['tokens'] for g in group) / n:.1f}",
                f"{sum(g['seconds'] for g in group):.1f}",
                f"{1000 * sum(g['compile_s'] for g in group):.0f}" if e != "unconstrained" else "-",
                err[:80],
            ])
    print(_harness.format_table(
        ["model", "engine", "valid (model_validate_json)", "hit budget (no EOS)", "mean tokens",
         "generate s", "compile ms", "errors"], rows,
        title=f"Outputs that validate, max_new_tokens={args.max_new_tokens}"))
    print()
    print("valid: the text before EOS passes Model.model_validate_json; hit budget: no EOS within max_new_tokens;")
    print("mean tokens: generated tokens per prompt, EOS included; generate s: wall time of model.generate, all batches.")
    print("vocabulary preprocessing s: " + ", ".join(f"{k} {v:.2f}" for k, v in eng.prep_s.items()
                                                   if k != "unconstrained"))
    constrain_bad = [s for s in shown if s.startswith("[constrain")]
    print()
    print(f"constrain outputs that fail validation: {len(constrain_bad)}")
    for s in shown:
        print(s)


if __name__ == "__main__":
    main()
