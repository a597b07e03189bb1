"""Shared pieces of the benchmarks: thread pinning, percentiles, tables, machine info.

Every benchmark prints :func:`machine_info` first, so that a figure is never quoted
without the machine and versions that produced it.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

ENGINES = ("constrain", "llguidance", "xgrammar", "outlines_core")
PACKAGE_OF = {
    "constrain": "constrain",
    "llguidance": "llguidance",
    "xgrammar": "xgrammar",
    "outlines_core": "outlines-core",
}
TOKENIZERS = ("qwen2", "smollm2", "qwen3_6")

# Environment variables that cap the thread pools of the engines and their dependencies
# (rayon for the Rust engines, OpenMP/MKL for torch, numba's own pool).
THREAD_ENV = {
    "RAYON_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def single_thread_env() -> None:
    """Pin every thread pool we know of to one thread (inherited by spawned workers).

    Also turns constrain's on-disk DFA cache off unless the caller set
    CONSTRAIN_DISK_CACHE: compile times here are cold compiles, as for the peers.
    """
    os.environ.update(THREAD_ENV)
    os.environ.setdefault("CONSTRAIN_DISK_CACHE", "0")


def package_version(engine: str) -> str | None:
    """Installed version of an engine's package, or None when it is not installed."""
    try:
        return importlib.metadata.version(PACKAGE_OF.get(engine, engine))
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_engines() -> list[str]:
    return [e for e in ENGINES if package_version(e) is not None]


def parse_engines(text: str | None) -> list[str]:
    """Comma-separated engine names; None means every installed engine."""
    if not text:
        return installed_engines()
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise SystemExit(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    return names


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(engines: Iterable[str] = ENGINES) -> str:
    """A few lines naming the CPU, core count, Python and the engines' versions."""
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    versions = ", ".join(f"{e} {package_version(e) or 'not installed'}" for e in engines)
    extra = []
    for pkg in ("numba", "numpy", "transformers", "torch"):
        try:
            extra.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return "\n".join(
        [
            f"machine : {cpu_model()}, {cores} cores ({usable} usable), {platform.system()} {platform.release()}",
            f"python  : {platform.python_implementation()} {platform.python_version()}",
            f"engines : {versions}",
            f"deps    : {', '.join(extra)}",
            f"threads : one per engine worker ({', '.join(f'{k}={v}' for k, v in THREAD_ENV.items())})",
        ]
    )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted sequence (q in [0, 100])."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(sorted_values[lo]) * (1.0 - frac) + float(sorted_values[hi]) * frac


def percentiles(values: Iterable[float], qs: Sequence[float]) -> list[float]:
    data = sorted(values)
    return [percentile(data, q) for q in qs]


def fmt_us(ns: float) -> str:
    """Nanoseconds as microseconds, with precision that suits the magnitude."""
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return "-"
    us = ns / 1000.0
    if us < 10:
        return f"{us:.2f}"
    if us < 100:
        return f"{us:.1f}"
    return f"{us:,.0f}"


def fmt_ms(ns: float) -> str:
    """Nanoseconds as milliseconds."""
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return "-"
    ms = ns / 1e6
    if ms < 1:
        return f"{ms:.3f}"
    if ms < 10:
        return f"{ms:.2f}"
    if ms < 100:
        return f"{ms:.1f}"
    return f"{ms:,.0f}"


def fmt_ratio(value: float, base: float) -> str:
    """value / base as 'x.yx' (how many times slower than the base; <1 means faster)."""
    if base is None or value is None or not base or math.isnan(base) or math.isnan(value):
        return "-"
    r = value / base
    return f"{r:.2f}x" if r < 10 else f"{r:,.0f}x"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    """A GitHub-flavoured Markdown table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "| " + " | ".join(parts) + " |"

    sep = "| " + " | ".join(
        ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
    ) + " |"
    out = [title] if title else []
    out.append(line(cells[0]))
    out.append(sep)
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)


def load_tokenizer(name: str):
    """A tokenizer from installed packages only (never a model hub)."""
    from constrain import assets

    loaders = {
        "qwen2": assets.qwen2_tokenizer,
        "smollm2": assets.smollm2_tokenizer,
        "qwen3_6": assets.qwen3_6_tokenizer,
    }
    if name not in loaders:
        raise SystemExit(f"unknown tokenizer {name!r}; choose from {', '.join(loaders)}")
    return loaders[name]()


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of text, without special tokens."""
    return list(tokenizer.encode(text, add_special_tokens=False))


# ----------------------------------------------------------------- per-item reports




def geomean(xs: list[float]) -> float:
    xs = [x for x in xs if x and x > 0 and not math.isnan(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def report_items(names: list[str], engines: list[str], results: dict, infos: dict, what: str) -> None:
    """Per-item table, per-engine summary table, one-off costs (shared with bench_grammars)."""
    base = "constrain"
    rows = []
    for name in names:
        b = results.get(base, {}).get(name)
        for e in engines:
            r = results[e][name]
            if r["status"] != "ok":
                rows.append([name, e, r["status"].replace("_", " "), "", "", "", "", "", "", "",
                             " ".join((r.get("error") or "").split())[:70]])
                continue
            tbm = sorted(r["tbm_ns"])
            p50, p99 = percentile(tbm, 50), percentile(tbm, 99)
            right = sum(t["right"] for t in r["tests"])
            ok = b is not None and b["status"] == "ok" and e != base
            btbm = sorted(b["tbm_ns"]) if ok else []
            rows.append([
                name, e,
                fmt_ms(r["compile_ns"]), fmt_ms(r["ttfm_ns"]), fmt_ms(r.get("ttfm_first_ns", r["ttfm_ns"])),
                fmt_us(p50), fmt_us(p99), fmt_us(tbm[-1] if tbm else math.nan),
                f"{right}/{len(r['tests'])}" + ("" if right == len(r["tests"]) else " !"),
                fmt_ratio(r["ttfm_ns"], b["ttfm_ns"]) if ok else "",
                fmt_ratio(p50, percentile(btbm, 50)) if ok and btbm else "",
            ])
    print(format_table(
        [what, "engine", "compile ms", "TTFM ms", "first TTFM ms", "mask p50 µs", "p99 µs", "max µs", "tests right",
         "TTFM / constrain", "p50 / constrain"], rows))
    print()
    summ = []
    for e in engines:
        oks = [results[e][n] for n in names if results[e][n]["status"] == "ok"]
        tbm = sorted(x for r in oks for x in r["tbm_ns"])
        right = sum(t["right"] for r in oks for t in r["tests"])
        total = sum(len(r["tests"]) for r in oks)
        both = [n for n in names if results[e][n]["status"] == "ok"
                and results.get(base, {}).get(n, {}).get("status") == "ok"]
        if e == base or not both:
            rt = rp = ""
        else:
            rt = f"{geomean([results[e][n]['ttfm_ns'] / results[base][n]['ttfm_ns'] for n in both]):.2f}x"
            rp = f"{geomean([percentile(sorted(results[e][n]['tbm_ns']), 50) / max(percentile(sorted(results[base][n]['tbm_ns']), 50), 1) for n in both]):.2f}x"
        summ.append([
            e, f"{len(oks)}/{len(names)}", f"{right}/{total}",
            fmt_ms(percentile(sorted(r["compile_ns"] for r in oks), 50)),
            fmt_ms(percentile(sorted(r["ttfm_ns"] for r in oks), 50)),
            fmt_ms(max((r["ttfm_ns"] for r in oks), default=math.nan)),
            fmt_us(percentile(tbm, 50)), fmt_us(percentile(tbm, 99)),
            fmt_us(tbm[-1] if tbm else math.nan), f"{len(tbm):,}", rt, rp,
        ])
    print(format_table(
        ["engine", f"{what}s compiled", "tests right", "compile p50 ms", "TTFM p50 ms", "TTFM max ms",
         "mask p50 µs", "mask p99 µs", "mask max µs", "masks", "TTFM / constrain (geomean)",
         "mask p50 / constrain (geomean)"], summ))
    print("(ratios are engine time / constrain time: above 1x means constrain is faster)")
    print()
    one = []
    for e in engines:
        info = infos[e]
        warm = next(iter((info.get("warmup") or {}).values()), {})
        one.append([e,
                    f"{info['prep_ns'] / 1e9:.2f}" if info.get("prep_ns") is not None else "-",
                    fmt_ms(warm["ns"]) if warm.get("status") == "ok" else (warm.get("status") or "-")])
    print(format_table(["engine", "vocabulary preprocessing s",
                                 "first compile+walk in process ms (numba JIT / cache load for constrain)"], one))
    for e in engines:
        info = infos[e]
        if not info.get("ok"):
            print(f"note: {e} did not start: {info.get('error')}")
        else:
            un = {r.get("error") for r in results[e].values() if r["status"] == "unavailable"}
            for msg in sorted(m for m in un if m):
                print(f"note: {e}: {msg}")


def run_engines(engines: list[str], jobs: list[dict], *, tokenizer: str, warmup_kind: str,
                timeout: float, max_rss_mb: int, quiet: bool) -> tuple[dict, dict]:
    """Run every job through each engine's worker in turn: {engine: {job id: result}}, {engine: info}."""
    from peers import EngineProcess

    results: dict[str, dict] = {}
    infos: dict[str, dict] = {}
    for e in engines:
        t0 = time.monotonic()
        proc = EngineProcess(e, tokenizer, warmup_kinds=[warmup_kind], timeout_s=timeout, max_rss_mb=max_rss_mb)
        info = proc.start()
        infos[e] = info
        results[e] = {}
        for job in jobs:
            if not info.get("ok"):
                results[e][job["id"]] = {"status": "unavailable", "error": info.get("error")}
                continue
            r = proc.run(job)
            results[e][job["id"]] = r
            if not quiet:
                extra = f" ({r.get('error')})" if r["status"] != "ok" else ""
                print(f"  {e:13s} {job['id']:16s} {r['status']}{extra}"[:160], file=sys.stderr, flush=True)
        proc.close()
        if not quiet:
            print(f"  {e}: done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    return results, infos
