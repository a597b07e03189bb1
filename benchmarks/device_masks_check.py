"""Device-resident masks over MaskBench: for each schema whose states fit the tables
(constrain.DeviceMasks), the tables' masks, states and acceptance must equal the host
matcher's along every test instance, token by token.

Usage (from the repository root):

    .venv/bin/python benchmarks/device_masks_check.py --sample 100 --seed 1
    .venv/bin/python benchmarks/device_masks_check.py --limit 20 --max-states 8192 --max-seconds 5
    .venv/bin/python benchmarks/device_masks_check.py --sample 200 --seed 2 --json-options '{"extra_properties": false}'

Most MaskBench schemas leave their objects open (no ``additionalProperties: false``): any
JSON value may follow an extra key, nested to any depth, and no finite table holds that
language. ``--json-options`` passes options to ``constrain.JsonSchema`` (as maskbench.py's
``--constrain-json-options``); ``{"extra_properties": false}`` closes the objects that list
their properties, so that far more schemas have finitely many states.

Instances are serialized and tokenized as benchmarks/maskbench.py does (``json.dumps``
with default separators, no special tokens). For each token: the host mask
(``Matcher.mask_words``) against the table's mask of the table state, the table state
against the matcher's state, then the step (a token the host refuses must lead nowhere
in the table); at the end, acceptance and EOS. Prints counts: schemas sampled, compiled,
fitting (and why the others do not), instances and tokens checked, mismatches, and the
build's time and size percentiles (explored: hypothesis sets reached; states: those
left once equivalent ones are merged).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # noqa: E402
from maskbench import DEFAULT_DATA, load_schemas, make_jobs  # noqa: E402


def check_instance(grammar, table, tokens: list[int]) -> tuple[int, str | None]:
    """(tokens checked, the first mismatch or None)."""
    m = grammar.matcher()
    s = table.initial
    eos = grammar.vocab.eos_token_ids
    for k, tok in enumerate(tokens):
        host = m.mask_words()
        if not np.array_equal(host, table.mask(s).view(np.uint32)):
            return k, f"mask differs at token {k}"
        if table.state_of(m.state) != s:
            return k, f"state differs at token {k}"
        nxt = table.step(s, tok)
        if not m.advance(tok):
            return k + 1, None if nxt == -1 else f"token {k} refused by the host, allowed by the table"
        if nxt < 0 or table.state_of(m.state) != nxt:
            return k + 1, f"step differs at token {k}"
        s = nxt
    if not np.array_equal(m.mask_words(), table.mask(s).view(np.uint32)):
        return len(tokens), "final mask differs"
    if bool(table.accepting[s]) != m.is_accepting():
        return len(tokens), "acceptance differs"
    if eos and m.is_accepting() and table.step(s, eos[0]) != 0:
        return len(tokens), "EOS differs"
    return len(tokens), None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sample", type=int, default=None, help="a random sample of this many schemas")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--tokenizer", default="qwen2")
    ap.add_argument("--verbose", action="store_true", help="a line per schema: its table or why it has none")
    ap.add_argument("--json-options", default="", help="options of constrain.JsonSchema, as JSON")
    ap.add_argument("--max-states", type=int, default=None, help="DeviceLimits.max_states (default: its default)")
    ap.add_argument("--max-table-mib", type=int, default=None)
    ap.add_argument("--max-seconds", type=float, default=None)
    args = ap.parse_args()
    options = json.loads(args.json_options) if args.json_options else {}

    import constrain
    from constrain import DeviceLimits, DeviceMasks, assets
    from constrain.device_masks import DEFAULT_DEVICE_LIMITS as default

    tokenizer = _harness.load_tokenizer(args.tokenizer)
    eos = assets.qwen_eos_token_ids(tokenizer) if args.tokenizer.startswith("qwen") else None
    vocab = constrain.Vocabulary.from_tokenizer(tokenizer, **({"eos_token_ids": eos} if eos else {}))
    limits = DeviceLimits(
        max_states=default.max_states if args.max_states is None else args.max_states,
        max_table_bytes=default.max_table_bytes if args.max_table_mib is None else args.max_table_mib << 20,
        max_seconds=default.max_seconds if args.max_seconds is None else args.max_seconds)
    rows = load_schemas(args.data, limit=args.limit, sample=args.sample, seed=args.seed, ids_file=None)
    jobs = make_jobs(rows, tokenizer)

    counts = collections.Counter()
    reasons = collections.Counter()
    builds, fit_builds, states, explored, sizes, mismatches = [], [], [], [], [], []
    t_all = time.perf_counter()
    for job in jobs:
        counts["schemas"] += 1
        try:
            grammar = constrain.compile(constrain.JsonSchema(job["spec"], **options), vocab)
        except constrain.ConstrainError:
            counts["compile errors"] += 1
            continue
        t0 = time.perf_counter()
        table = DeviceMasks.build(grammar, limits)
        builds.append(time.perf_counter() - t0)
        if args.verbose:
            print(f"{job['id']}: {builds[-1] * 1e3:.0f} ms, {table.explored} explored, {table!r}", flush=True)
        if not table.resident:
            reasons[re.search(r"DeviceLimits\.(\w+)", table.reason or "").group(1)
                    if "DeviceLimits." in (table.reason or "") else table.reason] += 1
            continue
        counts["fitting"] += 1
        fit_builds.append(builds[-1])
        states.append(table.n_states)
        explored.append(table.explored)
        sizes.append(table.table_bytes)
        if not job["tests"]:
            counts["fitting, no tests"] += 1
        for test in job["tests"]:
            n, bad = check_instance(grammar, table, test["tokens"])
            counts["instances checked"] += 1
            counts["tokens checked"] += n
            if bad is not None:
                mismatches.append((job["id"], bad))
    elapsed = time.perf_counter() - t_all

    print(_harness.machine_info(()))
    print(f"tokenizer {args.tokenizer}; limits {limits}; JsonSchema options {options}")
    for key in ("schemas", "compile errors", "fitting", "fitting, no tests", "instances checked", "tokens checked"):
        print(f"{key:>20}: {counts[key]}")
    print(f"{'mismatches':>20}: {len(mismatches)}")
    for sid, what in mismatches[:20]:
        print(f"    {sid}: {what}")
    print("not fitting, by limit:", dict(reasons.most_common()))
    qs = (50, 90, 99, 100)
    for what, times in (("all compiled", builds), ("fitting", fit_builds)):
        if times:
            b = sorted(x * 1e3 for x in times)
            print(f"build ms ({what}) p50 / p90 / p99 / max: "
                  + " / ".join(f"{_harness.percentile(b, q):.0f}" for q in qs))
    if states:
        s, e, z = sorted(states), sorted(explored), sorted(sizes)
        print("fitting: explored p50 / max: " + " / ".join(f"{_harness.percentile(e, q):.0f}" for q in (50, 100))
              + "; states p50 / max: " + " / ".join(f"{_harness.percentile(s, q):.0f}" for q in (50, 100))
              + "; table MiB p50 / max: " + " / ".join(f"{_harness.percentile(z, q) / 2**20:.1f}" for q in (50, 100)))
    print(f"wall {elapsed:.0f} s")
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
