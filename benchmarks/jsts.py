"""JSON-Schema-Test-Suite: how much of each draft an engine compiles, and whether what it
compiles keeps the suite's verdicts.

Usage (from the repository root):

    .venv/bin/python benchmarks/jsts.py
    .venv/bin/python benchmarks/jsts.py --engines constrain,llguidance,xgrammar --by-file
    .venv/bin/python benchmarks/jsts.py --drafts draft2020-12 --match format/ --timeout 60

Scoring follows ../shared/jsts/README.md. Each group's schema gets its draft's meta-schema
URI as ``$schema`` (when it is an object without one) and is compiled with the engine's
defaults (constrain: strict, so an unsupported keyword is an error). A group whose schema the
engine refuses with its own error is *declined*. Otherwise each test instance is
``json.dumps(data)``, tokenized without special tokens and walked token by token (the token
must be allowed by the mask, then advanced), and must end accepting (EOS allowed) exactly
when the suite marks it valid: an invalid instance allowed throughout and accepted is a
**wrong accept** (a soundness failure), a valid one rejected a *wrong reject*.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # noqa: E402
from peers import EngineProcess  # noqa: E402

DEFAULT_DATA = _harness.REPO_ROOT.parent / "shared" / "jsts"
DEFAULT_OUT = _harness.BENCH_DIR / "results" / "jsts.json"
META_SCHEMAS = {
    "draft2020-12": "https://json-schema.org/draft/2020-12/schema",
    "draft2019-09": "https://json-schema.org/draft/2019-09/schema",
    "draft7": "http://json-schema.org/draft-07/schema#",
    "draft6": "http://json-schema.org/draft-06/schema#",
    "draft4": "http://json-schema.org/draft-04/schema#",
}
SECTIONS = ("core", "optional", "optional/format")
CORE_TARGET = 0.85  # share of core groups that should compile (with no wrong accept anywhere)
FAILED = ("compile_crash", "timeout", "memory", "crash", "runtime_error")


# --------------------------------------------------------------------------- suite


def section_of(rel: Path) -> str:
    """'core', 'optional' or 'optional/format' for a file path relative to its draft folder."""
    parent = rel.parent.as_posix()
    return "core" if parent == "." else parent


def with_meta_schema(schema: Any, uri: str) -> Any:
    """The schema with ``$schema`` first, unless it is a boolean or already names one."""
    if isinstance(schema, dict) and "$schema" not in schema:
        return {"$schema": uri, **schema}
    return schema


def load_suite(root: Path, drafts: list[str], match: str | None) -> list[dict]:
    """Every group of the chosen drafts, in file order: id, draft, section, file, the
    description, the schema (with its ``$schema``) and the tests."""
    groups = []
    for draft in drafts:
        folder = root / draft
        if not folder.is_dir():
            raise SystemExit(f"no folder {folder}")
        for path in sorted(folder.rglob("*.json"), key=lambda p: (len(p.relative_to(folder).parts), p.as_posix())):
            rel = path.relative_to(folder)
            name = rel.with_suffix("").as_posix()
            if match and match not in f"{draft}/{name}":
                continue
            for k, g in enumerate(json.loads(path.read_text(encoding="utf-8"))):
                groups.append({
                    "id": f"{draft}/{name}#{k}",
                    "draft": draft,
                    "section": section_of(rel),
                    "file": name,
                    "description": g["description"],
                    "schema": with_meta_schema(g["schema"], META_SCHEMAS[draft]),
                    "tests": g["tests"],
                })
    return groups


def make_jobs(groups: list[dict], tokenizer) -> list[dict]:
    return [{
        "id": g["id"], "kind": "json", "spec": g["schema"],
        "tests": [{"valid": bool(t["valid"]), "tokens": _harness.encode(tokenizer, json.dumps(t["data"]))}
                  for t in g["tests"]],
    } for g in groups]


# --------------------------------------------------------------------------- scoring


def outcome(r: dict) -> str:
    """compiled, declined, unavailable, or how the group failed (see FAILED)."""
    status = r["status"]
    if status == "ok":
        return "compiled"
    if status == "compile_error":
        return "declined" if r.get("declined", True) else "compile_crash"
    if status == "runtime_error" and "tests" not in r:
        return "crash"
    return status


def score_group(group: dict, r: dict) -> dict:
    """One group's record: outcome, error, and which tests were wrongly accepted/rejected."""
    rec = {"id": group["id"], "outcome": outcome(r)}
    if r.get("error"):
        rec["error"] = " ".join(r["error"].split())[:200]
    if rec["outcome"] in ("compiled", "runtime_error"):
        tests = r.get("tests") or []
        rec["checked"] = len(tests)
        rec["wrong_accepts"] = [i for i, t in enumerate(tests) if not t["right"] and not t["valid"]]
        rec["wrong_rejects"] = [i for i, t in enumerate(tests) if not t["right"] and t["valid"]]
        rec["disagreements"] = r.get("disagreements", 0)
    if "ttfm_ns" in r:
        rec["ttfm_ms"] = round(r["ttfm_ns"] / 1e6, 3)
    return rec


_REASONS = [
    (re.compile(r"keyword 'format' cannot be enforced \(format '([^']*)'"), lambda m: f"format {m[1]}"),
    (re.compile(r"keyword '([^']+)'"), lambda m: m[1]),
    (re.compile(r"\$ref '[^']*' points outside"), lambda m: "$ref outside the document"),
    (re.compile(r"^\w*: pattern '.*' is not a supported regular expression", re.S), lambda m: "pattern (regex syntax)"),
    (re.compile(r"^UnsatisfiableError"), lambda m: "unsatisfiable (no valid value)"),
    (re.compile(r"^CompileLimitError: (\w+)"), lambda m: f"compile limit ({m[1]})"),
]


def decline_reason(error: str) -> str:
    """A short label for why a schema was declined: the keyword a constrain error names, or
    the start of another engine's message with numbers and quoted URIs masked."""
    for pattern, label in _REASONS:
        m = pattern.search(error)
        if m:
            return label(m)
    text = error.split("\n")[0]
    text = re.sub(r"^\w+: (\[[\d:]+\] \S+:\d+: )?", "", text)  # exception type, XGrammar's log prefix
    text = re.sub(r"(['\"`])[^'\"`]*[/:][^'\"`]*\1|\d+", "…", text)
    return text[:70]


def tally(records: list[dict]) -> dict:
    n = Counter(r["outcome"] for r in records)
    return {
        "groups": len(records),
        "compiled": n["compiled"] + n["runtime_error"],
        "declined": n["declined"],
        "failed": sum(n[k] for k in FAILED),  # a runtime error counts as compiled too
        "unavailable": n["unavailable"],
        "instances": sum(r.get("checked", 0) for r in records),
        "wrong_accepts": sum(len(r.get("wrong_accepts", ())) for r in records),
        "wrong_rejects": sum(len(r.get("wrong_rejects", ())) for r in records),
        "disagreements": sum(r.get("disagreements", 0) for r in records),
    }


def clean(rec: dict) -> bool:
    return rec["outcome"] == "compiled" and not (
        rec["wrong_accepts"] or rec["wrong_rejects"] or rec["disagreements"])


def compact(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in ("ttfm_ms", "checked") and v not in ([], 0)}


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "-"


# --------------------------------------------------------------------------- report


def print_sections(engine: str, groups: list[dict], recs: list[dict], drafts: list[str]) -> list[dict]:
    rows, out = [], []
    for draft in drafts + ["all"]:
        for section in SECTIONS + ("all",):
            sel = [r for g, r in zip(groups, recs)
                   if draft in ("all", g["draft"]) and section in ("all", g["section"])]
            if not sel:
                continue
            t = tally(sel)
            out.append({"draft": draft, "section": section, **t})
            rows.append([draft if draft != "all" else "all drafts", section if section != "all" else "total",
                         t["groups"], t["compiled"],
                         pct(t["compiled"], t["groups"]), t["declined"], t["failed"], t["instances"],
                         t["wrong_accepts"], t["wrong_rejects"]])
    print(_harness.format_table(
        ["draft", "section", "groups", "compiled", "%", "declined", "failed", "instances",
         "wrong accepts", "wrong rejects"], rows, title=f"### {engine}"))
    print()
    return out


def by_file(engines: list[str], groups: list[dict], recs: dict[str, list[dict]]) -> list[dict]:
    files: dict[tuple[str, str], list[int]] = {}
    for i, g in enumerate(groups):
        files.setdefault((g["draft"], g["file"]), []).append(i)
    out = []
    for (draft, name), idx in files.items():
        row = {"draft": draft, "file": name, "groups": len(idx)}
        for e in engines:
            t = tally([recs[e][i] for i in idx])
            row[e] = {k: t[k] for k in ("compiled", "declined", "failed", "wrong_accepts", "wrong_rejects")}
        out.append(row)
    return out


def print_by_file(engines: list[str], rows: list[dict]) -> None:
    heads = ["file", "groups"]
    for e in engines:
        heads += [f"{e} compiled", "WA", "WR"]
    table = []
    for row in rows:
        cells = [f"{row['draft']}/{row['file']}", row["groups"]]
        for e in engines:
            t = row[e]
            cells += [f"{t['compiled']}/{row['groups']}", t["wrong_accepts"] or "", t["wrong_rejects"] or ""]
        table.append(cells)
    print(_harness.format_table(heads, table, title="### per file (WA: wrong accepts, WR: wrong rejects)"))
    print()


def wrong_accepts(groups: list[dict], recs: list[dict]) -> list[dict]:
    out = []
    for g, r in zip(groups, recs):
        for i in r.get("wrong_accepts", ()):
            t = g["tests"][i]
            out.append({"group": g["id"], "file": f"{g['draft']}/{g['file']}", "description": g["description"],
                        "test": i, "test_description": t["description"], "data": json.dumps(t["data"])})
    return out


def summary(engine: str, groups: list[dict], recs: list[dict], drafts: list[str]) -> dict:
    core = [r for g, r in zip(groups, recs) if g["section"] == "core"]
    t_core, t_all = tally(core), tally(recs)
    per_draft = {}
    for d in drafts:
        sel = [r for g, r in zip(groups, recs) if g["draft"] == d and g["section"] == "core"]
        if sel:
            c = tally(sel)
            per_draft[d] = {"groups": c["groups"], "compiled": c["compiled"]}
    ttfm = sorted(r["ttfm_ms"] for r in recs if "ttfm_ms" in r)
    return {
        "engine": engine,
        "core_groups": t_core["groups"],
        "core_compiled": t_core["compiled"],
        "core_compiled_share": t_core["compiled"] / t_core["groups"] if t_core["groups"] else None,
        "core_by_draft": per_draft,
        "wrong_accepts": t_all["wrong_accepts"],
        "wrong_rejects": t_all["wrong_rejects"],
        "failed": t_all["failed"],
        "disagreements": t_all["disagreements"],
        "meets_target": bool(t_core["groups"]) and t_core["compiled"] >= CORE_TARGET * t_core["groups"]
        and t_all["wrong_accepts"] == 0,
        "ttfm_ms": {"p50": round(_harness.percentile(ttfm, 50), 3), "p99": round(_harness.percentile(ttfm, 99), 3),
                    "max": ttfm[-1] if ttfm else None},
    }


def print_summary(sums: list[dict], drafts: list[str]) -> None:
    rows = []
    for s in sums:
        rows.append([s["engine"], f"{s['core_compiled']}/{s['core_groups']}",
                     pct(s["core_compiled"], s["core_groups"]), s["wrong_accepts"], s["wrong_rejects"],
                     s["failed"], s["disagreements"], "yes" if s["meets_target"] else "no"])
    print(_harness.format_table(
        ["engine", "core compiled", "%", "wrong accepts", "wrong rejects", "failed",
         "disagreements", f"target (core >= {CORE_TARGET:.0%}, 0 wrong accepts)"], rows,
        title="### summary (all drafts)"))
    print()
    rows = []
    for d in drafts:
        row = [d]
        for s in sums:
            c = s["core_by_draft"].get(d)
            row.append(f"{c['compiled']}/{c['groups']} ({pct(c['compiled'], c['groups'])})" if c else "-")
        rows.append(row)
    print(_harness.format_table(["core groups compiled"] + [s["engine"] for s in sums], rows))
    print()


def print_wrong_accepts(engine: str, items: list[dict], limit: int | None) -> None:
    print(f"### {engine}: {len(items)} wrong accept(s)")
    for w in items[:limit]:
        data = w["data"] if len(w["data"]) <= 80 else w["data"][:77] + "..."
        print(f"- {w['file']}: {w['description']} / {w['test_description']}: {data}")
    if limit is not None and len(items) > limit:
        print(f"- ... and {len(items) - limit} more (group ids and test indices in the JSON result)")
    print()


def print_declines(engine: str, reasons: Counter, failures: list[dict], top: int) -> None:
    if reasons:
        rows = [[k, n] for k, n in reasons.most_common(top)]
        rest = sum(reasons.values()) - sum(n for _, n in reasons.most_common(top))
        if rest:
            rows.append([f"({len(reasons) - top} other reasons)", rest])
        print(_harness.format_table(["declined because", "groups"], rows, title=f"### {engine}: declines"))
        print()
    for f in failures:
        print(f"- {engine} {f['outcome'].replace('_', ' ')}: {f['id']}: {f.get('error', '')[:150]}")
    if failures:
        print()


def dump_json(x: Any, indent: str = "") -> str:
    """JSON text with nested objects indented and each record of a list of records on one
    line, so that the result file stays small and diffs line by line."""
    inner = indent + " "
    if isinstance(x, dict) and any(isinstance(v, (dict, list)) for v in x.values()):
        items = [f"{inner}{json.dumps(k)}: {dump_json(v, inner)}" for k, v in x.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(x, list) and x and all(isinstance(v, dict) for v in x):
        return "[\n" + ",\n".join(inner + json.dumps(v, ensure_ascii=False) for v in x) + "\n" + indent + "]"
    return json.dumps(x, ensure_ascii=False)


# --------------------------------------------------------------------------- main


def run_engine(engine: str, jobs: list[dict], args) -> tuple[list[dict], dict, int]:
    proc = EngineProcess(engine, args.tokenizer, warmup_kinds=["json"], timeout_s=args.timeout,
                         max_rss_mb=args.max_rss_mb)
    t0 = time.monotonic()
    info = proc.start()
    results = []
    try:
        for k, job in enumerate(jobs):
            if not info.get("ok"):
                results.append({"id": job["id"], "status": "unavailable", "error": info.get("error")})
                continue
            r = proc.run(job)
            results.append(r)
            if not args.quiet and ((k + 1) % 100 == 0 or k + 1 == len(jobs)):
                print(f"  {engine}: {k + 1}/{len(jobs)} groups, {time.monotonic() - t0:.0f} s",
                      file=sys.stderr, flush=True)
    finally:
        proc.close()
    return results, info, proc.restarts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the suite's folder (one subfolder per draft)")
    ap.add_argument("--drafts", default=",".join(META_SCHEMAS), help="comma-separated draft folders")
    ap.add_argument("--match", help="only files whose 'draft/path' contains this, e.g. 'optional/format/'")
    ap.add_argument("--engines", default="constrain",
                    help="comma-separated: " + ",".join(_harness.ENGINES) + " (default: constrain)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per group (compile + its tests)")
    ap.add_argument("--max-rss-mb", type=int, default=8000, help="kill a worker above this resident memory")
    ap.add_argument("--tokenizer", default="qwen2", choices=_harness.TOKENIZERS)
    ap.add_argument("--by-file", action="store_true", help="also print a table per keyword file")
    ap.add_argument("--top-reasons", type=int, default=25, help="decline reasons listed per engine")
    ap.add_argument("--peer-accepts", type=int, default=20,
                    help="wrong accepts listed per peer engine (constrain's are all listed; -1: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--constrain-json-options", default="",
                    help='options of constrain.JsonSchema as JSON, e.g. \'{"property_order": "any"}\'')
    args = ap.parse_args(argv)
    if args.constrain_json_options:
        json.loads(args.constrain_json_options)  # fail here, not in every worker
        os.environ["CONSTRAIN_BENCH_JSON_OPTIONS"] = args.constrain_json_options
    drafts = [d.strip() for d in args.drafts.split(",") if d.strip()]
    unknown = [d for d in drafts if d not in META_SCHEMAS]
    if unknown:
        raise SystemExit(f"unknown draft(s) {unknown}; choose from {', '.join(META_SCHEMAS)}")

    _harness.single_thread_env()
    engines = _harness.parse_engines(args.engines)
    machine = _harness.machine_info(engines)
    print(machine)
    groups = load_suite(args.data, drafts, args.match)
    if not groups:
        raise SystemExit(f"no groups under {args.data} for {drafts} matching {args.match!r}")
    tokenizer = _harness.load_tokenizer(args.tokenizer)
    jobs = make_jobs(groups, tokenizer)
    print(f"data    : {args.data} -> {len(groups)} groups, {sum(len(g['tests']) for g in groups)} test instances "
          f"({', '.join(drafts)}); tokenizer {args.tokenizer}; timeout {args.timeout:g} s/group")
    if args.constrain_json_options:
        print(f"options : constrain.JsonSchema(**{args.constrain_json_options})")
    print()

    recs: dict[str, list[dict]] = {}
    runs: dict[str, dict] = {}
    for e in engines:
        t0 = time.monotonic()
        results, info, restarts = run_engine(e, jobs, args)
        recs[e] = [score_group(g, r) for g, r in zip(groups, results)]
        runs[e] = {"wall_s": round(time.monotonic() - t0, 1), "restarts": restarts,
                   "start_error": None if info.get("ok") else info.get("error")}

    report: dict[str, Any] = {
        "machine": machine.splitlines(), "data": str(args.data), "drafts": drafts, "match": args.match,
        "tokenizer": args.tokenizer, "timeout_s": args.timeout,
        "constrain_json_options": json.loads(args.constrain_json_options or "{}"),
        "engines": {},
    }
    sums = []
    accepts = {e: wrong_accepts(groups, recs[e]) for e in engines}
    limits = {e: None if e == "constrain" or args.peer_accepts < 0 else args.peer_accepts for e in engines}
    for e in engines:
        sections = print_sections(e, groups, recs[e], drafts)
        s = summary(e, groups, recs[e], drafts)
        sums.append(s)
        reasons = Counter(decline_reason(r.get("error", "")) for r in recs[e] if r["outcome"] == "declined")
        report["engines"][e] = {
            "run": runs[e], "summary": s, "sections": sections,
            "declines": dict(reasons.most_common()),
            "wrong_accepts_total": len(accepts[e]),
            "wrong_accepts": accepts[e][:limits[e]],  # the rest: per group, under "groups"
            # every group that did not compile cleanly with every verdict right
            "groups": [compact(r) for r in recs[e] if not clean(r)],
        }
    files = by_file(engines, groups, recs)
    report["files"] = files
    if args.by_file:
        print_by_file(engines, files)
    for e in engines:
        print_wrong_accepts(e, accepts[e], limits[e])
        failures = [r for r in recs[e] if r["outcome"] in FAILED]
        print_declines(e, Counter(report["engines"][e]["declines"]), failures, args.top_reasons)
    print_summary(sums, drafts)
    for e in engines:
        if runs[e]["start_error"]:
            print(f"note: {e} did not start: {runs[e]['start_error']}")
        print(f"{e}: {runs[e]['wall_s']:.0f} s, {runs[e]['restarts']} worker restart(s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump_json(report) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
