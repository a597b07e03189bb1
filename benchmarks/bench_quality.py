"""Valid is not enough: do constrained outputs mean what the user meant?

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_quality.py                     # 8 prompts x 4 models
    .venv/bin/python benchmarks/bench_quality.py --engines constrain,xgrammar --show 3

The bundled SmolLM2-135M-Instruct answers short requests greedily (SmolLM2 chat template,
batches with left padding) with ``--max-new-tokens`` new tokens at most (default 64), the
output typed by a pydantic model. The prompts ask for the thing in plain words and do not
list the fields. For each engine the table gives:

* valid: the text before EOS passes ``Model.model_validate_json``;
* undeclared keys: outputs with a key the model does not declare (pydantic's default
  ``extra="ignore"`` drops them silently, so the fields the user wanted stay empty);
* surrounding whitespace: outputs with whitespace before or after the JSON value (a model
  looping on newlines after ``}`` until the budget ends);
* non-empty required strings: the share of required string fields, at any depth, that
  are not empty;
* hit budget: no EOS within ``max_new_tokens``.

Engines: ``constrain`` (defaults: pydantic models admit only their fields, bounded
whitespace), ``constrain-open`` (the model's raw JSON Schema with JSON's own whitespace:
what constrain did before those defaults), ``xgrammar`` (``xgrammar.contrib.hf``, its
defaults), ``llguidance`` (its defaults) and ``unconstrained``. Every constrain output is
printed with ``--show -1``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Literal, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pydantic import BaseModel, Field, ValidationError  # noqa: E402

import _harness  # noqa: E402
import bench_generate as bg  # noqa: E402

# --------------------------------------------------------------------------- models and prompts


class LineItem(BaseModel):
    sku: str
    quantity: int = Field(ge=1)
    unit_price: float


class Order(BaseModel):
    customer: str
    items: list[LineItem]
    gift_wrap: bool


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


MODELS: dict[str, tuple[type[BaseModel], list[str]]] = {
    "order": (Order, ["Place an order for two gardening books for Maria.",
                      "I want to buy a red bicycle and a helmet, please make the order for Tom.",
                      "Order three boxes of green tea for the office of Acme Ltd.",
                      "Make an order: one laptop stand for Priya, wrapped as a present.",
                      "Create an order of five notebooks and a pen for Jonas.",
                      "Order a birthday cake and candles for Lucy's party.",
                      "Buy a pair of running shoes for Ahmed.",
                      "Put together an order of coffee beans for the Blue Cup cafe."]),
    "review": (Review, ["Review the noise-cancelling headphones I bought last week.",
                        "What do you think of the Kindle Paperwhite?",
                        "Give a short review of a cast iron skillet.",
                        "Write a product review of a cheap electric toothbrush.",
                        "Review this phone case that broke after two days.",
                        "Tell me if I should buy the LEGO lighthouse set.",
                        "Write a review of an ergonomic office chair.",
                        "Is the budget smartwatch from the supermarket worth it?"]),
    "contact": (Contact, ["Save the contact of Jane Doe from Globex, jane@globex.com.",
                          "Add my dentist Dr. Alan Smith at Bright Smiles Clinic to my contacts.",
                          "New contact: Pedro Alvarez, sales manager at Sunrise Foods.",
                          "Store the details of the plumber Mike who works for FixIt Co.",
                          "Create a contact for Aiko Tanaka, engineer at Tanaka Robotics.",
                          "Remember the contact of Sara Lee from the bakery Sweet Spot.",
                          "Add a contact for the recruiter Paul Martin at TalentBridge.",
                          "Make a contact card for Olga Petrova of Northwind Traders."]),
    "task": (Task, ["Remind the team that Ben must fix the login bug today, it is urgent.",
                    "Create a task for Alice to update the website footer sometime.",
                    "Carla finished writing the quarterly report; log it as a task.",
                    "Add a to-do: Dmitri should book the meeting room for Friday.",
                    "Make a task for me to water the plants.",
                    "The database backup must be checked by Eve as soon as possible.",
                    "Log a task: Sam will order new chairs for the office.",
                    "Assign the bug triage to Noor, medium priority."]),
}

ENGINES = ("constrain", "constrain-open", "xgrammar", "llguidance", "unconstrained")


# --------------------------------------------------------------------------- measures


def _resolve(schema: dict, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def inspect_value(schema: dict, node: Any, value: Any, counts: dict[str, int]) -> None:
    """Count undeclared keys and (non-)empty required string fields of ``value`` against
    the pydantic model's JSON Schema ``node`` (resolved through ``$defs``)."""
    node = _resolve(schema, node)
    if not isinstance(node, dict):
        return
    for branch in node.get("anyOf", ()):
        b = _resolve(schema, branch)
        if isinstance(value, dict) and b.get("type") == "object" or isinstance(value, list) and b.get("type") == "array":
            inspect_value(schema, b, value, counts)
            return
    if isinstance(value, dict) and "properties" in node:
        props = node["properties"]
        counts["undeclared"] += sum(k not in props for k in value)
        for name in node.get("required", ()):
            sub = _resolve(schema, props.get(name, {}))
            if isinstance(sub, dict) and sub.get("type") == "string":
                counts["strings"] += 1
                counts["nonempty"] += isinstance(value.get(name), str) and value[name] != ""
        for k, v in value.items():
            if k in props:
                inspect_value(schema, props[k], v, counts)
    elif isinstance(value, list) and "items" in node:
        for v in value:
            inspect_value(schema, node["items"], v, counts)


def measure(cls: type[BaseModel], text: str) -> dict[str, int]:
    counts = {"valid": 0, "undeclared": 0, "strings": 0, "nonempty": 0, "surrounding_ws": int(text != text.strip())}
    try:
        cls.model_validate_json(text)
        counts["valid"] = 1
    except ValidationError:
        pass
    try:
        value = json.loads(text)
    except ValueError:
        return counts
    schema = cls.model_json_schema()
    inspect_value(schema, schema, value, counts)
    return counts


# --------------------------------------------------------------------------- run


def _compile(eng: bg.Engines, engine: str, cls: type[BaseModel]) -> Any:
    if engine == "constrain-open":
        import constrain

        st = eng._prepare("constrain")
        return constrain.compile(constrain.JsonSchema(cls.model_json_schema(), whitespace="json"), st)
    return eng.compile(engine, cls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated subset of {','.join(ENGINES)}")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    ap.add_argument("--prompts", type=int, default=8, help="prompts per model (at most 8)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--show", type=int, default=-1, help="outputs per engine to print (-1: constrain's all)")
    args = ap.parse_args()

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    bad = [e for e in engines if e not in ENGINES] + [n for n in names if n not in MODELS]
    if bad:
        raise SystemExit(f"unknown engine(s) or model(s): {bad}")
    threads_line = bg.setup_threads(args.threads)
    bg.print_machine(threads_line)
    print(f"run     : {args.prompts} prompts x {len(names)} models, max_new_tokens={args.max_new_tokens}, "
          f"batch {args.batch}, greedy, SmolLM2 chat template")
    print()
    tok, model = bg.load_model()
    peer_engine = {"constrain-open": "constrain"}
    eng = bg.Engines(tok, model)
    rows = []
    for engine in engines:
        total = {"n": 0, "valid": 0, "undeclared_outputs": 0, "surrounding_ws": 0, "strings": 0, "nonempty": 0,
                 "budget": 0, "seconds": 0.0}
        error = ""
        shown = 0
        for name in names:
            cls, prompts = MODELS[name]
            prompts = prompts[: args.prompts]
            try:
                compiled = _compile(eng, engine, cls) if engine != "unconstrained" else None
            except Exception as exc:  # a peer that cannot compile is a result
                error = f"compile: {type(exc).__name__}: {str(exc)[:100]}"
                continue
            for start in range(0, len(prompts), args.batch):
                chunk = prompts[start: start + args.batch]
                enc = bg.chat_batch(tok, chunk)
                proc = eng.processor(peer_engine.get(engine, engine), compiled, args.max_new_tokens)
                gen, wall = bg.run_generate(model, tok, enc, proc, args.max_new_tokens)
                total["seconds"] += wall
                for prompt, row in zip(chunk, gen.tolist()):
                    ids, ended = bg.content_ids(row, tok.eos_token_id)
                    text = tok.decode(ids, skip_special_tokens=False)
                    c = measure(cls, text)
                    total["n"] += 1
                    total["valid"] += c["valid"]
                    total["undeclared_outputs"] += c["undeclared"] > 0
                    total["surrounding_ws"] += c["surrounding_ws"]
                    total["strings"] += c["strings"]
                    total["nonempty"] += c["nonempty"]
                    total["budget"] += not ended
                    if (args.show < 0 and engine == "constrain") or shown < args.show:
                        shown += 1
                        print(f"[{engine} / {name}] {prompt}\n    {text!r}")
        n = total["n"] or 1
        rows.append([engine, f"{total['valid']}/{total['n']}", f"{total['undeclared_outputs']}/{total['n']}",
                     f"{total['surrounding_ws']}/{total['n']}",
                     f"{100 * total['nonempty'] / max(total['strings'], 1):.0f}% ({total['nonempty']}/{total['strings']})",
                     f"{100 * total['budget'] / n:.0f}%", f"{total['seconds']:.1f}", error])
        print(f"  {engine}: done", file=sys.stderr, flush=True)
    print()
    print(_harness.format_table(
        ["engine", "valid", "undeclared keys", "surrounding ws", "non-empty required strings", "hit budget",
         "generate s", "errors"], rows, title=f"Output intent, max_new_tokens={args.max_new_tokens}"))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
