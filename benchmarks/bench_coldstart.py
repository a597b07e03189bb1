"""Cold start: what a new process pays before its first mask, for constrain and its peers.

Each measurement is a fresh interpreter that imports the engine, builds its vocabulary
for the Qwen2 tokenizer (151,646 ids), compiles one JSON Schema and computes the first
mask, timing each phase. The tokenizer itself is loaded before the clock starts (the same
package for every engine; loading it imports constrain, whose import time is therefore
not in the table: about 0.3 s, numpy and numba's own).

Rows:

* ``constrain, empty caches``: a new cache directory (``CONSTRAIN_CACHE_DIR``, numba's
  kernel cache inside it): the kernels run as Python while a background process compiles
  them (see ``constrain._kernels``). The run then also reports the mean time of a mask
  along a document in that mode, and when the process switched to compiled kernels. One
  run each (``--cold-runs``).
* ``constrain, empty caches, CONSTRAIN_KERNELS=compiled``: the same, with every kernel
  compiled in the process before it is used (numba's own behaviour; about a minute).
* ``constrain, kernels cached``: the same directory again (after ``constrain warmup``),
  with the DFA disk cache off: kernels load from numba's cache, the spec compiles from
  scratch. ``import constrain`` starts loading the kernels in a background thread while
  the tokenizer loads; ``no prefetch`` (``CONSTRAIN_PREFETCH=0``) loads them at the first
  compile instead.
* ``constrain, kernels + plan cached``: the disk caches on and filled by an earlier run:
  the spec's compile plan (rules, terminal DFAs) comes from disk.
* ``llguidance`` / ``xgrammar``: their own first process (they compile nothing at run time;
  XGrammar's compile cache off).
* ``constrain warmup --jobs J`` on empty caches (``--warmup-jobs``): the install step that
  fills the kernel cache, with ``J`` worker processes.

Warm rows are the median of ``--runs`` processes. Figures go to
``benchmarks/results/coldstart.json``.

    .venv/bin/python benchmarks/bench_coldstart.py
    .venv/bin/python benchmarks/bench_coldstart.py --cold-runs 0 --runs 5      # skip the minute-long rows
    .venv/bin/python benchmarks/bench_coldstart.py --warmup-jobs 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import _harness

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "role": {"enum": ["wizard", "knight", "thief", "bard"]},
        "alive": {"type": "boolean"},
        "skills": {"type": "array", "items": {"type": "string", "maxLength": 32}, "maxItems": 3},
    },
    "required": ["name", "age", "role", "alive", "skills"],
    "additionalProperties": False,
}

DOCUMENT = {"name": "Aria", "age": 31, "role": "bard", "alive": True, "skills": ["lute", "lore"]}

# One process's work, engine by engine; prints a JSON line of phase times in seconds.
CHILD = r'''
import json, sys, time
engine, schema = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, sys.argv[3])
import _harness
tok = _harness.load_tokenizer("qwen2")
n_vocab = len(tok)
t0 = time.perf_counter()
if engine == "constrain":
    import constrain
    from constrain import assets
    t1 = time.perf_counter()
    vocab = constrain.Vocabulary.from_tokenizer(tok, eos_token_ids=assets.qwen_eos_token_ids(tok))
    t2 = time.perf_counter()
    g = constrain.compile(constrain.JsonSchema(schema), vocab)  # (a new process: nothing in memory)
    t3 = time.perf_counter()
    words = g.matcher().mask_words()
    t4 = time.perf_counter()
    from constrain import _kernels
    from constrain.automata._jit import jit_seconds
    extra = {"jit_s": jit_seconds(), "allowed": int(sum(bin(int(w)).count("1") for w in words)),
             "mode": _kernels.mode()}
    if _kernels.mode() == "auto-python":
        # masks of a document while the kernels run as Python, then the wait for the
        # background compile to finish (this process switches to it)
        m = g.matcher()
        ids = tok.encode(sys.argv[4], add_special_tokens=False)
        t5 = time.perf_counter()
        for i in ids:
            m.mask_words()
            assert m.advance(i)
        extra["python_mask_s"] = (time.perf_counter() - t5) / len(ids)
        _kernels._watcher.join()
        extra["switch_s"] = time.perf_counter() - t0
        extra["jit_s"] = jit_seconds()
elif engine == "llguidance":
    import numpy as np
    import llguidance, llguidance.hf, llguidance.numpy
    t1 = time.perf_counter()
    lt = llguidance.hf.from_tokenizer(tok, n_vocab=n_vocab)
    t2 = time.perf_counter()
    m = llguidance.LLMatcher(lt, llguidance.LLMatcher.grammar_from_json_schema(schema), log_level=0)
    assert not m.is_error(), m.get_error()
    t3 = time.perf_counter()
    bm = llguidance.numpy.allocate_token_bitmask(1, n_vocab)
    llguidance.numpy.fill_next_token_bitmask(m, bm, 0)
    t4 = time.perf_counter()
    extra = {}
elif engine == "xgrammar":
    import numpy as np
    import xgrammar as xgr
    t1 = time.perf_counter()
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=n_vocab)
    compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    t2 = time.perf_counter()
    cg = compiler.compile_json_schema(json.dumps(schema))
    t3 = time.perf_counter()
    gm = xgr.GrammarMatcher(cg)
    bm = xgr.allocate_token_bitmask(1, info.vocab_size)
    gm.fill_next_token_bitmask(bm)
    t4 = time.perf_counter()
    extra = {}
else:
    raise SystemExit(f"unknown engine {engine}")
print(json.dumps(dict(import_s=t1 - t0, vocab_s=t2 - t1, compile_s=t3 - t2, first_mask_s=t4 - t3,
                      total_s=t4 - t0, **extra)))
'''


def run_child(engine: str, env: dict) -> dict:
    full = dict(os.environ, **_harness.THREAD_ENV, **env)
    out = subprocess.run([sys.executable, "-c", CHILD, engine, json.dumps(SCHEMA), str(_harness.BENCH_DIR),
                          json.dumps(DOCUMENT)],
                         capture_output=True, text=True, env=full, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{engine} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) if isinstance(runs[0][k], (int, float)) else runs[0][k]
            for k in runs[0]}


def fmt_s(x: float) -> str:
    return f"{x * 1e3:.0f} ms" if x < 1 else f"{x:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="processes per warm row (median)")
    ap.add_argument("--cold-runs", type=int, default=1, help="processes with empty caches (about a minute each)")
    ap.add_argument("--engines", default=None, help="peers to run beside constrain (default: every installed one)")
    ap.add_argument("--warmup-jobs", default="", help="comma-separated worker counts for `constrain warmup` timings")
    ap.add_argument("--out", default=str(_harness.BENCH_DIR / "results" / "coldstart.json"))
    args = ap.parse_args()
    engines = [e for e in _harness.parse_engines(args.engines) if e in ("constrain", "llguidance", "xgrammar")]
    if "constrain" not in engines:
        engines.insert(0, "constrain")
    print(_harness.machine_info(engines))
    print(f"schema: {len(SCHEMA['properties'])} properties (the demo's Character); Qwen2 tokenizer\n")
    rows: list[tuple[str, dict, int]] = []
    root = tempfile.mkdtemp(prefix="constrain-coldstart-")
    try:
        cold = []
        for i in range(args.cold_runs):
            d = os.path.join(root, f"cold{i}")
            cold.append(run_child("constrain", {"CONSTRAIN_CACHE_DIR": d, "NUMBA_CACHE_DIR": "",
                                                "CONSTRAIN_DISK_CACHE": "1"}))
            r = cold[-1]
            print(f"cold run {i + 1}: {fmt_s(r['total_s'])} to the first mask (kernels as Python, "
                  f"{r['python_mask_s'] * 1e3:.1f} ms a mask along a document); compiled kernels in use "
                  f"after {fmt_s(r['switch_s'])}", flush=True)
        if cold:
            rows.append(("constrain, empty caches", median_of(cold), len(cold)))
        compiled = []
        for i in range(args.cold_runs):
            d = os.path.join(root, f"compiled{i}")
            compiled.append(run_child("constrain", {"CONSTRAIN_CACHE_DIR": d, "NUMBA_CACHE_DIR": "",
                                                    "CONSTRAIN_DISK_CACHE": "1", "CONSTRAIN_KERNELS": "compiled"}))
            print(f"cold run, compiled here {i + 1}: {fmt_s(compiled[-1]['total_s'])}", flush=True)
        if compiled:
            rows.append(("constrain, empty caches, CONSTRAIN_KERNELS=compiled", median_of(compiled), len(compiled)))
        warm_dir = os.path.join(root, "warm")
        subprocess.run([sys.executable, "-m", "constrain", "warmup", "--jobs", "1"], check=True,
                       env=dict(os.environ, CONSTRAIN_CACHE_DIR=warm_dir, NUMBA_CACHE_DIR=""),
                       stdout=subprocess.DEVNULL)
        base = {"CONSTRAIN_CACHE_DIR": warm_dir, "NUMBA_CACHE_DIR": ""}
        rows.append(("constrain, kernels cached, no prefetch", median_of(
            [run_child("constrain", dict(base, CONSTRAIN_DISK_CACHE="0", CONSTRAIN_PREFETCH="0"))
             for _ in range(args.runs)]), args.runs))
        rows.append(("constrain, kernels cached", median_of(
            [run_child("constrain", dict(base, CONSTRAIN_DISK_CACHE="0")) for _ in range(args.runs)]), args.runs))
        run_child("constrain", dict(base, CONSTRAIN_DISK_CACHE="1", CONSTRAIN_DISK_CACHE_MIN_MS="0"))  # fills it
        rows.append(("constrain, kernels + plan cached", median_of(
            [run_child("constrain", dict(base, CONSTRAIN_DISK_CACHE="1")) for _ in range(args.runs)]), args.runs))
        for e in engines:
            if e != "constrain":
                rows.append((e, median_of([run_child(e, {}) for _ in range(args.runs)]), args.runs))
        warmups = []
        for jobs in [int(j) for j in args.warmup_jobs.split(",") if j.strip()]:
            d = os.path.join(root, f"warmup{jobs}")
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "constrain", "warmup", "--jobs", str(jobs)], check=True,
                           env=dict(os.environ, CONSTRAIN_CACHE_DIR=d, NUMBA_CACHE_DIR=""), stdout=subprocess.DEVNULL)
            warmups.append({"jobs": jobs, "wall_s": time.perf_counter() - t0})
    finally:
        shutil.rmtree(root, ignore_errors=True)

    table = [[name, n, fmt_s(r["import_s"]), fmt_s(r["vocab_s"]), fmt_s(r["compile_s"]), fmt_s(r["first_mask_s"]),
              fmt_s(r["total_s"]), fmt_s(r["jit_s"]) if "jit_s" in r else "-"] for name, r, n in rows]
    print(_harness.format_table(["process", "runs", "import", "vocabulary", "compile", "first mask", "total",
                                 "in numba"], table, title="new process to first mask (tokenizer load excluded)"))
    peers = {name: r for name, r, _ in rows if name in ("llguidance", "xgrammar")}
    for name, r, _ in rows:
        if name.startswith("constrain"):
            ratios = ", ".join(f"{r['total_s'] / p['total_s']:.1f}x {peer}'s" for peer, p in peers.items())
            print(f"{name}: total {fmt_s(r['total_s'])}" + (f" ({ratios})" if ratios else ""))
    for w in warmups:
        print(f"constrain warmup --jobs {w['jobs']} on empty caches: {w['wall_s']:.1f} s")
    record = {"machine": _harness.machine_info(engines), "schema": SCHEMA,
              "rows": [{"process": name, "runs": n, **r} for name, r, n in rows], "warmup": warmups}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    print(f"figures: {args.out}")


if __name__ == "__main__":
    main()
