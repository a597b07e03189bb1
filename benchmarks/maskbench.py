"""MaskBench: real-world JSON Schemas through every engine, scored for correctness and speed.

Usage (from the repository root):

    .venv/bin/python benchmarks/maskbench.py --limit 50
    .venv/bin/python benchmarks/maskbench.py --sample 400 --seed 1 --out /tmp/mb.jsonl
    .venv/bin/python benchmarks/maskbench.py --engines constrain,llguidance --ids ids.txt

Scoring follows ../shared/maskbench/README.md: TTFM is compile start to first mask; each
test instance is serialized with ``json.dumps(data, indent=None, ensure_ascii=False)``,
tokenized without special tokens and walked token by token (fill the mask: timed as TBM;
check the token is allowed; advance). A valid instance must be allowed throughout and end
accepting (EOS allowed); an invalid one must be rejected at some token or end
non-accepting. A schema passes when it compiled and every test came out right.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # noqa: E402
from peers import EngineProcess  # noqa: E402

DEFAULT_DATA = _harness.REPO_ROOT.parent / "shared" / "maskbench" / "dev.jsonl.gz"
PCTS = (25, 50, 75, 90, 99, 99.9)


def load_schemas(path: Path, *, limit: int | None, sample: int | None, seed: int,
                 ids_file: Path | None) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if ids_file is not None:
        wanted = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
        by_id = {r["id"]: r for r in rows}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            print(f"warning: {len(missing)} id(s) not in the data, e.g. {missing[:3]}", file=sys.stderr)
        rows = [by_id[i] for i in wanted if i in by_id]
    if sample is not None:
        rows = random.Random(seed).sample(rows, min(sample, len(rows)))
    if limit is not None:
        rows = rows[:limit]
    return rows


def make_jobs(rows: list[dict], tokenizer) -> list[dict]:
    jobs = []
    for r in rows:
        tests = []
        for t in r.get("tests") or []:
            text = json.dumps(t["data"], indent=None, ensure_ascii=False)
            tests.append({"valid": bool(t["valid"]), "tokens": _harness.encode(tokenizer, text)})
        jobs.append({"id": r["id"], "kind": "json", "spec": r["schema"], "tests": tests})
    return jobs


def _warmup_ns(info: dict, kind: str) -> int | None:
    w = (info.get("warmup") or {}).get(kind) or {}
    return w.get("ns") if w.get("status") not in (None, "unavailable") else None


def summarize(engine: str, results: list[dict], proc: EngineProcess) -> dict:
    ttfm = [r["ttfm_ns"] for r in results if "ttfm_ns" in r]
    tbm = [x for r in results for x in r.get("tbm_ns", ())]
    count = lambda s: sum(1 for r in results if r["status"] == s)  # noqa: E731
    info = proc.info
    return {
        "engine": engine,
        "available": info.get("ok", False) and count("unavailable") < len(results),
        "unavailable": next((r["error"] for r in results if r["status"] == "unavailable"), None),
        "start_error": None if info.get("ok") else info.get("error"),
        "prep_ns": info.get("prep_ns"),
        "warmup_ns": _warmup_ns(info, "json"),
        "ttfm": _harness.percentiles(ttfm, PCTS) + [max(ttfm) if ttfm else float("nan")],
        "tbm": _harness.percentiles(tbm, PCTS) + [max(tbm) if tbm else float("nan")],
        "ttfm_mean": sum(ttfm) / len(ttfm) if ttfm else float("nan"),
        "tbm_mean": sum(tbm) / len(tbm) if tbm else float("nan"),
        "tokens": len(tbm),
        "schemas": len(results),
        "passing": sum(1 for r in results if r.get("passed")),
        "compile_errors": count("compile_error"),
        "timeouts": count("timeout"),
        "memory": count("memory"),
        "crashes": count("crash") + count("runtime_error"),
        "validation_errors": sum(r.get("validation_errors", 0) for r in results),
        "invalidation_errors": sum(r.get("invalidation_errors", 0) for r in results),
        "disagreements": sum(r.get("disagreements", 0) for r in results),
        "restarts": proc.restarts,
        # (per schema that compiled and ran clean: its masks' times, for the figures over
        # the schemas every engine compiled)
        "tbm_by_id": {r["id"]: r["tbm_ns"] for r in results if r["status"] == "ok" and r.get("tbm_ns")},
        "gc": {k: (max if k.endswith("max_ns") else sum)(r["gc"][k] for r in results if "gc" in r)
               for k in ("full", "full_max_ns", "in_masks", "in_masks_max_ns")} if any("gc" in r for r in results) else None,
    }


def print_report(summaries: list[dict]) -> None:
    heads = ["figure"] + [s["engine"] for s in summaries]
    rows = []
    names = ["p25", "p50", "p75", "p90", "p99", "p99.9", "max"]

    def col(s, fn):
        if not s["available"]:
            return "n/a"
        return fn(s)

    rows.append(["TTFM mean (ms)"] + [col(s, lambda s: _harness.fmt_ms(s["ttfm_mean"])) for s in summaries])
    for i, n in enumerate(names):
        rows.append([f"TTFM {n} (ms)"] + [col(s, lambda s: _harness.fmt_ms(s["ttfm"][i])) for s in summaries])
    rows.append(["TBM mean (µs)"] + [col(s, lambda s: _harness.fmt_us(s["tbm_mean"])) for s in summaries])
    for i, n in enumerate(names):
        rows.append([f"TBM {n} (µs)"] + [col(s, lambda s: _harness.fmt_us(s["tbm"][i])) for s in summaries])
    for key, label in [
        ("tokens", "tokens (masks timed)"),
        ("schemas", "schemas"),
        ("passing", "passing"),
        ("compile_errors", "compile errors"),
        ("timeouts", "timeouts"),
        ("memory", "memory overruns"),
        ("crashes", "crashes / runtime errors"),
        ("validation_errors", "validation errors (valid rejected)"),
        ("invalidation_errors", "invalidation errors (invalid accepted)"),
        ("disagreements", "mask/advance/accept disagreements"),
    ]:
        rows.append([label] + [col(s, lambda s: f"{s[key]:,}") for s in summaries])
    print(_harness.format_table(heads, rows))
    print()
    # The same figures over the schemas that every engine compiled and ran clean: each
    # engine's masks over the same documents (an engine's masks on schemas another cannot
    # compile are left out of both).
    live = [s for s in summaries if s["available"]]
    if len(live) > 1:
        common = set.intersection(*(set(s["tbm_by_id"]) for s in live))
        rows = []
        per = []
        for s in live:
            tbm = sorted(x for i in common for x in s["tbm_by_id"][i])
            per.append((sum(tbm) / len(tbm) if tbm else float("nan"),
                        *(_harness.percentile(tbm, q) for q in (99, 99.9)), tbm[-1] if tbm else float("nan"),
                        len(tbm)))
        for k, label in enumerate(["TBM mean (µs)", "TBM p99 (µs)", "TBM p99.9 (µs)", "TBM max (µs)"]):
            rows.append([label] + [_harness.fmt_us(p[k]) for p in per])
        rows.append(["tokens (masks timed)"] + [f"{p[4]:,}" for p in per])
        print(_harness.format_table([f"on the {len(common):,} schemas every engine compiled"]
                                    + [s["engine"] for s in live], rows))
        print()
    prep = [["vocabulary preprocessing (s)"] + [
        f"{s['prep_ns'] / 1e9:.2f}" if s["prep_ns"] is not None else "-" for s in summaries]]
    prep.append(["first JSON compile+walk in process (ms)"] + [
        _harness.fmt_ms(s["warmup_ns"]) if s["warmup_ns"] is not None else "-" for s in summaries])
    prep.append(["worker restarts"] + [str(s["restarts"]) for s in summaries])
    print(_harness.format_table(["one-off costs"] + [s["engine"] for s in summaries], prep))
    # (the worker's cyclic garbage collector: where a collection runs inside a mask, it
    # may be that mask's worst case)
    gcs = [s["gc"] or {} for s in summaries]
    rows = [["full collections (longest, ms)"] + [
        f"{g['full']:,} ({g['full_max_ns'] / 1e6:.1f})" if g else "-" for g in gcs]]
    rows.append(["collections inside a timed mask (longest, ms)"] + [
        f"{g['in_masks']:,} ({g['in_masks_max_ns'] / 1e6:.1f})" if g else "-" for g in gcs])
    print()
    print(_harness.format_table(["garbage collector"] + [s["engine"] for s in summaries], rows))
    for s in summaries:
        if s["start_error"]:
            print(f"note: {s['engine']} did not start: {s['start_error']}")
        elif not s["available"] and s["unavailable"]:
            print(f"note: {s['engine']}: {s['unavailable']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MaskBench JSONL(.gz) file")
    ap.add_argument("--limit", type=int, help="first N schemas (after --ids/--sample)")
    ap.add_argument("--sample", type=int, help="a random sample of N schemas")
    ap.add_argument("--seed", type=int, default=0, help="seed for --sample")
    ap.add_argument("--ids", type=Path, help="file of schema ids, one a line")
    ap.add_argument("--engines", help="comma-separated: " + ",".join(_harness.ENGINES) + " (default: all installed)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per schema (compile + tests)")
    ap.add_argument("--max-rss-mb", type=int, default=8000, help="kill a worker above this resident memory")
    ap.add_argument("--tokenizer", default="qwen2", choices=_harness.TOKENIZERS)
    ap.add_argument("--out", type=Path, help="write per-schema results as JSONL here")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="every engine's worker freezes its heap after setup (gc.freeze), as a server does")
    ap.add_argument("--quiet", action="store_true", help="no per-engine progress lines")
    ap.add_argument("--constrain-json-options", default="",
                    help='options of constrain.JsonSchema as JSON, e.g. \'{"property_order": "any"}\'')
    args = ap.parse_args(argv)
    if args.constrain_json_options:
        json.loads(args.constrain_json_options)  # fail here, not in every worker
        os.environ["CONSTRAIN_BENCH_JSON_OPTIONS"] = args.constrain_json_options

    _harness.single_thread_env()
    engines = _harness.parse_engines(args.engines)
    print(_harness.machine_info(engines))
    if not args.data.exists():
        raise SystemExit(f"no MaskBench data at {args.data}")
    rows = load_schemas(args.data, limit=args.limit, sample=args.sample, seed=args.seed, ids_file=args.ids)
    tokenizer = _harness.load_tokenizer(args.tokenizer)
    jobs = make_jobs(rows, tokenizer)
    n_tests = sum(len(j["tests"]) for j in jobs)
    print(f"data    : {args.data} -> {len(jobs)} schemas, {n_tests} test instances; "
          f"tokenizer {args.tokenizer} ({len(tokenizer):,} ids); timeout {args.timeout:g} s/schema")
    print()

    out = args.out.open("w", encoding="utf-8") if args.out else None
    summaries = []
    try:
        for engine in engines:
            proc = EngineProcess(engine, args.tokenizer, warmup_kinds=["json"], timeout_s=args.timeout,
                                 max_rss_mb=args.max_rss_mb, gc_freeze=args.gc_freeze)
            t0 = time.monotonic()
            info = proc.start()
            results = []
            if not info.get("ok"):
                results = [{"id": j["id"], "engine": engine, "status": "unavailable",
                            "error": info.get("error")} for j in jobs]
            else:
                for k, job in enumerate(jobs):
                    r = proc.run(job)
                    results.append(r)
                    if r["status"] == "unavailable":
                        # The engine cannot do JSON at all: no point asking again per schema.
                        results += [dict(r, id=j["id"]) for j in jobs[k + 1:]]
                        break
                    if not args.quiet and (k + 1) % 50 == 0:
                        done = sum(1 for x in results if x.get("passed"))
                        print(f"  {engine}: {k + 1}/{len(jobs)} schemas, {done} passing, "
                              f"{time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
            proc.close()
            if not args.quiet:
                print(f"  {engine}: done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
            summaries.append(summarize(engine, results, proc))
            if out:
                for r in results:
                    tbm = sorted(r.pop("tbm_ns", None) or [])
                    adv = sorted(r.pop("advance_ns", None) or [])
                    if tbm:
                        r["tbm_us"] = {f"p{q:g}": round(_harness.percentile(tbm, q) / 1e3, 2) for q in (50, 99)}
                        r["tbm_us"]["max"] = round(tbm[-1] / 1e3, 2)
                        r["tbm_us"]["sum"] = round(sum(tbm) / 1e3, 1)
                        r["tbm_us"]["n"] = len(tbm)
                    if adv:
                        r["advance_us_p50"] = round(_harness.percentile(adv, 50) / 1e3, 2)
                    for key in ("ttfm_ns", "compile_ns"):
                        if key in r:
                            r[key.replace("_ns", "_ms")] = round(r.pop(key) / 1e6, 3)
                    out.write(json.dumps(r, ensure_ascii=False) + "\n")
                out.flush()
    finally:
        if out:
            out.close()
    print_report(summaries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
